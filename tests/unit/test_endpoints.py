"""Endpoints: the apps' URLs become libpq connections; secrets never print."""

from __future__ import annotations

import pytest

from migration_engine.endpoints import EndpointError, from_airflow_connection, from_url, redact

APP_URL = "postgresql://app:s3cr%40t@pooler.example.com:6543/postgres?sslmode=require&pgbouncer=true"


def test_pgbouncer_flag_is_read_and_removed_before_libpq_sees_it():
    endpoint = from_url("target (pooler)", APP_URL)
    assert endpoint.pooled is True
    assert "pgbouncer" not in endpoint.conninfo
    params = endpoint.params
    assert params["sslmode"] == "require"
    assert params["password"] == "s3cr@t"
    assert params["port"] == "6543"


def test_direct_url_is_not_pooled():
    assert from_url("target (direct)", "postgresql://u:p@db:5432/postgres?sslmode=require").pooled is False


def test_repr_and_describe_carry_no_secret():
    endpoint = from_url("target (pooler)", APP_URL)
    assert "s3cr" not in repr(endpoint)
    assert endpoint.describe() == "pooler.example.com:6543/postgres as app"


def test_wrong_scheme_is_a_named_error():
    with pytest.raises(EndpointError, match="wallet source: URL scheme must be postgresql://, found mysql://"):
        from_url("wallet source", "mysql://u:p@h/db")


def test_unknown_libpq_parameter_is_a_named_error_without_the_password():
    with pytest.raises(EndpointError) as caught:
        from_url("wallet source", "postgresql://u:hunter2secret@h/db?sslmod=require")
    assert "wallet source" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


class _AirflowConnection:
    host, port, login, password, schema = "db", 5432, "migrator", "pw-canary", "postgres_target"
    extra_dejson = {"sslmode": "verify-full", "sslrootcert": "/ca.pem", "pgbouncer": "true", "cursor": "dictcursor"}


def test_airflow_connection_extras_keep_tls_and_drop_non_libpq_keys():
    endpoint = from_airflow_connection("target (pooler)", _AirflowConnection())
    params = endpoint.params
    assert endpoint.pooled is True
    assert params["sslmode"] == "verify-full" and params["sslrootcert"] == "/ca.pem"
    assert "cursor" not in params and "pgbouncer" not in params
    assert params["dbname"] == "postgres_target"


@pytest.mark.parametrize(
    "text",
    [
        "connection to postgresql://user:pw-canary@host:5432/db failed",
        "host=h password=pw-canary dbname=x",
        "host=h password='pw-canary' dbname=x",
        "FATAL: password authentication failed; tried pw-canary",
    ],
)
def test_redact_removes_passwords_in_every_form(text):
    assert "pw-canary" not in redact(text, "pw-canary")


def test_one_rule_names_every_session(monkeypatch):
    """DB_APPLICATION_NAME wins, then the name the task gave the endpoint, then the URL's own, then the default."""
    from migration_engine.dag_support import Connections

    url = from_url("wallet source", "postgresql://mig@db/wallet?application_name=from-the-url")
    task_named = url.named(Connections("backfill").application_name)
    monkeypatch.delenv("DB_APPLICATION_NAME", raising=False)
    assert task_named.session_name() == "credity-migration-backfill"
    assert url.session_name() == "from-the-url"
    assert from_url("wallet source", "postgresql://mig@db/wallet").session_name() == "credity-migration"
    monkeypatch.setenv("DB_APPLICATION_NAME", "credity-wallet")
    assert task_named.session_name() == url.session_name() == "credity-wallet"
