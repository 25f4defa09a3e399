"""``bench/compare.py --render``: the summary of a saved run is printed whether or not the
``bench`` extra (matplotlib) is installed; without it, a line says how to get the plot and no
traceback ends a 13-minute run (issue 19)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAVED = ROOT / "bench" / "results" / "compare.json"

# matplotlib made unimportable in the child, as on a machine without the bench extra.
_NO_MPL = ("import sys; sys.modules['matplotlib'] = None; sys.path.insert(0, 'bench'); "
           "import compare; sys.exit(compare.main(sys.argv[1:]))")


def test_render_without_matplotlib_prints_summary_and_hint(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _NO_MPL, "--render", str(SAVED), "--out", str(tmp_path),
         "--no-results-md"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert "bench/compare.py: generated, begin" in out.stdout
    assert "| fastdhcp |" in out.stdout  # the summary table has the server's row
    assert "pip install '.[bench]'" in out.stdout + out.stderr
    assert not (tmp_path / "compare.png").exists()
    assert (tmp_path / "compare.json").exists()
