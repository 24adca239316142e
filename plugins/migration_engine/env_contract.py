"""The runbook's environment contract (section 3) turned into Airflow connections and pools.

The apps' env names databases by URL; Airflow wants one connection per id. The
mapping, for a connection whose manifest entry has ``env_prefix: P``:

| manifest connection         | read from (first one set wins)                 |
|-----------------------------|------------------------------------------------|
| each source (direct)        | ``P_DATABASE_URL_DIRECT``                      |
| target direct               | ``P_DATABASE_URL_DIRECT``, then ``DATABASE_URL_DIRECT`` |
| target pooler               | ``P_DATABASE_URL``, then ``DATABASE_URL``      |

Sources are read only by DDL-free bulk work (backup, backfill, reconcile), so
they need only their direct URL. The unprefixed names are the target's because
that is what the apps' own env holds once they point at Supabase.

Each value becomes an ``AIRFLOW_CONN_<CONN_ID>`` URI: libpq query parameters
(``sslmode``, ``sslrootcert``...) stay as connection extras, the pooler keeps
``pgbouncer=true`` as an extra so the engine disables server-side prepared
statements, and ``DB_SSL_MODE`` fills in ``sslmode`` where a URL names none.
A direct URL that carries ``pgbouncer=true`` is refused: DDL and long COPY
transactions must not go through a transaction pooler (runbook 4.2).

``migration-env-contract`` (the installed command; also ``python -m
migration_engine.env_contract``) prints ``export AIRFLOW_CONN_...`` lines
(``--dotenv`` for a compose ``.env``); ``migration-env-contract pools`` prints the
pools as JSON for ``airflow pools import``; ``migration-env-contract roles`` prints the
psql commands that create the least-privileged roles, each source's tables filled in
from the manifest. Values hold passwords: they go to stdout only, and errors name
variables, never values.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from migration_engine.manifest import DEFAULT_MANIFEST, Connection, Manifest, load_manifest

DIRECT_SUFFIX = "DATABASE_URL_DIRECT"
POOLER_SUFFIX = "DATABASE_URL"
DEFAULT_POOL_MAX = 10
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
POOLER_FLAG = "pgbouncer"
# Airflow pools: one per source database and one for the target, each DB_POOL_MAX slots.
TARGET_POOL = "migration_target"


def source_pool(service: str) -> str:
    return f"migration_source_{service}"


class EnvContractError(ValueError):
    pass


@dataclass(frozen=True)
class ConnectionSource:
    """Where one manifest connection is read from, and in which role."""

    conn_id: str
    variables: tuple[str, ...]
    pooled: bool

    @property
    def airflow_variable(self) -> str:
        return airflow_conn_variable(self.conn_id)


def airflow_conn_variable(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper().replace("-", "_")


def connection_sources(manifest: Manifest) -> list[ConnectionSource]:
    """Every connection of the manifest with the env variables it is read from, in lookup order."""

    def names(conn: Connection, suffix: str, unprefixed_fallback: bool) -> tuple[str, ...]:
        found = [f"{conn.env_prefix}_{suffix}"] if conn.env_prefix else []
        if unprefixed_fallback or not conn.env_prefix:
            found.append(suffix)
        return tuple(found)

    sources = [ConnectionSource(c.conn_id, names(c, DIRECT_SUFFIX, False), False) for c in manifest.sources.values()]
    sources.append(ConnectionSource(manifest.target_direct.conn_id, names(manifest.target_direct, DIRECT_SUFFIX, True), False))
    sources.append(ConnectionSource(manifest.target_pooler.conn_id, names(manifest.target_pooler, POOLER_SUFFIX, True), True))
    return sources


def airflow_connections_from_env(manifest: Manifest, environ: Mapping[str, str]) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variable -> connection URI for every connection of the manifest.

    Every missing or malformed variable is reported at once, by name only.
    """
    ssl_mode = _ssl_mode(environ)
    result: dict[str, str] = {}
    problems: list[str] = []
    for source in connection_sources(manifest):
        variable = next((v for v in source.variables if environ.get(v)), None)
        if variable is None:
            problems.append(f"{source.conn_id}: set {' or '.join(source.variables)}")
            continue
        try:
            result[source.airflow_variable] = _airflow_uri(environ[variable], variable, source.pooled, ssl_mode)
        except EnvContractError as exc:
            problems.append(f"{source.conn_id}: {exc}")
    if problems:
        raise EnvContractError("the environment does not describe every connection of "
                               f"{manifest.file.name}:\n  " + "\n  ".join(problems))
    return result


