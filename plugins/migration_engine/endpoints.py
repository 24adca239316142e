"""Database endpoints: URLs as the apps write them, turned into safe libpq connections.

The apps' ``DATABASE_URL`` carries ``pgbouncer=true``, a Prisma-style flag that
libpq rejects; it is read here (it means "transaction pooler: no server-side
prepared statements") and removed before libpq sees the URL. Secrets never leave
this module in a printable form: ``repr`` and ``describe`` redact them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Query parameters some app stacks add that libpq does not know.
NON_LIBPQ_FLAGS = {"pgbouncer", "schema", "connection_limit", "pool_timeout", "statement_cache_size"}

DEFAULT_CONNECT_TIMEOUT_S = 5
DEFAULT_STATEMENT_TIMEOUT_MS = 0
DEFAULT_LOCK_TIMEOUT_MS = 10_000
PINNED_SEARCH_PATH = "pg_catalog"
DEFAULT_APPLICATION_NAME = "credity-migration"


class EndpointError(ValueError):
    pass


@dataclass(frozen=True)
class Endpoint:
    """Where one database is, how to reach it, and a name people can read."""

    name: str
    conninfo: str = field(repr=False)
    pooled: bool = False
    # What its sessions are called in pg_stat_activity (the rule is in ``connect``).
    application_name: str | None = None

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, {self.describe()})"

    @property
    def params(self) -> dict[str, str]:
        return conninfo_to_dict(self.conninfo)

    def describe(self) -> str:
        """host:port/dbname as user, with no secret."""
        p = self.params
        return f"{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p.get('dbname', '')} as {p.get('user', '')}"

    @property
    def password(self) -> str | None:
        return self.params.get("password")

    def named(self, application_name: str) -> Endpoint:
        """This endpoint, its sessions called ``application_name``."""
        return replace(self, application_name=application_name)

    def session_name(self) -> str:
        """The application_name of every session opened here (psycopg's and pg_dump's), which the
        DBA sees in pg_stat_activity. One rule: ``DB_APPLICATION_NAME`` when set (the operator's
        choice wins over ours), else the name this endpoint was given (``named``; a task's
        endpoints carry ``credity-migration-<dag_id>``, see ``dag_support.Connections``), else
        the URL's own ``application_name``, else ``credity-migration``."""
        return (os.environ.get("DB_APPLICATION_NAME") or self.application_name
                or self.params.get("application_name") or DEFAULT_APPLICATION_NAME)

    def connect(
        self,
        *,
        autocommit: bool = False,
        statement_timeout_ms: int | None = None,
        lock_timeout_ms: int | None = None,
    ) -> psycopg.Connection:
        """Open a psycopg connection named ``session_name()``; connection errors come back redacted and named."""
        params = self.params
        options = []
        statement_timeout = statement_timeout_ms if statement_timeout_ms is not None else _env_int("DB_STATEMENT_TIMEOUT_MS", DEFAULT_STATEMENT_TIMEOUT_MS)
        lock_timeout = lock_timeout_ms if lock_timeout_ms is not None else _env_int("DB_LOCK_TIMEOUT_MS", DEFAULT_LOCK_TIMEOUT_MS)
        # A transaction pooler forwards no startup options, and a session SET there would
        # leak to whichever client gets that server connection next: pooled callers set
        # what they need per transaction (smoke.py does).
        # DateStyle ISO: psycopg parses dates and timestamps only in ISO output (servers may run SQL, DMY).
        # search_path pg_catalog: every name the migration uses is schema-qualified, so a role that may
        # CREATE in public cannot shadow a built-in (width_bucket, md5, ...) with a closer-typed overload.
        if not self.pooled:
            options.append(f"-c statement_timeout={statement_timeout} -c lock_timeout={lock_timeout} -c DateStyle=ISO "
                           f"-c search_path={PINNED_SEARCH_PATH}")
        params.setdefault("connect_timeout", str(max(1, _env_int("DB_CONNECTION_TIMEOUT_MS", DEFAULT_CONNECT_TIMEOUT_S * 1000) // 1000)))
        params["application_name"] = self.session_name()
        if options:
            params["options"] = " ".join(filter(None, [params.get("options"), *options]))
        try:
            conn = psycopg.connect(
                make_conninfo(**params),
                autocommit=autocommit,
                # pgbouncer in transaction mode cannot keep server-side prepared statements.
                prepare_threshold=None if self.pooled else 5,
            )
        except psycopg.OperationalError as exc:
            raise EndpointError(f"cannot connect to {self.name} ({self.describe()}): {redact(str(exc), self.password)}") from None
        return conn


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise EndpointError(f"environment variable {name} must be a whole number of milliseconds, found {value!r}") from None


def from_url(name: str, url: str) -> Endpoint:
    """An endpoint from a ``postgresql://`` URL, as the apps' env holds it."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise EndpointError(f"{name}: not a valid URL ({exc})") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise EndpointError(f"{name}: URL scheme must be postgresql://, found {parts.scheme or 'none'}://")
    query = parse_qsl(parts.query, keep_blank_values=True)
    flags = {k: v for k, v in query if k in NON_LIBPQ_FLAGS}
    kept = [(k, v) for k, v in query if k not in NON_LIBPQ_FLAGS]
    pooled = flags.get("pgbouncer", "").lower() in ("true", "1", "yes")
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
    try:
        conninfo = make_conninfo(clean)
    except psycopg.ProgrammingError as exc:
        raise EndpointError(f"{name}: invalid connection URL: {redact(str(exc), unquote(parts.password or ''))}") from None
    return Endpoint(name, conninfo, pooled)


def from_airflow_connection(name: str, conn) -> Endpoint:
    """An endpoint from an Airflow ``Connection`` (host, port, login, password, schema, extra)."""
    extra = dict(conn.extra_dejson or {})
    pooled = str(extra.pop("pgbouncer", "")).lower() in ("true", "1", "yes")
    for flag in NON_LIBPQ_FLAGS:
        extra.pop(flag, None)
    # Keys the postgres provider uses that are not libpq parameters.
    for provider_only in ("cursor", "iam", "redshift", "aws_conn_id", "cluster-identifier", "enable_log_db_messages", "sqlalchemy_scheme", "sqlalchemy_query", "sqlalchemy_options"):
        extra.pop(provider_only, None)
    params = {k: str(v) for k, v in extra.items()}
    params.update(
        host=conn.host or "localhost",
        port=str(conn.port or 5432),
        dbname=conn.schema or "postgres",
        user=conn.login or "",
    )
    if conn.password:
        params["password"] = conn.password
    return Endpoint(name, make_conninfo(**params), pooled)


_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)([^@\s]+)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str, *secrets: str | None) -> str:
    """Remove passwords from a message: known secrets, URL passwords and password=... pairs."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return _KV_PASSWORD.sub(r"\1***", text)
