-- Scans with all their files in source order, aggregated per scan so 2+ files never
-- break the query (the legacy scalar subquery did) nor multiply the scan rows.
SELECT s.id,
       s.store_id,
       s.created_at,
       s.status,
       s.provided_values,
       COALESCE(f.files, '[]'::jsonb) AS files
FROM realograms_implementation_scan AS s
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_array(sf.file_id, sf.file_type) ORDER BY sf.id) AS files
    FROM realograms_implementation_scanfile AS sf
    WHERE sf.scan_id = s.id
) AS f ON true
WHERE s.id = ANY(%(ids)s::bigint[])
