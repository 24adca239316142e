"""A foreign key that the copied rows break, as a forced re-copy of one table can leave it.

Every chunk of one source reads at one snapshot, so a backfill beside live
writes cannot break a foreign key (tests/integration/test_backfill_snapshot.py
shows it). A forced re-copy of a child table, read at a later instant than its
parent, can: the post-load step then fails without retry, naming the
constraint, both tables and the re-run that fixes it; that re-run, a forced
copy of the parent table, brings the missing parent and the constraints apply.
"""

from __future__ import annotations

import pytest

from migration_engine.checks import CheckFailed
from migration_engine.chunks import plan_all, plan_chunks
from migration_engine.copier import copy_chunk
from migration_engine.tasks import backfill
from tests.integration.backfill_support import source_sql, target_sql
from tests.integration.lifecycle_support import bring_to_schema_applied

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def copied(estate, manifest):
    """Every table copied, the post-load constraints not yet applied."""
    endpoints = bring_to_schema_applied(estate, manifest, scale=0.05, seed=11)
    for chunk in plan_all(manifest, endpoints):
        copy_chunk(endpoints[manifest.table(chunk.table).service], estate.target_endpoint(), manifest, chunk)
    return endpoints


@pytest.fixture
def airflow_connections(estate, monkeypatch):
    for name, value in estate.airflow_env().items():
        monkeypatch.setenv(name, value)


def copy_again(estate, manifest, endpoints, qualified: str) -> None:
    table = manifest.table(qualified)
    with endpoints[table.service].connect(autocommit=True) as conn:
        chunks = plan_chunks(conn, table)
    for chunk in chunks:
        copy_chunk(endpoints[table.service], estate.target_endpoint(), manifest, chunk, force=True)


def test_a_child_copied_after_its_late_parent_is_named_and_a_forced_parent_copy_fixes_it(
        copied, estate, manifest, airflow_connections):
    tenant = source_sql(estate, "issuer", "INSERT INTO public.tenants (name) VALUES ('arrived during the backfill') RETURNING id")[0][0]
    source_sql(estate, "issuer", "INSERT INTO public.users (username, password, tenant_id) VALUES ('late-child', 'x', %s)", (tenant,))
    copy_again(estate, manifest, copied, "issuer.users")

    with pytest.raises(CheckFailed) as refused:
        backfill.post_load_constraints("backfill")
    message = str(refused.value)
    for phrase in ("users_tenant_id_tenants_id_fk", "issuer.users", "issuer.tenants", "force on and tables [issuer.tenants]"):
        assert phrase in message, message

    copy_again(estate, manifest, copied, "issuer.tenants")
    applied = backfill.post_load_constraints("backfill")
    assert applied
    assert target_sql(estate, "SELECT convalidated FROM pg_constraint WHERE conname = 'users_tenant_id_tenants_id_fk'") == [(True,)]
