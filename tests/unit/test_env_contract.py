"""The runbook's env contract mapped onto Airflow connections and pools, without hand editing."""

from __future__ import annotations

import io
import json
import shlex

import pytest
from airflow.sdk import Connection

from migration_engine.endpoints import from_airflow_connection, from_url
from migration_engine.env_contract import (
    TARGET_POOL,
    EnvContractError,
    airflow_conn_variable,
    airflow_connections_from_env,
    connection_sources,
    main,
    pools_from_env,
    source_pool,
)

PASSWORD = "p@ss:w/rd%&?#"
QUOTED = "p%40ss%3Aw%2Frd%25%26%3F%23"


def app_env(**overrides) -> dict[str, str]:
    env = {
        "WALLET_DATABASE_URL_DIRECT": f"postgresql://wallet_app:{QUOTED}@wallet-db.internal:5432/wallet?sslmode=require",
        "ISSUER_DATABASE_URL_DIRECT": f"postgresql://issuer_app:{QUOTED}@issuer-db.internal:5432/issuer?sslmode=require",
        "RECRUITER_DATABASE_URL_DIRECT": f"postgresql://recruiter_app:{QUOTED}@recruiter-db.internal/recruiter",
        "DATABASE_URL": f"postgresql://postgres.ref:{QUOTED}@aws-0-eu.pooler.supabase.com:6543/postgres?sslmode=require&pgbouncer=true",
        "DATABASE_URL_DIRECT": f"postgresql://postgres:{QUOTED}@db.ref.supabase.co:5432/postgres?sslmode=require",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def parsed(connections: dict[str, str], conn_id: str) -> Connection:
    return Connection.from_uri(connections[airflow_conn_variable(conn_id)], conn_id=conn_id)


def test_every_manifest_connection_gets_an_airflow_variable(manifest):
    connections = airflow_connections_from_env(manifest, app_env())
    expected = {airflow_conn_variable(c.conn_id) for c in [*manifest.sources.values(), manifest.target_direct, manifest.target_pooler]}
    assert set(connections) == expected


def test_mapping_table(manifest):
    table = {s.conn_id: (s.variables, s.pooled) for s in connection_sources(manifest)}
    assert table == {
        "credity_wallet_source": (("WALLET_DATABASE_URL_DIRECT",), False),
        "credity_issuer_source": (("ISSUER_DATABASE_URL_DIRECT",), False),
        "credity_recruiter_source": (("RECRUITER_DATABASE_URL_DIRECT",), False),
        "credity_target_direct": (("TARGET_DATABASE_URL_DIRECT", "DATABASE_URL_DIRECT"), False),
        "credity_target_pooler": (("TARGET_DATABASE_URL", "DATABASE_URL"), True),
    }


def test_airflow_reads_the_same_endpoint_the_url_describes(manifest):
    env = app_env()
    connections = airflow_connections_from_env(manifest, env)
    pairs = {
        "credity_wallet_source": "WALLET_DATABASE_URL_DIRECT",
        "credity_target_direct": "DATABASE_URL_DIRECT",
        "credity_target_pooler": "DATABASE_URL",
    }
    for conn_id, variable in pairs.items():
        through_airflow = from_airflow_connection(conn_id, parsed(connections, conn_id))
        straight = from_url(conn_id, env[variable])
        assert through_airflow.params == straight.params, conn_id
        assert through_airflow.pooled == straight.pooled, conn_id
        assert through_airflow.password == PASSWORD


def test_pooler_keeps_pgbouncer_flag_and_tls_settings(manifest):
    connections = airflow_connections_from_env(manifest, app_env(
        DATABASE_URL=f"postgresql://u:{QUOTED}@pooler:6543/postgres?sslmode=verify-full&sslrootcert=/etc/ssl/supabase-ca.crt&pgbouncer=true"))
    pooler = parsed(connections, "credity_target_pooler")
    assert pooler.conn_type == "postgres"
    assert pooler.extra_dejson == {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/supabase-ca.crt", "pgbouncer": "true"}
    assert (pooler.host, pooler.port, pooler.schema, pooler.login) == ("pooler", 6543, "postgres", "u")
    direct = parsed(connections, "credity_target_direct")
    assert "pgbouncer" not in direct.extra_dejson
    assert from_airflow_connection("direct", direct).pooled is False


def test_prefixed_target_variables_win_over_the_apps_names(manifest):
    env = app_env(
        TARGET_DATABASE_URL_DIRECT="postgresql://m:pw@target-direct:5432/postgres_target",
        TARGET_DATABASE_URL="postgresql://m:pw@target-pooler:6543/postgres_target?pgbouncer=true",
    )
    connections = airflow_connections_from_env(manifest, env)
    assert parsed(connections, "credity_target_direct").host == "target-direct"
    assert parsed(connections, "credity_target_pooler").host == "target-pooler"


def test_pooler_url_without_flag_is_still_marked_pooled(manifest):
    connections = airflow_connections_from_env(manifest, app_env(DATABASE_URL="postgresql://u:pw@pooler:6543/postgres"))
    assert from_airflow_connection("pooler", parsed(connections, "credity_target_pooler")).pooled is True


def test_db_ssl_mode_fills_in_only_where_the_url_names_none(manifest):
    connections = airflow_connections_from_env(manifest, app_env(DB_SSL_MODE="verify-full"))
    assert parsed(connections, "credity_recruiter_source").extra_dejson == {"sslmode": "verify-full"}
    assert parsed(connections, "credity_wallet_source").extra_dejson == {"sslmode": "require"}


def test_missing_variables_are_all_named_without_values(manifest):
    env = app_env(ISSUER_DATABASE_URL_DIRECT=None, DATABASE_URL=None)
    with pytest.raises(EnvContractError) as caught:
        airflow_connections_from_env(manifest, env)
    message = str(caught.value)
    assert "credity_issuer_source: set ISSUER_DATABASE_URL_DIRECT" in message
    assert "credity_target_pooler: set TARGET_DATABASE_URL or DATABASE_URL" in message
    assert QUOTED not in message and PASSWORD not in message


def test_pooler_url_given_as_direct_is_refused(manifest):
    env = app_env(DATABASE_URL_DIRECT=app_env()["DATABASE_URL"])
    with pytest.raises(EnvContractError, match=r"credity_target_direct: DATABASE_URL_DIRECT carries pgbouncer=true") as caught:
        airflow_connections_from_env(manifest, env)
    assert QUOTED not in str(caught.value)


@pytest.mark.parametrize(("variable", "value", "problem"), [
    ("WALLET_DATABASE_URL_DIRECT", f"mysql://u:{QUOTED}@h/db", "must start with postgresql://"),
    ("WALLET_DATABASE_URL_DIRECT", f"postgresql://u:{QUOTED}@h:notaport/db", "is not a valid URL"),
    ("WALLET_DATABASE_URL_DIRECT", f"postgresql://u:{QUOTED}@h/db?sslmode=required", "sslmode must be one of"),
    ("DB_SSL_MODE", "on", "DB_SSL_MODE must be one of"),
])
def test_malformed_values_are_named(manifest, variable, value, problem):
    with pytest.raises(EnvContractError, match=problem) as caught:
        airflow_connections_from_env(manifest, app_env(**{variable: value}))
    assert QUOTED not in str(caught.value)


def test_pools_are_sized_by_db_pool_max(manifest):
    pools = pools_from_env(manifest, {"DB_POOL_MAX": "7"})
    assert pools == {source_pool("wallet"): 7, source_pool("issuer"): 7, source_pool("recruiter"): 7, TARGET_POOL: 7}
    assert set(pools_from_env(manifest, {}).values()) == {10}
    with pytest.raises(EnvContractError, match="DB_POOL_MAX must be a whole number"):
        pools_from_env(manifest, {"DB_POOL_MAX": "ten"})


def test_cli_prints_shell_exports_that_round_trip(manifest):
    out = io.StringIO()
    assert main([], environ=app_env(), out=out) == 0
    exported = {}
    for line in out.getvalue().splitlines():
        words = shlex.split(line)
        assert words[0] == "export"
        name, _, value = words[1].partition("=")
        exported[name] = value
    assert exported == airflow_connections_from_env(manifest, app_env())


def test_cli_dotenv_and_pools(manifest):
    out = io.StringIO()
    assert main(["--dotenv"], environ=app_env(), out=out) == 0
    assert all(line.startswith("AIRFLOW_CONN_") for line in out.getvalue().splitlines())
    out = io.StringIO()
    assert main(["pools"], environ={"DB_POOL_MAX": "5"}, out=out) == 0
    pools = json.loads(out.getvalue())
    assert {name: spec["slots"] for name, spec in pools.items()} == pools_from_env(manifest, {"DB_POOL_MAX": "5"})


def test_cli_roles_prints_one_psql_command_per_database_with_the_manifest_tables(manifest):
    out = io.StringIO()
    assert main(["roles"], environ={}, out=out) == 0
    commands = [shlex.split(line) for line in out.getvalue().splitlines() if line.startswith("psql ")]
    assert len(commands) == len(manifest.services) + 1
    for service, command in zip(manifest.services, commands, strict=False):
        variables = dict(arg.split("=", 1) for arg in command[command.index("-v") + 1::2] if "=" in arg)
        assert variables["app_role"] == service.app_role and variables["side"] == "source"
        assert variables["tables"].split(",") == [table.name for table in service.tables]
        assert command[-2:] == ["-f", "scripts/create_migration_roles.sql"]
    assert "side=target" in commands[-1]


def test_cli_error_names_variables_not_values(capsys):
    env = app_env(WALLET_DATABASE_URL_DIRECT=f"postgresql://u:{QUOTED}@h:bad/db")
    assert main([], environ=env, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "WALLET_DATABASE_URL_DIRECT is not a valid URL" in err
    assert QUOTED not in err and PASSWORD not in err
