"""Build the compiled core: every ext/fastdhcp/_*.pyx becomes fastdhcp._* .

Environment switches (as in uvloop/asyncpg):
  FASTDHCP_DEBUG=1   annotate HTML, line tracing, assertions kept, -O0 -g
  FASTDHCP_ONLY=_codec,_bitmap   build only these modules (faster iteration)
"""

import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTDHCP_DEBUG", "") not in ("", "0")
ONLY = {m for m in os.environ.get("FASTDHCP_ONLY", "").split(",") if m}

cflags = ["-O0", "-g"] if DEBUG else ["-O2"]
cflags += ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if DEBUG else []

extensions = []
for pyx in sorted(glob.glob(os.path.join("ext", "fastdhcp", "_*.pyx"))):
    mod = os.path.splitext(os.path.basename(pyx))[0]
    if ONLY and mod not in ONLY:
        continue
    extensions.append(
        Extension(
            f"fastdhcp.{mod}",
            [pyx],
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
