"""The process that holds one source snapshot open for a backfill run.

Started by ``snapshots.start_holder`` with its orders (JSON) on standard input.
It opens a REPEATABLE READ transaction on the source, exports its snapshot,
publishes it in the target's ``source_snapshots`` and then stays in that
transaction, touching it every few seconds, until no run's row holds it any
more (released, or handed to a newer run that released it) or ``max_hold_s`` passes. Every way it ends is
written to the row (``lost`` with the cause, or ``expired``), except a SIGKILL,
which chunk tasks notice by the snapshot import failing and the sensor by the
backend being gone.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time

import psycopg

from migration_engine import snapshots, sqlfiles
from migration_engine.endpoints import Endpoint, EndpointError, redact

log = logging.getLogger("migration.snapshot_holder")

PING_S = 2.0
# The target may restart during a long copy: keep the snapshot through an outage this long.
TARGET_OUTAGE_S = 600.0


class Stopped(Exception):
    pass


def _stop(signum, _frame):
    raise Stopped(f"stopped by signal {signal.Signals(signum).name}")


def hold(order: dict) -> int:
    source = Endpoint(order["source_name"], order["source"], application_name=order["application_name"])
    target = Endpoint(order["target_name"], order["target"], application_name=order["application_name"])
    schema, run_id, service = order["control_schema"], order["run_id"], order["service"]
    secrets = (source.password, target.password)
    snapshot_id = None
    with target.connect(autocommit=True) as tgt:
        try:
            with source.connect(autocommit=True, statement_timeout_ms=0) as src:
                sqlfiles.run(src, "snapshots/disable_session_timeouts")
                src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                src.read_only = True
                with src.transaction():
                    snapshot_id, lsn, horizon, pid = sqlfiles.run(src, "snapshots/export_snapshot").fetchone()
                    snapshots.publish(tgt, schema, run_id, service, state="holding", holder=order["holder"], snapshot={
                        "snapshot_id": snapshot_id, "lsn": lsn, "xmin_horizon": horizon, "backend_pid": pid})
                    log.info("holding snapshot %s of the %s source at LSN %s (xmin horizon %s) for run %s",
                             snapshot_id, service, lsn, horizon, run_id)
                    ending = _wait(src, target, tgt, order, snapshot_id)
        except (psycopg.Error, EndpointError, Stopped) as exc:
            cause = redact(str(exc), *secrets)
            log.error("snapshot %s of the %s source lost: %s", snapshot_id, service, cause)
            _record_end(target, order, snapshot_id, "lost" if snapshot_id else "failed", cause)
            return 1
    log.info("snapshot %s of the %s source: %s", snapshot_id, service, ending)
    return 0


def _wait(src: psycopg.Connection, target: Endpoint, tgt: psycopg.Connection, order: dict, snapshot_id: str) -> str:
    """Stay in the snapshot's transaction until it is released; returns why it ended."""
    deadline = time.monotonic() + float(order["max_hold_s"])
    schema, service = order["control_schema"], order["service"]
    target_down_since = None
    while True:
        time.sleep(PING_S)
        # A statement now and then: the transaction is never idle for long, and a dead source shows at once.
        src.execute("SELECT 1")
        try:
            held = snapshots.still_held(tgt, schema, service, snapshot_id)
            target_down_since = None
        except psycopg.OperationalError:
            target_down_since = target_down_since or time.monotonic()
            if time.monotonic() - target_down_since > TARGET_OUTAGE_S:
                return f"released: the target was unreachable for {TARGET_OUTAGE_S:.0f} s"
            tgt = _reconnect(target, order) or tgt
            continue
        if not held:
            return "released"
        if time.monotonic() > deadline:
            snapshots.end(tgt, schema, service, snapshot_id, state="expired",
                          error=f"held for the maximum of {order['max_hold_s']} s and given up")
            return "expired"


def _reconnect(target: Endpoint, order: dict) -> psycopg.Connection | None:
    try:
        return target.connect(autocommit=True)
    except EndpointError:
        return None


def _record_end(target: Endpoint, order: dict, snapshot_id: str | None, state: str, cause: str) -> None:
    try:
        with target.connect(autocommit=True) as tgt:
            if snapshot_id is None:
                snapshots.publish(tgt, order["control_schema"], order["run_id"], order["service"], state=state,
                                  error=cause, holder=order["holder"])
            else:
                snapshots.end(tgt, order["control_schema"], order["service"], snapshot_id, state=state, error=cause)
    except (psycopg.Error, EndpointError) as exc:
        log.error("could not record the end of the snapshot: %s", redact(str(exc), target.password))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return hold(json.loads(sys.stdin.read()))


if __name__ == "__main__":
    sys.exit(main())
