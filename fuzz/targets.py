"""Fuzz targets for the codec and the engine, shared by ``fuzz/run.py`` (atheris) and
``tests/test_fuzz_smoke.py`` (bounded runs in the test suite).

Three targets, each a plain function of one ``bytes`` input that raises :class:`FuzzFailure`
(or lets an unexpected exception escape) on a bug:

``parse``
    ``fastdhcp._codec.parse`` alone. Only ``MalformedPacket`` may escape; every getter and
    ``options`` of an accepted message must work and agree with ``get``; a reply built from the
    message (with the client id and option 82 echoed, as the engine does) must parse back with
    the request's xid/chaddr/giaddr and option 82, and respect the size contract.

``engine``
    ``parse`` + ``Engine.handle`` against a populated lease table (pre-filled via DORAs) with a
    fake clock, a config with several subnets, relays, a shared network, reservations by
    hw-address / client-id / circuit-id, and option 82. The first input byte is a control byte
    (link, clock step, reclaim, commit or failed commit + rollback), the rest is the datagram.
    The engine state persists across inputs (that is how state-dependent bugs are reached) and
    is rebuilt from the pre-filled snapshot every ``reset_every`` inputs; the inputs since the
    last reset are kept so that a failure can be replayed (:meth:`EngineTarget.replay`).
    Invariants after each input: no exception from ``handle``; every reply parses, is a
    BOOTREPLY with the request's xid and chaddr and a message type that matches the decision;
    an OFFER/ACK never hands out an address that is actively bound to another client or
    reserved for another client; every active lease lies inside a configured subnet.

``classify``
    ``parse`` + every client-class expression op (:mod:`fastdhcp.bytecode` over the compiled
    ``_classify`` evaluator) on the accepted message. Invariants: a boolean program gives
    TRUE, FALSE or ERROR, a string program bytes or ClassifyError; ``option[N].hex``,
    ``.exists``, ``relay4[M].hex``, ``pkt4.mac`` and ``hexstring`` agree with the codec's
    own getters; a substring is never longer than its input.

Inputs/s depends mostly on Python overhead; the compiled modules can be built with clang's
coverage instrumentation (``fuzz/build.sh``) so that libFuzzer sees their branches too.
"""

from __future__ import annotations

import ipaddress
import struct
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from fastdhcp._codec import Message, ReplyBuilder, parse
from fastdhcp.consts import Outcome
from fastdhcp.errors import MalformedPacket

COOKIE = b"\x63\x82\x53\x63"
_HDR = struct.Struct("!BBBBIHHIIII16s64s128s")

#: Every read-only attribute/getter of a Message (docs/internals.md, fastdhcp._codec).
GETTERS = (
    "op", "htype", "hlen", "hops", "xid", "secs", "flags", "broadcast", "ciaddr", "yiaddr",
    "siaddr", "giaddr", "chaddr", "sname", "file", "data", "codes", "options", "message_type",
    "requested_ip", "server_id", "lease_time", "subnet_selection", "max_message_size",
    "client_id", "prl", "hostname", "vendor_class", "client_fqdn", "relay_agent_info",
    "circuit_id", "remote_id", "link_selection", "server_id_override",
)

#: Fixed-length options the parser must have validated (contract: wrong length is rejected).
_FIXED = {53: 1, 50: 4, 54: 4, 118: 4, 51: 4, 57: 2}


class FuzzFailure(AssertionError):
    """An invariant of a target does not hold for an input."""


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise FuzzFailure(what)


# ----------------------------------------------------------------------------- parse target

_BUILDER = ReplyBuilder()


def check_message(msg: Message, data: bytes) -> None:
    """Every getter of an accepted message works and is consistent with the raw options."""
    for name in GETTERS:
        getattr(msg, name)
    _check(bytes(msg.data) == bytes(data), "data is not the datagram")
    opts = msg.options
    codes = msg.codes
    _check(list(opts) == list(codes), "options order differs from codes")
    for code, value in opts.items():
        _check(msg.get(code) == value, f"get({code}) differs from options[{code}]")
        if code in _FIXED:
            _check(len(value) == _FIXED[code], f"option {code} accepted with length {len(value)}")
    _check(msg.get(0) is None and msg.get(255) is None, "pad/end reported as options")
    _check(len(msg.chaddr) == msg.hlen <= 16, "chaddr length is not hlen")
    _check(msg.message_type == (opts[53][0] if 53 in opts else 0), "message_type")
    if 57 in opts:
        _check(msg.max_message_size >= 576, "option 57 below 576 accepted")
    rai = msg.relay_agent_info
    _check(rai == opts.get(82), "relay_agent_info differs from option 82")


