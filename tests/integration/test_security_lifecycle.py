"""One full lifecycle through Airflow under least-privileged roles, every password a canary.

The estate's source, target and pooler passwords all carry one distinctive
canary; the DAGs connect to the sources as the read-mostly role that
scripts/create_migration_roles.sql creates, and to the target as a
non-superuser. After preflight → schema_baseline → backfill → verify →
dual_write → cutover → finalize (drift injected in sensitive columns on the
way), the canary is searched for in every output, task log, metadata-DB row,
report, backup listing and in the process list sampled while pg_dump ran; the
sensitive values are searched for in the same places and in the drift ledger.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from migration_engine import ledger
from migration_engine.endpoints import from_url
from migration_engine.generator import generate
from migration_engine.local.estate import TARGET_DB, TARGET_OWNER, Estate, _conn_var
from migration_engine.local.servers import PostgresServer
from migration_engine.reconcile import record_outcome
from migration_engine.reconcile.engine import Direction, reconcile_table
from migration_engine.schema_sql import create_source_layout

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

REPO = Path(__file__).resolve().parents[2]
ROLES_SCRIPT = REPO / "scripts" / "create_migration_roles.sql"
CANARY = "kanarie7Qz9"
SOURCE_ROLE = "credity_migration"
CONTROL = "migration_control"
SECRET_TOKENS = [f"ya29.SECRET-oauth-{n}-do-not-print" for n in range(3)]


def psql_script(server: PostgresServer, dbname: str, **variables: str) -> None:
    """Run the roles script as psql would be run by an admin; the password travels in the environment only."""
    args = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", dbname,
            "-f", str(ROLES_SCRIPT)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    subprocess.run(args, env={**os.environ, "PGPASSWORD": server.password}, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def estate(manifest):
    """Every password of every connection carries the canary."""
    running = Estate(
        manifest,
        source=PostgresServer("source", password=f"{CANARY}-source-su"),
        target=PostgresServer("target", password=f"{CANARY}-target-su"),
        target_password=f"{CANARY}-migrator",
        app_passwords={s.app_role: f"{CANARY}-{s.app_role}" for s in manifest.services if s.app_role},
    )
    with running:
        yield running


@pytest.fixture(scope="module")
def roles(estate, manifest):
    """The source as a real estate has it (data, app roles), then the migration roles from the script."""
    sources = {s.name: estate.source_endpoint(s.name) for s in manifest.services}
    create_source_layout(manifest, sources)
    generate(manifest, sources, scale=0.1, seed=11, replace=True)
    for service in manifest.services:
        psql_script(estate.source, estate.source_db(service.name), side="source", role=SOURCE_ROLE,
                    schema=service.source_schema, app_role=service.app_role)
    estate.source.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(SOURCE_ROLE), sql.Literal(f"{CANARY}-reader")))
    psql_script(estate.target, TARGET_DB, side="target", role=TARGET_OWNER)
    env = estate.airflow_env()
    for service in manifest.services:
        env[_conn_var(manifest.source_conn_id(service.name))] = estate.source.url(
            estate.source_db(service.name), SOURCE_ROLE, f"{CANARY}-reader")
    return env


def migration_source(estate, env, manifest, service: str):
    return from_url(f"{service} source", env[_conn_var(manifest.source_conn_id(service))])


class ProcessWatch:
    """Samples ``ps -eo args`` while a DAG runs: every pg_dump command line seen, and any line holding the canary."""

    def __init__(self):
        self.pg_dump_lines: set[str] = set()
        self.canary_lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            for line in listing.splitlines():
                if CANARY in line:
                    self.canary_lines.append(line)
                if "pg_dump" in line and "ps -eo" not in line:
                    self.pg_dump_lines.add(line)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def lifecycle(estate, manifest, roles, airflow_home, tmp_path_factory, caplog_module):
    """The whole lifecycle once; the tests below inspect what it left behind."""
    work = tmp_path_factory.mktemp("lifecycle")
    env = {**roles, "MIGRATION_BACKUP_DIR": str(work / "backups"), "MIGRATION_ARTIFACT_DIR": str(work / "artifacts")}
    runs = []

    def run(dag_id, conf=None):
        result = airflow_home.run_dag(dag_id, conf, extra_env=env)
        runs.append(result)
        assert result.succeeded, f"{dag_id}: {result.task_states}\n{result.output[-4000:]}"
        return result

    every_table = [t.qualified for t in manifest.tables]
    watch = ProcessWatch()
    with watch:
        run("preflight", {"fresh_backup": True})
        run("schema_baseline")
        run("backfill")
        run("catch_up")
        run("verify")
        run("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
        target = estate.target_endpoint()
        for attempt in range(2):
            for table in manifest.tables:
                result = reconcile_table(table, migration_source(estate, env, manifest, table.service), target,
                                         run_id=f"soak-{attempt}", direction=Direction.SOURCE_TO_TARGET,
                                         control_schema=CONTROL, grace_seconds=0)
                assert result.unrepaired == 0, result.summary()
            with target.connect(autocommit=True) as conn:
                record_outcome(conn, CONTROL, f"soak-{attempt}", Direction.SOURCE_TO_TARGET.value, every_table)
        with target.connect(autocommit=True) as conn:
            ledger.advance(conn, CONTROL, "soak", "test", "soak")
        # Writes the target missed, in the OAuth token columns: the cutover's reconcile repairs them.
        with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM public.platform_connections ORDER BY id LIMIT 3")]
            assert len(ids) == len(SECRET_TOKENS)
            for row_id, token in zip(ids, SECRET_TOKENS, strict=True):
                conn.execute("UPDATE public.platform_connections SET oauth_access_token = %s WHERE id = %s", (token, row_id))
        cutover = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0, "min_clean_reconciles": 1})
        # A write the apps made on the target after cutover: the migration role must be able to carry it back.
        with target.connect(autocommit=True) as conn:
            conn.execute("INSERT INTO recruiter.users (username, password) VALUES ('after-cutover', 'x')")
        for table in manifest.tables:
            result = reconcile_table(table, migration_source(estate, env, manifest, table.service), target,
                                     run_id="after-cutover", direction=Direction.TARGET_TO_SOURCE,
                                     control_schema=CONTROL, grace_seconds=0)
            assert result.unrepaired == 0, result.summary()
        with target.connect(autocommit=True) as conn:
            record_outcome(conn, CONTROL, "after-cutover", Direction.TARGET_TO_SOURCE.value, every_table)
        run("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": 1})
    return {"runs": runs, "watch": watch, "work": work, "cutover": cutover, "env": env}


@pytest.fixture(scope="module")
def caplog_module():
    """Every record our engine logged in this process during the lifecycle (the in-process reconciles)."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger("migration")
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(previous)


