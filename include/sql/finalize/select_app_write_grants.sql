SELECT count(*) FROM information_schema.role_table_grants
WHERE grantee = %(app_role)s AND table_schema = %(schema)s AND privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