def check_reply(msg: Message) -> None:
    """A reply built from ``msg`` (as the engine builds one) parses back and keeps the
    contract: header from the request, 53 first, 54/51/82 kept, within the size limit."""
    opts: list[tuple[int, bytes]] = [
        (54, b"\xc6\x12\x00\x01"), (51, b"\x00\x00\x0e\x10"), (1, b"\xff\xff\xff\x00"),
        (3, b"\xc6\x12\x00\x01"), (15, b"example.test" * (1 + msg.xid % 40)),
    ]
    prl = msg.prl
    if prl:
        for code in prl[:8]:
            if 1 <= code <= 254 and code not in _FIXED and code not in (52, 82, 61):
                opts.append((code, bytes([code]) * (code % 64)))
    cid = msg.client_id
    if cid:
        opts.append((61, cid))
    rai = msg.relay_agent_info
    if rai is not None:
        opts.append((82, rai))
    try:
        reply = _BUILDER.build(msg, 2, 0, 0xC6120064, 0, opts)
    except MalformedPacket:
        # Documented: the request's option 82 alone does not fit the reply's maximum size.
        _check(rai is not None and len(rai) > 200, "build raised MalformedPacket without a "
               "large option 82")
        return
    limit = max(576, msg.max_message_size or 576) - 28
    _check(300 <= len(reply) <= max(300, limit), f"reply of {len(reply)} bytes, limit {limit}")
    r = parse(reply)
    _check(r.op == 2 and r.xid == msg.xid and r.flags == msg.flags, "reply header")
    _check(r.chaddr == msg.chaddr and r.giaddr == msg.giaddr, "reply chaddr/giaddr")
    _check(r.hops == 0 and r.secs == 0 and r.yiaddr == 0xC6120064, "reply hops/secs/yiaddr")
    _check(r.message_type == 2 and r.codes[0] == 53, "option 53 is not first")
    _check(r.get(54) == b"\xc6\x12\x00\x01" and r.lease_time == 3600, "54/51 dropped")
    _check(r.relay_agent_info == rai, "option 82 not echoed verbatim")
    if rai is not None:
        _check(r.codes[-1] == 82, "option 82 is not last")


def parse_target(data: bytes) -> None:
    """Target 1: ``parse`` alone (only MalformedPacket escapes), getters, options, reply."""
    try:
        msg = parse(data)
    except MalformedPacket as exc:
        _check(isinstance(exc.reason, str) and bool(exc.reason), "MalformedPacket without reason")
        return
    check_message(msg, data)
    check_reply(msg)


# ----------------------------------------------------------------------------- engine target

SERVER_IP = 0xC6120001  # 198.18.0.1, the listen address and eth0's address
RELAY_OTHER = 0xC6120A01  # 198.18.10.1: in subnet 2's relay list, inside no subnet
RELAY_4 = 0xC6120401  # 198.18.4.1: inside subnet 4

ENGINE_TOML = """
[server]
interfaces = ["eth0", "eth1"]
listen-addresses = ["198.18.0.1"]

[global]
valid-lifetime = 600
offer-lifetime = 30
decline-probation-period = 900
option-data = { domain-name-servers = ["198.18.0.53"], domain-name = "example.net" }

[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
interface = "eth0"
pools = ["198.18.0.100 - 198.18.0.107"]
option-data = { routers = ["198.18.0.1"], ntp-servers = ["198.18.0.123"] }

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:aa"
ip-address = "198.18.0.50"
hostname = "printer"

[[subnet4]]
id = 2
subnet = "198.18.1.0/24"
shared-network = "cable"
relay = ["198.18.10.1"]
pools = ["198.18.1.10 - 198.18.1.13"]
option-data = { routers = ["198.18.1.1"] }

[[subnet4]]
id = 3
subnet = "198.18.2.0/24"
shared-network = "cable"
pools = ["198.18.2.10 - 198.18.2.13"]
option-data = { routers = ["198.18.2.1"] }

[[subnet4]]
id = 4
subnet = "198.18.4.0/24"
pools = ["198.18.4.10 - 198.18.4.20"]
valid-lifetime = 120

[[subnet4.reservations]]
circuit-id = "'ge-0/0/1'"
ip-address = "198.18.4.5"

[[subnet4.reservations]]
client-id = "01:02:00:00:00:00:42"
ip-address = "198.18.4.6"
option-data = { domain-name = "vip.example.net" }

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:43"
ip-address = "198.18.4.15"

[[subnet4]]
id = 5
subnet = "198.19.0.0/24"
relay = ["198.19.0.254"]
pools = ["198.19.0.10 - 198.19.0.40"]
authoritative = true
"""

