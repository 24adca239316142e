"""airflow_settings.yaml and .env.example declare what the code reads: no more, no less."""

from __future__ import annotations

from pathlib import Path

import yaml

from migration_engine.env_contract import connection_sources, pool_description, pools_from_env
from tests.unit.env_file import sourced

REPO = Path(__file__).resolve().parents[2]
SETTINGS = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())["airflow"]


def env_example() -> dict[str, str]:
    return sourced(REPO / ".env.example")


def test_settings_declare_exactly_the_manifest_connections(manifest):
    declared = [c["conn_id"] for c in SETTINGS["connections"]]
    assert sorted(declared) == sorted(s.conn_id for s in connection_sources(manifest))
    for conn in SETTINGS["connections"]:
        assert conn["conn_type"] == "postgres"
        assert set(conn) == {"conn_id", "conn_type", "conn_host", "conn_schema", "conn_login", "conn_password",
                             "conn_port", "conn_extra"}


def test_only_the_pooler_is_marked_pgbouncer(manifest):
    flags = {c["conn_id"]: c["conn_extra"].get("pgbouncer") for c in SETTINGS["connections"]}
    assert flags.pop(manifest.target_pooler.conn_id) == "true"
    assert set(flags.values()) == {None}
    assert all(c["conn_extra"].get("sslmode") for c in SETTINGS["connections"])


def test_settings_declare_the_pools_of_the_env_contract(manifest):
    declared = {p["pool_name"]: p["pool_slot"] for p in SETTINGS["pools"]}
    assert declared == pools_from_env(manifest, {})
    for pool in SETTINGS["pools"]:
        assert pool["pool_description"] == pool_description(pool["pool_name"])


def test_settings_declare_the_variables_the_dags_read():
    assert [v["variable_name"] for v in SETTINGS["variables"]] == ["migration_backup_dir"]
    assert "Variable.get(\"migration_backup_dir\"" in (REPO / "plugins" / "migration_engine" / "tasks" / "preflight.py").read_text()


def test_env_example_holds_every_variable_of_the_contract(manifest):
    declared = env_example()
    for source in connection_sources(manifest):
        assert source.variables[-1] in declared, source
    for name in ("REQUIRE_DATABASE", "DB_POOL_MAX", "DB_IDLE_TIMEOUT_MS", "DB_CONNECTION_TIMEOUT_MS", "DB_SSL_MODE",
                 "DB_APPLICATION_NAME", "DB_STATEMENT_TIMEOUT_MS", "DB_LOCK_TIMEOUT_MS",
                 "ALERT_EMAIL_TO", "ALERT_EMAIL_FROM", "ALERT_SMTP_CONN_ID", "AIRFLOW_CONN_SMTP_DEFAULT"):
        assert name in declared, name
    assert "pgbouncer=true" in declared["DATABASE_URL"] and "sslmode=require" in declared["DATABASE_URL"]
    assert "pgbouncer" not in declared["DATABASE_URL_DIRECT"]


def test_env_example_holds_no_real_secret():
    for name, value in env_example().items():
        if any(word in name for word in ("PASSWORD", "SECRET", "KEY")):
            assert value in ("", "<choose>"), name


def test_env_example_sources_as_documented_with_every_value_intact():
    """`set -a; . ./.env; set +a`: every assignment arrives, `&` and `<...>` included."""
    assigned = [line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
                if line and not line.startswith("#")]
    declared = env_example()
    assert sorted(declared) == sorted(assigned)
    assert declared["DATABASE_URL"] == \
        "postgresql://<user>:<pass>@<pooler-host>:6543/postgres?sslmode=require&pgbouncer=true"
    assert declared["AIRFLOW_CONN_SMTP_DEFAULT"] == "smtp://<user>:<pass>@<smtp-host>:587"
    assert declared["AIRFLOW_UI_USERS"] == "admin:admin"
    assert declared["DB_APPLICATION_NAME"] == ""