def metadata_rows_containing(airflow_home, needle: str) -> list[str]:
    """Every row of every metadata-DB table whose text holds ``needle`` (xcom, rendered fields, logs, conf...)."""
    url = airflow_home.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)
    hits = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        assert {"xcom", "rendered_task_instance_fields", "task_instance", "dag_run"} <= set(tables)
        for table in tables:
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM {} AS t WHERE strpos(t::text, %s) > 0").format(sql.Identifier(table)),
                (needle,),
            ).fetchall()
            hits += [f"{table}: {r[0][:200]}" for r in rows]
    return hits


def files_containing(root: Path, needle: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


def test_the_lifecycle_ran_under_least_privileged_roles(lifecycle, estate, manifest):
    with estate.source_endpoint("wallet").connect() as conn:
        attributes = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role(rolname, 'pg_read_all_data', 'member') "
            "FROM pg_roles WHERE rolname = %s", (SOURCE_ROLE,)).fetchone()
    assert attributes == (False, False, False, True)
    with estate.target_endpoint().connect() as conn:
        assert conn.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone() == (False, False)
        owners = dict(conn.execute("SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = ANY(%s)",
                                   ([s.target_schema for s in manifest.services] + [CONTROL],)).fetchall())
    assert set(owners.values()) == {TARGET_OWNER} and len(owners) == 4
    with estate.target_endpoint().connect() as conn:
        assert ledger.current_phase(conn, CONTROL) == "finalized"
    # Finalize, run as the migration role, took the app's writes away; the app still reads.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with psycopg.connect(estate.app_url("wallet")) as conn:
            conn.execute("INSERT INTO public.activities (user_id, type, description) VALUES (1, 't', 'd')")
    with psycopg.connect(estate.app_url("wallet")) as conn:
        assert conn.execute("SELECT count(*) FROM public.activities").fetchone()[0] > 0
    # The post-cutover write reached the source through the migration role's row privileges.
    with estate.source_endpoint("recruiter").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users WHERE username = 'after-cutover'").fetchone()[0] == 1


