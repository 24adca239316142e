"""The status page's answer when the ledgers cannot be read: 503, the connection named,
no secret, and the same protective headers as the page itself."""

from __future__ import annotations

import socket

import pytest

from migration_engine import status_view

CONN_VARIABLE = "AIRFLOW_CONN_CREDITY_TARGET_DIRECT"
PASSWORD = "not-shown-anywhere-7f3a"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def airflow_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))


def test_an_unreachable_target_gives_503_naming_the_connection_without_its_password(airflow_home, monkeypatch):
    monkeypatch.setenv(CONN_VARIABLE, f"postgresql://migrator:{PASSWORD}@127.0.0.1:{closed_port()}/postgres_target")
    answer = status_view.render_page()
    body = answer.body.decode()
    assert answer.status_code == 503
    assert "<code>credity_target_direct</code>" in body and "cannot connect to target (direct)" in body
    assert PASSWORD not in body
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'self'" in answer.headers["content-security-policy"]


def test_a_missing_connection_gives_503_naming_it(airflow_home, monkeypatch):
    monkeypatch.delenv(CONN_VARIABLE, raising=False)
    answer = status_view.render_page()
    assert answer.status_code == 503
    assert "credity_target_direct" in answer.body.decode() and "defined" in answer.body.decode()
