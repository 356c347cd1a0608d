-- Files of a store with one of the given checksums that no scan uses yet, uploaded since a time,
-- with their creation time (epoch seconds): what an upload cut short by a kill (or a read
-- timeout) may have left on the target, and when.
SELECT f.id, f.checksum, f.original_filename, extract(epoch FROM f.created_at)::float8 AS created
FROM master_data_implementation_fileupload f
WHERE f.store_id = %(store_id)s::bigint
  AND f.checksum = ANY(%(checksums)s::text[])
  AND f.created_at >= %(since)s
  AND NOT EXISTS (SELECT 1 FROM realograms_implementation_scanfile sf WHERE sf.file_id = f.id)
ORDER BY f.id
