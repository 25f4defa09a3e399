"""Fixtures for the interop tests: one lab (network namespaces) and one server per session.

Which server: ``FASTDHCP_INTEROP_SERVER=fastdhcp`` (default), ``kea`` (the reference, to prove
the harness itself) or ``both`` (every test against each, one after the other).
Requirements: root and the binaries below. Without them the tests skip with the reason, except
under CI (``CI=true``), where a missing requirement is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .netns import Lab, build_lab, leftovers, sweep_stale
from .servers import SERVERS, LabConfig, lab_config

#: Binaries every interop test needs, with the Debian package that ships each.
REQUIRED = {
    "ip": "iproute2", "ethtool": "ethtool", "ss": "iproute2", "nsenter": "util-linux",
    "unshare": "util-linux", "tcpdump": "tcpdump", "dhclient": "isc-dhcp-client",
    "dhcpcd": "dhcpcd-base", "busybox": "busybox (or udhcpc)", "dhcrelay": "isc-dhcp-relay",
    "perfdhcp": "kea-admin", "kea-dhcp4": "kea-dhcp4-server",
}


def server_names() -> list[str]:
    """The servers under test, from ``FASTDHCP_INTEROP_SERVER`` (``fastdhcp``, ``kea``,
    ``both`` or a comma-separated list)."""
    text = os.environ.get("FASTDHCP_INTEROP_SERVER", "fastdhcp").strip().lower()
    names = list(SERVERS) if text == "both" else [x.strip() for x in text.split(",") if x]
    bad = [x for x in names if x not in SERVERS]
    if bad or not names:
        raise pytest.UsageError(f"FASTDHCP_INTEROP_SERVER={text!r}: expected one of "
                                f"{sorted(SERVERS)}, 'both' or a comma-separated list")
    return names


def missing_requirements() -> list[str]:
    """What this machine lacks for the interop tests, as readable lines."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (network namespaces, port 67 and raw sockets need root)")
    for binary, package in REQUIRED.items():
        if shutil.which(binary) is None:
            problems.append(f"{binary} not found (Debian package {package}; see "
                            ".ci/apt-packages.txt)")
    return problems


@pytest.fixture(scope="session")
def interop_ready() -> None:
    """Skip (or, under CI, fail) when the machine cannot run the interop tests."""
    problems = missing_requirements()
    if problems:
        msg = "interop tests cannot run: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def lab(interop_ready: None) -> Iterator[Lab]:
    """The namespaces and veths of ``netns.Lab``; all removed at the end, checked gone."""
    tag = str(os.getpid())
    sweep_stale()
    the_lab = build_lab(tag)
    try:
        yield the_lab
    finally:
        errors = the_lab.close()
        left = leftovers(tag)
        assert not errors and not left, f"teardown problems: {errors}, left behind: {left}"


@pytest.fixture(scope="session")
def lab_cfg(lab: Lab) -> LabConfig:
    """The subnets and options the server serves (same for fastdhcp and Kea)."""
    return lab_config(lab)


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    """A private work dir for the session's server and clients."""
    d = Path(tempfile.mkdtemp(prefix="fastdhcp-interop-"))
    yield d
    if os.environ.get("FASTDHCP_INTEROP_KEEP"):
        print(f"interop work dir kept: {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session", params=server_names())
def server(request: pytest.FixtureRequest, lab: Lab, lab_cfg: LabConfig, session_dir: Path):
    """The server under test, running in the server namespace for the whole session (with
    several servers, pytest runs all tests against one, stops it, then starts the next)."""
    name = request.param
    srv = SERVERS[name](lab.srv, lab_cfg, session_dir / f"server-{name}")
    srv.start()
    try:
        yield srv
    finally:
        rc = srv.stop()
        # A clean SIGTERM exit is part of the CLI contract (kea-dhcp4 also exits 0).
        assert rc == 0, f"{srv.name} exited with {rc} on SIGTERM\n{srv.log()}"


@pytest.fixture
def live_server(server):
    """The server, checked alive before and after the test (a crash is a failure here)."""
    assert server.alive(), f"{server.name} is not running\n{server.log()}"
    yield server
    assert server.alive(), f"{server.name} died during the test\n{server.log()}"


@pytest.fixture
def client_mac(lab: Lab, request: pytest.FixtureRequest) -> str:
    """Give the shared client interface a MAC of its own for this test (so that each client's
    lease is distinct in the table) and remove any address left by an earlier test."""
    index = sum(map(ord, request.node.name)) % 250 + 1
    mac = f"02:fd:00:00:{os.getpid() % 250:02x}:{index:02x}"
    ifname = lab.cli_if.ifname
    for argv in (["ip", "link", "set", ifname, "down"],
                 ["ip", "link", "set", ifname, "address", mac],
                 ["ip", "-4", "addr", "flush", "dev", ifname],
                 ["ip", "link", "set", ifname, "up"]):
        lab.cli.run(argv)
    return mac


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On failure, attach the server's stderr to the report."""
    rep = yield
    if rep.failed:
        srv = getattr(item, "funcargs", {}).get("live_server") or \
            getattr(item, "funcargs", {}).get("server")
        if srv is not None:
            rep.sections.append((f"{srv.name} stderr", srv.log()))
    return rep


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is an interop test."""
    for item in items:
        if "tests/interop/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.interop)

