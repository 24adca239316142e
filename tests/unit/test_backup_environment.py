"""pg_dump gets its connection from the environment and a private passfile, never from argv."""

from __future__ import annotations

import stat
from pathlib import Path

from migration_engine.backup import libpq_environment
from migration_engine.endpoints import from_url

PASSWORD = r"pa:ss\word@1"


def test_connection_goes_to_pg_variables_and_the_password_to_a_private_passfile(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "left-over-from-the-shell")
    monkeypatch.delenv("DB_APPLICATION_NAME", raising=False)
    endpoint = from_url("wallet source", "postgresql://mig:pa%3Ass%5Cword%401@db.example:6543/wallet?sslmode=require&pgbouncer=true")
    with libpq_environment(endpoint.named("credity-migration-backup")) as env:
        assert {k: env[k] for k in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE", "PGAPPNAME")} == {
            "PGHOST": "db.example", "PGPORT": "6543", "PGDATABASE": "wallet", "PGUSER": "mig",
            "PGSSLMODE": "require", "PGAPPNAME": "credity-migration-backup",
        }
        assert "PGPASSWORD" not in env
        assert not any(PASSWORD in value for key, value in env.items())
        passfile = Path(env["PGPASSFILE"])
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
        assert passfile.read_text() == "*:*:*:*:pa\\:ss\\\\word@1\n"
    assert not passfile.exists()
