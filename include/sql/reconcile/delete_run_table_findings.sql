DELETE FROM {{ findings | ident }} WHERE run_id = %(run_id)s AND table_name = %(table_name)s
