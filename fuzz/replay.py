"""Replay saved fuzz inputs through a target with the plain (in-place) modules.

    python3 fuzz/replay.py --target parse FILE...      # raw inputs (build/crashes/*.bin)
    python3 fuzz/replay.py --target engine FILE...     # .bin: one input on a fresh engine;
                                                       # .history: every input since a reset
    python3 fuzz/replay.py --target engine --hex tests/vectors/fuzz/X.hex [--ctrl 0]

Prints ``ok`` or the traceback per file; the exit status is the number of files that failed.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _history(blob: bytes) -> list[bytes]:
    out, i = [], 0
    while i + 4 <= len(blob):
        n = int.from_bytes(blob[i : i + 4], "big")
        out.append(blob[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def main() -> int:
    from fuzz.targets import EngineTarget, parse_target
    from tests.vectors import load_hex

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=("parse", "engine"), required=True)
    ap.add_argument("--hex", action="store_true", help="files are annotated hex vectors")
    ap.add_argument("--ctrl", type=int, default=0, help="engine control byte for --hex")
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args()
    failed = 0
    for f in args.files:
        if args.hex:
            data = load_hex(f.read_text())
            inputs = [bytes((args.ctrl,)) + data] if args.target == "engine" else [data]
        elif f.suffix == ".history":
            inputs = _history(f.read_bytes())
        else:
            inputs = [f.read_bytes()]
        try:
            if args.target == "parse":
                for x in inputs:
                    parse_target(x)
            else:
                t = EngineTarget()
                try:
                    t.replay(inputs)
                finally:
                    t.close()
            print(f"{f}: ok ({len(inputs)} inputs)")
        except Exception:
            failed += 1
            print(f"{f}: FAILED\n{traceback.format_exc()}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
