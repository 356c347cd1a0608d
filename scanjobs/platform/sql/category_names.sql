SELECT c.id, c.name
FROM master_data_implementation_category AS c
WHERE c.id = ANY(%(ids)s::bigint[])
