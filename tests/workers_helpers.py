"""Helpers of the multi-worker tests that need namespaces (tests/test_workers_kernel.py,
tests/test_workers_server.py): a server namespace joined to a client namespace by a veth pair
(198.18.40.0/24), relay and server addresses on the server namespace's loopback
(198.18.42.1, .2), and small scripts run inside a namespace with this tree on PYTHONPATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from interop.netns import Cleanup, Namespace, create_namespace, create_veth

ROOT = Path(__file__).resolve().parent.parent
SRV_IF_IP = "198.18.40.1"
CLI_IF_IP = "198.18.40.2"
SERVER_IP = "198.18.42.1"  #: the listen address (loopback of the server namespace)
RELAY_IP = "198.18.42.2"  #: the load driver's giaddr


@dataclass
class WorkersLab:
    """Server namespace ``srv`` (veth ``srv_if`` 198.18.40.1/24, lo 198.18.42.1-2) and client
    namespace ``cli`` (veth ``cli_if`` 198.18.40.2/24)."""

    srv: Namespace
    cli: Namespace
    srv_if: str
    cli_if: str

    def python(self, ns: Namespace, script: str, *args: str,
               timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with this tree's python in ``ns``; checked, bounded."""
        return subprocess.run(ns.argv([sys.executable, "-c", script, *args]), cwd=ROOT,
                              env=env(), capture_output=True, text=True, timeout=timeout,
                              check=False)

    def popen(self, ns: Namespace, script: str, *args: str) -> subprocess.Popen[str]:
        """Start ``script`` in ``ns`` (its own session), stdout and stderr piped."""
        return subprocess.Popen(ns.argv([sys.executable, "-c", script, *args]), cwd=ROOT,
                                env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)


def env() -> dict[str, str]:
    """The environment with this tree first on PYTHONPATH."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))


def need_root() -> None:
    """These tests need root (namespaces); CI runs them as root."""
    if os.geteuid() != 0:
        pytest.fail("the multi-worker namespace tests need root (CI runs them as root)")


@pytest.fixture
def lab() -> Iterator[WorkersLab]:
    """A fresh :class:`WorkersLab`, removed at teardown."""
    need_root()
    cleanup = Cleanup()
    pid = os.getpid()  # names as tests/interop/netns.py makes them, roles of their own
    try:
        srv = create_namespace(f"fd{pid}-wsrv", cleanup)
        cli = create_namespace(f"fd{pid}-wcli", cleanup)
        srv_if, cli_if = f"f{pid}ws", f"f{pid}wc"
        create_veth(srv, srv_if, f"{SRV_IF_IP}/24", cli, cli_if, f"{CLI_IF_IP}/24", cleanup)
        for a in (SERVER_IP, RELAY_IP):
            srv.run(["ip", "addr", "add", f"{a}/32", "dev", "lo"])
        yield WorkersLab(srv, cli, srv_if, cli_if)
    finally:
        errors = cleanup.close()
        assert not errors, errors


def last_json(text: str) -> object:
    """The last line of ``text`` parsed as JSON (what the scripts print)."""
    return json.loads(text.strip().splitlines()[-1])
