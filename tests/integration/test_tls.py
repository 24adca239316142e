"""TLS to the database: verify-full with the provider's CA is the long-term setting (runbook 4.3).

``sslmode=require`` encrypts but accepts any certificate, so a man in the middle
holding a certificate from another CA is accepted; ``verify-full`` with the
right CA refuses him, and refuses a certificate for another host name.
"""

from __future__ import annotations

import shutil

import pytest

from migration_engine.endpoints import EndpointError, from_airflow_connection, from_url
from migration_engine.env_contract import airflow_conn_variable, airflow_connections_from_env
from migration_engine.local.servers import PostgresServer
from migration_engine.local.tls import make_ca, make_server_certificate, tls_folder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plain_server():
    with PostgresServer("plain") as server:
        yield server


@pytest.fixture(scope="module")
def tls_material():
    folder = tls_folder()
    trusted = make_ca(folder, "trusted provider CA")
    impostor = make_ca(folder, "impostor CA")
    yield {
        "trusted_ca": trusted.cert_file,
        "impostor_ca": impostor.cert_file,
        "trusted": make_server_certificate(trusted, folder / "trusted", stem="server"),
        "impostor": make_server_certificate(impostor, folder / "impostor", stem="server"),
        "other_host": make_server_certificate(trusted, folder / "other", names=("db.example.com",), ips=(), stem="server"),
    }
    shutil.rmtree(folder)


def tls_server(certificate) -> PostgresServer:
    """A server that starts plain and is switched to TLS by configure + restart, as an operator would."""
    server = PostgresServer("tls").init().start()
    try:
        server.configure(ssl="on", ssl_cert_file=str(certificate.cert_file), ssl_key_file=str(certificate.key_file))
        server.restart()
    except BaseException:
        server.destroy()
        raise
    return server


@pytest.fixture(scope="module")
def trusted_server(tls_material):
    server = tls_server(tls_material["trusted"])
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def impostor_server(tls_material):
    server = tls_server(tls_material["impostor"])
    yield server
    server.destroy()


@pytest.fixture(autouse=True)
def no_default_root_cert(tmp_path, monkeypatch):
    # libpq verifies against ~/.postgresql/root.crt when it exists, even under require.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)


def ssl_row(endpoint) -> tuple:
    with endpoint.connect(autocommit=True) as conn:
        return conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()


def test_verify_full_with_the_ca_file_connects_over_tls(trusted_server, tls_material):
    url = f"{trusted_server.url()}?sslmode=verify-full&sslrootcert={tls_material['trusted_ca']}"
    ssl, version = ssl_row(from_url("target (direct)", url))
    assert ssl is True
    assert version.startswith("TLSv1.")


def test_verify_full_by_host_name_localhost(trusted_server, tls_material):
    url = f"postgresql://postgres:{trusted_server.password}@localhost:{trusted_server.port}/postgres" \
          f"?sslmode=verify-full&sslrootcert={tls_material['trusted_ca']}"
    assert ssl_row(from_url("target (direct)", url))[0] is True


def test_env_contract_carries_verify_full_through_airflow(trusted_server, tls_material, manifest):
    """DATABASE_URL_DIRECT with verify-full + CA -> AIRFLOW_CONN_* -> Airflow Connection -> TLS session."""
    from airflow.sdk import Connection

    direct = f"{trusted_server.url()}?sslmode=verify-full&sslrootcert={tls_material['trusted_ca']}"
    env = {f"{c.env_prefix}_DATABASE_URL_DIRECT": direct for c in manifest.sources.values()}
    env.update(DATABASE_URL_DIRECT=direct, DATABASE_URL=direct + "&pgbouncer=true")
    conn_id = manifest.target_direct.conn_id
    uri = airflow_connections_from_env(manifest, env)[airflow_conn_variable(conn_id)]
    endpoint = from_airflow_connection("target (direct)", Connection.from_uri(uri, conn_id=conn_id))
    assert ssl_row(endpoint)[0] is True


def test_verify_full_refuses_a_certificate_from_another_ca(impostor_server, tls_material):
    url = f"{impostor_server.url()}?sslmode=verify-full&sslrootcert={tls_material['trusted_ca']}"
    with pytest.raises(EndpointError, match="certificate verify failed") as caught:
        from_url("target (direct)", url).connect()
    assert impostor_server.password not in str(caught.value)
    assert "cannot connect to target (direct) (127.0.0.1:" in str(caught.value)


def test_require_accepts_the_same_impostor_certificate(impostor_server):
    """Why require alone is not the long-term answer: it encrypts, but anyone's certificate will do."""
    ssl, _ = ssl_row(from_url("target (direct)", f"{impostor_server.url()}?sslmode=require"))
    assert ssl is True


def test_verify_full_refuses_a_certificate_for_another_host(tls_material):
    server = tls_server(tls_material["other_host"])
    try:
        url = f"{server.url()}?sslmode=verify-full&sslrootcert={tls_material['trusted_ca']}"
        with pytest.raises(EndpointError, match=r'does not match host name "127\.0\.0\.1"'):
            from_url("target (direct)", url).connect()
        # verify-ca checks the chain only: the same certificate passes.
        ssl, _ = ssl_row(from_url("target (direct)", url.replace("verify-full", "verify-ca")))
        assert ssl is True
    finally:
        server.destroy()


def test_tls_required_but_server_has_ssl_off(plain_server):
    with pytest.raises(EndpointError, match="server does not support SSL, but SSL was required") as caught:
        from_url("wallet source", f"{plain_server.url('postgres')}?sslmode=require").connect()
    assert plain_server.password not in str(caught.value)
    assert ssl_row(from_url("wallet source", f"{plain_server.url('postgres')}?sslmode=disable"))[0] is False
