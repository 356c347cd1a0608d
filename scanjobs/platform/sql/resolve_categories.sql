-- Target side: category name -> id (ordered so duplicates resolve to the newest).
SELECT c.name, c.id
FROM master_data_implementation_category AS c
WHERE c.name = ANY(%(names)s::text[])
ORDER BY c.id
