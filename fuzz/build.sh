#!/bin/sh
# Build coverage-instrumented copies of fastdhcp's compiled modules (fuzz/run.py puts them first
# on fastdhcp.__path__). Needs clang (Debian package: clang). The team's in-place modules and
# ext/fastdhcp/*.c are not touched.
#   fuzz/build.sh                         -> fuzz/build/lib: libFuzzer coverage only
#   FUZZ_SANITIZE=address fuzz/build.sh   -> fuzz/build/lib-address: coverage + AddressSanitizer,
#                                            and fuzz/build/asan_with_fuzzer.so, the runtime
#                                            that run.py --asan preloads
#   FASTDHCP_ONLY=_codec,_engine fuzz/build.sh   only these modules (others: the plain ones)
set -eu
cd "$(dirname "$0")/.."
# What -fsanitize=fuzzer-no-link turns on, minus stack-depth: clang 14 emits a thread-local
# reference to __sancov_lowest_stack, which the libFuzzer inside atheris' wheel defines as a
# plain global, so an extension built with stack-depth fails to import ("undefined symbol").
COV="-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp"
SAN="${FUZZ_SANITIZE:+-fsanitize=$FUZZ_SANITIZE}"
LIB="fuzz/build/lib${FUZZ_SANITIZE:+-$FUZZ_SANITIZE}"
rm -rf "$LIB" "$LIB.tmp"
CC="${CC:-clang}" LDSHARED="${CC:-clang} -shared" FUZZ_LIB="$PWD/$LIB" \
CFLAGS="$COV $SAN -fno-omit-frame-pointer" \
LDFLAGS="$SAN" \
    python3 fuzz/build_native.py
# every module must carry libFuzzer's counters, or coverage is silently Python-only
for so in "$LIB"/fastdhcp/_*.so; do
    if ! nm "$so" | grep -q __sancov_cntrs; then
        echo "not instrumented: $so" >&2
        exit 1
    fi
done
if [ "${FUZZ_SANITIZE:-}" = address ]; then
    # atheris' wheel ships no asan_with_fuzzer.so: make it as atheris' installer would, the
    # ASan runtime and libFuzzer in one preloadable library (libFuzzer's strong coverage
    # callbacks then win over ASan's weak ones). asan_preinit is left out: a shared object
    # may not have a .preinit_array.
    RT="$(dirname "$(clang -print-libgcc-file-name --rtlib=compiler-rt)")"
    OBJ=fuzz/build/asan-objects
    rm -rf "$OBJ" && mkdir -p "$OBJ"
    (cd "$OBJ" && ar x "$RT/libclang_rt.asan-x86_64.a" && rm -f asan_preinit.cpp.o \
        && ar x "$RT/libclang_rt.asan_cxx-x86_64.a")
    clang++ -shared -o fuzz/build/asan_with_fuzzer.so "$OBJ"/*.o \
        -Wl,--whole-archive "$RT/libclang_rt.fuzzer_no_main-x86_64.a" -Wl,--no-whole-archive \
        -lpthread -ldl -lrt -lm
    rm -rf "$OBJ"
    ls -l fuzz/build/asan_with_fuzzer.so
fi
ls "$LIB/fastdhcp/"
