"""The whole lifecycle through DAG runs alone, while the apps never stop writing, under
least-privileged roles, with every password a canary.

The writer simulator starts before preflight and follows the read-path flags as the
apps do (source only until dual-write opens, both sides after, the target first once
the cutover flips). Every move of the ledger is a DAG run: preflight → schema_baseline
→ backfill (one snapshot per source) → catch_up → verify → dual_write → reconcile (its
first clean run starts the soak) → cutover → reconcile (target → source) → finalize.

The DAGs connect to the sources as the read-mostly role scripts/create_migration_roles.sql
creates and to the target as a non-superuser. On the way, verify still fails on real
defects (a value changed and a row deleted on the target alone, named by key), and
sensitive columns drift. Afterwards the canary and the sensitive values are searched
for in every output, task log, metadata-DB row, report, backup and in the process list
sampled while pg_dump ran; once the writers stop and a last reconcile runs, both sides
are equal.
"""

from __future__ import annotations

import json
import logging
import re
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
from migration_engine.schema_sql import create_source_layout
from migration_engine.simulator import DualWriteSimulator, SimulatorConfig, TargetFaults
from migration_engine.verify import verify
from tests.integration.backfill_support import target_sql
from tests.integration.lifecycle_support import assert_the_app_reads_but_cannot_write, phase
from tests.integration.roles_support import SOURCE_ROLE, create_source_role, psql_script

# The first test's set-up is the whole lifecycle, about twenty DAG runs: under a full suite's load on 2 cores
# it outlasts the 15 minutes one test may take elsewhere.
pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.timeout(2700)]

CANARY = "kanarie7Qz9"
CONTROL = "migration_control"
SECRET_TOKENS = [f"ya29.SECRET-oauth-{n}-do-not-print" for n in range(3)]
WRITES_PER_S = 25.0
SCALE = 0.2
# Left out of the apps' writes: its rows stay older than any catch-up (the place for the defects),
# and the sensitive drift and the post-cutover write stay as the test made them.
UNTOUCHED = "issuer.platform_authorities"
SENSITIVE = "wallet.platform_connections"


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
    """The source as a real estate has it (data, app roles), then the migration roles from the script;
    the Airflow environment that connects to the sources as the migration role."""
    sources = estate.source_endpoints()
    create_source_layout(manifest, sources)
    generate(manifest, sources, scale=SCALE, seed=5, replace=True)
    for service in manifest.services:
        create_source_role(estate.source, estate.source_db(service.name), service)
    estate.source.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(SOURCE_ROLE), sql.Literal(f"{CANARY}-reader")))
    psql_script(estate.target, TARGET_DB, side="target", role=TARGET_OWNER)
    env = {**estate.airflow_env(), "DB_POOL_MAX": "3"}
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
def caplog_module():
    """Every record our engine logged in this process during the lifecycle."""
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


@pytest.fixture(scope="module")
def apps(estate, manifest, roles):
    """The apps, writing from before preflight, as the superusers (the migration's roles are not theirs)."""
    sources = estate.source_endpoints()
    config = SimulatorConfig(
        rate_per_s=WRITES_PER_S, duration_s=3600, follow_read_path=True, faults=TargetFaults(drop=0.05), seed=5,
        tables=tuple(t.qualified for t in manifest.tables if t.qualified not in (UNTOUCHED, SENSITIVE)),
    )
    simulator = DualWriteSimulator(manifest, sources, estate.target_endpoint(), config).start()
    yield simulator
    simulator.stop()
    simulator.join()


def latest_report(artifacts: Path) -> dict:
    reports = (artifacts / "verify").glob("*/verification.json")
    return json.loads(max(reports, key=lambda p: p.stat().st_mtime).read_text())