def test_no_canary_in_any_output_or_exception(lifecycle):
    assert [r.dag_id for r in lifecycle["runs"]] == [
        "preflight", "schema_baseline", "backfill", "catch_up", "verify", "dual_write", "cutover", "finalize"]
    for result in lifecycle["runs"]:
        assert CANARY not in result.output, f"canary printed by {result.dag_id}"


def test_no_canary_in_task_logs_metadata_reports_or_backups(lifecycle, airflow_home):
    # `dags test` streams task logs into its output (searched above); any log file written is searched here.
    assert files_containing(airflow_home.home, CANARY) == []
    work = lifecycle["work"]
    assert any((work / "backups").rglob("*")), "no backup written"
    assert files_containing(work, CANARY) == []
    assert metadata_rows_containing(airflow_home, CANARY) == []


def test_no_canary_in_the_process_list_while_pg_dump_ran(lifecycle):
    watch = lifecycle["watch"]
    assert watch.pg_dump_lines, "pg_dump was never seen running: nothing was checked"
    assert watch.canary_lines == []


def test_sensitive_values_were_repaired_but_never_printed(lifecycle, estate, airflow_home, caplog_module):
    with estate.target_endpoint().connect() as conn:
        on_target = {r[0] for r in conn.execute("SELECT oauth_access_token FROM wallet.platform_connections")}
        assert set(SECRET_TOKENS) <= on_target, "the drift was not repaired: nothing was printed because nothing ran"
        names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (CONTROL,))]
        assert "reconcile_findings" in names, names
        ledger_text = ""
        for name in names:
            ledger_text += "\n".join(r[0] for r in conn.execute(
                sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(CONTROL, name))))
    assert "platform_connections" in ledger_text, "the findings of the repaired drift are not in the ledger"
    for token in SECRET_TOKENS:
        assert token not in ledger_text
        for result in lifecycle["runs"]:
            assert token not in result.output, f"{token} printed by {result.dag_id}"
        assert not any(token in line for line in caplog_module)
        assert files_containing(airflow_home.home, token) == []
        assert files_containing(lifecycle["work"], token) == []
        assert metadata_rows_containing(airflow_home, token) == []


def test_a_revoke_that_leaves_the_app_writing_fails_instead_of_passing(lifecycle, estate, manifest):
    """A table the owner granted the app after the roles script: the migration role cannot revoke that grant."""
    from migration_engine.checks import CheckFailed
    from migration_engine.source_access import set_app_writes

    estate.source.execute("CREATE TABLE public.added_later (id int)", dbname="wallet")
    try:
        source = migration_source(estate, lifecycle["env"], manifest, "wallet")
        with source.connect(autocommit=True) as conn, pytest.raises(CheckFailed) as caught:
            set_app_writes(conn, manifest.service("wallet"), allowed=False, dry_run=False, log=lambda _line: None)
        assert "wallet_app can still write 1 table(s)" in str(caught.value)
    finally:
        estate.source.execute("DROP TABLE public.added_later", dbname="wallet")
