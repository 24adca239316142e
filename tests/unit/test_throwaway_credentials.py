"""pytest-randomly resets `random.seed` before every test, identically on every xdist worker: the
throwaway servers' passwords, ports and folders must not come from that generator, or two
modules running side by side would draw the same ones."""

from __future__ import annotations

import random
import shutil
import tempfile

from migration_engine.local.servers import PostgresServer


def drawn_after_the_same_seed():
    random.seed(1234)
    server = PostgresServer("source")
    folder = tempfile.mkdtemp(prefix="pgmig-seed-check-")
    shutil.rmtree(folder)
    return server.password, server.port, folder


def test_passwords_ports_and_folders_differ_under_the_same_random_seed():
    first, second = drawn_after_the_same_seed(), drawn_after_the_same_seed()
    assert first[0] != second[0]
    assert first[2] != second[2]
    # The OS hands out ephemeral ports; two draws in a row repeat one only by a rare chance, never by the seed.
    assert len({drawn_after_the_same_seed()[1] for _ in range(5)} | {first[1], second[1]}) > 1
