"""The engine's part files (``ext/fastdhcp/_engine_*.pxi``) are in the build: each is included
by ``_engine.pyx`` exactly once, and cythonize counts it among ``_engine.pyx``'s dependencies,
so that ``setup.py build_ext`` rebuilds the engine when only a part was edited (a stale
``_engine.so`` would otherwise be tested)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from Cython.Build.Dependencies import create_dependency_tree

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "ext" / "fastdhcp"


def _parts() -> list[str]:
    return sorted(p.name for p in EXT.glob("_engine_*.pxi"))


def test_every_part_is_included_once() -> None:
    text = (EXT / "_engine.pyx").read_text()
    included = re.findall(r'^include "([^"]+)"$', text, re.M)
    assert _parts(), "no engine parts found"
    assert sorted(included) == _parts()
    assert len(set(included)) == len(included)


def test_cythonize_tracks_the_parts() -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)  # setup.py's paths are relative to the repository root
    try:
        tree = create_dependency_tree()
        deps = {os.path.basename(d) for d in
                tree.all_dependencies(os.path.join("ext", "fastdhcp", "_engine.pyx"))}
    finally:
        os.chdir(cwd)
    missing = [p for p in _parts() if p not in deps]
    assert not missing, missing
