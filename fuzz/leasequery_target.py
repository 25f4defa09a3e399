"""Fuzz target ``leasequery``: RFC 6926 TCP framing and the leasequery query and answer code.

Input: one control byte, then a TCP byte stream. The control byte's low 4 bits pick where the
stream is cut into reads (every ``1 + 7 * bits`` bytes), bit 4 whether the answers are built
too. The stream goes through :class:`fastdhcp.leasequery.wire.FrameReader` read by read.

Invariants: the reader raises nothing and stops (``error``) only at a zero length, its
frames are exactly those of an independent split of the stream (``_frames``), however it is
cut into reads, and it never holds 64 KiB + 2 bytes or more; every frame that parses gives
``udp_query`` a ``Query`` or a drop reason and ``bulk_query`` a ``Query`` or a ``Refusal``
(never an exception), a relay-id or remote-id query has a non-empty key; the RFC 4388 answer
to an allowed UDP query (against a small lease table) parses back as a BOOTREPLY of a leasequery
answer type with the query's xid, sent to its giaddr; the DHCPLEASEQUERYDONE of a refusal
parses back with its status.
"""

from __future__ import annotations

import struct

from fastdhcp._codec import parse
from fastdhcp.config import loads
from fastdhcp.consts import MessageType
from fastdhcp.errors import MalformedPacket
from fastdhcp.leasequery.udp import UdpLeaseQuery
from fastdhcp.leasequery.wire import (
    FRAME_MAX,
    FrameReader,
    Opt,
    QueryKind,
    Refusal,
    build,
    bulk_query,
    frame,
    udp_query,
)
from fastdhcp.leases import Lease, MemoryLeaseStore
from fastdhcp.metrics import Metrics
from fuzz.targets import FuzzFailure, build_request

__all__ = ["LeaseQueryTarget", "leasequery_seeds"]

RELAY = 0xC6120A01  # 198.18.10.1
NOW = 1_000_000.0
ANSWERS = {MessageType.LEASEACTIVE, MessageType.LEASEUNASSIGNED, MessageType.LEASEUNKNOWN}

_CONFIG = """
[server]
listen-addresses = ["198.18.0.1"]
[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
pools = ["198.18.0.100 - 198.18.0.199"]
relay = ["198.18.10.1"]
[leasequery]
requesters = ["198.18.10.1"]
"""


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise FuzzFailure(what)


def _frames(stream: bytes) -> tuple[list[bytes], bool]:
    """The oracle: the whole frames of ``stream`` and whether a zero length cut it short."""
    out, i = [], 0
    while len(stream) - i >= 2:
        n = int.from_bytes(stream[i:i + 2], "big")
        if n == 0:
            return out, True
        if len(stream) - i - 2 < n:
            break
        out.append(stream[i + 2:i + 2 + n])
        i += 2 + n
    return out, False


class _Ep:
    class link:  # noqa: N801 - what the handler reads of an endpoint
        address = 0xC6120001


class LeaseQueryTarget:
    """The one-input function (state: a small lease table, built once)."""

    def __init__(self) -> None:
        self.config = loads(_CONFIG)
        store = MemoryLeaseStore()
        rai = b"\x01\x02p1\x02\x03cpe\x0c\x02R1"
        for i in range(8):
            hw = bytes((2, 0, 0, 0, 0, i))
            key = b"\x01" + hw if i % 2 else b"\x00id-%d" % i
            store.stage(Lease(0xC6120064 + i, key, hw, 1, i % 4, int(NOW) - 100,
                              int(NOW) + (3600 if i % 3 else -5), "", rai))
        store.take_pending()
        self.udp = UdpLeaseQuery(self.config, store, Metrics(), lambda ep, item: None,
                                 clock=lambda: NOW)

    def __call__(self, data: bytes) -> None:
        if not data:
            return
        control, stream = data[0], data[1:]
        step = 1 + 7 * (control & 0x0F)
        answers = bool(control & 0x10)
        want, zero = _frames(stream)
        reader = FrameReader()
        got: list[bytes] = []
        for i in range(0, len(stream), step):
            got += reader.feed(stream[i:i + step])
            _check(reader.pending < FRAME_MAX + 2, "reader holds a frame too long")
        failed = reader.error is not None
        _check(failed == zero, f"zero-length frame: reader {failed}, oracle {zero}")
        _check(got == want, "frames differ from the oracle's split")
        for f in got:
            _check(frame(f)[2:] == f and len(frame(f)) == len(f) + 2, "frame() round trip")
            self._message(f, answers)

    def _message(self, raw: bytes, answers: bool) -> None:
        try:
            msg = parse(raw)
        except MalformedPacket:
            return
        q = udp_query(msg)
        _check(isinstance(q, str) or q.kind in (QueryKind.BY_IP, QueryKind.BY_CLIENT_ID,
                                                QueryKind.BY_MAC), "udp query kind")
        b = bulk_query(msg)
        if isinstance(b, Refusal):
            done = parse(build(MessageType.LEASEQUERYDONE, msg.xid,
                               options=[(Opt.STATUS_CODE, bytes((b.status,)) + b.text.encode())],
                               pad=False))
            _check(done.message_type == MessageType.LEASEQUERYDONE and done.xid == msg.xid
                   and (done.get(Opt.STATUS_CODE) or b"\xff")[0] == b.status, "DONE")
        else:
            _check(b.kind not in (QueryKind.BY_RELAY_ID, QueryKind.BY_REMOTE_ID) or bool(b.key),
                   "empty relay-id / remote-id query")
            _check(b.kind != QueryKind.BY_IP, "bulk query by IP address")
        if answers and not isinstance(q, str) and q.kind != QueryKind.BY_MAC:
            out = self.udp(_Ep(), msg, RELAY, NOW, 0.0)
            if msg.giaddr != RELAY:
                _check(out is None, "answered a non-requester")
                return
            _check(out is not None, "no answer to a requester")
            assert out is not None
            r = parse(out.data)
            _check(r.op == 2 and r.xid == msg.xid and r.message_type in ANSWERS
                   and out.message_type == r.message_type and out.dest_ip == RELAY,
                   "answer header")
            t = r.get(Opt.LEASE_TIME)
            _check(t is None or (len(t) == 4 and struct.unpack("!I", t)[0] <= 3600),
                   "lease time left")


def leasequery_seeds(requests: list[bytes]) -> list[bytes]:
    """Seeds: queries of each kind (UDP and bulk, from the given requests too) framed as a
    stream, with control bytes for several read cuts and answers on."""
    q = [
        build_request(10, 1, b"", giaddr=RELAY, ciaddr=0xC6120064, prl=None),
        build_request(10, 2, bytes((2, 0, 0, 0, 0, 1)), giaddr=RELAY, prl=None),
        build_request(10, 3, b"", giaddr=RELAY, client_id=b"\x00id-2", prl=None),
        build_request(14, 4, b"", rai=b"\x0c\x02R1", prl=None),
        build_request(14, 5, b"", rai=b"\x02\x03cpe", prl=None),
        build_request(14, 6, b"", prl=None),
        build_request(14, 7, b"", rai=b"\x0c\x00", prl=None),
    ]
    stream = b"".join(frame(x) for x in q)
    out = [bytes((c,)) + stream for c in (0x10, 0x11, 0x1F, 0x03)]
    out += [b"\x10" + frame(r) for r in requests[:20]]
    out.append(b"\x00" + frame(q[0]) + b"\x00\x00" + frame(q[1]))
    return out
