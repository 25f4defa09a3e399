"""Run one fuzz target under atheris (libFuzzer) for a set time and report totals.

    python3 fuzz/run.py --target parse|engine --seconds N [--store memory|lmdb]
                        [--native auto|on|off | --asan] [--max-len BYTES] [--no-found-seeds]
                        [--fail-fast] [-- LIBFUZZER_ARGS...]

With ``--native`` auto/on, the coverage-instrumented compiled modules from ``fuzz/build.sh``
(``fuzz/build/lib/fastdhcp``) are put first on ``fastdhcp.__path__`` so that libFuzzer sees the
Cython code's branches and comparisons; their sancov symbols resolve against the libFuzzer
inside atheris, which is loaded RTLD_GLOBAL for that. Python code (targets, config, leases,
store) is instrumented with ``atheris.instrument_imports``. ``--asan`` uses the AddressSanitizer
build (``FUZZ_SANITIZE=address fuzz/build.sh``) and re-executes itself with
``fuzz/build/asan_with_fuzzer.so`` preloaded.

A failing input does not stop the run: it is saved under ``fuzz/build/crashes/`` (the input,
the traceback and, for the engine target, the inputs since the last reset as a replayable
history), counted once per distinct (exception type, message head), and fuzzing continues
(the engine is reset). Every 10 s, and at the end, one line reports inputs run, inputs/s and
crashes; the final totals also go to ``fuzz/build/stats-<target>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "fuzz" / "build"
NATIVE = BUILD / "lib" / "fastdhcp"
NATIVE_ASAN = BUILD / "lib-address" / "fastdhcp"
ASAN_RUNTIME = BUILD / "asan_with_fuzzer.so"


def load_targets(atheris: Any, native: Path | None) -> Any:
    """Import fastdhcp (instrumented copies first when ``native``) and fuzz.targets, with the
    Python code instrumented for atheris."""
    sys.path.insert(0, str(ROOT))
    import fastdhcp

    if native:
        fastdhcp.__path__.insert(0, str(native))
    with atheris.instrument_imports(include=["fastdhcp", "fuzz"]):
        import fastdhcp._codec as codec
        from fuzz import targets
    if native:
        assert codec.__file__.startswith(str(native)), codec.__file__
    return targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=("parse", "engine", "classify", "leasequery"),
                    required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--store", choices=("memory", "lmdb"), default="memory")
    ap.add_argument("--native", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--max-len", type=int, default=0,
                    help="libFuzzer -max_len (default: 2048 parse, 1024 engine)")
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--report-every", type=float, default=10.0)
    ap.add_argument("--no-found-seeds", action="store_true",
                    help="do not seed with tests/vectors/fuzz (findings, fixed or not)")
    ap.add_argument("--fail-fast", action="store_true",
                    help="let the first failure reach libFuzzer (exit status 1, crash file)")
    ap.add_argument("--asan", action="store_true",
                    help="AddressSanitizer build (FUZZ_SANITIZE=address fuzz/build.sh); the "
                    "runner re-executes itself with its runtime preloaded")
    ap.add_argument("libfuzzer", nargs="*", help="extra libFuzzer flags (after --)")
    args = ap.parse_args()

    if args.asan and str(ASAN_RUNTIME) not in os.environ.get("LD_PRELOAD", ""):
        # ASan must be the first library loaded; libFuzzer inside it then serves atheris
        # ("Using preloaded libfuzzer") and the instrumented modules. CPython leaks by design
        # at exit: no leak detection.
        env = dict(os.environ, LD_PRELOAD=str(ASAN_RUNTIME),
                   ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:"
                   + os.environ.get("ASAN_OPTIONS", ""))
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    lib = NATIVE_ASAN if args.asan else NATIVE
    use = args.asan or args.native == "on" or (args.native == "auto" and lib.is_dir())
    native = lib if use else None
    if native:
        if not lib.is_dir():
            sys.exit("no instrumented build: run fuzz/build.sh (FUZZ_SANITIZE=address for "
                     "--asan) first")
        # The instrumented modules reference libFuzzer's __sanitizer_cov_* symbols: make the
        # copy linked into atheris global before anything imports them.
        sys.setdlopenflags(sys.getdlopenflags() | os.RTLD_GLOBAL)
    import atheris

    corpus = args.corpus or BUILD / "corpus" / args.target
    crashes_dir = BUILD / "crashes"
    crashes_dir.mkdir(parents=True, exist_ok=True)

    fn: Any = None
    state = {"inputs": 0, "crash_inputs": 0, "start": time.monotonic(), "last": 0.0}
    distinct: dict[str, dict[str, object]] = {}
    seconds = args.seconds

    def report(final: bool = False) -> None:
        el = time.monotonic() - state["start"]
        mode = (" asan" if args.asan else " native") if native else ""
        line = (f"[{args.target}{'/' + args.store if args.target == 'engine' else ''}{mode}] "
                f"{'done' if final else 'run'} "
                f"{el:8.1f}s inputs {state['inputs']:>11,} "
                f"({state['inputs'] / max(el, 1e-9):,.0f}/s) crashes {len(distinct)} "
                f"(failing inputs {state['crash_inputs']})")
        if args.target == "engine":
            line += f" decisions {dict(sorted(fn.kinds.items()))} resets {fn.resets}"
        print(line, flush=True)
        if final:
            stats = {"target": args.target, "store": args.store, "native": str(native),
                     "asan": args.asan,
                     "seconds": round(el, 1), "inputs": state["inputs"],
                     "inputs_per_s": round(state["inputs"] / max(el, 1e-9)),
                     "crashes": distinct, "failing_inputs": state["crash_inputs"],
                     "cmd": sys.argv}
            if args.target == "engine":
                stats["decisions"] = fn.kinds
            (BUILD / f"stats-{args.target}{'-lmdb' if args.store == 'lmdb' else ''}"
                     f"{'-asan' if args.asan else ''}.json"
             ).write_text(json.dumps(stats, indent=1, default=str))

    def one_input(data: bytes) -> None:
        nonlocal fn
        if fn is None:
            # atheris loads its libFuzzer core inside Fuzz(), before the first input; with
            # RTLD_GLOBAL (above) it defines the __sanitizer_cov_* symbols the instrumented
            # modules need at load time, so they can only be imported now. libFuzzer accepts
            # counters registered late (atheris registers Python coverage the same way).
            targets = load_targets(atheris, native)
            fn = targets.target_function(args.target, **(
                {"store_kind": args.store} if args.target == "engine" else {}))
            state["start"] = time.monotonic()
        state["inputs"] += 1
        try:
            fn(data)
        except Exception as exc:
            if args.fail_fast:
                raise
            state["crash_inputs"] += 1
            sig = f"{type(exc).__name__}: {str(exc)[:60]}"
            tb = traceback.format_exc()
            if sig not in distinct:
                h = hashlib.sha1(data).hexdigest()[:12]
                base = crashes_dir / f"{args.target}-{h}"
                base.with_suffix(".bin").write_bytes(data)
                base.with_suffix(".txt").write_text(sig + "\n\n" + tb)
                if args.target == "engine":
                    hist = fn.history
                    blob = b"".join(len(x).to_bytes(4, "big") + x for x in hist)
                    base.with_suffix(".history").write_bytes(blob)
                distinct[sig] = {"input": str(base.with_suffix(".bin")), "count": 0}
                print(f"CRASH {sig}\n{tb}", flush=True)
            distinct[sig]["count"] = int(distinct[sig]["count"]) + 1  # type: ignore[call-overload]
            if args.target == "engine":
                fn.reset()
        now = time.monotonic()
        if now - state["last"] >= args.report_every:
            state["last"] = now
            if now - state["start"] >= seconds:
                report(final=True)
                if args.target == "engine":
                    fn.close()
                os._exit(0)
            report()

    max_len = args.max_len or (2048 if args.target == "parse" else 1024)
    argv = [sys.argv[0], str(corpus), f"-max_len={max_len}", "-print_final_stats=1",
            f"-artifact_prefix={crashes_dir}/", "-timeout=10", "-rss_limit_mb=2048",
            *args.libfuzzer]
    atheris.Setup(argv, one_input)
    # Seeds are written by a child process: importing the code under test here would load
    # the plain modules (or fail to load the instrumented ones, see one_input).
    corpus.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "fuzz.targets", args.target, str(corpus),
                    *(["--no-found"] if args.no_found_seeds else [])],
                   cwd=ROOT, check=True)
    state["start"] = time.monotonic()
    atheris.Fuzz()


if __name__ == "__main__":
    main()
