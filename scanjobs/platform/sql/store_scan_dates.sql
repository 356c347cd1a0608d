-- Per store: how many scans it has, how many of them with the status, and the creation dates of
-- the first and last of those (of all its scans when none has the status). Dates as the scan
-- query compares them (the session's time zone). Stores without scans give no row.
SELECT s.store_id,
       count(*) AS scans,
       count(*) FILTER (WHERE %(status)s::text IS NULL OR s.status = %(status)s::text) AS with_status,
       coalesce(min(s.created_at) FILTER (WHERE %(status)s::text IS NULL OR s.status = %(status)s::text),
                min(s.created_at))::date AS first_created,
       coalesce(max(s.created_at) FILTER (WHERE %(status)s::text IS NULL OR s.status = %(status)s::text),
                max(s.created_at))::date AS last_created
FROM realograms_implementation_scan AS s
WHERE s.store_id = ANY(%(stores)s::bigint[])
GROUP BY s.store_id
ORDER BY s.store_id
