SELECT current_setting('server_version'), current_database(), current_user, r.rolsuper
FROM pg_roles r
WHERE r.rolname = current_user
