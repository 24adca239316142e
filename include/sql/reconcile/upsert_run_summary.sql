INSERT INTO {{ runs | ident }} (run_id, table_name, direction, checked_rows, drifted, repaired, in_flight, settled, unrepaired, cap_exceeded, clean, seconds, finished_at)
VALUES (%(run_id)s, %(table_name)s, %(direction)s, %(checked_rows)s, %(drifted)s, %(repaired)s, %(in_flight)s, %(settled)s, %(unrepaired)s, %(cap_exceeded)s, %(clean)s, %(seconds)s, now())
ON CONFLICT (run_id, table_name) DO UPDATE SET
    direction = EXCLUDED.direction, checked_rows = EXCLUDED.checked_rows, drifted = EXCLUDED.drifted,
    repaired = EXCLUDED.repaired, in_flight = EXCLUDED.in_flight, settled = EXCLUDED.settled,
    unrepaired = EXCLUDED.unrepaired, cap_exceeded = EXCLUDED.cap_exceeded, clean = EXCLUDED.clean,
    seconds = EXCLUDED.seconds, finished_at = EXCLUDED.finished_at
