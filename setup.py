"""Build the compiled core: every ext/fastdhcp/_*.pyx becomes fastdhcp._* .

Environment switches (as in uvloop/asyncpg):
  FASTDHCP_DEBUG=1   annotate HTML, line tracing, assertions kept, -O0 -g
  FASTDHCP_ONLY=_codec,_bitmap   build only these modules and those that cimport them
"""

import glob
import os
import re

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTDHCP_DEBUG", "") not in ("", "0")
ONLY = {m for m in os.environ.get("FASTDHCP_ONLY", "").split(",") if m}

cflags = ["-O0", "-g"] if DEBUG else ["-O2"]
cflags += ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []

SOURCES = sorted(glob.glob(os.path.join("ext", "fastdhcp", "_*.pyx")))


def _cimports(pyx: str) -> set[str]:
    """The fastdhcp modules whose .pxd this source cimports."""
    with open(pyx, encoding="utf-8") as f:
        text = f.read()
    return set(re.findall(r"^\s*(?:from|cimport)\s+fastdhcp\.(_\w+)", text, re.M))


# A module compiled against another's .pxd reads that module's object layout: building one
# alone would leave its dependents stale (a crash, not an error). FASTDHCP_ONLY therefore
# takes in, transitively, every module that cimports a named one.
if ONLY:
    deps = {os.path.splitext(os.path.basename(p))[0]: _cimports(p) for p in SOURCES}
    grown = True
    while grown:
        more = {m for m, d in deps.items() if d & ONLY} - ONLY
        ONLY |= more
        grown = bool(more)

# A module split into included parts (ext/fastdhcp/_engine_*.pxi, as uvloop's handles/):
# cythonize follows `include` itself; depends= makes setuptools recompile the C on an edit too.
PARTS = {"_engine": sorted(glob.glob(os.path.join("ext", "fastdhcp", "_engine_*.pxi")))}

extensions = []
for pyx in SOURCES:
    mod = os.path.splitext(os.path.basename(pyx))[0]
    if ONLY and mod not in ONLY:
        continue
    extensions.append(
        Extension(
            f"fastdhcp.{mod}",
            [pyx],
            depends=PARTS.get(mod, []),
            include_dirs=[os.path.join("ext", "fastdhcp")],
            extra_compile_args=cflags,
            define_macros=macros,
        )
    )

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["ext"],
        annotate=DEBUG,
        compiler_directives={
            "language_level": "3",
            "embedsignature": True,
            "linetrace": DEBUG,
            "boundscheck": DEBUG,
            "wraparound": DEBUG,
            "cdivision": True,
        },
    ),
)
