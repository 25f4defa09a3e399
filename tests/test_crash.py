"""SIGKILL crash test: ``fastdhcp serve`` (sync = true) killed under relayed load, restarted on the
same database; every ACK the clients saw must be in the table for that client, and no address
may be bound twice (RFC 2131 3.1 step 4: the binding is durable before the DHCPACK leaves).

The checker is tested first on hand-made snapshots (each kind of failure it must report), then
the loop runs the real server; finally the checker is fed the real database with one ACK that
never happened, and the same database with one ACKed lease deleted, and must report each.

Reproduce a run: ``CRASH_SEED=<seed printed on failure> python3 -m pytest tests/test_crash.py``.
"""

from __future__ import annotations

import copy
import os
import shutil
import struct
from pathlib import Path

import lmdb
import pytest
from crash_helpers import (
    BOUND,
    FAKE_IP,
    FAKE_MAC,
    LIFETIME,
    LOAD_MAC,
    AckLedger,
    CrashLoop,
    Record,
    Snapshot,
    check,
    client_key,
    read_db,
)
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = 1_800_000_000.0  # a wall time for hand-made leases
IP0 = 0xC6120100  # 198.18.1.0


def rec(chaddr: int, *, state: int = BOUND, expires: int | None = None, issued: int = int(T0),
        key: bytes | None = None) -> Record:
    return Record(state, int(T0) + LIFETIME if expires is None else expires, issued, 1,
                  client_key(chaddr) if key is None else key, chaddr.to_bytes(6, "big"))


def snapshot(leases: dict[int, Record]) -> Snapshot:
    return Snapshot(dict(leases), T0 + 10)


def ledger_of(pairs: list[tuple[int, int]], not_before: float = T0) -> AckLedger:
    led = AckLedger()
    for m, ip in pairs:
        led.add(m, ip, not_before, 0)
    return led


M = [LOAD_MAC + i for i in range(4)]


def test_checker_accepts_a_faithful_table() -> None:
    leases = {IP0 + i: rec(M[i]) for i in range(3)}
    res = check(snapshot(leases), ledger_of([(M[i], IP0 + i) for i in range(3)]))
    assert res.ok and res.checked == 3 and res.moved == 0, res.summary()


def test_checker_reports_an_ack_not_in_the_table() -> None:
    leases = {IP0: rec(M[0])}
    res = check(snapshot(leases), ledger_of([(M[0], IP0), (M[1], IP0 + 7)]))
    assert res.checked == 2 and len(res.losses) == 1 and not res.doubles, res.summary()
    assert "198.18.1.7" in res.losses[0] and "no lease record" in res.losses[0]


@pytest.mark.parametrize("damage, why", [
    ({"state": 3}, "not bound"),  # released
    ({"state": 1}, "not bound"),  # declined
    ({"expires": int(T0) + LIFETIME - 5}, "lost renewal"),  # an older version of the lease
    ({"key": b"\x01" + bytes(6)}, "belongs to"),  # same hw-address, other client key
])
def test_checker_reports_a_lease_that_breaks_the_ack(damage: dict[str, object], why: str) -> None:
    leases = {IP0: rec(M[0], **damage), IP0 + 1: rec(M[1])}  # type: ignore[arg-type]
    res = check(snapshot(leases), ledger_of([(M[0], IP0), (M[1], IP0 + 1)]))
    assert len(res.losses) == 1 and why in res.losses[0], res.summary()


def test_checker_reports_the_address_given_to_another_client() -> None:
    # The ACK to M[0] was lost, and the restarted server gave its address to M[1]: a loss for
    # M[0], and both clients hold the address (double binding).
    leases = {IP0: rec(M[1])}
    res = check(snapshot(leases), ledger_of([(M[0], IP0), (M[1], IP0)]))
    assert len(res.losses) == 1 and "belongs to" in res.losses[0], res.summary()
    assert len(res.doubles) == 1 and "ACKed to 2 clients" in res.doubles[0]


