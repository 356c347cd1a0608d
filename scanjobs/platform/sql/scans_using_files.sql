-- Scans of a store that use one of the given files, each with all its files in order: a create
-- that a crash left unsettled may have made one of them from the files its copy uploaded.
SELECT s.id,
       ARRAY(
           SELECT sf.file_id
           FROM realograms_implementation_scanfile AS sf
           WHERE sf.scan_id = s.id
           ORDER BY sf.id
       ) AS files
FROM realograms_implementation_scan AS s
WHERE s.store_id = %(store_id)s::bigint
  AND s.id IN (
      SELECT u.scan_id
      FROM realograms_implementation_scanfile AS u
      WHERE u.file_id = ANY(%(file_ids)s::bigint[])
  )
ORDER BY s.id
