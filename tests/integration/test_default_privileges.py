"""What a default-privileges revoke by the migration role does to tables the owner creates later: nothing.

`ALTER DEFAULT PRIVILEGES` without `FOR ROLE` changes the defaults of the role that
runs it, and the least-privileged migration role (scripts/create_migration_roles.sql)
never creates a table in the source schema; the tables an app migration adds are
created by the schema's owner, under the owner's defaults. So finalize cannot promise
that tables created later are read-only for the apps, and does not.
"""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from psycopg import sql

from migration_engine.schema_sql import create_source_layout
from migration_engine.source_access import roles_script_variables, set_app_writes
from tests.integration.roles_support import SOURCE_ROLE, create_source_role, psql_script

pytestmark = [pytest.mark.integration]

READER_PASSWORD = "reader-pw"
NOT_MIGRATED = "app_notes"


@pytest.fixture(scope="module")
def wallet(estate, manifest):
    """The wallet source as a real estate has it, then the migration role from the roles script."""
    create_source_layout(manifest, estate.source_endpoints())
    # A table of the app's that the manifest does not migrate.
    estate.source.execute(f"CREATE TABLE public.{NOT_MIGRATED} (id int); GRANT ALL ON public.{NOT_MIGRATED} TO wallet_app",
                          dbname=estate.source_db("wallet"))
    service = manifest.service("wallet")
    create_source_role(estate.source, estate.source_db("wallet"), service)
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


def test_the_migration_role_writes_only_the_manifest_tables_with_no_truncate(estate, wallet):
    with estate.source_endpoint("wallet").connect() as conn:
        privileges = {row[0]: row[1:] for row in conn.execute(
            "SELECT c.relname, has_table_privilege(%(role)s, c.oid, 'INSERT, UPDATE, DELETE'), "
            "has_table_privilege(%(role)s, c.oid, 'INSERT WITH GRANT OPTION'), "
            "has_table_privilege(%(role)s, c.oid, 'TRUNCATE'), has_table_privilege(%(app)s, c.oid, 'TRUNCATE') "
            "FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'",
            {"role": SOURCE_ROLE, "app": wallet.app_role})}
    migrated = {table.name for table in wallet.tables}
    assert migrated | {NOT_MIGRATED} <= set(privileges)
    for name, (writes, grant_option, truncate, app_truncate) in privileges.items():
        assert writes == grant_option == (name in migrated) and not truncate, name
        # TRUNCATE is not MVCC-safe: the app loses it on the migrated tables for the migration's duration.
        assert app_truncate == (name not in migrated), name


def test_the_roles_script_refuses_a_table_the_schema_lacks_and_changes_nothing(estate, wallet):
    variables = {**roles_script_variables(wallet, "careless_migration"), "tables": "users,no_such_table"}
    with pytest.raises(subprocess.CalledProcessError) as refused:
        psql_script(estate.source, estate.source_db("wallet"), **variables)
    assert "no such table in schema public: no_such_table" in refused.value.stderr, refused.value.stderr
    assert "nothing was changed" in refused.value.stderr
    with estate.source_endpoint("wallet").connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'careless_migration'").fetchone() == (0,)
