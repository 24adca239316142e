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
    schema, name = qualified.split(".")
    target_sql(estate, sql.SQL(
        "CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep({s}); RETURN NEW; END $$"
    ).format(f=sql.Identifier(schema, "slow_copy"), s=sql.Literal(seconds)))
    target_sql(estate, sql.SQL(
        "CREATE TRIGGER slow_copy BEFORE INSERT ON {t} FOR EACH ROW WHEN (NEW.id::text = {k}) EXECUTE FUNCTION {f}()"
    ).format(t=sql.Identifier(schema, name), k=sql.Literal(str(key)), f=sql.Identifier(schema, "slow_copy")))


def slow_down_first_copy(estate: Estate, qualified: str, seconds: float) -> None:
    """A target trigger that sleeps on the first row any COPY into the table inserts: whichever of its
    chunks runs first is held, and every other chunk of the table runs after it (``dags test`` picks
    among ready tasks in no fixed order)."""
    schema, name = qualified.split(".")
    target_sql(estate, sql.SQL("CREATE SEQUENCE {}").format(sql.Identifier(schema, "slow_copy_rows")))
    target_sql(estate, sql.SQL("GRANT USAGE ON SEQUENCE {} TO PUBLIC").format(sql.Identifier(schema, "slow_copy_rows")))
    target_sql(estate, sql.SQL(
        "CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF nextval({seq}) = 1 THEN PERFORM pg_sleep({s}); END IF; RETURN NEW; END $$"
    ).format(f=sql.Identifier(schema, "slow_copy"), seq=sql.Literal(f"{schema}.slow_copy_rows"), s=sql.Literal(seconds)))
    target_sql(estate, sql.SQL("CREATE TRIGGER slow_copy BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {f}()").format(
        t=sql.Identifier(schema, name), f=sql.Identifier(schema, "slow_copy")))


def remove_slow_down(estate: Estate, qualified: str) -> None:
    schema, name = qualified.split(".")
    target_sql(estate, sql.SQL("DROP TRIGGER slow_copy ON {}").format(sql.Identifier(schema, name)))
    target_sql(estate, sql.SQL("DROP FUNCTION {}()").format(sql.Identifier(schema, "slow_copy")))
    target_sql(estate, sql.SQL("DROP SEQUENCE IF EXISTS {}").format(sql.Identifier(schema, "slow_copy_rows")))
