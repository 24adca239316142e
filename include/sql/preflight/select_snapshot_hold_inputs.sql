-- What the backfill's snapshot hold depends on: how much the copy reads, and the timeouts
-- that could end a transaction left open that long.
SELECT coalesce(sum(pg_table_size(to_regclass(format('%%I.%%I', m.schema_name, m.table_name)))), 0)::bigint,
       current_setting('idle_in_transaction_session_timeout'),
       current_setting('transaction_timeout', true)
FROM unnest(%(schemas)s::text[], %(tables)s::text[]) AS m(schema_name, table_name)