#: offer-lifetime in ENGINE_TOML (seconds)
OFFER_LIFETIME = 30

#: Clock steps selected by bits 2..4 of the control byte (seconds).
_STEPS = (0, 0, 1, 10, 31, 121, 601, 3601)


def _opt(code: int, value: bytes) -> bytes:
    out = b""
    for i in range(0, max(len(value), 1), 255):
        piece = value[i : i + 255]
        out += bytes((code, len(piece))) + piece
    return out


def build_request(mtype: int, xid: int, chaddr: bytes, *, giaddr: int = 0, ciaddr: int = 0,
                  hops: int = 0, flags: int = 0, requested: int = 0, server_id: int = 0,
                  client_id: bytes | None = None, rai: bytes | None = None,
                  subnet_sel: int = 0, hostname: bytes | None = None,
                  prl: bytes | None = b"\x01\x03\x06\x0f\x2a") -> bytes:
    """A BOOTREQUEST built with struct (independent of the codec's builder)."""
    hdr = _HDR.pack(1, 1, len(chaddr), hops, xid, 0, flags, ciaddr, 0, 0, giaddr,
                    chaddr.ljust(16, b"\0"), b"", b"")
    o = _opt(53, bytes((mtype,)))
    if client_id is not None:
        o += _opt(61, client_id)
    if requested:
        o += _opt(50, struct.pack("!I", requested))
    if server_id:
        o += _opt(54, struct.pack("!I", server_id))
    if hostname is not None:
        o += _opt(12, hostname)
    if prl is not None:
        o += _opt(55, prl)
    if subnet_sel:
        o += _opt(118, struct.pack("!I", subnet_sel))
    if rai is not None:
        o += _opt(82, rai)
    return (hdr + COOKIE + o + b"\xff").ljust(300, b"\0")


def _rai(circuit: bytes, remote: bytes | None = None, link_sel: int = 0,
         override: int = 0) -> bytes:
    v = bytes((1, len(circuit))) + circuit
    if remote is not None:
        v += bytes((2, len(remote))) + remote
    if link_sel:
        v += b"\x05\x04" + struct.pack("!I", link_sel)
    if override:
        v += b"\x0b\x04" + struct.pack("!I", override)
    return v


def _mac(n: int) -> bytes:
    return b"\x02" + n.to_bytes(5, "big")


# (link index, giaddr, hops, rai maker, subnet selection) per client population
_POPULATIONS: tuple[tuple[int, int, int, bool, int], ...] = (
    (1, 0, 0, False, 0),  # subnet 1, directly attached on eth0
    (0, RELAY_OTHER, 1, True, 0),  # cable shared network via the relay list
    (0, RELAY_4, 1, True, 0),  # subnet 4 via giaddr
    (0, 0xC61300FE, 1, True, 0),  # subnet 5 (authoritative)
    (0, RELAY_OTHER, 1, True, 0xC6120400),  # option 118 to subnet 4
)


