-- Target side: planogram name -> store POG id in one store. Ordered by id so that, when one
-- name has several store POGs there, the caller keeps the newest one deterministically.
SELECT p.name, ps.id
FROM planograms_implementation_planogramstore AS ps
JOIN planograms_implementation_planogram AS p ON p.id = ps.planogram_id
WHERE ps.store_id = %(store_id)s::bigint
  AND p.name = ANY(%(names)s::text[])
ORDER BY ps.id
