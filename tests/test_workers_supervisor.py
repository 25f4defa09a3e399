"""The supervisor's restart rule without sockets (fastdhcp.service.supervisor): a worker that
keeps dying at start is restarted on its slot FAST_FAILURES - 1 times, then everything stops
with exit status 1; a clean stop of every worker is exit status 0."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import uvloop

from fastdhcp.config import loads
from fastdhcp.service import supervisor as sup_mod
from fastdhcp.service.supervisor import FAST_FAILURES, Supervisor

CONFIG = """
[server]
listen-addresses = ["198.18.0.1"]
workers = 2

[lease-database]
path = "{db}"
"""


def _supervisor(tmp_path, argv_of) -> Supervisor:
    config = loads(CONFIG.format(db=tmp_path / "db"))
    sup = Supervisor(config, str(tmp_path / "x.toml"))
    (tmp_path / "db" / "workers").mkdir(parents=True)
    starts: list[int] = []

    def spawn(slot) -> None:  # a stand-in worker process for slot k
        starts.append(slot.index)
        slot.proc = subprocess.Popen([sys.executable, "-c", argv_of(slot.index)])
        slot.started = time.monotonic()
        slot.exit_code = None
        assert sup._loop is not None
        slot.pidfd = os.pidfd_open(slot.proc.pid)
        sup._loop.add_reader(slot.pidfd, sup._reap)

    sup._spawn = spawn  # type: ignore[method-assign]
    sup.starts = starts  # type: ignore[attr-defined]
    return sup


def test_a_worker_failing_at_start_is_retried_then_the_server_stops(tmp_path, monkeypatch
                                                                    ) -> None:
    monkeypatch.setattr(sup_mod, "RESTART_DELAY", 0.05)
    # worker 1 exits at once with status 3; worker 0 runs until SIGTERM (then exits 0)
    sup = _supervisor(tmp_path, lambda k: "import sys; sys.exit(3)" if k else
                      "import signal, sys, time\n"
                      "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                      "time.sleep(60)")
    rc = uvloop.run(asyncio.wait_for(sup.run(), 60))
    assert rc == 1
    assert sup.starts.count(1) == FAST_FAILURES  # type: ignore[attr-defined]
    assert sup.starts.count(0) == 1  # type: ignore[attr-defined]
    assert sup.slots[0].exit_code == 0 and sup.slots[1].exit_code == 3


def test_every_worker_stopping_cleanly_is_exit_status_zero(tmp_path) -> None:
    sup = _supervisor(tmp_path, lambda k: "import signal, sys, time\n"
                      "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                      "time.sleep(60)")

    async def run() -> int:
        task = asyncio.ensure_future(sup.run())
        await asyncio.sleep(1.0)
        sup.stop("test")
        return await asyncio.wait_for(task, 60)

    assert uvloop.run(run()) == 0
    assert sup.starts == [0, 1]  # type: ignore[attr-defined]
