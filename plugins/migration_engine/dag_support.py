"""What every DAG of the package shares: the manifest, each task's connections
(``Connections``), default arguments and pools.

Imports of Airflow happen inside functions that run in tasks, so the engine
stays importable without Airflow, and parsing a DAG file touches no database.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cache

from migration_engine import undeclared_conf
from migration_engine.checks import CheckFailed
from migration_engine.endpoints import Endpoint, from_airflow_connection
from migration_engine.env_contract import TARGET_POOL, source_pool  # noqa: F401 (the DAG files name pools through ds)
from migration_engine.manifest import DEFAULT_MANIFEST, Manifest, load_manifest
from migration_engine.resources import SQL_ROOT

SQL_TEMPLATE_PATH = str(SQL_ROOT)
OWNER = "platform-infra"
# The longest any gate sensor may wait, whatever gate_wait_hours says (its maximum).
MAX_GATE_WAIT = timedelta(hours=72)
# Gates that can pass later (soak time, clean streak) wait in reschedule mode: no worker
# slot is held between checks, and a refusal inside the check still fails at once.
GATE_SENSOR = {"mode": "reschedule", "poke_interval": 300, "timeout": MAX_GATE_WAIT.total_seconds()}
# A dangerous step waits this long for Approve or Reject under Required Actions. No default
# option: an unanswered request fails the task (HITLTimeoutError), so a timeout never approves;
# no retry, which would only ask again; a Reject skips every later step except the teardown.
APPROVAL = {"response_timeout": timedelta(hours=4), "retries": 0, "ignore_downstream_trigger_rules": True}


def manifest() -> Manifest:
    """The migration manifest (``MIGRATION_MANIFEST`` overrides the Credity default)."""
    return _manifest_at(os.environ.get("MIGRATION_MANIFEST") or str(DEFAULT_MANIFEST))


# By path, not once per process: a worker that runs many tasks runs them with the environment each
# was given, and a manifest file does not change under a running migration.
@cache
def _manifest_at(path: str) -> Manifest:
    return load_manifest(path)


class Connections:
    """How one task reaches its databases: each service's source, and the target over its direct URL
    and through its pooler, from the Airflow connections the manifest names. Every endpoint it hands
    out calls its sessions ``credity-migration-<dag_id>`` (``Endpoint.session_name`` says when
    ``DB_APPLICATION_NAME`` overrides that); each Airflow connection is looked up when first used,
    so a task never needs one it does not touch."""

    def __init__(self, dag_id: str):
        self.application_name = f"credity-migration-{dag_id}"
        self._found: dict[str, Endpoint] = {}

    def _endpoint(self, conn_id: str, name: str) -> Endpoint:
        if conn_id not in self._found:
            from airflow.sdk import Connection

            self._found[conn_id] = from_airflow_connection(name, Connection.get(conn_id)).named(self.application_name)
        return self._found[conn_id]

    def source_endpoint(self, service: str) -> Endpoint:
        return self._endpoint(manifest().source_conn_id(service), f"{service} source")

    def source_endpoints(self) -> dict[str, Endpoint]:
        """Every service's source endpoint, by service name."""
        return {service.name: self.source_endpoint(service.name) for service in manifest().services}

    @property
    def target_endpoint(self) -> Endpoint:
        return self._endpoint(manifest().target_direct.conn_id, "target (direct)")

    @property
    def pooler_endpoint(self) -> Endpoint:
        return self._endpoint(manifest().target_pooler.conn_id, "target (pooler)")

    def source(self, service: str, *, autocommit: bool = True):
        """A connection to ``service``'s source (autocommit unless asked otherwise)."""
        return self.source_endpoint(service).connect(autocommit=autocommit)

    def target(self, *, autocommit: bool = True):
        """A connection to the target over its direct URL (autocommit unless asked otherwise)."""
        return self.target_endpoint.connect(autocommit=autocommit)


def retry_delay() -> timedelta:
    """``MIGRATION_RETRY_DELAY_SECONDS`` (10): the first wait before a failed task is retried; each
    later wait doubles, up to five minutes."""
    raw = os.environ.get("MIGRATION_RETRY_DELAY_SECONDS") or "10"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        raise ValueError(f"MIGRATION_RETRY_DELAY_SECONDS must be a number of seconds from 0 to 3600, found {raw!r}")
    return timedelta(seconds=seconds)


