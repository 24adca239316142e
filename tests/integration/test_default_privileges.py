"""What a default-privileges revoke by the migration role does to tables the owner creates later: nothing.

`ALTER DEFAULT PRIVILEGES` without `FOR ROLE` changes the defaults of the role that
runs it, and the least-privileged migration role (scripts/create_migration_roles.sql)
never creates a table in the source schema; the tables an app migration adds are
created by the schema's owner, under the owner's defaults. So finalize cannot promise
that tables created later are read-only for the apps, and does not.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from migration_engine.schema_sql import create_source_layout
from migration_engine.source_access import set_app_writes
from tests.integration.roles_support import SOURCE_ROLE, psql_script

pytestmark = [pytest.mark.integration]

READER_PASSWORD = "reader-pw"


@pytest.fixture(scope="module")
def wallet(estate, manifest):
    """The wallet source as a real estate has it, then the migration role from the roles script."""
    create_source_layout(manifest, {s.name: estate.source_endpoint(s.name) for s in manifest.services})
    service = manifest.service("wallet")
    psql_script(estate.source, estate.source_db("wallet"), side="source", role=SOURCE_ROLE,
                schema=service.source_schema, app_role=service.app_role)
    estate.source.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SOURCE_ROLE), sql.Literal(READER_PASSWORD)))
    return service


def test_a_default_privileges_revoke_by_the_migration_role_leaves_later_tables_writable(estate, wallet):
    migration_url = estate.source.url(estate.source_db("wallet"), SOURCE_ROLE, READER_PASSWORD)
    with psycopg.connect(migration_url, autocommit=True) as conn:
        assert set_app_writes(conn, wallet, allowed=False, dry_run=False, log=lambda _line: None) == 0
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLES FROM {}")
                     .format(sql.Identifier(wallet.source_schema), sql.Identifier(wallet.app_role)))
    # The next app migration, run by the schema's owner.
    estate.source.execute("CREATE TABLE public.created_later (id int)", dbname=estate.source_db("wallet"))
    with psycopg.connect(estate.app_url("wallet"), autocommit=True) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("INSERT INTO public.users (username, password) VALUES ('after-finalize', 'x')")
        app.execute("INSERT INTO public.created_later VALUES (1)")
        assert app.execute("SELECT count(*) FROM public.created_later").fetchone()[0] == 1
