-- The scans among %(ids)s that exist (the caller restores the given order).
SELECT s.id
FROM realograms_implementation_scan AS s
WHERE s.id = ANY(%(ids)s::bigint[])
