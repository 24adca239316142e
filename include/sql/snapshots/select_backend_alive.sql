-- The holder's session on the source, seen from any other session of the same role.
SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %(backend_pid)s AND backend_xmin IS NOT NULL)
