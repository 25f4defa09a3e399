"""The linters are part of the suite (as asyncpg's test__sourcecode.py): ruff over the code, the
tests and the benchmarks, mypy over the package, both with the settings in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_clean() -> None:
    proc = _run("ruff", "check", "--no-cache", "fastdhcp", "tests", "bench")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = _run("mypy", "--no-incremental")  # files and settings: [tool.mypy] in pyproject
    assert proc.returncode == 0, proc.stdout + proc.stderr
