#!/bin/sh
# Build coverage-instrumented copies of fastdhcp's compiled modules into fuzz/build/lib
# (fuzz/run.py puts that directory first on fastdhcp.__path__). Needs clang (Debian: clang).
#   fuzz/build.sh              libFuzzer coverage only (inline 8-bit counters, cmp tracing)
#   FASTDHCP_ONLY=_codec,_engine fuzz/build.sh   only these modules
#   FUZZ_SANITIZE=address fuzz/build.sh   add a sanitizer (needs its runtime preloaded)
set -eu
cd "$(dirname "$0")/.."
# What -fsanitize=fuzzer-no-link turns on, minus stack-depth: clang 14 emits a thread-local
# reference to __sancov_lowest_stack, which the libFuzzer inside atheris' wheel defines as a
# plain global, so an extension built with stack-depth fails to import ("undefined symbol").
COV="-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp"
SAN="${FUZZ_SANITIZE:+-fsanitize=$FUZZ_SANITIZE}"
rm -rf fuzz/build/lib fuzz/build/tmp
CC="${CC:-clang}" LDSHARED="${CC:-clang} -shared" \
CFLAGS="$COV $SAN -fno-omit-frame-pointer" \
LDFLAGS="$SAN" \
    python3 fuzz/build_native.py
# every module must carry libFuzzer's counters, or coverage is silently Python-only
for so in fuzz/build/lib/fastdhcp/_*.so; do
    if ! nm "$so" | grep -q __sancov_cntrs; then
        echo "not instrumented: $so" >&2
        exit 1
    fi
done
ls fuzz/build/lib/fastdhcp/
