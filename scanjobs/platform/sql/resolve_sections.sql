-- Target side: (planogram name, section name) -> section id, among the planograms that the
-- store has, so a same-named planogram of another store is never picked.
SELECT p.name AS planogram_name, sec.name AS section_name, sec.id
FROM planograms_implementation_planogramsection AS sec
JOIN planograms_implementation_planogram AS p ON p.id = sec.planogram_id
JOIN unnest(%(planogram_names)s::text[], %(section_names)s::text[]) AS wanted (pog, sec)
  ON wanted.pog = p.name AND wanted.sec = sec.name
WHERE EXISTS (
    SELECT 1
    FROM planograms_implementation_planogramstore AS ps
    WHERE ps.planogram_id = p.id AND ps.store_id = %(store_id)s::bigint
)
ORDER BY sec.id
