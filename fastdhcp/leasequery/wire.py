"""Leasequery messages: what a query asks (RFC 4388 section 6.1, RFC 6926 section 6.2), the
replies' bytes (RFC 4388 section 6.4, RFC 6926 section 7) and RFC 6926's TCP framing.

Leasequery is rare next to DORA (a relay asks after its own reboot), so this is plain Python
over the compiled :class:`fastdhcp._codec.Message` of the query; no reply passes through the
engine's reply builder, which knows nothing of these message types.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fastdhcp._codec import Message
from fastdhcp.consts import MessageType

__all__ = [
    "DhcpState", "FrameReader", "Opt", "Query", "QueryKind", "Refusal", "Status", "SUB_RELAY_ID",
    "SUB_REMOTE_ID", "build", "bulk_query", "frame", "sub_option", "udp_query", "FRAME_MAX",
]


class Opt(enum.IntEnum):
    """The option codes leasequery reads or writes."""

    LEASE_TIME = 51
    SERVER_ID = 54
    RENEWAL_TIME = 58
    REBINDING_TIME = 59
    CLIENT_ID = 61
    RELAY_AGENT = 82
    CLIENT_LAST_TRANSACTION_TIME = 91  #: RFC 4388 6.1: seconds since the client's last contact
    ASSOCIATED_IP = 92  #: RFC 4388 6.1: the client's other bound addresses
    STATUS_CODE = 151  #: RFC 6926 6.2.2
    BASE_TIME = 152  #: RFC 6926 6.2.3: the server's clock when the reply was made
    START_TIME_OF_STATE = 153  #: RFC 6926 6.2.4: seconds from the state's start to base-time
    QUERY_START_TIME = 154  #: RFC 6926 6.2.5
    QUERY_END_TIME = 155  #: RFC 6926 6.2.6
    DHCP_STATE = 156  #: RFC 6926 6.2.7
    DATA_SOURCE = 157  #: RFC 6926 6.2.8
    VSS = 221  #: RFC 6607 virtual subnet selection (a VPN): not served


#: Option 82 sub-options a bulk query is made of (RFC 3046 remote-id; RFC 6925 relay-id).
SUB_REMOTE_ID = 2
SUB_RELAY_ID = 12


class Status(enum.IntEnum):
    """RFC 6926 section 6.2.2 status codes (option 151)."""

    SUCCESS = 0
    UNSPEC_FAIL = 1
    QUERY_TERMINATED = 2
    MALFORMED_QUERY = 3
    NOT_ALLOWED = 4


class DhcpState(enum.IntEnum):
    """RFC 6926 section 6.2.7 lease states (option 156)."""

    AVAILABLE = 1
    ACTIVE = 2
    EXPIRED = 3
    RELEASED = 4
    ABANDONED = 5  #: what a DECLINED address is
    RESET = 6
    REMOTE = 7
    TRANSITIONING = 8


class QueryKind(enum.Enum):
    """What a query selects leases by."""

    BY_IP = "ip-address"  #: ciaddr (RFC 4388 only)
    BY_CLIENT_ID = "client-id"  #: option 61
    BY_MAC = "hw-address"  #: htype, hlen, chaddr
    BY_RELAY_ID = "relay-id"  #: option 82 sub-option 12 (RFC 6926 only)
    BY_REMOTE_ID = "remote-id"  #: option 82 sub-option 2 (RFC 6926 only)
    ALL = "all"  #: nothing else given (RFC 6926 only): every configured address


@dataclass(frozen=True, slots=True)
class Query:
    """One leasequery as asked: its kind and the value it selects by."""

    kind: QueryKind
    xid: int
    ip: int = 0
    """BY_IP: the address asked about (host order)."""
    key: bytes = b""
    """BY_CLIENT_ID: option 61 as sent; BY_MAC: chaddr[:hlen]; BY_RELAY_ID / BY_REMOTE_ID:
    the sub-option's value."""
    htype: int = 0
    """BY_MAC: the hardware type asked about."""
    start_time: int = 0
    """RFC 6926 query-start-time (154): only leases whose last transaction is at or after
    this (unix seconds); 0: no bound."""
    end_time: int = 0
    """RFC 6926 query-end-time (155): only leases whose last transaction is at or before."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A bulk query the server will not run: the DHCPLEASEQUERYDONE status and its text."""

    status: Status
    text: str


