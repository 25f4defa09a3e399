"""The ``FASTDHCP_DEBUG`` build (setup.py: -O0 -g, ``boundscheck``, ``wraparound``, line
tracing) is built and tested once per CI run, so the switch keeps working and the compiled code
is run once with Cython's index checks on: an out-of-range index there raises ``IndexError``
where the release build would read past a buffer.

The tree is copied without its build products and built in the copy, so the release build the
rest of the suite imports is left alone; the unit tests then run in a child interpreter that
imports the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The modules whose code the chosen tests reach: codec, bitmap, lease index, engine.
TESTS = ["tests/test_codec.py", "tests/test_codec_flags.py", "tests/test_bitmap.py",
         "tests/test_leaseindex.py", "tests/test_engine.py", "tests/test_engine_relay.py"]
_SKIP = shutil.ignore_patterns(".git", "build", "*.so", "*.c", "*.html", "__pycache__",
                               ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.egg-info",
                               ".hypothesis", "results")

# Asked of the child: every compiled module is the copy's and was built with the debug flags.
_CHECK = """
import sys
from fastdhcp.buildinfo import module_builds
builds = module_builds()
assert builds, "no compiled module found"
for m in builds:
    assert m.path.startswith(sys.argv[1]), (m.name, m.path)
    assert m.debug is True, (m.name, m.flags, m.macros)
print(len(builds))
"""


@pytest.mark.slow
def test_debug_build_passes_the_unit_tests(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=_SKIP)
    env = dict(os.environ, FASTDHCP_DEBUG="1", PYTHONPATH=str(tree))
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"],
                           cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-4000:]
    check = subprocess.run([sys.executable, "-c", _CHECK, str(tree)], cwd=tree, env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr[-4000:]
    assert int(check.stdout) == len(list((ROOT / "ext" / "fastdhcp").glob("_*.pyx")))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *TESTS],
        cwd=tree, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
