"""Read an env file the way the README tells a user to: sourced by bash with `set -a`."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Prints every exported variable NUL-separated, so values with newlines or quotes survive.
_SOURCE = 'set -a; . "$1"; set +a; env -0'


def sourced(path: Path) -> dict[str, str]:
    """The variables ``path`` sets, as bash sees them; a shell error (say, an unquoted
    ``&`` or ``<``) fails here, naming the file."""
    baseline = _env_after(["bash", "--noprofile", "--norc", "-c", "env -0"])
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-c", _SOURCE, "bash", str(path)],
                          env={}, capture_output=True, timeout=30)
    if proc.returncode != 0 or proc.stderr:
        raise AssertionError(f"sourcing {path} failed: {proc.stderr.decode(errors='replace')}")
    variables = _parse(proc.stdout)
    return {name: value for name, value in variables.items() if name not in baseline}


def _env_after(command: list[str]) -> dict[str, str]:
    return _parse(subprocess.run(command, env={}, capture_output=True, check=True, timeout=30).stdout)


def _parse(raw: bytes) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if entry)
