"""A ``fastdhcp serve`` child on loopback for the benchmarks that need no root
(``bench_server.py``, ``control_ab.py``): the demo config, a fresh temp dir and lease database per
run, warning-level logging so the log is not what is measured, and an exit status checked.

``bench/wholeserver.py`` is the other kind: namespaces, port 67, Kea beside it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

from fastdhcp.demo import ChildServer, demo_config, free_port

CLIENTS = 1_000_000  # distinct chaddrs per run: every exchange is a new lease


@dataclass(frozen=True)
class LoopbackServer:
    """A running child: the port it answers on, its temp dir and its process."""

    port: int
    work: str
    child: ChildServer


@contextmanager
def serving(prefix: str, *, sync: bool = True, extra_toml: str = "") -> Iterator[LoopbackServer]:
    """Start a server on a fresh database, yield it, stop it (SIGTERM) and remove its dir.

    Raises ``RuntimeError`` with the server's log if it never becomes ready, and if it exits
    with a status other than 0 (a benchmark of a server that failed is no figure).
    """
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        port = free_port()
        cfg = demo_config(work, port, CLIENTS).replace("sync = true", f"sync = {str(sync).lower()}")
        cfg = cfg.replace('log-level = "info"', 'log-level = "warning"') + extra_toml
        cfg_path = os.path.join(work, "bench.toml")
        with open(cfg_path, "w") as f:
            f.write(cfg)
        log = os.path.join(work, "server.log")
        child = ChildServer(cfg_path, log, os.path.join(work, "notify.sock"))
        try:
            if not child.wait_ready():
                with open(log) as f:
                    raise RuntimeError(f.read())
            yield LoopbackServer(port, work, child)
        finally:
            status = child.stop()
        if status != 0:
            raise RuntimeError(f"server exited {status}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
