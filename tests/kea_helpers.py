"""Helpers for the tests that run a real Kea 2.2 (Debian kea-dhcp4-server) on loopback: the
requirement check, ``kea-dhcp4`` started on a config of the test's own and ready when its
control socket answers, and a relay at 127.0.0.2:67 (where Kea answers a relay) that sends to
Kea's port.

Shared by tests/test_control_stats_kea.py and tests/test_kea_migrate_roundtrip.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.control_helpers import unix_command
from tests.service_helpers import SERVER_IP, RelayClient, free_port

KEA = shutil.which("kea-dhcp4")
#: Where Debian's kea-dhcp4-server installs its hook libraries.
HOOKS = "/usr/lib/x86_64-linux-gnu/kea/hooks"
#: Kea reads its config, opens its sockets and its lease file in well under a second here;
#: 20 s covers a loaded CI machine.
START_TIMEOUT = 20.0


def requirements() -> str | None:
    """Why a real Kea cannot run here, or None."""
    if KEA is None:
        return "kea-dhcp4 not installed (Debian kea-dhcp4-server)"
    if os.geteuid() != 0:
        return "needs root: Kea sends a relay's replies to port 67"
    return None


def need_kea() -> None:
    """Skip without Kea, except under CI, where that is a failure."""
    why = requirements()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


class KeaRelay(RelayClient):
    """A relay at 127.0.0.2:67 (where Kea answers a relay) sending to Kea's port."""

    def __init__(self, kea_port: int) -> None:
        super().__init__(67)
        self.kea_port = kea_port

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, (SERVER_IP, self.kea_port))


def kea_check(config: Path) -> subprocess.CompletedProcess[str]:
    """``kea-dhcp4 -t FILE``: Kea's own verdict on a config file."""
    assert KEA is not None
    return subprocess.run([KEA, "-t", str(config)], capture_output=True, text=True,
                          timeout=60, check=False)


@contextmanager
def kea_process(tmp: Path, config: dict[str, Any], sock: Path,
                port: int | None = None) -> Iterator[int]:
    """kea-dhcp4 on ``config`` (written to ``tmp``), pid and lock files in ``tmp``, answering on
    ``port`` (a free one by default); yields the port once the control socket ``sock`` (which
    ``config`` must name) answers. Stopped with SIGTERM at the end."""
    port = free_port() if port is None else port
    path = tmp / "kea-dhcp4.json"
    path.write_text(json.dumps(config, indent=1))
    env = dict(os.environ, KEA_PIDFILE_DIR=str(tmp), KEA_LOCKFILE_DIR=str(tmp))
    assert KEA is not None
    with open(tmp / "kea.stderr", "ab") as err:
        proc = subprocess.Popen([KEA, "-c", str(path), "-p", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if unix_command(sock, "statistic-get", {"name": "pkt4-received"})["result"] == 0:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (f"kea-dhcp4 exited: "
                                         f"{(tmp / 'kea.stderr').read_text(errors='replace')}")
            assert time.monotonic() < deadline, "kea-dhcp4 did not start"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
