"""A role that may CREATE in schema public plants a function and a table named like
the ones the migration uses; the migration's sessions must not use them.

`public.width_bucket(bigint, bigint[])` matches the reconcile scan's call more exactly
than the built-in polymorphic one, so on a session whose search_path holds public it
wins, and runs the squatter's code as the migration role (here it only logs its call).
`public.backfill_stage`, owned by the squatter, is what an unqualified
`DROP TABLE IF EXISTS backfill_stage` finds before the session has a temporary table.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from migration_engine.chunks import plan_all
from migration_engine.copier import copy_chunk
from migration_engine.local.estate import TARGET_DB
from migration_engine.reconcile.engine import Direction, reconcile_table
from tests.integration.lifecycle_support import CONTROL, target

pytestmark = [pytest.mark.integration]

SQUATTER = "squatter"
PLANTED = [
    """CREATE TABLE public.shadow_calls (fn text NOT NULL, by_role text NOT NULL DEFAULT current_user)""",
    """GRANT INSERT ON public.shadow_calls TO PUBLIC""",
    """CREATE FUNCTION public.width_bucket(bigint, bigint[]) RETURNS integer LANGUAGE sql AS $$
        INSERT INTO public.shadow_calls (fn) VALUES ('width_bucket(bigint, bigint[])');
        SELECT pg_catalog.width_bucket($1, $2) $$""",
    """CREATE FUNCTION public.width_bucket(text, text[]) RETURNS integer LANGUAGE sql AS $$
        INSERT INTO public.shadow_calls (fn) VALUES ('width_bucket(text, text[])');
        SELECT pg_catalog.width_bucket($1, $2) $$""",
    """CREATE TABLE public.backfill_stage (planted text)""",
    """INSERT INTO public.backfill_stage VALUES ('still here')""",
]


def plant(server, dbname: str) -> None:
    """As a role that may CREATE in public, and nothing more."""
    server.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(sql.Identifier(SQUATTER)), dbname=dbname)
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(SQUATTER)))
        for statement in PLANTED:
            conn.execute(statement)


def shadow_calls(server, dbname: str) -> list[tuple]:
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        return conn.execute("SELECT fn, by_role FROM public.shadow_calls").fetchall()


@pytest.fixture(scope="module")
def migration_scale() -> float:
    return 0.05


@pytest.fixture(scope="module")
def planted(migrated, estate, manifest):
    for server in (estate.source, estate.target):
        server.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(SQUATTER)))
    for service in manifest.services:
        plant(estate.source, estate.source_db(service.name))
    plant(estate.target, TARGET_DB)
    return estate


def test_reconcile_finds_and_repairs_drift_without_calling_the_planted_functions(planted, manifest):
    estate = planted
    with target(estate) as conn:
        conn.execute("UPDATE wallet.users SET bio = 'drifted' WHERE id = (SELECT min(id) FROM wallet.users)")
        conn.execute("DELETE FROM recruiter.users WHERE id = (SELECT min(id) FROM recruiter.users)")
    results = {
        name: reconcile_table(manifest.table(name), estate.source_endpoint(manifest.table(name).service),
                              estate.target_endpoint(), run_id="shadowed", direction=Direction.SOURCE_TO_TARGET,
                              control_schema=CONTROL, grace_seconds=0)
        for name in ("wallet.users", "recruiter.users")
    }
    assert {name: (r.drifted, r.repaired) for name, r in results.items()} == {
        "wallet.users": (1, 1), "recruiter.users": (1, 1)}
    assert shadow_calls(estate.target, TARGET_DB) == []
    for service in ("wallet", "recruiter"):
        assert shadow_calls(estate.source, estate.source_db(service)) == []


def test_a_merged_chunk_stages_in_its_own_temporary_table_and_leaves_public_alone(planted, manifest):
    estate = planted
    sources = estate.source_endpoints()
    chunk = next(c for c in plan_all(manifest, sources) if c.table == "wallet.users")
    with target(estate) as conn:
        conn.execute("UPDATE wallet.users SET bio = 'stale' WHERE id = (SELECT min(id) FROM wallet.users)")
    result = copy_chunk(estate.source_endpoint("wallet"), estate.target_endpoint(), manifest, chunk, force=True)
    assert result["mode"] == "merge" and result["updated"] >= 1, result
    with psycopg.connect(estate.target.dsn(TARGET_DB)) as conn:
        assert conn.execute("SELECT planted FROM public.backfill_stage").fetchall() == [("still here",)]
    assert shadow_calls(estate.target, TARGET_DB) == []
