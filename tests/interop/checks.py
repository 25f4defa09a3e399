"""Assertions shared by the interop tests: what a client reports against what the server holds."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

from .clients import Event
from .netns import run
from .servers import LabConfig, LeaseView, SubnetSpec


def subnet(cfg: LabConfig, subnet_id: int) -> SubnetSpec:
    """The lab subnet with ``subnet_id``."""
    return next(s for s in cfg.subnets if s.id == subnet_id)


def in_pool(ip: str, spec: SubnetSpec) -> bool:
    """True if ``ip`` lies in ``spec``'s pool ("first - last")."""
    first, last = (ipaddress.IPv4Address(x.strip()) for x in spec.pool.split("-"))
    return first <= ipaddress.IPv4Address(ip) <= last


def lease_time(ev: Event) -> int:
    """Option 51 as the client's hook saw it."""
    return int(ev.env.get("new_dhcp_lease_time") or ev.env.get("lease") or -1)


def assert_options(ev: Event, cfg: LabConfig, subnet_id: int) -> None:
    """The options the client reports are the configured option-data (routers from the
    subnet, DNS servers and domain from [global]) and the configured lease time."""
    spec = subnet(cfg, subnet_id)
    ctx = f"{ev.reason} event: {ev.env}"
    assert in_pool(ev.ip, spec), f"{ev.ip} not in subnet {subnet_id} pool {spec.pool}; {ctx}"
    assert ev.routers == list(spec.routers), ctx
    assert ev.dns == list(cfg.dns), ctx
    assert ev.domain == cfg.domain, ctx
    assert lease_time(ev) == cfg.valid_lifetime, ctx


def bound_lease(server, ip: str) -> LeaseView:
    """The server's record for ``ip`` (must exist)."""
    lease = server.lease_for(ip)
    assert lease is not None, (f"{server.name} has no lease for {ip}; table: "
                               f"{server.leases()}")
    return lease


def assert_lease_matches(server, ev: Event, cfg: LabConfig, mac: str, subnet_id: int,
                         *, not_before: float) -> LeaseView:
    """The server's lease for the address the client got is bound to this client's MAC, in the
    right subnet, and expires one valid-lifetime after the exchange that the event reports."""
    assert_options(ev, cfg, subnet_id)
    lease = bound_lease(server, ev.ip)
    ctx = f"lease {lease} vs {ev.reason} event {ev.env}"
    assert lease.state == "bound", ctx
    assert lease.hw_address == mac.lower(), ctx
    assert lease.subnet_id == subnet_id, ctx
    if lease.client_id:
        # A client id, when the client sent one, is type 1 + its MAC for all three clients here.
        assert lease.client_id.replace(":", "").endswith(mac.replace(":", "").lower()), ctx
    now = time.time()
    assert int(not_before) - 1 + cfg.valid_lifetime <= lease.expires, ctx
    assert lease.expires <= now + cfg.valid_lifetime + 1, ctx
    return lease


def wait_released(server, ip: str, timeout: float = 5.0) -> LeaseView:
    """Poll the server's table until the lease for ``ip`` shows released (a RELEASE has no
    reply, so there is nothing else to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        lease = server.lease_for(ip)
        if lease is not None and lease.state == "released":
            return lease
        if time.monotonic() > deadline:
            raise AssertionError(f"{server.name}: lease for {ip} not released after {timeout}s: "
                                 f"{lease}")
        time.sleep(0.1)


def host_snapshot() -> tuple[bytes, str]:
    """The host's resolver file and default route, to prove the clients never touched them.
    (Only the default route: other test suites on the machine may add and remove links, and
    with them connected routes, in the host namespace while this runs.)"""
    try:
        resolv = Path("/etc/resolv.conf").read_bytes()
    except FileNotFoundError:
        resolv = b""
    return resolv, run(["ip", "-4", "route", "show", "default"]).stdout
