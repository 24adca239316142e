"""The confirm word of the manual DAGs: only the exact word passes; the refusal names it and quotes at
most 40 characters of what was typed."""

from __future__ import annotations

import pytest

from migration_engine.checks import CheckFailed, check_confirmation


@pytest.mark.parametrize(("given", "shown"), [
    (None, "got nothing"), ("", "got nothing"), ("cutover", "got 'cutover'"), ("CUTOVER ", "got 'CUTOVER '"),
    ("x'; DROP TABLE wallet.users; --", "got \"x'; DROP TABLE wallet.users; --\""),
    ("C" * 100, f"got '{'C' * 40}'"),
])
def test_anything_but_the_exact_word_refuses_naming_it(given, shown):
    with pytest.raises(CheckFailed) as refused:
        check_confirmation(given, "CUTOVER", "cutover")
    assert "the confirm parameter must be exactly 'CUTOVER'" in str(refused.value) and shown in str(refused.value)


def test_the_exact_word_passes():
    check_confirmation("CUTOVER", "CUTOVER", "cutover")
