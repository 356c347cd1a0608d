SELECT EXISTS (SELECT 1 FROM master_data_implementation_store WHERE id = %(store_id)s::bigint)
