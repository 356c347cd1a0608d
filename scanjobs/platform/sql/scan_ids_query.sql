-- Scans of some stores created in [date_from, date_to] (dates inclusive, each optional) with a status.
SELECT s.id
FROM realograms_implementation_scan AS s
WHERE (%(stores)s::bigint[] IS NULL OR s.store_id = ANY(%(stores)s::bigint[]))
  AND (%(date_from)s::date IS NULL OR s.created_at >= %(date_from)s::date)
  -- the day after date_to, so the whole last day counts whatever the time of day
  AND (%(date_to)s::date IS NULL OR s.created_at < %(date_to)s::date + 1)
  AND (%(status)s::text IS NULL OR s.status = %(status)s::text)
ORDER BY s.id
