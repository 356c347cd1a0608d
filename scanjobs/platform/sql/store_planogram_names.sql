-- Source side of the "mapped" strategy: store POG id -> its planogram's name.
SELECT ps.id, p.name
FROM planograms_implementation_planogramstore AS ps
JOIN planograms_implementation_planogram AS p ON p.id = ps.planogram_id
WHERE ps.id = ANY(%(ids)s::bigint[])