def pool_size(environ: Mapping[str, str]) -> int:
    """``DB_POOL_MAX``: concurrent connections the migration opens per database (runbook: 5 to 15)."""
    raw = environ.get("DB_POOL_MAX") or str(DEFAULT_POOL_MAX)
    if not raw.isdigit() or int(raw) < 1:
        raise EnvContractError(f"DB_POOL_MAX must be a whole number of connections of at least 1, found {raw!r}")
    return int(raw)


def pools_from_env(manifest: Manifest, environ: Mapping[str, str]) -> dict[str, int]:
    """Airflow pool -> slots: one pool per source database and one for the target, each DB_POOL_MAX wide."""
    slots = pool_size(environ)
    pools = {source_pool(service.name): slots for service in manifest.services}
    pools[TARGET_POOL] = slots
    return pools


def pool_description(pool: str) -> str:
    what = "the target database" if pool == TARGET_POOL else f"the {pool.removeprefix(source_pool(''))} source database"
    return f"Connections the migration may hold open at once on {what} (DB_POOL_MAX)."


def _ssl_mode(environ: Mapping[str, str]) -> str | None:
    mode = environ.get("DB_SSL_MODE") or None
    if mode is not None and mode not in SSL_MODES:
        raise EnvContractError(f"DB_SSL_MODE must be one of {', '.join(SSL_MODES)}, found {mode!r}")
    return mode


def _airflow_uri(url: str, variable: str, pooled: bool, default_ssl_mode: str | None) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EnvContractError(f"{variable} is not a valid URL (check the port and any special characters in the password)") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise EnvContractError(f"{variable} must start with postgresql://, found {parts.scheme or 'no scheme'}")
    if not parts.hostname:
        raise EnvContractError(f"{variable} names no host")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    flagged = query.pop(POOLER_FLAG, "").lower() in ("true", "1", "yes")
    if flagged and not pooled:
        raise EnvContractError(f"{variable} carries pgbouncer=true: that is the pooler URL, but DDL, backfill and "
                               "reconciliation need the direct URL (the database host, port 5432)")
    if "sslmode" in query and query["sslmode"] not in SSL_MODES:
        raise EnvContractError(f"{variable}: sslmode must be one of {', '.join(SSL_MODES)}, found {query['sslmode']!r}")
    if default_ssl_mode and "sslmode" not in query:
        query["sslmode"] = default_ssl_mode
    if pooled:
        query[POOLER_FLAG] = "true"
    userinfo = quote(unquote(parts.username or ""), safe="")
    if parts.password is not None:
        userinfo += ":" + quote(unquote(parts.password), safe="")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    # Airflow's own conn_type for PostgreSQL is "postgres".
    return urlunsplit(("postgres", netloc, parts.path or "/postgres", urlencode(query), ""))


ROLES_SCRIPT = "scripts/create_migration_roles.sql"


def roles_commands(manifest: Manifest) -> str:
    """The psql commands an admin runs once per database; the URLs are the admin's, left as variables."""
    from migration_engine.source_access import roles_script_variables

    lines = ["# Each source database, as its owner or an admin (then \\password the role inside psql):"]
    for service in manifest.services:
        variables = roles_script_variables(service, f"{manifest.migration}_migration")
        flags = " ".join(f"-v {name}={shlex.quote(value)}" for name, value in variables.items())
        lines.append(f'psql "${service.name.upper()}_SOURCE_ADMIN_URL" {flags} -f {ROLES_SCRIPT}')
    lines += ["# The target database, as the managed service's admin:",
              f'psql "$TARGET_ADMIN_URL" -v side=target -v role={manifest.migration}_migrator -f {ROLES_SCRIPT}']
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None, out=None) -> int:
    parser = argparse.ArgumentParser(prog="migration-env-contract", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=("connections", "pools", "roles"), default="connections")
    parser.add_argument("--manifest", default=os.environ.get("MIGRATION_MANIFEST") or str(DEFAULT_MANIFEST))
    parser.add_argument("--dotenv", action="store_true", help="print NAME='value' lines for a compose .env file")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    try:
        manifest = load_manifest(args.manifest)
        if args.what == "pools":
            pools = pools_from_env(manifest, environ)
            json.dump({name: {"slots": slots, "description": pool_description(name), "include_deferred": False}
                       for name, slots in pools.items()}, out, indent=2)
            out.write("\n")
            return 0
        if args.what == "roles":
            out.write(roles_commands(manifest))
            return 0
        connections = airflow_connections_from_env(manifest, environ)
    except (EnvContractError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, uri in connections.items():
        out.write(f"{'' if args.dotenv else 'export '}{name}={shlex.quote(uri)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
