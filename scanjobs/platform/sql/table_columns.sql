-- The columns this connection may read of each of the named tables, where an unqualified name
-- finds them (the search path: what our queries' names mean). information_schema lists only
-- the columns a user has some privilege on; SELECT is the one our queries need.
SELECT t.name AS table_name, c.column_name::text AS column_name
FROM unnest(%(tables)s::text[]) AS t (name)
JOIN pg_catalog.pg_class AS cl ON cl.oid = to_regclass(quote_ident(t.name))
JOIN pg_catalog.pg_namespace AS n ON n.oid = cl.relnamespace
JOIN information_schema.columns AS c
  ON c.table_schema = n.nspname AND c.table_name = cl.relname
WHERE has_column_privilege(cl.oid, c.column_name::text, 'SELECT')
