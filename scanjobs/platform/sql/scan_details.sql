-- One row per (scan, active compliance report of its active realogram); a scan without reports
-- gives one row with NULL report columns. Everything else is looked up per row (lateral, LIMIT 1
-- or an aggregate), so bays, products or logs can never multiply the rows.
SELECT s.id AS scan_id,
       s.status AS scan_status,
       r.id AS report_id,
       s.active_realogram_id AS realogram_id,
       bays.n AS bays,
       r.store_planogram_id,
       p.id AS planogram_id,
       p.name AS planogram_name,
       r.section_id,
       r.section_name,
       CASE
           WHEN r.section_id IS NULL THEN NULL
           ELSE EXISTS (
               SELECT 1
               FROM planograms_implementation_planogramsectionproduct AS sp
               WHERE sp.section_id = r.section_id
                 AND (strpos(lower(sp.action), 'additional') > 0
                      OR strpos(lower(sp.merch_method), 'additional') > 0)
           )
       END AS is_additional_section,
       spc.pre_compliance AS pre_pog_pct,
       spc.post_compliance AS post_pog_pct,
       spc.pre_osa AS pre_osa_pct,
       spc.post_osa AS post_osa_pct,
       (r.compliance_rates ->> 'correct')::numeric AS ok,
       (r.compliance_rates ->> 'wandering')::numeric AS wandering,
       (r.compliance_rates ->> 'missing')::numeric AS oos,
       (r.compliance_rates ->> 'empty')::numeric AS hole,
       ml.map_by
FROM realograms_implementation_scan AS s
LEFT JOIN LATERAL (
    -- NULL, not 0, when the scan has no realogram yet
    SELECT CASE WHEN s.active_realogram_id IS NULL THEN NULL ELSE count(*) END AS n
    FROM realograms_implementation_realogrambay AS b
    WHERE b.realogram_id = s.active_realogram_id
) AS bays ON true
LEFT JOIN planograms_compliance_planogramcompliancereport AS r
    ON r.realogram_id = s.active_realogram_id
    -- A recalculated scan keeps its older reports, inactive: only the last calculation counts.
    -- The column is assumed, not confirmed: to_jsonb reads it where the table has it, and gives
    -- NULL (every report active) where it does not, so one query serves both.
    AND COALESCE((to_jsonb(r) ->> 'is_last_active')::boolean, true)
LEFT JOIN planograms_implementation_planogramstore AS ps ON ps.id = r.store_planogram_id
LEFT JOIN planograms_implementation_planogram AS p
    ON p.id = COALESCE(r.planogram_id, ps.planogram_id)
LEFT JOIN LATERAL (
    SELECT c.pre_compliance, c.post_compliance, c.pre_osa, c.post_osa
    FROM planograms_compliance_storeplanogramcompliance AS c
    WHERE c.store_planogram_id = r.store_planogram_id
      AND c.date = r.scan_created_date::date
    ORDER BY c.id DESC
    LIMIT 1
) AS spc ON true
LEFT JOIN (
    -- per (scan, store planogram): the map_by of the last MA log naming the scan. Read once for
    -- all the scans (each log of their store planograms unpacked), not looked up per scan: that
    -- lookup read every older log of the store planogram again, and took minutes for 100k scans.
    SELECT DISTINCT ON (e.key, m.store_planogram_id)
           e.key AS scan_key, m.store_planogram_id, e.value ->> 'map_by' AS map_by
    FROM planograms_compliance_majorityv2log AS m
    CROSS JOIN LATERAL jsonb_each(
        CASE WHEN jsonb_typeof(m.data) = 'object' THEN m.data ELSE '{}'::jsonb END
    ) AS e
    WHERE m.store_planogram_id IN (
        SELECT r2.store_planogram_id
        FROM realograms_implementation_scan AS s2
        JOIN planograms_compliance_planogramcompliancereport AS r2
            ON r2.realogram_id = s2.active_realogram_id
        WHERE s2.id = ANY(%(ids)s::bigint[])
    )
    ORDER BY e.key, m.store_planogram_id, m.id DESC
) AS ml ON ml.scan_key = s.id::text AND ml.store_planogram_id = r.store_planogram_id
WHERE s.id = ANY(%(ids)s::bigint[])
ORDER BY s.id, r.id