def seed_requests() -> list[tuple[int, bytes]]:
    """(control byte, datagram) seeds: every message type for every client population,
    reserved clients, option 82 variants. Also what pre-fills the lease table."""
    out: list[tuple[int, bytes]] = []
    n = 0
    for link, giaddr, hops, with_rai, sel in _POPULATIONS:
        for _ in range(3):
            n += 1
            ch = _mac(0x100 + n)
            rai = _rai(b"port-%d" % n, b"modem", 0, 0) if with_rai else None
            kw: dict[str, Any] = dict(giaddr=giaddr, hops=hops, rai=rai, subnet_sel=sel)
            out.append((link, build_request(1, 0x1000 + n, ch, **kw)))
            out.append((link, build_request(3, 0x2000 + n, ch, server_id=SERVER_IP,
                                            requested=0, hostname=b"host%d" % n, **kw)))
            out.append((link, build_request(3, 0x3000 + n, ch, **kw)))
            out.append((link, build_request(7, 0x4000 + n, ch, server_id=SERVER_IP, **kw)))
            out.append((link, build_request(4, 0x5000 + n, ch, server_id=SERVER_IP, **kw)))
            out.append((link, build_request(8, 0x6000 + n, ch, **kw)))
    # reserved clients: by hw-address (subnet 1 and 4), client-id and circuit-id (subnet 4)
    out.append((1, build_request(1, 0x7001, bytes.fromhex("0200000000aa"))))
    out.append((0, build_request(1, 0x7002, _mac(0x42), giaddr=RELAY_4, hops=1,
                                 client_id=bytes.fromhex("01020000000042"))))
    out.append((0, build_request(1, 0x7003, _mac(0x77), giaddr=RELAY_4, hops=1,
                                 rai=_rai(b"ge-0/0/1"))))
    out.append((0, build_request(1, 0x7004, bytes.fromhex("020000000043"), giaddr=RELAY_4,
                                 hops=1)))
    # option 82 with link selection and server id override (RFC 3527, 5107)
    out.append((0, build_request(1, 0x7005, _mac(0x55), giaddr=RELAY_OTHER, hops=1,
                                 rai=_rai(b"x", None, 0xC6120405, 0xC6120A02))))
    out.append((0, build_request(3, 0x7006, _mac(0x56), giaddr=RELAY_4, hops=1,
                                 ciaddr=0xC612040B, rai=_rai(b"y"))))
    return out


