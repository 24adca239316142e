"""Shared fixtures: throwaway servers per test module, their data at a named state, one Airflow metadata DB per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from migration_engine.endpoints import Endpoint
from migration_engine.local.airflow_env import AirflowHome, create_metadata_db, drop_metadata_db
from migration_engine.local.estate import Estate
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest
from tests.integration.backfill_support import fill_sources
from tests.integration.lifecycle_support import (
    bring_to_schema_applied,
    bring_to_verified,
    return_to_verified,
    set_phase,
    start_soak,
)


def pytest_configure(config):
    # Retries still happen, one second apart instead of ten: most tests provoke failures on purpose and
    # wait out every retry (the modules that must outlast a server restart set their own delay).
    os.environ.setdefault("MIGRATION_RETRY_DELAY_SECONDS", "1")


@pytest.fixture(scope="session")
def manifest():
    return load_manifest(DEFAULT_MANIFEST)


@pytest.fixture(scope="module")
def estate(manifest):
    """Source and target servers (and a pgbouncer) shared by one test module."""
    with Estate(manifest) as running:
        yield running


@pytest.fixture(scope="module")
def sources(estate) -> dict[str, Endpoint]:
    """The module's source endpoints by service, as they are (see ``filled_sources`` for data)."""
    return estate.source_endpoints()


@pytest.fixture(scope="module")
def filled_sources(estate, manifest) -> dict[str, Endpoint]:
    """Every service's layout and generated data (``fill_sources``); the endpoints by service."""
    return fill_sources(estate, manifest)


@pytest.fixture(scope="module")
def schema_applied(estate, manifest):
    """Generated sources and the target's schema, the ledger at `schema_applied`: ready for the backfill DAG."""
    bring_to_schema_applied(estate, manifest, scale=0.5, seed=5)
    return estate


@pytest.fixture(scope="module")
def migration_scale() -> float:
    """The generated estate's size for ``migrated``; a module whose tests need fewer rows overrides it."""
    return 0.2


@pytest.fixture(scope="module")
def migrated(estate, manifest, migration_scale):
    """Layout, data, copy, constraints, fingerprints and sequences, once per module (``bring_to_verified``)."""
    return bring_to_verified(estate, manifest, scale=migration_scale)


@pytest.fixture
def verified(migrated, estate, manifest):
    """The ledger at verified, no read-path flags, the apps writing on the sources and the target level
    with them, whatever the previous test left (``return_to_verified``)."""
    return_to_verified(estate, manifest)
    return estate


@pytest.fixture
def soaking(verified, estate, manifest):
    """Dual-write on with the source the primary, the ledger at soak, and one clean reconcile in it (a test
    of the cutover asks for ``min_clean_reconciles`` 1: each further clean run would cost a reconcile of
    every table before every test)."""
    return start_soak(estate, manifest, clean_runs=1)


@pytest.fixture
def rolled_back(soaking, estate):
    """A cutover and its rollback as the ledger records them; the read path stayed on the source."""
    set_phase(estate, "cut_over", "rolled_back")
    return estate


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> AirflowHome:
    """A migrated Airflow metadata DB on the machine's PostgreSQL, fresh per session."""
    dbname = f"pgmig_airflow_test_{os.getpid()}"
    home = AirflowHome(Path(tmp_path_factory.mktemp("airflow_home")), create_metadata_db(dbname))
    home.migrate()
    yield home
    home.close()
    drop_metadata_db(dbname)


@pytest.fixture
def run(airflow_home, estate, tmp_path):
    """``run(dag_id, conf, env={...}, **options)``: one ``airflow dags test`` run against the module's
    estate, its backups and artifacts in this test's folder; ``options`` go to ``AirflowHome.run_dag``."""
    def run_dag(dag_id: str, conf: dict | None = None, env: dict | None = None, **options):
        extra_env = {**estate.airflow_env(), "MIGRATION_BACKUP_DIR": str(tmp_path / "backups"),
                     "MIGRATION_ARTIFACT_DIR": str(tmp_path / "artifacts"), **(env or {})}
        return airflow_home.run_dag(dag_id, conf, extra_env=extra_env, **options)

    return run_dag


# The longest modules (minutes each on 2 cores, from `make test`'s durations) go first: workers take
# whole modules in collection order (`--no-loadscope-reorder`; xdist's default orders them by their
# number of tests), so one started last would run alone at the end.
LONGEST_FIRST = (
    "test_rollback_after_finalize.py",
    "test_clean_streak_gate.py",
    "test_cutover_dag.py",
    "test_live_lifecycle.py",
    "test_finalize_dag.py",
    "test_cutover_approval_ui.py",
    "test_rollback_repair.py",
    "test_backfill_dag.py",
    "test_backfill_snapshot.py",
    "test_preflight_schema.py",
    "test_celery_scaleout.py",
    "test_scheduler_restart.py",
    "test_ledger_fence.py",
    "test_pooler_dies_in_smoke.py",
    "test_reconcile_dag.py",
    "test_server_restarts.py",
    "test_run_on_your_airflow.py",
    "test_interleaving.py",
    "test_undeclared_conf.py",
)


def pytest_collection_modifyitems(items):
    """pytest-randomly's shuffle (a wrapper hook, so it runs before this one) keeps each module's tests
    together; this stable sort then moves the ranked modules to the front, leaving their tests, and the
    order of the unranked modules, as shuffled."""
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


def pytest_terminal_summary(terminalreporter, config):
    # pytest-randomly prints its seed in the header, which -q hides: repeat it where a failure is read.
    seed = config.getoption("randomly_seed", None)
    if isinstance(seed, int):
        terminalreporter.write_line(f"tests ran in random order; replay it with --randomly-seed={seed}")
