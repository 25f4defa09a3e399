"""Build coverage-instrumented copies of the compiled modules into ``fuzz/build/lib``.

The team's in-place ``fastdhcp/_*.so`` and the generated ``ext/fastdhcp/*.c`` are left alone:
Cython writes its C into ``fuzz/build/src`` and setuptools links into ``fuzz/build/lib``.
Compiler and flags come from the environment (``fuzz/build.sh`` sets CC=clang and
``-fsanitize=fuzzer-no-link``). Bounds checking is turned on here (not in the release build),
so that an out-of-range index in Cython code raises IndexError, which the targets report as a
crash: a cheap stand-in for AddressSanitizer where the code indexes Python objects.
"""

from __future__ import annotations

import glob
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "build")
LIB = os.environ.get("FUZZ_LIB", os.path.join(OUT, "lib"))
ONLY = {m for m in os.environ.get("FASTDHCP_ONLY", "").split(",") if m}

os.chdir(ROOT)
exts = []
for pyx in sorted(glob.glob(os.path.join("ext", "fastdhcp", "_*.pyx"))):
    mod = os.path.splitext(os.path.basename(pyx))[0]
    if ONLY and mod not in ONLY:
        continue
    exts.append(Extension(f"fastdhcp.{mod}", [pyx], include_dirs=[os.path.join("ext", "fastdhcp")],
                          extra_compile_args=["-O1", "-g", "-Wno-unused-function",
                                              "-Wno-unreachable-code"]))

setup(
    name="fastdhcp-fuzz-build",
    script_args=["build_ext", "--build-lib", LIB,
                 "--build-temp", LIB + ".tmp", "-q"] + sys.argv[1:],
    ext_modules=cythonize(
        exts,
        include_path=["ext"],
        build_dir=os.path.join(OUT, "src"),
        quiet=True,
        compiler_directives={
            "language_level": "3",
            "boundscheck": True,
            "wraparound": False,
            "cdivision": True,
        },
    ),
)
