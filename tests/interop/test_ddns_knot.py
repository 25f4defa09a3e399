"""fastdhcp's DNS updater against a real authoritative server (Knot DNS, tests/interop/knot.py).

What the zone holds is read back with plain dnspython queries over TCP, a path that shares
nothing with the updater but the library's wire code. The tests run in file order: the last
ones stop and then kill knotd.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from fastdhcp.config import loads
from fastdhcp.ddns.config import DdnsConfig
from fastdhcp.ddns.dhcid import DhcidIdentifier, dhcid_rdata
from fastdhcp.ddns.worker import DdnsWorker

from .knot import KEY_NAME, ZONE, Knot, knot_missing, start_knot
from .netns import sweep_stale

A, PTR, DHCID = dns.rdatatype.A, dns.rdatatype.PTR, dns.rdatatype.DHCID
ALICE = DhcidIdentifier.from_client(None, 1, bytes.fromhex("02fd00000a01"))
MALLORY = DhcidIdentifier.from_client(b"\x01\x02\xfd\x00\x00\x0b\x02", 1, b"")


@pytest.fixture(scope="module")
def knot() -> Iterator[Knot]:
    problems = knot_missing()
    if problems:
        msg = "knot tests cannot run: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    sweep_stale()  # a killed earlier run's namespaces (its veth goes with them)
    base = Path(tempfile.mkdtemp(prefix="fastdhcp-knot-"))
    k = start_knot(base)
    try:
        yield k
    finally:
        errors = k.close()
        ns_left = os.path.exists(f"/run/netns/{k.ns.name}")
        base.rmdir()
        assert not errors and not ns_left, f"teardown problems: {errors}, netns left: {ns_left}"


def ddns_config(knot: Knot, secret_file: Path, *, key_name: str = KEY_NAME,
                **extra: int) -> DdnsConfig:
    more = "".join(f"{k} = {v}\n" for k, v in extra.items())
    cfg = loads('[server]\nlisten-addresses = ["127.0.0.1"]\n'
                + knot.ddns_toml(secret_file, key_name=key_name, settings=more)).ddns
    assert cfg is not None
    return cfg


@pytest.fixture
def worker(knot: Knot) -> Iterator[DdnsWorker]:
    w = DdnsWorker(ddns_config(knot, knot.secret_file()))
    w.start()
    yield w
    w.stop()


def addr(knot: Knot, host: int) -> int:
    return int(ipaddress.IPv4Address(f"{knot.prefix}{host}"))


def ptr_name(knot: Knot, host: int) -> str:
    return f"{host}.{knot.reverse_zone}"


def b64(identifier: DhcidIdentifier, fqdn: dns.name.Name) -> str:
    return base64.b64encode(dhcid_rdata(identifier, fqdn)).decode()


def run_one(w: DdnsWorker, ok: bool) -> None:
    assert ok, "submit refused"
    assert w.wait_idle(10), "the worker did not finish"


def test_add_publishes_a_dhcid_and_ptr(knot: Knot, worker: DdnsWorker):
    fqdn = dns.name.from_text(f"alice.{ZONE}")
    run_one(worker, worker.submit_add(fqdn, addr(knot, 100), ALICE, ttl=1200))
    assert knot.records(fqdn.to_text(), A) == [f"{knot.prefix}100"]
    assert knot.records(fqdn.to_text(), DHCID) == [b64(ALICE, fqdn)]
    assert knot.records(ptr_name(knot, 100), PTR) == [fqdn.to_text()]
    assert knot.records(ptr_name(knot, 100), DHCID) == [b64(ALICE, fqdn)]
    v = worker.stats.values()
    assert v["ncr-success"] == 1 and v["update-signed"] == 2 and v["update-success"] == 2
    assert v[f"key[{KEY_NAME}].update-sent"] == 2


def test_renewal_with_a_new_address_replaces_the_a_record(knot: Knot, worker: DdnsWorker):
    fqdn = dns.name.from_text(f"alice.{ZONE}")  # added by the test above, same client
    run_one(worker, worker.submit_add(fqdn, addr(knot, 110), ALICE, ttl=1200))
    assert knot.records(fqdn.to_text(), A) == [f"{knot.prefix}110"]  # YXDOMAIN, then 5.3.2
    assert worker.stats.values()["update-sent"] == 3  # forward twice, reverse once


def test_same_name_other_client_is_refused_by_the_dhcid(knot: Knot, worker: DdnsWorker):
    fqdn = dns.name.from_text(f"alice.{ZONE}")
    run_one(worker, worker.submit_add(fqdn, addr(knot, 120), MALLORY, ttl=1200))
    assert knot.records(fqdn.to_text(), A) == [f"{knot.prefix}110"]  # untouched
    assert knot.records(fqdn.to_text(), DHCID) == [b64(ALICE, fqdn)]
    assert knot.records(ptr_name(knot, 120), PTR) == []  # no PTR for a name not ours
    v = worker.stats.values()
    assert v["ncr-conflict"] == 1 and v["ncr-success"] == 0
    # nor may the other client remove it
    run_one(worker, worker.submit_remove(fqdn, addr(knot, 110), MALLORY))
    assert knot.records(fqdn.to_text(), A) == [f"{knot.prefix}110"]
    assert worker.stats.values()["ncr-conflict"] == 2


def test_removal_deletes_a_dhcid_and_ptr(knot: Knot, worker: DdnsWorker):
    fqdn = dns.name.from_text(f"alice.{ZONE}")
    run_one(worker, worker.submit_remove(fqdn, addr(knot, 110), ALICE))
    assert knot.records(fqdn.to_text(), A) == []
    assert knot.records(fqdn.to_text(), DHCID) == []
    assert knot.records(ptr_name(knot, 110), PTR) == []
    assert knot.records(ptr_name(knot, 110), DHCID) == []
    assert worker.stats.values()["ncr-success"] == 1
    # the stale PTR of the first address is what the first lease's own removal deletes
    run_one(worker, worker.submit_remove(fqdn, addr(knot, 100), ALICE, forward=False))
    assert knot.records(ptr_name(knot, 100), PTR) == []


@pytest.mark.parametrize("which", ["wrong-secret", "unknown-key"])
def test_wrong_tsig_key_is_refused_and_counted(knot: Knot, which: str):
    if which == "wrong-secret":
        cfg = ddns_config(knot, knot.secret_file(os.urandom(32)))
    else:
        cfg = ddns_config(knot, knot.secret_file(), key_name="other-key")
    w = DdnsWorker(cfg)
    w.start()
    try:
        fqdn = dns.name.from_text(f"bob.{ZONE}")
        run_one(w, w.submit_add(fqdn, addr(knot, 130), ALICE, ttl=60))
    finally:
        w.stop()
    assert knot.records(fqdn.to_text(), A) == []
    v = w.stats.values()
    assert v["ncr-refused"] == 1 and v["ncr-success"] == 0
    assert v["update-error"] + v["update-success"] == 1  # one exchange, not retried
    assert v["update-timeout"] == 0


def test_stopped_then_killed_server_costs_the_caller_nothing(knot: Knot):
    cfg = ddns_config(knot, knot.secret_file(), **{"dns-server-timeout": 200, "max-retries": 1,
                                                   "retry-backoff": 50, "max-queue-size": 8})
    w = DdnsWorker(cfg)
    w.start()
    try:
        knot.signal(signal.SIGSTOP)  # alive but silent: every exchange times out
        fqdn = dns.name.from_text(f"carol.{ZONE}")
        t0 = time.monotonic()
        accepted = [w.submit_add(fqdn, addr(knot, 140 + i), ALICE, reverse=False)
                    for i in range(40)]
        took = time.monotonic() - t0
        # a submit that waited for DNS would take one timeout (0.2 s) at least: 40 took less
        assert took < 0.2, took
        assert accepted.count(True) in (8, 9)  # the queue's 8 (+1 already taken by the worker)
        v = w.stats.values()
        assert v["queue-mgr-queue-full"] == accepted.count(False)
        assert w.wait_idle(30)
        v = w.stats.values()
        assert v["ncr-failed"] == accepted.count(True)
        assert v["update-timeout"] == 2 * accepted.count(True)  # first try + one retry each
        knot.signal(signal.SIGKILL)  # gone (dnspython's unconnected UDP socket never sees
        assert knot.proc is not None and knot.proc.wait(5) is not None  # the ICMP: timeouts)
        before = v["update-timeout"] + v["update-error"]
        t0 = time.monotonic()
        assert w.submit_add(fqdn, addr(knot, 200), ALICE, reverse=False)
        assert time.monotonic() - t0 < 0.2
        assert w.wait_idle(10)
        v = w.stats.values()
        assert v["update-timeout"] + v["update-error"] == before + 2
        assert v["ncr-failed"] == accepted.count(True) + 1 and v["ncr-success"] == 0
    finally:
        w.stop()
