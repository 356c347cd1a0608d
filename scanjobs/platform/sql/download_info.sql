-- What a downloaded file is named after: the first active report's section, the store POG id
-- of the create payload (_raw_data first, then top level), and the files in source order.
SELECT s.id,
       (SELECT r.section_name
        FROM planograms_compliance_planogramcompliancereport AS r
        WHERE r.realogram_id = s.active_realogram_id
          -- only the last calculation (see scan_details.sql)
          AND COALESCE((to_jsonb(r) ->> 'is_last_active')::boolean, true)
        ORDER BY r.id
        LIMIT 1) AS section_name,
       COALESCE(
           s.provided_values -> '_raw_data' ->> 'store_planogram',
           s.provided_values -> '_raw_data' ->> 'store_planogram_id',
           s.provided_values ->> 'store_planogram',
           s.provided_values ->> 'store_planogram_id'
       ) AS store_pog_id,
       COALESCE(f.files, '[]'::jsonb) AS files
FROM realograms_implementation_scan AS s
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_array(sf.file_id, sf.file_type) ORDER BY sf.id) AS files
    FROM realograms_implementation_scanfile AS sf
    WHERE sf.scan_id = s.id
) AS f ON true
WHERE s.id = ANY(%(ids)s::bigint[])