class EngineTarget:
    """Target 2: parse + ``Engine.handle`` over a pre-filled lease table and a fake clock."""

    def __init__(self, store_kind: str = "memory", reset_every: int = 2000,
                 prefill: int = 40) -> None:
        from fastdhcp.config import loads
        from fastdhcp.engine import Link

        self.config = loads(ENGINE_TOML, "<fuzz>")
        self.links = (Link("", SERVER_IP), Link("eth0", SERVER_IP), Link("eth1", 0xC6120201),
                      Link("", SERVER_IP))
        self.store_kind = store_kind
        self.reset_every = reset_every
        self.prefill = prefill
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lmdb: Any = None
        self.history: list[bytes] = []
        self.inputs = 0
        self.resets = 0
        self.kinds: dict[str, int] = {}
        self._subnets = [(s.network, s) for s in self.config.subnets]
        self._reserved: dict[int, list[Any]] = {}
        for s in self.config.subnets:
            for r in s.reservations:
                self._reserved.setdefault(r.ip, []).append(r)
        self.reset()

    # -- state
    def _new_store(self) -> Any:
        if self.store_kind == "memory":
            from fastdhcp.leases import MemoryLeaseStore

            return MemoryLeaseStore()
        from fastdhcp.store import LmdbLeaseStore

        if self._lmdb is not None:
            self._lmdb.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        self._tmp = tempfile.TemporaryDirectory(prefix="fastdhcp-fuzz-")
        self._lmdb = LmdbLeaseStore(self._tmp.name, sync=False, map_size=1 << 26)
        return self._lmdb

    def reset(self) -> None:
        """Fresh store and engine, pre-filled with ``prefill`` DORAs across the subnets."""
        from fastdhcp.engine import Engine

        self.now = 1_700_000_000.0
        self.store = self._new_store()
        self.engine = Engine(self.config, self.store)
        self.history = []
        self._offer_log: dict[int, tuple[bytes, float]] = {}
        self.resets += 1
        for i in range(self.prefill):
            link, giaddr, hops, with_rai, sel = _POPULATIONS[i % len(_POPULATIONS)]
            ch = _mac(0x10000 + i)
            rai = _rai(b"pre-%d" % i) if with_rai else None
            kw: dict[str, Any] = dict(giaddr=giaddr, hops=hops, rai=rai, subnet_sel=sel)
            d = self.engine.handle(parse(build_request(1, i, ch, **kw)), self.links[link],
                                   self.now)
            if d.reply is None:
                continue
            yiaddr = parse(d.reply).yiaddr
            self.engine.handle(parse(build_request(3, i, ch, requested=yiaddr,
                                                   server_id=SERVER_IP, **kw)),
                               self.links[link], self.now)
            self._commit()

    def _commit(self) -> None:
        batch = self.store.take_pending()
        if batch:
            self.store.write(batch)
            self.store.committed(batch)

    def close(self) -> None:
        """Release the LMDB environment and its temporary directory, if any."""
        if self._lmdb is not None:
            self._lmdb.close()
            self._lmdb = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- one input
    def __call__(self, data: bytes) -> None:
        if self.inputs and self.inputs % self.reset_every == 0:
            self.reset()
        self.inputs += 1
        self.history.append(bytes(data))
        self.one(data)

    def replay(self, inputs: Iterable[bytes]) -> None:
        """Reset, then run ``inputs`` in order (what a saved failure history holds)."""
        self.reset()
        for data in inputs:
            self.history.append(bytes(data))
            self.one(data)

    def one(self, data: bytes) -> None:
        """Control byte + datagram: step the clock, handle, commit or fail, check invariants."""
        if not data:
            return
        ctrl = data[0]
        datagram = bytes(data[1:])
        self.now += _STEPS[(ctrl >> 2) & 7]
        if ctrl & 0x20:
            nxt = self.engine.reclaim(self.now, 50)
            _check(nxt == nxt, "reclaim returned NaN")
            self._commit()
        try:
            msg = parse(datagram)
        except MalformedPacket:
            return
        link = self.links[ctrl & 3]
        key = self._key(msg)
        prior = self.engine.offered(key)
        held = self.store.get_by_client(key)
        owned = {prior, held.ip if held is not None else 0}
        d = self.engine.handle(msg, link, self.now)
        self.kinds[d.kind] = self.kinds.get(d.kind, 0) + 1
        self._check_decision(msg, d, key, owned)
        if ctrl & 0xC0 == 0xC0:
            # the group commit failed: the service rolls the engine back
            batch = self.store.take_pending()
            if batch:
                self.store.failed(batch)
                self.engine.rollback(batch)
        else:
            self._commit()
        if ctrl & 0x10:
            self._check_table()

    # -- invariants
    def _key(self, msg: Message) -> bytes:
        cid = msg.client_id
        if cid:
            return bytes(cid)
        return bytes((msg.htype,)) + bytes(msg.chaddr)

    def _check_decision(self, msg: Message, d: Any, key: bytes, owned: set[int]) -> None:
        _check(d.kind in tuple(Outcome), f"decision kind {d.kind!r}")
        if d.reply is None:
            _check(d.binding is None, "binding without a reply")
            return
        r = parse(d.reply)  # every reply parses (MalformedPacket escapes as a failure)
        want = {Outcome.OFFER: 2, Outcome.ACK: 5, Outcome.NAK: 6}.get(d.kind)
        _check(want is not None, f"reply on a {d.kind!r} decision")
        _check(r.op == 2 and r.xid == msg.xid and r.chaddr == msg.chaddr, "reply header")
        _check(r.message_type == want, f"{d.kind} reply has type {r.message_type}")
        _check(r.giaddr == msg.giaddr, "reply giaddr differs from the request's")
        if msg.relay_agent_info is not None:
            _check(r.relay_agent_info == msg.relay_agent_info, "option 82 not echoed")
        y = r.yiaddr
        if d.kind is Outcome.NAK or y == 0:
            _check(d.kind is not Outcome.OFFER, "offer without an address")
            return
        lease = self.store.get(y)
        if lease is not None and lease.active and lease.client_key != key:
            raise FuzzFailure(f"{d.kind} of {ipaddress.IPv4Address(y)} to {key.hex()} while "
                              f"it is active for {lease.client_key.hex()} (state {lease.state},"
                              f" expires {lease.expires - self.now:+.0f}s)")
        # An address held as an offer for one client is not offered to another meanwhile.
        prev = self._offer_log.get(y)
        if (prev is not None and prev[0] != key and self.now - prev[1] < OFFER_LIFETIME - 1
                and self.engine.offered(prev[0]) == y):
            raise FuzzFailure(f"{d.kind} of {ipaddress.IPv4Address(y)} to {key.hex()} while it "
                              f"is held as an offer for {prev[0].hex()}")
        if d.kind is Outcome.OFFER:
            self._offer_log[y] = (key, self.now)
        if d.kind == "ack" and d.binding is not None:
            _check(d.binding.ip == y and d.binding.client_key == key, "binding is not the ACK's")
        # A reserved address may go to the reservation's client, or stay with the client that
        # already held it (an offer or lease made while it matched: a held offer is repeated).
        for res in self._reserved.get(y, ()) if y not in owned else ():
            mine = ((res.hw_address is not None and res.hw_address == bytes(msg.chaddr))
                    or (res.client_id is not None and res.client_id == msg.client_id)
                    or (res.circuit_id is not None and res.circuit_id == msg.circuit_id))
            _check(mine, f"{d.kind} of reserved {ipaddress.IPv4Address(y)} to another client")
        _check(any(y in net for net, _ in self._subnet_ips()), "address outside every subnet")

    def _subnet_ips(self) -> list[tuple[Any, Any]]:
        return [(_IntNet(net), s) for net, s in self._subnets]

    def _check_table(self) -> None:
        nets = [_IntNet(net) for net, _ in self._subnets]
        n = 0
        for lease in self.store:
            n += 1
            if lease.active:
                _check(any(lease.ip in net for net in nets), "active lease outside the subnets")
        _check(n == len(self.store), "store length differs from its iteration")


