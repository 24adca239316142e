"""The source's health while the migration reads it: the latency of a probe.

Why a probe's latency rather than active sessions or wait events: it is what an
app's simplest statement feels on the same server at that moment (CPU, connection
scheduling and lock-manager pressure from our COPY all show up in it), it needs no
privilege or extension (a managed source gives neither), and it costs well under a
millisecond, so it can run several times a second. Session counts and wait events
describe what the server is doing, not what the apps feel, and depend on how the
apps pool their connections.
"""

from __future__ import annotations

import statistics
import time

import psycopg

from migration_engine.endpoints import Endpoint

PROBE = "SELECT 1"
BASELINE_SAMPLES = 40
BASELINE_INTERVAL_S = 0.05


def probe_ms(conn: psycopg.Connection) -> float:
    """One probe's round trip, in milliseconds."""
    started = time.perf_counter()
    conn.execute(PROBE).fetchone()
    return (time.perf_counter() - started) * 1000


def baseline_ms(endpoint: Endpoint, samples: int = BASELINE_SAMPLES,
                interval_s: float = BASELINE_INTERVAL_S) -> float:
    """The probe's median latency before the copy starts: what the pacer holds the source near."""
    with endpoint.connect(autocommit=True) as conn:
        probe_ms(conn)  # the first round trip pays for the session's catalog cache
        measured = []
        for _ in range(samples):
            measured.append(probe_ms(conn))
            time.sleep(interval_s)
    return round(statistics.median(measured), 3)
