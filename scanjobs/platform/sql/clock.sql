-- The database server's clock (epoch seconds): how far the platform's timestamps are from ours.
SELECT extract(epoch FROM clock_timestamp())::float8 AS now
