-- Status of each scan and how many active compliance reports its active realogram has.
SELECT s.id,
       s.status,
       (SELECT count(*)
        FROM planograms_compliance_planogramcompliancereport AS r
        WHERE r.realogram_id = s.active_realogram_id
          -- only the last calculation (see scan_details.sql)
          AND COALESCE((to_jsonb(r) ->> 'is_last_active')::boolean, true)) AS report_count
FROM realograms_implementation_scan AS s
WHERE s.id = ANY(%(ids)s::bigint[])
