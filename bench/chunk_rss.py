"""Peak RSS of one chunk copy, for a chunk and for one 10x larger, on throwaway servers.

Each copy runs in a fresh child process so its ru_maxrss is its own. Prints a
JSON line; `python bench/chunk_rss.py [small_rows]` (default 200000).
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import time

from migration_engine.copier import copy_chunk
from migration_engine.local.estate import Estate
from migration_engine.manifest import load_manifest
from migration_engine.schema_sql import apply_schema, create_source_layout
from migration_engine.segment import TableSegment


def _child(source, target, manifest_file, chunk, queue) -> None:
    manifest = load_manifest(manifest_file)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = copy_chunk(source, target, manifest, chunk, run_id="rss")
    queue.put({"baseline_mb": round(before / 1024, 1), "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **result})


def measure(source, target, manifest, chunk: TableSegment) -> dict:
    queue = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(target=_child, args=(source, target, manifest.file, chunk.to_dict(), queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main(small_rows: int) -> dict:
    manifest = load_manifest()
    with Estate(manifest, with_pooler=False) as estate:
        sources = estate.source_endpoints()
        create_source_layout(manifest, sources)
        with estate.target_endpoint().connect(autocommit=True) as conn:
            apply_schema(conn, manifest, post_load=False)
        started = time.monotonic()
        estate.source.execute(
            "INSERT INTO activities (id, user_id, type, description) "
            "SELECT g, g %% 1000, 'login', repeat(md5(g::text), 3) FROM generate_series(1, %s) g",
            dbname="wallet", params=(small_rows * 11,),
        )
        load_s = time.monotonic() - started
        small = measure(sources["wallet"], estate.target_endpoint(), manifest, TableSegment("wallet.activities", "id", "integer", 1, small_rows + 1))
        large = measure(sources["wallet"], estate.target_endpoint(), manifest,
                        TableSegment("wallet.activities", "id", "integer", small_rows + 1, 11 * small_rows + 1))
    keep = ("rows", "bytes", "seconds", "mb_per_s", "baseline_mb", "peak_mb")
    return {"load_s": round(load_s, 1), "small": {k: small[k] for k in keep}, "large": {k: large[k] for k in keep}}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)))