class _IntNet:
    """Host-order int membership in an IPv4Network (no ipaddress objects per check)."""

    __slots__ = ("lo", "hi")

    def __init__(self, net: ipaddress.IPv4Network) -> None:
        self.lo = int(net.network_address)
        self.hi = int(net.broadcast_address)

    def __contains__(self, ip: int) -> bool:
        return self.lo <= ip <= self.hi


# ----------------------------------------------------------------------------- classify target

#: Expressions that together use every op of the evaluator (value probes, Kind.STRING).
CLASSIFY_VALUES = (
    "option[60].hex", "option[60].text", "option[55].text", "option[93].text", "option[2].text",
    "option[82].option[1].hex", "option[82].option[2].text", "option[43].option[1].hex",
    "relay4[1].hex", "relay4[2].text", "pkt4.mac", "pkt4.hlen", "pkt4.htype", "pkt4.ciaddr",
    "pkt4.giaddr", "pkt4.yiaddr", "pkt4.siaddr", "pkt4.msgtype", "pkt4.transid", "pkt.iface",
    "pkt.src", "pkt.dst", "pkt.len", "vendor.enterprise", "vendor[*].option[2].hex",
    "vendor[3561].option[1].text", "vendor-class.enterprise", "vendor-class[*].data",
    "vendor-class[0].data[1]", "vendor-class[3561].data[3]",
    "substring(option[60].hex,-3,-200)", "substring(option[61].hex,2,all)",
    "substring(option[12].hex,-1,5)", "split(option[60].hex, ':.-', 2)",
    "split(option[12].hex, option[60].hex, 3)", "concat(option[60].hex, relay4[2].hex)",
    "option[61].hex + option[12].hex + 'x'", "ifelse(option[77].exists, option[77].hex, 'n')",
    "hexstring(option[82].hex, '::')", "addrtotext(option[54].hex)",
    "addrtotext(option[60].hex)", "int8totext(option[53].hex)",
    "uint16totext(option[57].hex)", "int16totext(option[93].hex)",
    "uint32totext(option[51].hex)", "int32totext(option[2].hex)",
    "uint8totext(option[53].hex)",
)
#: Boolean probes (Kind.BOOL).
CLASSIFY_TESTS = (
    "option[60].exists and not option[61].exists or relay4[1].exists",
    "vendor[*].exists or vendor[3561].option[2].exists or vendor-class[*].exists",
    "vendor-class[3561].exists and member('VENDOR_CLASS_docsis3.0')",
    "member('ALL') or pkt4.htype == 1",
    "option[82].option[5].exists",
)
_CLASSIFY: list[tuple[str, Any, bool]] = []


