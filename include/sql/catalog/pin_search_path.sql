SELECT set_config('search_path', quote_ident(%(schema)s) || ', pg_catalog', true)