def default_args(**overrides) -> dict:
    from migration_engine.alerts import notify_failure

    args = {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": retry_delay(),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": notify_failure,
        "pre_execute": refuse_undeclared_conf,
        "retry_policy": refusals_fail_at_once(),
    }
    args.update(overrides)
    return args


def refusals_fail_at_once():
    """The one place a refusal becomes a task failure without retries: ``CheckFailed``, raised
    anywhere in a task (its body, the engine it calls, a gate, ``pre_execute``), fails the task
    at once, since a retry would meet the same decision. Anything else (a connection error, a
    server restart) keeps the task's retries."""
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(rules=[
        RetryRule(exception=CheckFailed, action=RetryAction.FAIL, reason="refused: a retry would meet the same decision"),
    ])


def refuse_undeclared_conf(context) -> None:
    """Every task's ``pre_execute``: a run whose conf holds a key the DAG declares no Param
    for fails its first task before the task body runs, so before any database is touched.

    The API server already refuses such a trigger (``undeclared_conf.RefuseUndeclaredConf``); this is
    the second line, for runs created without it (``airflow dags trigger`` writes the run
    to the metadata DB itself, ``airflow dags test`` runs the DAG in its own process).
    """
    dag = context["dag"]
    unknown = undeclared_conf.undeclared_keys(context["dag_run"].conf, dag.params)
    if unknown:
        raise CheckFailed(f"{undeclared_conf.refusal(dag.dag_id, unknown, dag.params)} Nothing was run; "
                          f"{undeclared_conf.trigger_again(unknown)}")


def require_phase(dag_id: str, allowed: set, action: str) -> dict:
    """The ledger check every phase DAG runs first; refuses (no retry) when out of order.

    Its result carries the ledger epoch the run starts under: the run's writes and
    ledger moves are fenced by it (``run_epoch``)."""
    from migration_engine import ledger

    m = manifest()
    with Connections(dag_id).target() as conn:
        ledger.ensure_ledger(conn, m.control_schema)
        # The epoch before the phase: a move in between leaves the run an older epoch, so it refuses, never a newer one.
        epoch = ledger.current_epoch(conn, m.control_schema)
        state = ledger.require_phase(conn, m.control_schema, allowed, action)
    return {"phase": state.phase, "since": state.at.isoformat() if state.at else None, "run_id": state.run_id,
            "epoch": epoch.number}


def run_epoch(dag_id: str) -> int:
    """The ledger epoch this DAG run acts under: the one its ``check_ledger_phase`` task read at
    the start, moved on only by the run's own ledger moves (``ledger.run_epoch``).

    A cleared task of an old run starts from its own run's epoch, so its writes refuse once
    another run has moved the ledger."""
    from airflow.sdk import get_current_context

    from migration_engine import ledger

    started = run_start()
    with Connections(dag_id).target() as conn:
        return ledger.run_epoch(conn, manifest().control_schema, started["epoch"], dag_id,
                                get_current_context()["run_id"])


def run_start() -> dict:
    """What this run's ``check_ledger_phase`` task read: the phase and the epoch the run started in."""
    from airflow.sdk import get_current_context

    started = get_current_context()["ti"].xcom_pull(task_ids="check_ledger_phase")
    if not isinstance(started, dict) or "epoch" not in started:
        raise CheckFailed("this run recorded no ledger epoch at its start (its check_ledger_phase task did not return one); "
                          "nothing was written. Trigger a new run")
    return started


def advance_phase(dag_id: str, run_id: str, to_phase: str, details: dict | None = None, *,
                  through: tuple[str, ...] = ()) -> bool:
    """Move the ledger, fenced by the epoch this run started under (a stale run refuses, no retry)."""
    from migration_engine import ledger

    epoch = run_epoch(dag_id)
    with Connections(dag_id).target() as conn:
        return ledger.advance(conn, manifest().control_schema, to_phase, dag_id, run_id, details,
                              epoch=epoch, through=through)


def write_status_report(dag_id: str, *, verify_task: str | None = None) -> str:
    """Refresh ``status/latest/migration-status.html`` in the artifact folder; returns its path.

    The DAGs run it as a teardown: it runs when the rest is done, failed or not, and
    never decides the run's state. What ``verify_task`` (the verification result)
    returned in this run is recorded in the ledger first, so every later report shows
    the latest verification; a task that did not get that far returned nothing, and
    the page is written from the ledger as it stands. Re-running rewrites the same page.
    """
    from airflow.sdk import get_current_context

    from migration_engine import status_report
    from migration_engine.resources import artifact_folder

    m = manifest()
    conns = Connections(dag_id)
    context = get_current_context()
    verification = context["ti"].xcom_pull(task_ids=verify_task) if verify_task else None
    if verification:
        with conns.target() as conn:
            status_report.record_verification(conn, m, verification, dag_id, context["run_id"])
    return str(status_report.write(conns.target_endpoint, m, artifact_folder("status", "latest")))