def _classify_programs() -> list[tuple[str, Any, bool]]:
    if not _CLASSIFY:
        from fastdhcp.bytecode import compile_node
        from fastdhcp.expression import Kind
        from fastdhcp.expression import parse as parse_expr

        for text in CLASSIFY_VALUES:
            _CLASSIFY.append((text, compile_node(parse_expr(text, Kind.STRING)), False))
        for text in CLASSIFY_TESTS:
            _CLASSIFY.append((text, compile_node(parse_expr(text), {"ALL": 0}.__getitem__), True))
    return _CLASSIFY


def classify_target(data: bytes) -> None:
    """The ``classify`` target: every evaluator op over one accepted datagram."""
    from fastdhcp._classify import ClassifyError, ClassSet

    try:
        msg = parse(data)
    except MalformedPacket:
        return
    classes = ClassSet(4)
    classes.add(0)
    values: dict[str, bytes | None] = {}
    for text, prog, boolean in _classify_programs():
        if boolean:
            r = prog.eval(msg, b"eth0", 0xC6120001, 0xC6120002, len(data), classes)
            _check(r in (0, 1, 2), f"{text}: result {r}")
            continue
        try:
            v = prog.value(msg, b"eth0", 0xC6120001, 0xC6120002, len(data))
        except ClassifyError:
            values[text] = None
            continue
        _check(isinstance(v, bytes), f"{text}: not bytes")
        values[text] = v
    _check(values["option[60].hex"] == (msg.get(60) or b""), "option[60].hex vs get(60)")
    _check(values["relay4[1].hex"] == (msg.circuit_id or b""), "relay4[1].hex vs circuit_id")
    _check(values["pkt4.mac"] == msg.chaddr, "pkt4.mac vs chaddr")
    _check(values["hexstring(option[82].hex, '::')"] == "::".join(
        f"{b:02x}" for b in (msg.get(82) or b"")).encode(), "hexstring vs option 82")
    sub = values["substring(option[61].hex,2,all)"]
    _check(sub is not None and len(sub) <= len(msg.get(61) or b""), "substring too long")
    _check(values["pkt.len"] == len(data).to_bytes(4, "big"), "pkt.len")


# ----------------------------------------------------------------------------- seeds

def vector_seeds(found: bool = True) -> list[bytes]:
    """The annotated vectors of tests/vectors (and, with ``found``, the fuzzers' findings in
    tests/vectors/fuzz) as raw datagrams."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "tests" / "vectors"
    import importlib.util

    spec = importlib.util.spec_from_file_location("_fuzz_vectors", root / "__init__.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = [mod.load_hex(p.read_text()) for p in sorted(root.glob("*.hex"))]
    if found:
        out += [mod.load_hex(p.read_text()) for p in sorted(root.glob("fuzz/*.hex"))]
    return out


def seeds(target: str, found: bool = True) -> list[bytes]:
    """Seed inputs for ``target`` ("parse", "engine", "classify", "leasequery"); ``found``:
    with the findings."""
    vecs = vector_seeds(found)
    reqs = seed_requests()
    if target == "leasequery":
        from fuzz.leasequery_target import leasequery_seeds
        return leasequery_seeds(vecs + [d for _, d in reqs])
    if target in ("parse", "classify"):
        return vecs + [d for _, d in reqs]
    out = [bytes((c,)) + d for c, d in reqs]
    for i, v in enumerate(vecs):
        out.append(bytes((i % 4,)) + v)
    return out


def target_function(target: str, **kw: Any) -> Callable[[bytes], None]:
    """The one-input function for ``target``."""
    if target == "parse":
        return parse_target
    if target == "engine":
        return EngineTarget(**kw)
    if target == "classify":
        return classify_target
    if target == "leasequery":  # RFC 6926 framing + leasequery queries (leasequery_target.py)
        from fuzz.leasequery_target import LeaseQueryTarget
        return LeaseQueryTarget()
    raise ValueError(f"unknown target {target!r}")


def _write_seeds(target: str, directory: str, found: bool = True) -> int:
    """Write the seeds of ``target`` into ``directory`` (one file each, named by SHA-1)."""
    import hashlib
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    n = 0
    for s in seeds(target, found):
        p = d / hashlib.sha1(s).hexdigest()
        if not p.exists():
            p.write_bytes(s)
            n += 1
    return n


if __name__ == "__main__":
    import sys

    n = _write_seeds(sys.argv[1], sys.argv[2], found="--no-found" not in sys.argv[3:])
    print(f"{n} new seeds in {sys.argv[2]}")
