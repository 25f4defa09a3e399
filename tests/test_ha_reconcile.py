"""The sync merge rule (fastdhcp.ha.reconcile): per address the later cltt, per client the later
binding, the older address of the same client freed."""

from __future__ import annotations

from fastdhcp.ha.messages import HALease
from fastdhcp.ha.reconcile import Merge, client_key, merge
from fastdhcp.leases import Lease, LeaseState

HW_A = bytes.fromhex("024a00000001")
HW_B = bytes.fromhex("024a00000002")
IP1, IP2 = 0xC6120510, 0xC6120511


def local(ip: int, hw: bytes, cltt: int, state: LeaseState = LeaseState.DEFAULT) -> Lease:
    return Lease(ip, b"\x01" + hw, hw, 1, state, cltt, cltt + 600, "")


def synced(ip: int, hw: bytes, cltt: int) -> HALease:
    return HALease(ip, hw, 600, cltt, 1)


def plan(x: HALease, *table: Lease) -> Merge:
    by_ip = {t.ip: t for t in table}
    by_client = {t.client_key: t for t in table}
    return merge(x, by_ip.get, by_client.get)


def test_later_copy_of_an_address_wins() -> None:
    # both renewed one client in the split brain: the later renewal stays on both sides
    assert plan(synced(IP1, HW_A, 2000), local(IP1, HW_A, 1000)) == Merge(apply=True)
    assert plan(synced(IP1, HW_A, 1000), local(IP1, HW_A, 2000)) == Merge(apply=False)
    assert plan(synced(IP1, HW_A, 1000), local(IP1, HW_A, 1000)) == Merge(apply=False)
    assert plan(synced(IP1, HW_A, 1000)) == Merge(apply=True)  # new here


def test_a_client_bound_to_two_addresses_keeps_the_later() -> None:
    # the partner's binding of client A (IP2) is later than ours (IP1): ours is freed
    assert plan(synced(IP2, HW_A, 2000), local(IP1, HW_A, 1000)) == Merge(apply=True, free=IP1)
    # ours is later: the partner's older binding is not taken (the partner frees it when it
    # syncs from us, by the same rule)
    assert plan(synced(IP2, HW_A, 1000), local(IP1, HW_A, 2000)) == Merge(apply=False)
    # another client's lease, or an ended one of the same client, is not a conflict
    assert plan(synced(IP2, HW_A, 1000), local(IP1, HW_B, 2000)) == Merge(apply=True)
    assert plan(synced(IP2, HW_A, 1000),
                local(IP1, HW_A, 2000, LeaseState.RELEASED)) == Merge(apply=True)


def test_client_key_is_the_lease_commands() -> None:
    assert client_key(synced(IP1, HW_A, 1)) == b"\x01" + HW_A
    assert client_key(HALease(IP1, HW_A, 600, 1, 1, b"\xff\x01")) == b"\xff\x01"