def sub_option(rai: bytes | None, code: int) -> bytes | None:
    """The value of sub-option ``code`` in an option 82 value, or None (also for a truncated
    TLV: a damaged option answers nothing)."""
    if not rai:
        return None
    i, n = 0, len(rai)
    while i + 2 <= n:
        c, ln = rai[i], rai[i + 1]
        if i + 2 + ln > n:
            return None
        if c == code:
            return rai[i + 2:i + 2 + ln]
        i += 2 + ln
    return None


def _chaddr(msg: Message) -> bytes:
    """chaddr[:hlen] when it names a hardware address (hlen 1..16, not all zero), else b""."""
    n = msg.hlen
    if not 0 < n <= 16:
        return b""
    hw = msg.chaddr[:n]
    return hw if any(hw) else b""


def udp_query(msg: Message) -> Query | str:
    """The RFC 4388 query in a DHCPLEASEQUERY, or why it is none (a drop reason).

    By IP address when ciaddr is set, else by client identifier when option 61 is there, else
    by hardware address (RFC 4388 6.1 and ISC dhcpd's order: the first of the three given
    decides).
    """
    if not msg.giaddr:
        # RFC 4388 6.1: the requestor puts its own address in giaddr; a client does not.
        return "leasequery-no-giaddr"
    if msg.ciaddr:
        return Query(QueryKind.BY_IP, msg.xid, ip=msg.ciaddr)
    cid = msg.client_id
    if cid:
        return Query(QueryKind.BY_CLIENT_ID, msg.xid, key=cid)
    hw = _chaddr(msg)
    if hw:
        return Query(QueryKind.BY_MAC, msg.xid, key=hw, htype=msg.htype)
    return "leasequery-no-query"


def _u32(msg: Message, code: int) -> int | None:
    v = msg.get(code)
    if v is None:
        return 0
    if len(v) != 4:
        return None
    t: int = struct.unpack("!I", v)[0]
    return t if t < 1 << 31 else None


def bulk_query(msg: Message) -> Query | Refusal:
    """The RFC 6926 query in a DHCPBULKLEASEQUERY, or the status that refuses it.

    ciaddr, yiaddr and siaddr must be zero (a query by IP address is RFC 4388's, over UDP);
    one of client-id, hardware address, relay-id or remote-id selects, none selects all;
    two are a malformed query; a VPN (option 221) is not served.
    """
    for field, v in (("ciaddr", msg.ciaddr), ("yiaddr", msg.yiaddr), ("siaddr", msg.siaddr)):
        if v:
            return Refusal(Status.MALFORMED_QUERY, f"{field} must be zero")
    start, end = _u32(msg, Opt.QUERY_START_TIME), _u32(msg, Opt.QUERY_END_TIME)
    if start is None or end is None:
        return Refusal(Status.MALFORMED_QUERY, "query-start-time and query-end-time are "
                       "4-byte times")
    if start and end and start > end:
        return Refusal(Status.MALFORMED_QUERY, "query-start-time > query-end-time")
    if msg.get(Opt.VSS) is not None:
        return Refusal(Status.NOT_ALLOWED, "VPNs are not supported")
    asked: list[Query] = []
    cid = msg.client_id
    if cid:
        asked.append(Query(QueryKind.BY_CLIENT_ID, msg.xid, key=cid))
    hw = _chaddr(msg)
    if hw:
        asked.append(Query(QueryKind.BY_MAC, msg.xid, key=hw, htype=msg.htype))
    rai = msg.relay_agent_info
    for code, kind, name in ((SUB_RELAY_ID, QueryKind.BY_RELAY_ID, "relay-id"),
                             (SUB_REMOTE_ID, QueryKind.BY_REMOTE_ID, "remote-id")):
        sub = sub_option(rai, code)
        if sub is not None:
            if not sub:
                return Refusal(Status.MALFORMED_QUERY, f"empty {name} sub-option")
            asked.append(Query(kind, msg.xid, key=sub))
    if len(asked) > 1:
        return Refusal(Status.MALFORMED_QUERY, "more than one query type: "
                       + ", ".join(q.kind.value for q in asked))
    q = asked[0] if asked else Query(QueryKind.ALL, msg.xid)
    if start or end:
        q = Query(q.kind, q.xid, q.ip, q.key, q.htype, start, end)
    return q


