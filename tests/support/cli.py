"""Run the ``pymon`` command line as an operator would: a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["PYMON", "pymon"]

PYMON = [sys.executable, "-m", "pymon"]


def pymon(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``pymon ARGS`` to completion; output captured as text."""
    return subprocess.run(
        [*PYMON, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )
