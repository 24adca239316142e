INSERT INTO {{ findings | ident }} (run_id, table_name, key, kind, repaired, in_flight, source_hash, target_hash, direction, found_at, repaired_at)
VALUES (%(run_id)s, %(table_name)s, %(key)s, %(kind)s, %(repaired)s, %(in_flight)s, %(source_hash)s, %(target_hash)s, %(direction)s, %(found_at)s, %(repaired_at)s)