def _tlvs(options: Iterable[tuple[int, bytes]]) -> bytearray:
    """Options as TLVs; one longer than 255 bytes is split over instances (RFC 3396)."""
    out = bytearray()
    for code, value in options:
        if not value:
            out += bytes((code, 0))
        for i in range(0, len(value), 255):
            part = value[i:i + 255]
            out += bytes((code, len(part))) + part
    return out


def build(msg_type: MessageType, xid: int, *, flags: int = 0, giaddr: int = 0, ciaddr: int = 0,
          htype: int = 0, chaddr: bytes = b"", options: Sequence[tuple[int, bytes]] = (),
          pad: bool = True) -> bytes:
    """A BOOTREPLY of type ``msg_type``: 53 first, ``options`` in order with 82 last, end;
    ``pad`` makes it the 300 bytes of a BOOTP message (RFC 1542) for UDP; over TCP no pad."""
    if len(chaddr) > 16:
        raise ValueError("chaddr longer than 16 bytes")
    head = struct.pack("!BBBBIHHIIII", 2, htype, len(chaddr), 0, xid, 0, flags, ciaddr, 0, 0,
                       giaddr)
    head += chaddr.ljust(16, b"\0") + bytes(64 + 128) + b"\x63\x82\x53\x63"
    body = _tlvs([(53, bytes((msg_type,)))]
                 + [(c, v) for c, v in options if c != Opt.RELAY_AGENT]
                 + [(c, v) for c, v in options if c == Opt.RELAY_AGENT])
    data = head + bytes(body) + b"\xff"
    if pad and len(data) < 300:
        data += bytes(300 - len(data))
    return data


# ------------------------------------------------------------------------------ TCP framing

#: RFC 6926 section 5.1: each message is preceded by its length in two bytes, so none is longer.
FRAME_MAX = 0xFFFF


def frame(message: bytes) -> bytes:
    """``message`` with its two-byte length in front (RFC 6926 5.1)."""
    if not message or len(message) > FRAME_MAX:
        raise ValueError(f"a framed message is 1 to {FRAME_MAX} bytes, not {len(message)}")
    return struct.pack("!H", len(message)) + message


class FrameReader:
    """Splits a TCP byte stream into its messages (RFC 6926 5.1). Holds at most one partial
    message (< 64 KiB + 2). A zero length cannot frame a DHCP message: the reader stops there
    and sets :attr:`error`, since the stream has no boundaries left to trust (the caller
    serves the messages before it, then closes the connection)."""

    __slots__ = ("_buf", "error")

    def __init__(self) -> None:
        self._buf = bytearray()
        #: why the stream cannot be read further (None while it can)
        self.error: str | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """The whole messages completed by ``data``, in order (none once :attr:`error`)."""
        if self.error is not None:
            return []
        buf = self._buf
        buf += data
        out: list[bytes] = []
        i = 0
        while len(buf) - i >= 2:
            n = (buf[i] << 8) | buf[i + 1]
            if n == 0:
                self.error = "zero-length frame"
                del buf[:]
                return out
            if len(buf) - i - 2 < n:
                break
            out.append(bytes(buf[i + 2:i + 2 + n]))
            i += 2 + n
        del buf[:i]
        return out

    @property
    def pending(self) -> int:
        """Bytes held of a message not yet complete."""
        return len(self._buf)
