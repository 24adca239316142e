-- The holder sits idle in its transaction for the whole copy: a server-wide
-- idle_in_transaction_session_timeout (or PostgreSQL 17's transaction_timeout) would end it.
SELECT set_config(name, '0', false) FROM pg_settings
WHERE name IN ('idle_in_transaction_session_timeout', 'transaction_timeout')
