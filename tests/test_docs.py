"""Text that names code stays true to the code: module names in the docs and docstrings exist,
the package docstring lists every module, and documented defaults are the real ones."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import fastdhcp
from fastdhcp import config, service

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "fastdhcp"

_DOTTED = re.compile(r"\bfastdhcp(?:\.[A-Za-z_]\w*)+")


def _resolves(name: str) -> bool:
    """``fastdhcp.a.b`` is a module, or an attribute path in one, or a Cython ``.pxd``."""
    parts = name.split(".")
    if (ROOT / "ext" / Path(*parts)).with_suffix(".pxd").exists():
        return True
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _texts() -> list[Path]:
    return [*ROOT.glob("docs/*.md"), ROOT / "README.md", *ROOT.glob("bench/*.md"),
            *PKG.rglob("*.py"), *PKG.glob("*.pyi"), *ROOT.glob("ext/fastdhcp/*.pyx"),
            *ROOT.glob("ext/fastdhcp/**/*.pxi")]


def test_dotted_names_resolve() -> None:
    bad = sorted({f"{f.relative_to(ROOT)}: {m.group(0)}"
                  for f in _texts() for m in _DOTTED.finditer(f.read_text())
                  if not m.group(0).endswith((".toml", ".json"))
                  and not _resolves(m.group(0))})
    assert not bad, bad


def _modules() -> set[str]:
    """Every module and subpackage of fastdhcp, compiled ones by their Cython sources."""
    names = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    names |= {p.stem for p in (ROOT / "ext" / "fastdhcp").glob("*.pyx")}
    names |= {p.parent.name for p in PKG.glob("*/__init__.py")}
    return names


def test_package_docstring_lists_every_module() -> None:
    doc = fastdhcp.__doc__ or ""
    listed = set(re.findall(r"``(\w+)``", doc))
    missing = sorted(_modules() - listed)
    assert not missing, f"not in fastdhcp/__init__.py's module list: {missing}"
    stale = sorted(listed - _modules() - {"fastdhcp"})
    assert not stale, f"named in the module list but no module: {stale}"


def test_read_pace_default_as_documented() -> None:
    ms = service.READ_PACE * 1000.0
    shown = f"{ms:g}"
    row = next(line for line in (ROOT / "docs" / "configuration.md").read_text().splitlines()
               if line.startswith("| `read-pace-ms` |"))
    assert row.split("|")[2].strip() == f"`{shown}`", row
    field_doc = config.ServerConfig.__dataclass_fields__["read_pace_ms"]
    assert field_doc.default is None  # None means "the service's READ_PACE", as documented
    source = (PKG / "config.py").read_text()
    assert f"built-in default ({shown} ms" in source
    assert f"`server.read-pace-ms` (default {shown})" in " ".join(
        (ROOT / "docs" / "operations.md").read_text().split())