def test_checker_accepts_a_later_lease_at_another_address() -> None:
    # M[0] was ACKed IP0, then re-bound at IP0+1 by a commit whose ACK it never saw.
    leases = {IP0: rec(M[0], state=3), IP0 + 1: rec(M[0], issued=int(T0) + 1)}
    res = check(snapshot(leases), ledger_of([(M[0], IP0)]))
    assert res.ok and res.moved == 1, res.summary()


def test_checker_reports_double_bindings() -> None:
    leases = {IP0: rec(M[0]), IP0 + 1: rec(M[0]), IP0 + 2: rec(M[2])}
    res = check(snapshot(leases), ledger_of([(M[2], IP0 + 2), (M[3], IP0 + 2)]))
    assert len(res.doubles) == 2, res.summary()
    assert any("2 active leases" in d for d in res.doubles)
    assert any("ACKed to 2 clients" in d for d in res.doubles)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 30), data=st.data())
def test_checker_finds_exactly_the_removed_leases(n: int, data: st.DataObject) -> None:
    """Oracle: a table that holds every ACK checks clean; remove any subset of its records and
    the checker names exactly the clients of the removed addresses."""
    ips = data.draw(st.lists(st.integers(IP0, IP0 + 500), min_size=n, max_size=n, unique=True))
    macs = [LOAD_MAC + 1000 + i for i in range(n)]
    leases = {ip: rec(m) for ip, m in zip(ips, macs, strict=True)}
    ledger = ledger_of(list(zip(macs, ips, strict=True)))
    assert check(snapshot(leases), ledger).ok
    gone = data.draw(st.sets(st.sampled_from(ips)))
    kept = {ip: r for ip, r in leases.items() if ip not in gone}
    res = check(snapshot(kept), ledger)
    assert res.checked == n and not res.doubles
    named = {line.split()[0] for line in res.losses}
    assert named == {leases[ip].hw_address.hex(":") for ip in gone}


# --------------------------------------------------------------------------- the real server


@pytest.mark.slow
@pytest.mark.service
def test_sigkill_under_load_loses_no_ack(tmp_path: Path) -> None:
    seed = int(os.environ["CRASH_SEED"]) if os.environ.get("CRASH_SEED") else None
    loop = CrashLoop(tmp_path, rounds=6, rate=2000.0, seed=seed, log=print)
    report = loop.run()
    text = report.summary()
    print(text)
    msg = f"CRASH_SEED={report.seed}\n{text}"
    assert report.ok, msg
    assert report.losses == 0 and report.doubles == 0, msg
    assert len(report.rounds) == 6, msg
    # The test had teeth: every kill landed while the load had exchanges in flight, after ACKs,
    # and the later rounds renewed clients of earlier ones.
    for r in report.rounds:
        assert r.acks > 0 and r.in_flight_at_kill > 0, msg
    assert sum(r.renewals for r in report.rounds[1:]) > 0, msg
    assert loop.ledger.cross_round_renewals > 0, msg
    assert report.probes == 2 * len(report.rounds), msg
    assert report.final is not None and report.final.checked == len(loop.ledger.latest), msg

    # The checker on the real database: one ACK that never happened is reported, alone.
    snap = read_db(tmp_path / "db")
    fed = copy.deepcopy(loop.ledger)
    fed.add(FAKE_MAC, FAKE_IP, snap.read_at, 99, "fake")
    res = check(snap, fed)
    assert len(res.losses) == 1 and "198.18.0.10" in res.losses[0], res.summary()
    assert not res.doubles, res.summary()

    # ... and one real ACKed lease deleted from a copy of the database is reported, alone.
    victim_mac = sorted(loop.ledger.latest)[len(loop.ledger.latest) // 2]
    victim_ip = loop.ledger.latest[victim_mac].ip
    mutated = tmp_path / "mutated"
    shutil.copytree(tmp_path / "db", mutated)
    env = lmdb.open(str(mutated), max_dbs=8)
    with env.begin(write=True) as txn:
        assert txn.delete(struct.pack("!I", victim_ip), db=env.open_db(b"leases", txn=txn))
    env.close()
    res = check(read_db(mutated), loop.ledger)
    assert len(res.losses) == 1, res.summary()
    assert res.losses[0].startswith(victim_mac.to_bytes(6, "big").hex(":")), res.summary()
