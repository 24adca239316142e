"""Shared set-up for the integration tests: the schema on both sides, generated source data, SQL helpers."""

from __future__ import annotations

import psycopg
from psycopg import sql

from migration_engine.generator import generate
from migration_engine.local.estate import Estate
from migration_engine.manifest import Manifest
from migration_engine.schema_sql import apply_schema, create_source_layout


def create_schema(estate: Estate, manifest: Manifest) -> None:
    """The source layout (public) per service, and the target before its post-load constraints."""
    create_source_layout(manifest, estate.source_endpoints())
    with estate.target_endpoint().connect(autocommit=True) as conn:
        apply_schema(conn, manifest, post_load=False)


def fill_sources(estate: Estate, manifest: Manifest, *, scale: float = 0.2, seed: int = 7) -> dict:
    """Generated Credity sources: every table and all twelve state-store keys, fresh; the endpoints by service."""
    endpoints = estate.source_endpoints()
    create_source_layout(manifest, endpoints)
    generate(manifest, endpoints, scale=scale, seed=seed, replace=True)
    return endpoints


def source_sql(estate: Estate, service: str, statement, params=None) -> list:
    """As the apps and an admin would, with the server's own search_path (migration sessions pin theirs)."""
    return _sql(estate.source_url(service), statement, params)


def target_sql(estate: Estate, statement, params=None) -> list:
    return _sql(estate.target_url(), statement, params)


def _sql(url: str, statement, params) -> list:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def slow_down(estate: Estate, qualified: str, key, seconds: float) -> None:
    """A target trigger that sleeps when the row with ``key`` arrives: a chunk's COPY held mid-way."""
    _slow_copy_trigger(estate, qualified, sql.SQL("PERFORM pg_sleep({s});").format(s=sql.Literal(seconds)),
                       when=sql.SQL("WHEN (NEW.id::text = {k})").format(k=sql.Literal(str(key))))


def slow_down_first_copy(estate: Estate, qualified: str, seconds: float) -> None:
    """A target trigger that sleeps on the first row any COPY into the table inserts: whichever of its
    chunks runs first is held, and every other chunk of the table runs after it (``dags test`` picks
    among ready tasks in no fixed order)."""
    schema, _ = qualified.split(".")
    rows = sql.Identifier(schema, "slow_copy_rows")
    target_sql(estate, sql.SQL("CREATE SEQUENCE {}").format(rows))
    target_sql(estate, sql.SQL("GRANT USAGE ON SEQUENCE {} TO PUBLIC").format(rows))
    _slow_copy_trigger(estate, qualified, sql.SQL("IF nextval({seq}::regclass) = 1 THEN PERFORM pg_sleep({s}); END IF;").format(
        seq=sql.Literal(rows.as_string()), s=sql.Literal(seconds)))


def _slow_copy_trigger(estate: Estate, qualified: str, body: sql.Composable, when: sql.Composable | None = None) -> None:
    schema, name = qualified.split(".")
    function = sql.Identifier(schema, "slow_copy")
    target_sql(estate, sql.SQL("CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NEW; END $$")
               .format(f=function, body=body))
    target_sql(estate, sql.SQL("CREATE TRIGGER slow_copy BEFORE INSERT ON {t} FOR EACH ROW {when} EXECUTE FUNCTION {f}()")
               .format(t=sql.Identifier(schema, name), when=when or sql.SQL(""), f=function))


def remove_slow_down(estate: Estate, qualified: str) -> None:
    schema, name = qualified.split(".")
    target_sql(estate, sql.SQL("DROP TRIGGER slow_copy ON {}").format(sql.Identifier(schema, name)))
    target_sql(estate, sql.SQL("DROP FUNCTION {}()").format(sql.Identifier(schema, "slow_copy")))
    target_sql(estate, sql.SQL("DROP SEQUENCE IF EXISTS {}").format(sql.Identifier(schema, "slow_copy_rows")))
