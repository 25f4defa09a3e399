"""What ``version-get`` and ``build-report`` tell: fastdhcp's version, the libraries it runs
with, and how its compiled modules were built.

The build facts come from the artefacts themselves, so they cannot drift from a record kept
beside them: the Cython version from the ABI name every Cython 3 module embeds
(``_cython_3_3_1``), the compiler from the ELF ``.comment`` section, and the compiler flags
from the metadata block Cython writes at the top of the generated ``.c`` file (present in a
source tree built in place, as in development and CI; a wheel ships without it, and the report
says so).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import platform
import re
import sys
import sysconfig
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["COMPILED_MODULES", "ModuleBuild", "build_report", "extended_version", "version"]

#: The compiled modules (ext/fastdhcp/_*.pyx), import names; tests/test_sourcecode.py checks
#: that the list and the sources agree.
COMPILED_MODULES: tuple[str, ...] = (
    "fastdhcp._bitmap", "fastdhcp._classify", "fastdhcp._codec", "fastdhcp._engine",
    "fastdhcp._hascope",
    "fastdhcp._hostfilter", "fastdhcp._lease", "fastdhcp._leaseindex", "fastdhcp._loadgen",
    "fastdhcp._memfile", "fastdhcp._packetpath", "fastdhcp._sockio",
)

_CYTHON_ABI = re.compile(rb"_cython_(\d+)_(\d+)_(\d+)")
_GCC = re.compile(rb"GCC: \(([^)]*)\) ([0-9][0-9.]*)")
_CLANG = re.compile(rb"clang version ([0-9][0-9.]*)")
_METADATA = re.compile(r"/\* BEGIN: Cython Metadata\n(.*?)\nEND: Cython Metadata \*/", re.S)


def version() -> str:
    """fastdhcp's version, from the installed package's metadata (the source's own
    ``__version__`` when it is run from a tree that is not installed)."""
    try:
        return importlib.metadata.version("fastdhcp")
    except importlib.metadata.PackageNotFoundError:
        import fastdhcp

        return str(fastdhcp.__version__)


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def extended_version() -> str:
    """``version-get``'s ``extended`` text, shaped as Kea's: the version, then the libraries
    linked with, then the lease database."""
    import lmdb
    import msgpack

    from fastdhcp.store import SCHEMA_VERSION

    cython = ", ".join(sorted({m.cython for m in module_builds() if m.cython})) or "unknown"
    lines = [
        version(),
        "python package",
        "linked with:",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"Cython {cython} (compiled modules)",
        f"uvloop {_dist_version('uvloop')}",
        f"lmdb {_dist_version('lmdb')} (LMDB {'.'.join(map(str, lmdb.version()))})",
        f"msgpack {'.'.join(map(str, msgpack.version))}",
        f"prometheus_client {_dist_version('prometheus_client')}",
        "database:",
        f"LMDB lease database, schema {SCHEMA_VERSION}",
    ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ModuleBuild:
    """How one compiled module was built (None where the artefacts do not say)."""

    name: str
    path: str
    size: int
    built: float  #: the file's modification time
    cython: str | None
    compiler: str | None
    flags: tuple[str, ...] | None  #: extra compile args, from the generated .c
    macros: tuple[str, ...] | None
    source: str | None  #: the generated .c read for flags

    @property
    def debug(self) -> bool | None:
        """A FASTDHCP_DEBUG build (-O0, line tracing); None if the flags are unknown."""
        if self.flags is None:
            return None
        return "-O0" in self.flags or any(m.startswith("CYTHON_TRACE") for m in self.macros
                                          or ())


def _generated_c(name: str, so_path: Path) -> Path | None:
    # In a source tree the package sits beside ext/ (setup.py builds ext/fastdhcp/_x.pyx into
    # fastdhcp/_x.*.so in place).
    short = name.rsplit(".", 1)[-1]
    c = so_path.parent.parent / "ext" / "fastdhcp" / f"{short}.c"
    return c if c.is_file() else None


def _metadata(c_file: Path) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    import json

    try:
        with c_file.open(encoding="utf-8", errors="replace") as f:
            head = f.read(8192)
        m = _METADATA.search(head)
        if m is None:
            return None
        dist = json.loads(m.group(1)).get("distutils", {})
    except (OSError, ValueError):
        return None
    flags = tuple(str(x) for x in dist.get("extra_compile_args", ()))
    macros = tuple("=".join(str(p) for p in x) if isinstance(x, list) else str(x)
                   for x in dist.get("define_macros", ()))
    return flags, macros


@functools.lru_cache(maxsize=1)
def module_builds() -> tuple[ModuleBuild, ...]:
    """Every compiled module as loaded (cached: the files of a running process do not
    change under it, and reading them costs a few milliseconds)."""
    out = []
    for name in COMPILED_MODULES:
        mod = importlib.import_module(name)
        path = Path(str(getattr(mod, "__file__", "") or ""))
        try:
            data = path.read_bytes()
            st = path.stat()
            size, built = st.st_size, st.st_mtime
        except OSError:
            data, size, built = b"", 0, 0.0
        abi = _CYTHON_ABI.search(data)
        cython = ".".join(x.decode() for x in abi.groups()) if abi else None
        gcc = _GCC.search(data)
        clang = _CLANG.search(data)
        compiler = (f"GCC {gcc.group(2).decode()} ({gcc.group(1).decode()})" if gcc
                    else f"clang {clang.group(1).decode()}" if clang else None)
        c_file = _generated_c(name, path)
        meta = _metadata(c_file) if c_file is not None else None
        out.append(ModuleBuild(name, str(path), size, built, cython, compiler,
                               meta[0] if meta else None, meta[1] if meta else None,
                               str(c_file) if meta and c_file else None))
    return tuple(out)


def build_report() -> str:
    """``build-report``'s text: shaped as Kea's configure report, about fastdhcp's build."""
    base = sysconfig.get_config_var("CFLAGS") or ""
    lines = [
        " ",
        "        fastdhcp build report",
        "     -=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-",
        " ",
        " Package:",
        "   Name:              fastdhcp",
        f"   Version:           {version()}",
        f"   Python:            {platform.python_version()} ({sys.executable})",
        f"   Platform:          {platform.platform()}",
        f"   Package directory: {Path(__file__).resolve().parent}",
        " ",
        " Compiled modules (Cython):",
    ]
    for m in module_builds():
        built = datetime.fromtimestamp(m.built).strftime("%Y-%m-%d %H:%M:%S") if m.built else "?"
        lines.append(f"   {m.name}")
        lines.append(f"     file:      {m.path} ({m.size} bytes, built {built})")
        lines.append(f"     Cython:    {m.cython or 'unknown'}")
        lines.append(f"     compiler:  {m.compiler or 'unknown'}")
        if m.flags is not None:
            extra = " ".join(m.flags)
            macros = " ".join(f"-D{x}" for x in m.macros or ()) or "none"
            lines.append(f"     flags:     {base} {extra}".rstrip())
            lines.append(f"     macros:    {macros}")
            lines.append(f"     debug:     {'yes (FASTDHCP_DEBUG)' if m.debug else 'no'}")
            lines.append(f"     from:      {m.source}")
        else:
            lines.append(f"     flags:     {base} + setup.py's (the generated C is not "
                         "beside the module: installed from a wheel)")
    lines += [
        " ",
        " Environment switches of setup.py: FASTDHCP_DEBUG=1 (-O0 -g, line tracing, bounds "
        "checks), FASTDHCP_ONLY=<modules>",
    ]
    return "\n".join(lines)
