-- Source side of the "mapped" strategy: section id -> (planogram name, section name).
SELECT sec.id, p.name AS planogram_name, sec.name AS section_name
FROM planograms_implementation_planogramsection AS sec
JOIN planograms_implementation_planogram AS p ON p.id = sec.planogram_id
WHERE sec.id = ANY(%(ids)s::bigint[])
