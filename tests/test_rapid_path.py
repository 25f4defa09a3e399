"""A rapid-commit ACK through the compiled packet path: held for its group commit like a
REQUEST's ACK (RFC 2131 3.1 step 4, RFC 4039), never queued to leave at once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dhcpsim import build_request, decode_reply, mac, make_config, opt
from path_rig import Ep

from fastdhcp._packetpath import HeldAck, PacketPath
from fastdhcp.consts import MessageType
from fastdhcp.engine import Engine
from fastdhcp.leases import MemoryLeaseStore
from fastdhcp.metrics import Metrics
from fastdhcp.pathreport import PathReport


@pytest.mark.parametrize(("rapid", "with80"), [(True, True), (True, False), (False, True)])
def test_a_rapid_ack_is_held_for_the_commit(socks: Any, rapid: bool, with80: bool) -> None:
    server, peer = socks
    held: list[HeldAck] = []
    store = MemoryLeaseStore()
    engine = Engine(make_config(subnet_extra=f"rapid-commit = {str(rapid).lower()}"), store)
    m = Metrics()
    path = PacketPath(engine, m, PathReport(), None, held.extend, lambda ep, d: 0, False)
    ep = Ep(server)
    peer.sendto(build_request(MessageType.DISCOVER, xid=9, chaddr=mac(1), flags=0x8000,
                              extra=opt(80, b"") if with80 else b""), server.getsockname())
    time.sleep(0.02)
    assert path.read(ep, 64, time.time(), time.perf_counter()) == 1
    if rapid and with80:
        assert ep.out == []  # nothing may leave before the commit
        (h,) = held
        r = decode_reply(h.out.data)
        assert r.mtype == MessageType.ACK and r.options[80] == b""
        assert [lease.ip for lease in store.take_pending()] == [r.yiaddr]
        assert m.rapid_commits == 1
    else:
        assert held == [] and m.rapid_commits == 0
        (item,) = ep.out
        assert decode_reply(item.data).mtype == MessageType.OFFER
        assert store.take_pending() == []
