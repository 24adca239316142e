-- In the holder's REPEATABLE READ transaction, its first statement: the snapshot to share,
-- its WAL position and xmin horizon (every transaction below it had ended when it was taken).
SELECT pg_export_snapshot(),
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
       pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
       pg_backend_pid()
