SELECT set_config('search_path', 'pg_catalog, ' || quote_ident(%(schema)s), true)
