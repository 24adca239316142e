"""
# backfill: copy every table, chunk by chunk, exactly once

**Runbook phase C** (sections 5 and 7.1): the initial data backfill, source →
target, while the apps keep running on the source.

## One snapshot per source database
`hold_source_snapshots` starts, per source database, a holder process that
opens a REPEATABLE READ transaction, exports its snapshot
(`pg_export_snapshot()`) and keeps it open; it publishes the snapshot, its LSN
and xmin horizon in `migration_control.source_snapshots`. The sensor
`wait_for_source_snapshots` gates the copies on that row; every chunk of that
database then reads at that one snapshot (`SET TRANSACTION SNAPSHOT`), as
`pg_dump --jobs` and pgcopydb do, so the copy is the source at one instant and
the foreign keys validate however long it takes and however much the apps
write meanwhile. `release_source_snapshots` ends the snapshots once the copies
are done (or failed). The apps' writes since the snapshot are brought over by
`catch_up`, which this DAG's Asset starts.

The trade-off: while a snapshot is held, vacuum on that source cannot remove
rows dead since it was taken (tables bloat a little; `preflight` estimates how
long the hold will be and warns when it is long). The holder turns off
`idle_in_transaction_session_timeout` (and PostgreSQL 17's
`transaction_timeout`) for its own session and touches its transaction every
2 s; a managed server that still ends it, a restart of the source or of the
holder's host loses the snapshot. Then the next chunk fails, without retry,
naming the snapshot, and the run fails: trigger backfill again. The new run
takes a new snapshot and copies again, merging, the chunks read at the old one,
so every row is still there exactly once. *Longest snapshot hold* bounds how
long a forgotten holder can keep vacuum waiting.

## What it changes
- Each mapped table's rows, streamed `COPY … TO STDOUT` → `COPY … FROM STDIN`
  (binary where the types allow), one mapped task per key-range chunk, named
  like `wallet.activities [1200000, 1400000)`; tables copied whole share a
  task up to a chunk's 256 MB (`wallet.users .. wallet.claims (6 tables)`),
  since a task per table costs more in scheduling than in copying. A chunk's rows and its row in
  `migration_control.backfill_chunks` commit in one target transaction: a chunk
  is fully there and recorded, or absent. State-store rows land in the owning
  service's schema.
- Then, side by side: the schema step `post_load_constraints` (unique keys;
  foreign keys added NOT VALID, then VALIDATEd) followed by a full schema
  compare (constraints included), and the target sequences (at or above the
  source's). Once both and the snapshots' release are done, the ledger `→ backfilled`.
- On success it publishes the Asset `credity_backfilled`, which starts `verify`.

Chunk copies share the pool `migration_target` (sized by `DB_POOL_MAX`), so the
connections to the target, and to each source, never exceed that cap.

## Pacing by the apps' health
Before any chunk streams, `measure_source_health` times a probe (a count over
5,000 generated rows, about what an app's write costs the server; on its own
connection; timed on the server, from the statement's start to the end of its work, so the
worker's own load, the copy's client side among it, is not taken for the source's) 30 times
on each source database: its median is the source's latency at rest. Each chunk's stream then probes again 4 times a
second and, the way gh-ost throttles on max-load, halves its rate while the
median of the last 8 probes is over the baseline plus *Source latency budget*
(`max_latency_increase`, default 0.3: the runbook's +30 % rollback trigger; or
plus the probe's own spread at rest, how far the median of 8 probes wavers above
the baseline nine times in ten, when that is wider: a probe that wavers at rest
is not a busy source), pauses while it is over twice that (at most 60 s at a time, then goes on at
0.25 MB/s), and grows its rate by a quarter per interval while there is room.
A task's next chunk from the same source goes on at the rate its last chunk
reached: most chunks end before their first probe is due.
The probe is what an app's simplest statement feels on that server (CPU,
connection scheduling, locks); session counts or wait events say what the
server does, not what the apps feel, and need privileges a managed source may
not give. Every decision is in the chunk task's log (`pacer:` lines, at most
one each 5 s, pauses always) and each chunk's result carries a summary: the
baseline and budget, probes, cuts, pauses, seconds paused, the slowest rate.

*Copy rate limit (MB/s)* (`max_copy_mb_per_s`) stays as a ceiling the pacer
never exceeds; with pacing off (`max_latency_increase` empty or 0) it is the
only limit. Empty or 0: none. The total is at most the rate times the chunks
copying at once (the pool's slots). To change either for a running backfill,
mark the run failed and trigger a new one: chunks already copied are skipped
(or merged, touching only rows that differ).

## Re-running
Safe at any point. A chunk already recorded is skipped (the log says so) unless
*force* is on; with *force*, or when a chunk's range already holds rows (a
re-sync, dual-write running), the rows are merged through a staging table and
only rows that differ are touched. Clear a failed chunk and it resumes alone.

## When it fails
A chunk that fails retries with backoff; a chunk killed mid-copy left nothing
behind (its transaction rolled back), so clearing it is always safe. A schema
mismatch names the table and column: fix the target schema, run
`schema_baseline`, then clear the failed task.

A foreign key refused by `apply_post_load_constraints` cannot come from the
apps' writes (every chunk of a source reads at one snapshot); it means two
tables were read at different instants, e.g. a forced re-copy of one of them.
The task names the constraint, both tables and the re-run that fixes it.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, PokeReturnValue, dag, get_current_context, task, teardown

from migration_engine import dag_support as ds

DAG_ID = "backfill"
BACKFILLED = Asset(ds.backfilled_asset_name())
MAX_MAPPED_CHUNKS = 1000
# Faster than any link a migration runs over: a larger number is a typo.
MAX_COPY_MB_PER_S = 10_000
# A holder that has not published by then did not start (it logs why in the run's artifact folder).
SNAPSHOT_PUBLISH_TIMEOUT_S = 300


@dag(
    dag_id=DAG_ID,
    schedule=None,
    **ds.dag_arguments(
        __doc__, "phase-c", "manual",
        params={
            "force": Param(
                False, type="boolean", title="Force",
                description="Copy chunks again even when the ledger records them (merging, so only differing rows change).",
            ),
            "tables": ds.tables_param(),
            "target_chunk_rows": Param(
                None, type=["null", "integer"], minimum=1, maximum=100_000_000, title="Rows per chunk",
                description="Override the planner's chunk size in rows; empty lets it adapt to each table's rows and bytes.",
            ),
            "max_snapshot_hold_hours": Param(
                24, type="number", minimum=0.1, maximum=24 * 14, title="Longest snapshot hold (hours)",
                description="The source snapshots are given up after this long even if the copy has not finished "
                "(an open snapshot keeps vacuum from cleaning up on the source); the copy then fails naming them.",
            ),
            "max_copy_mb_per_s": Param(
                None, type=["null", "number"], minimum=0, maximum=MAX_COPY_MB_PER_S, title="Copy rate limit (MB/s)",
                description="Hold each chunk's COPY stream (source read and target write) to at most this many MB/s, "
                "so the source keeps serving the apps; chunks copying side by side each get this rate. "
                "Empty or 0: as fast as the servers allow. With load-aware pacing on, the ceiling it never exceeds.",
            ),
            "max_latency_increase": ds.latency_budget_param(
                "Source latency budget", "each chunk's stream slows down, or pauses, and speeds up again when there is room,"),
        },
    ),
)
def backfill():
    from migration_engine.tasks import backfill as steps
    from migration_engine.tasks import shared

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"schema_applied", "backfilled"}, "backfill")

    @task
    def check_source_schema_unchanged():
        return shared.check_source_schema_unchanged(DAG_ID)

    @task
    def plan_chunks(params=None) -> list[dict]:
        return steps.plan(DAG_ID, get_current_context()["run_id"], params["tables"], params["target_chunk_rows"], MAX_MAPPED_CHUNKS)

    @task
    def hold_source_snapshots(params=None) -> dict:
        return steps.hold_snapshots(DAG_ID, get_current_context()["run_id"], params["tables"],
                                    params["max_snapshot_hold_hours"] * 3600)

    @task.sensor(poke_interval=2, timeout=SNAPSHOT_PUBLISH_TIMEOUT_S, mode="poke")
    def wait_for_source_snapshots(params=None) -> PokeReturnValue:
        published = steps.snapshots_published(DAG_ID, get_current_context()["run_id"], params["tables"])
        return PokeReturnValue(is_done=published is not None, xcom_value=published)

    @task(
        pool=ds.TARGET_POOL,
        retries=3,
        execution_timeout=timedelta(hours=1),
        map_index_template="{{ task.op_kwargs['chunks']['label'] }}",
    )
    def copy_chunk(chunks: dict, snapshots: dict, ledger: dict, load_budgets: dict | None, params=None) -> dict:
        return steps.copy(DAG_ID, get_current_context()["run_id"], chunks, force=params["force"],
                          max_mb_per_s=params["max_copy_mb_per_s"], snapshots=snapshots, phase=ledger["phase"],
                          load_budgets=load_budgets)

    @task
    def measure_source_health(params=None) -> dict | None:
        return steps.source_baselines(DAG_ID, params["tables"], params["max_latency_increase"])

    @task(pool=ds.TARGET_POOL, trigger_rule="all_done")
    def release_source_snapshots() -> list[dict]:
        return steps.release_snapshots(DAG_ID, get_current_context()["run_id"])

    @task(pool=ds.TARGET_POOL)
    def summarise_progress(planned: list[dict], copied: list[dict]) -> dict:
        return steps.progress(DAG_ID, planned, copied)

    @task(pool=ds.TARGET_POOL, execution_timeout=timedelta(hours=2))
    def apply_post_load_constraints() -> list[str]:
        return steps.post_load_constraints(DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def sync_sequences() -> list[dict]:
        return shared.sync_sequences(DAG_ID, gap=0, dry_run=False)

    @task
    def check_target_schema_matches_source() -> dict:
        return steps.full_schema_compare(DAG_ID)

    @task(pool=ds.TARGET_POOL, outlets=[BACKFILLED])
    def record_backfilled(summary: dict, sequences: list[dict]) -> bool:
        return ds.advance_phase(
            DAG_ID, get_current_context()["run_id"], "backfilled",
            {"tables": summary["tables"], "rows": summary["rows"], "sequences_moved": sum(s["changed"] for s in sequences)},
        )

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    ledger = check_ledger_phase()
    gates = ledger >> check_source_schema_unchanged()
    holders = hold_source_snapshots()
    published = wait_for_source_snapshots()
    gates >> holders >> published
    chunks = plan_chunks()
    gates >> chunks
    budgets = measure_source_health()
    gates >> budgets
    copied = copy_chunk.partial(snapshots=published, ledger=ledger, load_budgets=budgets).expand(chunks=chunks)
    released = release_source_snapshots()
    [published, copied] >> released
    # Each step after the copies waits only for what it reads: every serial step costs a
    # scheduling round on top of its own time.
    summary = summarise_progress(chunks, copied)
    constraints = apply_post_load_constraints()
    copied >> constraints
    sequences = sync_sequences()
    copied >> sequences
    compared = check_target_schema_matches_source()
    constraints >> compared
    recorded = record_backfilled(summary, sequences)
    [compared, released] >> recorded
    [copied, recorded] >> write_status_report()


backfill()
