"""docker-compose.yaml checked against what the code expects (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from airflow.sdk import Connection

from migration_engine.endpoints import from_airflow_connection
from migration_engine.env_contract import airflow_conn_variable
from migration_engine.local.estate import TARGET_DB, TARGET_OWNER, Estate
from tests.unit.env_file import sourced

REPO = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (REPO / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
COMMON_ENV = COMPOSE["x-airflow-common"]["environment"]
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init")
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])((?:[^{}]|\$\{[^}]*\})*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} (nested) and ${VAR:?error}."""
    def one(match: re.Match) -> str:
        name, op, rest = match.groups()
        if env.get(name):
            return env[name]
        if op == "-":
            return interpolate(rest, env)
        if op == "?":
            raise KeyError(f"{name} is required: {rest}")
        return ""
    return _VARIABLE.sub(one, value)


def container_ports(service: str) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1]) for p in SERVICES[service].get("ports", [])}


def host_ports(service: str) -> set[int]:
    return {int(str(p).split(":")[-2]) for p in SERVICES[service].get("ports", [])}


def test_services_of_the_official_layout_and_the_estate():
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "source-postgres", "target-postgres", "pgbouncer"} <= set(SERVICES)
    commands = {name: SERVICES[name].get("command") for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"
    assert commands["airflow-worker"] == "celery worker"
    assert SERVICES["airflow-worker"]["deploy"]["replicas"] >= 2
    for name in AIRFLOW_SERVICES:
        assert SERVICES[name]["image"] == COMPOSE["x-airflow-common"]["image"], name


def test_ports_pooler_6543_and_api_server_8080():
    assert container_ports("airflow-apiserver") == {8080} and host_ports("airflow-apiserver") == {8080}
    assert container_ports("pgbouncer") == {6543} and host_ports("pgbouncer") == {6543}
    pooler = SERVICES["pgbouncer"]["environment"]
    assert pooler["LISTEN_PORT"] == "6543"
    assert pooler["POOL_MODE"] == "transaction"
    assert (pooler["DB_HOST"], pooler["DB_USER"], pooler["DB_NAME"]) == ("target-postgres", TARGET_OWNER, TARGET_DB)


def test_repo_folders_are_mounted_where_airflow_looks():
    mounts = {}
    for volume in COMPOSE["x-airflow-common"]["volumes"]:
        source, target = interpolate(volume, {}).split(":")[:2]
        mounts[target] = source
    for folder in ("dags", "plugins", "include"):
        assert mounts[f"/opt/airflow/{folder}"] == f"./{folder}"
        assert (REPO / folder).is_dir()
    assert "/opt/airflow/plugins" in COMMON_ENV["PYTHONPATH"].split(":")
    for name in AIRFLOW_SERVICES:
        assert SERVICES[name]["volumes"] == COMPOSE["x-airflow-common"]["volumes"], name


def test_celery_executor_with_redis_broker_and_postgres_result_backend():
    assert COMMON_ENV["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert COMMON_ENV["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379" in COMMON_ENV["AIRFLOW__CELERY__BROKER_URL"]
    assert COMMON_ENV["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert "@postgres/airflow" in COMMON_ENV["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert COMMON_ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert COMMON_ENV["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert COMMON_ENV["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    for name in AIRFLOW_SERVICES:
        assert SERVICES[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name


def test_no_pip_install_at_start_up_but_a_pinned_image():
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE_TEXT
    dockerfile = (REPO / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert f"FROM apache/airflow:{pinned}-python3.11" in dockerfile
    assert "pip install --no-cache-dir -r /requirements.txt" in dockerfile


def test_every_manifest_connection_points_at_the_compose_services(manifest):
    env = sourced(REPO / ".env.example")
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    expected = {c.conn_id: None for c in [*manifest.sources.values(), manifest.target_direct, manifest.target_pooler]}
    for conn_id in expected:
        variable = airflow_conn_variable(conn_id)
        assert variable in COMMON_ENV, f"{variable} missing from x-airflow-common environment"
        uri = interpolate(COMMON_ENV[variable], env)
        expected[conn_id] = from_airflow_connection(conn_id, Connection.from_uri(uri, conn_id=conn_id))
    for service in manifest.services:
        endpoint = expected[manifest.source_conn_id(service.name)]
        assert (endpoint.params["host"], endpoint.params["dbname"]) == ("source-postgres", Estate.source_db(service.name))
        assert (endpoint.params["user"], endpoint.password) == (
            f"{manifest.migration}_migration", env["SOURCE_MIGRATION_PASSWORD"])
        assert not endpoint.pooled
    direct, pooler = expected[manifest.target_direct.conn_id], expected[manifest.target_pooler.conn_id]
    assert (direct.params["host"], direct.params["port"], direct.params["dbname"], direct.params["user"]) == (
        "target-postgres", "5432", TARGET_DB, TARGET_OWNER)
    assert (pooler.params["host"], pooler.params["port"], pooler.params["dbname"]) == ("pgbouncer", "6543", TARGET_DB)
    assert pooler.pooled and not direct.pooled
    assert direct.password == env["TARGET_MIGRATOR_PASSWORD"]


def test_user_supplied_connection_replaces_the_compose_default():
    uri = interpolate(COMMON_ENV["AIRFLOW_CONN_CREDITY_TARGET_POOLER"],
                      {"AIRFLOW_CONN_CREDITY_TARGET_POOLER": "postgres://u:p@pooler.example:6543/postgres?pgbouncer=true"})
    assert uri == "postgres://u:p@pooler.example:6543/postgres?pgbouncer=true"


def test_runbook_settings_reach_every_container():
    for name in ("DB_POOL_MAX", "DB_CONNECTION_TIMEOUT_MS", "DB_APPLICATION_NAME", "DB_STATEMENT_TIMEOUT_MS",
                 "DB_LOCK_TIMEOUT_MS", "ALERT_EMAIL_TO", "ALERT_SMTP_CONN_ID"):
        assert name in COMMON_ENV, name
    assert interpolate(COMMON_ENV["DB_POOL_MAX"], {}) == "10"


def test_every_variable_compose_needs_is_in_env_example():
    declared = set(sourced(REPO / ".env.example"))
    used = {m.group(1) for m in _VARIABLE.finditer(COMPOSE_TEXT)} - {"HOSTNAME"}
    required = {m.group(1) for m in _VARIABLE.finditer(COMPOSE_TEXT) if m.group(2) == "?"}
    assert required <= declared
    optional_not_declared = used - declared
    assert optional_not_declared <= {"AIRFLOW_IMAGE_NAME", "AIRFLOW_PROJ_DIR", "PGBOUNCER_IMAGE", "AIRFLOW_BASE_URL",
                                     *(airflow_conn_variable(c) for c in ("credity_wallet_source", "credity_issuer_source",
                                                                          "credity_recruiter_source", "credity_target_direct",
                                                                          "credity_target_pooler"))}


def test_source_setup_runs_before_any_task_and_no_connection_is_a_superuser():
    setup = SERVICES["source-setup"]
    script = setup["command"][-1]
    mounts = dict(interpolate(v, {}).split(":")[1::-1] for v in setup["volumes"])
    assert (REPO / mounts[str(Path(script).parent)] / Path(script).name).is_file()
    assert SERVICES["airflow-worker"]["depends_on"]["source-setup"]["condition"] == "service_completed_successfully"
    assert setup["depends_on"]["source-postgres"]["condition"] == "service_healthy"
    for variable, value in COMMON_ENV.items():
        if variable.startswith("AIRFLOW_CONN_CREDITY_"):
            assert "://postgres:" not in value, variable


@pytest.mark.parametrize("service", ["source-postgres", "target-postgres"])
def test_init_scripts_are_mounted(service):
    mount = next(v for v in SERVICES[service]["volumes"] if "docker-entrypoint-initdb.d" in v)
    folder = REPO / mount.split(":")[0]
    assert any(folder.glob("*.sh"))
