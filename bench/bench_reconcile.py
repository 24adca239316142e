"""Benchmark: finding drift between two servers, our bucketed reconcile vs reladiff vs a full hash scan.

Same data, same injected drift (missing, extra and changed rows spread over two
tables: one integer-keyed, one uuid-keyed), in one run on two throwaway servers:

- ours: ``reconcile_table(find_only=True)`` per table (one bucketed hash scan per
  side, both sides at once, then index range reads of the mismatched buckets);
- reladiff (hashdiff, every column compared, 2 threads) per table;
- a full ``md5(string_agg(row text ORDER BY key))`` scan per side, as the
  runbook's checksum pattern but over whole rows (both sides at once).

Also the clean check (ours on identical tables) against that full scan.
Scale: ``BENCH_ROWS`` (rows per table, default 2,000,000) or ``--rows``.
Writes bench/results/reconcile.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from migration_engine.canonical import pin_output_settings, row_text  # noqa: E402
from migration_engine.endpoints import from_url  # noqa: E402
from migration_engine.local.servers import PostgresServer  # noqa: E402
from migration_engine.manifest import Table  # noqa: E402
from migration_engine.reconcile import reconcile_table  # noqa: E402

DB = "bench"
TABLES = {
    "bench_serial": (
        "id integer PRIMARY KEY, account integer NOT NULL, label text NOT NULL, amount numeric(12,2), created_at timestamp",
        "INSERT INTO bench_serial SELECT g, g %% 9973, 'label-' || md5(g::text), (g %% 100000) / 100.0,"
        " '2024-01-01'::timestamp + g * interval '1 second' FROM {numbers} g",
    ),
    "bench_uuid": (
        "id uuid PRIMARY KEY, tenant integer NOT NULL, subject text NOT NULL, score integer, created_at timestamp",
        "INSERT INTO bench_uuid SELECT md5('k' || g)::uuid, g %% 501, 'did:example:' || md5(g::text), g %% 1000,"
        " '2024-01-01'::timestamp + g * interval '1 second' FROM {numbers} g",
    ),
}
ALL_NUMBERS = sql.SQL("generate_series(1, %(rows)s)")
CHOSEN_NUMBERS = sql.SQL("unnest(%(keys)s::int[])")
# Drift per table: rows deleted from the target, rows only in the target, rows changed in the target.
DRIFT = {"missing": 40, "extra": 30, "changed": 50}


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - started, value


def create_and_fill(source: PostgresServer, target: PostgresServer, rows: int) -> None:
    for server in (source, target):
        server.create_database(DB)
    with psycopg.connect(source.dsn(DB), autocommit=True) as src, psycopg.connect(target.dsn(DB), autocommit=True) as tgt:
        for name, (columns, fill) in TABLES.items():
            for conn in (src, tgt):
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), sql.SQL(columns)))
            src.execute(sql.SQL(fill).format(numbers=ALL_NUMBERS), {"rows": rows})
            # Server-side pipe: binary COPY out of the source straight into the target.
            with src.cursor().copy(sql.SQL("COPY {} TO STDOUT (FORMAT binary)").format(sql.Identifier(name))) as out, \
                 tgt.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT binary)").format(sql.Identifier(name))) as into:
                for block in out:
                    into.write(block)
        for conn in (src, tgt):
            conn.execute("VACUUM ANALYZE")


def inject_drift(target: PostgresServer, rows: int) -> None:
    step = rows // (sum(DRIFT.values()) + 1)
    with psycopg.connect(target.dsn(DB), autocommit=True) as tgt:
        for name in TABLES:
            key = "g" if name == "bench_serial" else "md5('k' || g)::uuid"
            picks = [step * (i + 1) + 7 for i in range(sum(DRIFT.values()))]
            missing, changed = picks[: DRIFT["missing"]], picks[DRIFT["missing"]: DRIFT["missing"] + DRIFT["changed"]]
            for query, keys in (("DELETE FROM {t} WHERE id IN (SELECT {k} FROM unnest(%s::int[]) g)", missing),
                                ("UPDATE {t} SET created_at = created_at + interval '1 microsecond' WHERE id IN (SELECT {k} FROM unnest(%s::int[]) g)", changed)):
                tgt.execute(sql.SQL(query).format(t=sql.Identifier(name), k=sql.SQL(key)), [keys])
            extra = [rows + 1000 + i * 997 for i in range(DRIFT["extra"])]
            tgt.execute(sql.SQL(TABLES[name][1]).format(numbers=CHOSEN_NUMBERS), {"keys": extra})
            tgt.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))


def ours(source, target, name: str, cap: int) -> set[str]:
    table = Table(service="bench", name=name, key=("id",), source_schema="public", target_schema="public")
    result = reconcile_table(table, source, target, run_id="bench", direction="source_to_target",
                             control_schema="bench_control", cap=cap, find_only=True)
    return {str(f.key) for f in result.findings}


def reladiff_keys(source: PostgresServer, target: PostgresServer, name: str) -> set[str]:
    import reladiff

    extra = tuple(c for c in ("account", "label", "amount", "created_at", "tenant", "subject", "score")
                  if c in TABLES[name][0].split())
    left = reladiff.connect_to_table(source.url(DB), name, "id", thread_count=2, extra_columns=extra)
    right = reladiff.connect_to_table(target.url(DB), name, "id", thread_count=2, extra_columns=extra)
    keys = {str(row[0]) for _, row in reladiff.diff_tables(left, right, algorithm="hashdiff", threaded=True, max_threadpool_size=2)}
    for segment in (left, right):
        segment.database.close()
    return keys


def full_scan(server: PostgresServer, name: str, columns: list[str]) -> str:
    with psycopg.connect(server.dsn(DB), autocommit=True) as conn, conn.transaction():
        pin_output_settings(conn)
        query = sql.SQL("SELECT md5(string_agg({}, ',' ORDER BY t.id)) FROM {} AS t").format(row_text(columns), sql.Identifier(name))
        return conn.execute(query).fetchone()[0]


def full_scan_both(source: PostgresServer, target: PostgresServer, name: str) -> None:
    with psycopg.connect(source.dsn(DB)) as conn:
        columns = [r[0] for r in conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", [name])]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda server: full_scan(server, name, columns), (source, target)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=int(os.environ.get("BENCH_ROWS", "2000000")), help="rows per table")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "reconcile.json"))
    args = parser.parse_args()
    cap = 10 * sum(DRIFT.values())
    with PostgresServer("bench-source") as source, PostgresServer("bench-target") as target:
        print(f"loading {len(TABLES)} tables x {args.rows:,} rows on both servers ...", flush=True)
        load_s, _ = timed(create_and_fill, source, target, args.rows)
        src_ep, tgt_ep = from_url("bench source", source.url(DB)), from_url("bench target", target.url(DB))
        for name in TABLES:  # warm both caches so every contender reads from memory alike
            full_scan_both(source, target, name)
        clean = {name: timed(ours, src_ep, tgt_ep, name, cap) for name in TABLES}
        full = {name: timed(full_scan_both, source, target, name)[0] for name in TABLES}
        assert not any(keys for _, keys in clean.values()), "identical tables reported drift"
        inject_drift(target, args.rows)
        found = {name: timed(ours, src_ep, tgt_ep, name, cap) for name in TABLES}
        theirs = {name: timed(reladiff_keys, source, target, name) for name in TABLES}

    per_table = {}
    for name in TABLES:
        per_table[name] = {
            "rows": args.rows, "drifted_rows": len(found[name][1]), "ours_s": round(found[name][0], 3),
            "reladiff_s": round(theirs[name][0], 3), "full_scan_s": round(full[name], 3),
            "clean_check_s": round(clean[name][0], 3), "findings_equal": found[name][1] == theirs[name][1],
            "reladiff_drifted_rows": len(theirs[name][1]),
        }
    ours_s = sum(t["ours_s"] for t in per_table.values())
    reladiff_s = sum(t["reladiff_s"] for t in per_table.values())
    full_s = sum(t["full_scan_s"] for t in per_table.values())
    clean_s = sum(t["clean_check_s"] for t in per_table.values())
    summary = {
        "rows": args.rows * len(TABLES), "tables": len(TABLES), "drifted_rows": sum(t["drifted_rows"] for t in per_table.values()),
        "injected_drift_per_table": DRIFT, "ours_s": round(ours_s, 3), "reladiff_s": round(reladiff_s, 3),
        "full_scan_s": round(full_s, 3), "speedup_vs_reladiff": round(reladiff_s / ours_s, 2),
        "clean_check_s": round(clean_s, 3), "clean_check_vs_full_scan": round(clean_s / full_s, 2),
        "findings_equal": all(t["findings_equal"] for t in per_table.values()),
        "load_s": round(load_s, 1), "cores": os.cpu_count(), "per_table": per_table,
        "note": "full scan = md5(string_agg(canonical row text ORDER BY key)) per side, both sides at once; all timings warm",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    header = f"{'table':<14}{'rows':>11}{'drifted':>9}{'ours s':>9}{'reladiff s':>12}{'full scan s':>13}{'clean s':>9}{'equal':>7}"
    print(header)
    for name, t in per_table.items():
        print(f"{name:<14}{t['rows']:>11,}{t['drifted_rows']:>9}{t['ours_s']:>9.2f}{t['reladiff_s']:>12.2f}{t['full_scan_s']:>13.2f}"
              f"{t['clean_check_s']:>9.2f}{t['findings_equal']!s:>7}")
    print(f"speedup vs reladiff: {summary['speedup_vs_reladiff']}x (target >= 5x); clean check vs full scan: "
          f"{summary['clean_check_vs_full_scan']}x (target <= 1.2x); findings equal: {summary['findings_equal']}")
    print(f"wrote {args.out}")
    return 0 if summary["findings_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
