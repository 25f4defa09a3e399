"""The linters are part of the suite (as asyncpg's test__sourcecode.py): ruff over the code, the
tests and the benchmarks, mypy in strict mode over the package, both with the settings in
pyproject.toml (strict relaxed only for the engine's Python face)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The only module strict mode may be relaxed for: the compiled engine's Python face (issue 14).
RELAXABLE = {"fastdhcp.engine"}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_clean() -> None:
    proc = _run("ruff", "check", "--no-cache", "fastdhcp", "tests", "bench", "fuzz")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = _run("mypy", "--no-incremental")  # files and settings: [tool.mypy] in pyproject
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_config_is_strict() -> None:
    """The mypy run above is only as strict as its config: strict on, over the package, and
    no override for a module outside RELAXABLE."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert cfg.get("strict") is True
    assert cfg.get("files") == ["fastdhcp"]
    relaxed = set()
    for override in cfg.get("overrides", []):
        modules = override["module"]
        relaxed.update([modules] if isinstance(modules, str) else modules)
    assert relaxed <= RELAXABLE, sorted(relaxed - RELAXABLE)


def test_bench_reaches_shared_code_one_way() -> None:
    """bench/_common.py is the only file of bench/ that touches sys.path, and every bench file
    imports it (so a script and a pytest run see the same repo root and tests/)."""
    bench = ROOT / "bench"
    files = sorted(p for p in bench.glob("*.py") if p.name != "_common.py")
    hacks = [p.name for p in files if "sys.path.insert" in p.read_text()]
    assert not hacks, hacks
    missing = [p.name for p in files if "\nimport _common" not in p.read_text()]
    assert not missing, missing


def test_every_compiled_module_is_listed_and_stubbed() -> None:
    # version-get / build-report read COMPILED_MODULES; mypy reads the .pyi: a module missing
    # from either is a build the operator cannot see and a boundary nothing type-checks.
    from fastdhcp.buildinfo import COMPILED_MODULES

    sources = sorted(p.stem for p in (ROOT / "ext" / "fastdhcp").glob("_*.pyx"))
    assert sorted(m.rsplit(".", 1)[1] for m in COMPILED_MODULES) == sources
    missing = [s for s in sources if not (ROOT / "fastdhcp" / f"{s}.pyi").is_file()]
    assert missing == []


def test_bench_kernels_import() -> None:
    # A kernel importing a name the code no longer has fails only when someone benchmarks;
    # collecting them here catches it (no benchmark runs).
    kernels = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "bench").glob("bench_*.py"))
    proc = _run("pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *kernels)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert len(kernels) >= 8 and "error" not in proc.stdout.lower()