@pytest.fixture(scope="module")
def lifecycle(estate, manifest, roles, apps, airflow_home, tmp_path_factory, caplog_module):
    """The whole lifecycle once, about twenty DAG runs in a row; the tests below inspect what it left behind."""
    work = tmp_path_factory.mktemp("lifecycle")
    env = {**roles, "MIGRATION_BACKUP_DIR": str(work / "backups"), "MIGRATION_ARTIFACT_DIR": str(work / "artifacts")}
    seen: dict = {"runs": [], "work": work, "env": env}

    def run(dag_id, conf=None, *, succeed=True):
        result = airflow_home.run_dag(dag_id, conf, extra_env=env)
        seen["runs"].append(result)
        if succeed:
            assert result.succeeded, f"{dag_id}: {result.task_states}\n{result.output[-6000:]}"
        return result

    with ProcessWatch() as watch:
        run("preflight", {"fresh_backup": True})
    seen["watch"] = watch
    run("schema_baseline")
    run("backfill")
    assert apps.report.total > 0, "the apps did not write during the backfill"
    seen["caught_up"] = run("catch_up")
    assert phase(estate) == "backfilled"
    run("verify")
    assert phase(estate) == "verified"
    seen["first_verification"] = latest_report(work / "artifacts")

    changed, deleted = (key for (key,) in target_sql(estate, f"SELECT id::text FROM {UNTOUCHED} ORDER BY id LIMIT 2"))
    target_sql(estate, f"UPDATE {UNTOUCHED} SET name = name || ' (changed on the target only)' WHERE id::text = %s", (changed,))
    target_sql(estate, f"DELETE FROM {UNTOUCHED} WHERE id::text = %s", (deleted,))
    seen["defects"] = {"changed": changed, "deleted": deleted, "verify": run("verify", succeed=False),
                       "report": latest_report(work / "artifacts"), "catch_up": run("catch_up", succeed=False)}
    run("catch_up", {"repair_unexplained": True})
    run("verify")
    seen["repaired_verification"] = latest_report(work / "artifacts")

    run("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
    assert phase(estate) == "dual_write"
    for _ in range(3):
        run("reconcile", succeed=False)
        if phase(estate) == "soak":
            break
    assert phase(estate) == "soak"
    # Writes the target missed, in the OAuth token columns: the cutover's reconcile repairs them.
    with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM public.platform_connections ORDER BY id LIMIT 3")]
        assert len(ids) == len(SECRET_TOKENS)
        for row_id, token in zip(ids, SECRET_TOKENS, strict=True):
            conn.execute("UPDATE public.platform_connections SET oauth_access_token = %s WHERE id = %s", (token, row_id))
    run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 3, "min_soak_hours": 0,
                    "min_clean_reconciles": 1})
    assert phase(estate) == "cut_over"
    # A write an app made on the target alone after the cutover: the migration role carries it back.
    target_sql(estate, f"INSERT INTO {UNTOUCHED} (platform_id, name) VALUES ('after-cutover', 'after-cutover')")
    for _ in range(3):
        if run("reconcile", succeed=False).succeeded:
            break
    run("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": 1})
    assert phase(estate) == "finalized"
    apps.stop()
    seen["written"] = apps.join()
    run("reconcile")
    return seen


def test_the_apps_wrote_throughout_and_both_sides_end_equal(lifecycle, estate, manifest):
    written = lifecycle["written"]
    # The apps held their rate from before preflight to after finalize, on both sides once dual-write opened.
    assert written.total / written.seconds >= 0.8 * WRITES_PER_S, written.as_dict()
    assert written.secondary["applied"] > 0, "dual-write never reached the other side"
    assert [r.dag_id for r in lifecycle["runs"]][:5] == ["preflight", "schema_baseline", "backfill", "catch_up", "verify"]
    sources = estate.source_endpoints()
    final = verify(sources, estate.target_endpoint(), manifest)
    assert final["ok"], final["failures"]


def test_the_catch_up_brought_the_writes_since_the_snapshots_and_verify_passed_live(lifecycle, manifest):
    caught_up = lifecycle["caught_up"]
    assert sum(int(n) for n in re.findall(r"pass \d+: \d+ drifted, (\d+) repaired", caught_up.output)) > 0, \
        caught_up.output[-4000:]
    report = lifecycle["first_verification"]
    assert report["ok"] and report["live"] and len(report["tables"]) == len(manifest.tables)
    # Rows written since the catch-up are listed by key, never counted as equal.
    for row in report["tables"]:
        assert row["checksum_match"] or row["in_flight_keys"], row


def test_verify_and_catch_up_name_target_only_defects_until_told_to_repair_them(lifecycle):
    defects = lifecycle["defects"]
    refused = defects["verify"]
    assert refused.state_of("check_verified") == "failed", refused.task_states
    assert defects["report"]["failed_tables"] == [UNTOUCHED], defects["report"]["failures"]
    row = next(r for r in defects["report"]["tables"] if r["table"] == UNTOUCHED)
    assert set(row["unexplained_keys"]) == {defects["changed"], defects["deleted"]}
    assert defects["changed"] in refused.output and defects["deleted"] in refused.output
    assert not defects["catch_up"].succeeded
    assert lifecycle["repaired_verification"]["ok"]


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
        assert ledger.current_phase(conn, CONTROL) == "finalized"
    assert set(owners.values()) == {TARGET_OWNER} and len(owners) == 4
    # Finalize, run as the migration role, took the app's writes away; the app still reads.
    assert_the_app_reads_but_cannot_write(estate)
    # The post-cutover write reached the source through the migration role's row privileges.
    with estate.source_endpoint("issuer").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.platform_authorities WHERE platform_id = 'after-cutover'"
                            ).fetchone()[0] == 1


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
    return [str(path) for path in root.rglob("*") if path.is_file() and needle.encode() in path.read_bytes()]


def test_no_canary_in_any_output_or_exception(lifecycle):
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
    """A write grant the owner made the app after the roles script: the migration role cannot revoke it."""
    from migration_engine.checks import CheckFailed
    from migration_engine.source_access import set_app_writes

    estate.source.execute("GRANT INSERT ON public.activities TO wallet_app", dbname="wallet")
    try:
        source = migration_source(estate, lifecycle["env"], manifest, "wallet")
        with source.connect(autocommit=True) as conn, pytest.raises(CheckFailed) as caught:
            set_app_writes(conn, manifest.service("wallet"), allowed=False, dry_run=False, log=lambda _line: None)
        assert "wallet_app can still write 1 table(s)" in str(caught.value)
    finally:
        estate.source.execute("REVOKE INSERT ON public.activities FROM wallet_app", dbname="wallet")