def backfilled_asset_name() -> str:
    """The Asset the backfill publishes and the verification DAG is scheduled on."""
    return f"{manifest().migration}_backfilled"


def caught_up_asset_name() -> str:
    """The Asset the catch-up publishes and the verification DAG is scheduled on."""
    return f"{manifest().migration}_caught_up"


def dag_arguments(doc: str, *tags: str, params: dict | None = None) -> dict:
    """What every DAG of the package shares: one active run, no catchup, owner and
    retries, tags (``strict-conf`` has the API server refuse undeclared conf keys), its
    module docstring as doc_md, and the SQL templates: their path, the ``ident`` filter
    and the Jinja options the engine renders them with."""
    import pendulum

    from migration_engine import sqlfiles

    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args(),
        "tags": ["migration", undeclared_conf.STRICT_CONF_TAG, *tags],
        "doc_md": doc,
        "template_searchpath": SQL_TEMPLATE_PATH,
        "user_defined_filters": sqlfiles.FILTERS,
        "jinja_environment_kwargs": sqlfiles.JINJA_OPTIONS,
        "params": params or {},
    }


def confirm_param(word: str, action: str):
    """The typed confirmation of a manual phase: anything but ``word`` refuses before any database is touched."""
    from airflow.sdk import Param

    return Param(
        None, type=["null", "string"], title="Confirm",
        description=f"Type {word} exactly to {action}. Anything else refuses before any database is touched.",
    )


def tables_param():
    """Only these manifest tables; anything else is refused at trigger time, before any task."""
    from airflow.sdk import Param

    return Param(
        [], type="array", items={"type": "string", "enum": [t.qualified for t in manifest().tables]}, title="Tables",
        description="Only these tables (e.g. wallet.users); empty means every table of the manifest.",
    )


def latency_budget_param(title: str, paces: str):
    """Load-aware pacing's budget (``max_latency_increase``): ``paces`` says what slows down."""
    from airflow.sdk import Param

    return Param(
        0.3, type=["null", "number"], minimum=0, maximum=10, title=title,
        description=f"Load-aware pacing: {paces} to keep a probe's latency on the apps' primary within this fraction "
        "above its baseline measured before (0.3: the runbook's +30 % rollback trigger). Empty or 0: off.",
    )


def gate_wait_param():
    from airflow.sdk import Param

    return Param(
        6, type="number", minimum=0, maximum=MAX_GATE_WAIT.total_seconds() / 3600, title="Gate wait (hours)",
        description="How long the soak and clean-reconcile gates wait for their condition, checking every 5 minutes, "
        "before they refuse. 0 checks once. A soak that cannot be long enough in time refuses at once.",
    )


def gate_wait_left(gate_wait_hours: float) -> float:
    """Hours this rescheduling sensor may still wait: ``gate_wait_hours`` less the time since its first check."""
    from airflow.sdk import get_current_context, timezone

    context = get_current_context()
    first_check = context["ti"].get_first_reschedule_date(context)
    waited = (timezone.utcnow() - first_check).total_seconds() / 3600 if first_check else 0.0
    return gate_wait_hours - waited


def poke(result: dict | None):
    """A sensor's answer from a gate step: done with its result as XCom, or not yet."""
    from airflow.sdk import PokeReturnValue

    return PokeReturnValue(is_done=result is not None, xcom_value=result)


def dry_run_param(default: bool = True):
    from airflow.sdk import Param

    return Param(
        default, type="boolean", title="Dry run",
        description="Render and log every SQL statement; change nothing in either database.",
    )


def mapped_results(results) -> list:
    """Mapped tasks' results as a list. Read by index up to their count: iterating Airflow's lazy
    sequence asks for one result past the end and logs the 404 as an error."""
    results = results or []
    return [results[index] for index in range(len(results))]


def flatten(results) -> list:
    """The items of mapped tasks that each return a list."""
    return [item for items in mapped_results(results) for item in items]
