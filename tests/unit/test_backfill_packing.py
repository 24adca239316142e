"""Packing the backfill's mapped tasks: split tables keep a task per chunk, small whole tables share one."""

from __future__ import annotations

from migration_engine.segment import TableSegment
from migration_engine.tasks.backfill import pack_tasks

MB = 1024 * 1024


def test_split_table_chunks_stay_one_task_each_and_whole_tables_pack_up_to_the_byte_budget():
    chunks = [
        TableSegment("wallet.users", "id", "integer"),
        TableSegment("wallet.claims", "id", "integer"),
        TableSegment("wallet.activities", "id", "integer", None, 100),
        TableSegment("wallet.activities", "id", "integer", 100, None),
        TableSegment("issuer.tenants", "id", "uuid"),
        TableSegment("issuer.users", "id", "uuid"),
        TableSegment("recruiter.users", "id", "integer"),
    ]
    sizes = {"wallet.users": 30 * MB, "wallet.claims": 30 * MB, "issuer.tenants": 10 * MB,
             "issuer.users": 50 * MB, "recruiter.users": 1 * MB}
    tasks = pack_tasks(chunks, sizes, task_bytes=64 * MB)
    assert [[c["table"] for c in t["chunks"]] for t in tasks] == [
        ["wallet.users", "wallet.claims"],
        ["wallet.activities"],
        ["wallet.activities"],
        ["issuer.tenants", "issuer.users", "recruiter.users"],
    ]
    assert [t["label"] for t in tasks] == [
        "wallet.users .. wallet.claims (2 tables)",
        "wallet.activities (-inf, 100)",
        "wallet.activities [100, +inf)",
        "issuer.tenants .. recruiter.users (3 tables)",
    ]
    assert sum(len(t["chunks"]) for t in tasks) == len(chunks)


def test_a_whole_table_above_the_budget_gets_a_task_of_its_own():
    chunks = [TableSegment("wallet.users", "id", "integer"), TableSegment("wallet.claims", "id", "integer"), TableSegment("wallet.evidence", "id", "integer")]
    tasks = pack_tasks(chunks, {"wallet.users": 1 * MB, "wallet.claims": 200 * MB, "wallet.evidence": 1 * MB}, task_bytes=64 * MB)
    assert [t["label"] for t in tasks] == ["wallet.users (all)", "wallet.claims (all)", "wallet.evidence (all)"]
