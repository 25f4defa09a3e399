"""The name policy: from a request's option 81 (Client FQDN, RFC 4702) or option 12 (Host Name,
RFC 2132 3.14) and the address, to the name fastdhcp uses, the option it answers with, and which
DNS updates it owes. Pure: no I/O, no clock; one call per request that carries a name (or per
request when names are generated).

Rules, in the order :func:`decide` applies them:

1. Option 81 wins over option 12 when both are present (RFC 4702 section 3.1); a malformed option
   81 (bits that must be zero set, a bad label) is ignored as if absent.
2. Who updates (RFC 4702 section 2.1 flags S, O, E, N; Kea's ``ddns-override-*``):

   ==========  ==============================  ========================================
   client      server answers                  updates fastdhcp does
   ==========  ==============================  ========================================
   S=1         S=1                             forward and reverse
   S=0 N=0     S=0 (S=1 O=1 with override-     reverse (and forward when overridden)
               client-update)
   N=1         N=1 (S=1 O=1 N=0 with override- none (both when overridden)
               no-update)
   S=1 N=1     treated as N=1: the RFC forbids the pair; not being updated is the safer
               reading of a client that asked for both
   ==========  ==============================  ========================================

   With updates off (``enable-updates`` or ``ddns-send-updates`` false) the answer is S=0 N=1
   and no update is made. O is 1 exactly when the answer's S differs from the client's
   (RFC 4702 section 2.1); E echoes the client's encoding (section 3.1); RCODE1 and RCODE2
   are 255 (section 2.2).
3. The name (Kea's ``ddns-replace-client-name``): ``never`` and ``when-not-present`` keep a
   sent name, ``always`` and ``when-present`` replace it with the generated one; with no name
   sent, ``always`` and ``when-not-present`` generate one, the others leave the client
   nameless (no update). Generated: ``<ddns-generated-prefix>-a-b-c-d.<suffix>``.
4. A client's name is sanitised label by label (``hostname-char-set`` matches become
   ``hostname-char-replacement``); a label left empty or longer than 63 octets, or a name over
   255 octets (RFC 1035 2.3.4), makes the name unusable: as if none was sent.
5. Partial names are qualified with ``ddns-qualifying-suffix``: option 81's partial form (wire
   labels without the root label; in the deprecated ASCII form, a single label) and an option
   12 of one label. A name with dots in option 12 or ASCII option 81 is taken as fully
   qualified.
6. No option 81 and no option 12: only ``always`` and ``when-not-present`` make a name (sent
   back in option 12, updated both ways).
7. Names are lower-cased after sanitising (as Kea 2.2 answers and stores them; DNS compares
   names without case, RFC 4343).

Without ``[ddns]`` names are still answered, as Kea 2.2 does with ``enable-updates`` false: the
engine echoes a plain option 12 itself and asks :func:`decide_without_ddns` for option 81
(answered with N=1) and for an option 12 that needs sanitising or lower-casing.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, replace

import dns.exception
import dns.name

from fastdhcp.ddns.config import DdnsConfig, ReplaceClientName

__all__ = ["ClientFqdn", "Encoding", "FLAG_E", "FLAG_N", "FLAG_O", "FLAG_S", "NameDecision",
           "NameSource", "decide", "decide_without_ddns", "encode_fqdn_option", "parse_fqdn_option"]

#: RFC 4702 section 2.1 flag bits.
FLAG_S = 0x01  #: the server should do the forward (A) update
FLAG_O = 0x02  #: (server) the S bit answered differs from the client's
FLAG_E = 0x04  #: the domain name is in canonical wire format (else deprecated ASCII)
FLAG_N = 0x08  #: the server should do no update
_MBZ = 0xF0  #: must be zero
#: RFC 4702 section 2.2: a server sets both RCODEs to 255.
_RCODE_SERVER = 255
_MAX_LABEL = 63  # RFC 1035 2.3.4
_MAX_NAME = 255  # octets in wire form, root label included


class Encoding(enum.Enum):
    """How option 81's domain name is written (the E flag)."""

    WIRE = "wire"  #: E=1: RFC 1035 3.1 labels, uncompressed
    ASCII = "ascii"  #: E=0: deprecated dotted text


class NameSource(enum.Enum):
    """Where the name used came from."""

    CLIENT_FQDN = "client-fqdn"  #: option 81's name (qualified, sanitised)
    CLIENT_HOSTNAME = "client-hostname"  #: option 12's name (qualified, sanitised)
    GENERATED = "generated"  #: made from the address (ddns-generated-prefix)
    NONE = "none"  #: no name: nothing to update


@dataclass(frozen=True, slots=True)
class ClientFqdn:
    """A request's option 81, decoded."""

    flags: int
    """The flags octet (S, O, E, N)."""
    labels: tuple[bytes, ...]
    """The domain name's labels, without the root label; empty when no name was sent."""
    partial: bool
    """True for a partial name (to be qualified with ``ddns-qualifying-suffix``)."""

    @property
    def encoding(self) -> Encoding:
        """The encoding the client used (the E flag)."""
        return Encoding.WIRE if self.flags & FLAG_E else Encoding.ASCII


@dataclass(frozen=True, slots=True)
class NameDecision:
    """What a request's names come to (the result of :func:`decide`)."""

    fqdn: dns.name.Name | None
    """The absolute name to publish, or None."""
    source: NameSource
    """Where :attr:`fqdn` came from."""
    forward: bool
    """fastdhcp owes the forward update (A + DHCID under :attr:`fqdn`)."""
    reverse: bool
    """fastdhcp owes the reverse update (PTR + DHCID under the address's in-addr.arpa name)."""
    reply_fqdn: bytes | None = None
    """Option 81's value for the reply, or None (the request had no usable option 81)."""
    reply_hostname: bytes | None = None
    """Option 12's value for the reply, or None."""

    @property
    def updates(self) -> bool:
        """True when any DNS update is owed."""
        return self.forward or self.reverse


def parse_fqdn_option(value: bytes) -> ClientFqdn | None:
    """Decode option 81's value (RFC 4702 section 2); None when malformed."""
    if len(value) < 3 or value[0] & _MBZ:
        return None
    flags, name = value[0], value[3:]
    if flags & FLAG_E:
        return _parse_wire(flags, name)
    try:
        text = name.decode("ascii")
    except UnicodeDecodeError:
        return None
    text = text.rstrip("\x00")  # some clients NUL-terminate the ASCII form
    full = text.endswith(".")
    labels = tuple(x.encode() for x in text.strip(".").split(".")) if text.strip(".") else ()
    if any(not x for x in labels):
        return None
    return ClientFqdn(flags, labels, partial=bool(labels) and not full and len(labels) == 1)


def _parse_wire(flags: int, name: bytes) -> ClientFqdn | None:
    labels: list[bytes] = []
    i = 0
    while i < len(name):
        n = name[i]
        if n == 0:
            # the root label ends a fully qualified name and must be last
            return ClientFqdn(flags, tuple(labels), partial=False) if i + 1 == len(name) else None
        if n > _MAX_LABEL or i + 1 + n > len(name):  # compression is not allowed here
            return None
        labels.append(name[i + 1:i + 1 + n])
        i += 1 + n
    return ClientFqdn(flags, tuple(labels), partial=bool(labels))


def encode_fqdn_option(flags: int, name: dns.name.Name | None, encoding: Encoding) -> bytes:
    """Option 81's value as a server sends it (RCODE1 = RCODE2 = 255, RFC 4702 section 2.2)."""
    head = bytes((flags, _RCODE_SERVER, _RCODE_SERVER))
    if name is None:
        return head
    if encoding is Encoding.WIRE:
        wire = name.to_wire()
        assert wire is not None  # (None only when writing into a file)
        return head + wire
    return head + name.to_text(omit_final_dot=True).encode("ascii")


def decide(fqdn_option: bytes | None, hostname_option: bytes | None, address: int,
           cfg: DdnsConfig) -> NameDecision:
    """The name, the answer and the updates for a request (rules in the module docstring).

    ``fqdn_option`` and ``hostname_option`` are options 81 and 12's values as received (None
    when absent); ``address`` is the leased address (host-order int).
    """
    client = parse_fqdn_option(fqdn_option) if fqdn_option is not None else None
    if client is not None:
        return _from_fqdn(client, address, cfg)
    if hostname_option:
        sent = _hostname_labels(hostname_option)
        name, source = _choose(sent, sent is not None and len(sent) == 1, address, cfg,
                               NameSource.CLIENT_HOSTNAME)
        # a client that sent an unusable option 12 gets no name back rather than its own
        return _both_ways(name, source, cfg)
    if cfg.replace_client_name in (ReplaceClientName.ALWAYS, ReplaceClientName.WHEN_NOT_PRESENT):
        return _both_ways(_generated(address, cfg), NameSource.GENERATED, cfg)
    return NameDecision(None, NameSource.NONE, False, False)


#: Kea's defaults with updates off: what names come to without ``[ddns]``.
_NO_DDNS = DdnsConfig(enable_updates=False)


def decide_without_ddns(fqdn_option: bytes | None, hostname_option: bytes | None,
                        address: int, reserved: str = "") -> NameDecision:
    """:func:`decide` when no ``[ddns]`` is configured: Kea 2.2's defaults, updates off (no
    update is ever owed; option 81 is answered with N=1), and option 81's answer written as
    Kea 2.2 writes it there (observed side by side, tests/interop/test_classify_kea.py P11):
    the request's RCODE1 and RCODE2 copied back (not RFC 4702's 255), and an ASCII name with
    its final dot. ``reserved``, a reservation's hostname, replaces option 81's name (Kea
    2.2 sent it so; the engine answers a reserved name without option 81 itself)."""
    if reserved and fqdn_option is not None and parse_fqdn_option(fqdn_option) is not None:
        labels = reserved.rstrip(".").lower().encode("utf-8", "replace").split(b".")
        if all(0 < len(x) <= _MAX_LABEL for x in labels):  # else: as if no reservation name
            if fqdn_option[0] & FLAG_E:
                name = b"".join(bytes((len(x),)) + x for x in labels)
                fqdn_option = fqdn_option[:3] + name + b"\0"
            else:
                fqdn_option = fqdn_option[:3] + b".".join(labels) + b"."
    nd = decide(fqdn_option, hostname_option, address, _NO_DDNS)
    if nd.reply_fqdn is None or fqdn_option is None:
        return nd
    if nd.reply_fqdn[0] & FLAG_E or nd.fqdn is None:
        body = nd.reply_fqdn[3:]
    else:
        body = nd.fqdn.to_text().encode("ascii")
    return replace(nd, reply_fqdn=nd.reply_fqdn[:1] + fqdn_option[1:3] + body)


def _from_fqdn(client: ClientFqdn, address: int, cfg: DdnsConfig) -> NameDecision:
    client_s = bool(client.flags & FLAG_S)
    client_n = bool(client.flags & FLAG_N)
    if not cfg.updates_on:
        server_s, server_n = False, True
    elif client_n:  # also S=1 N=1 (RFC 4702 2.1 forbids it): not being updated is safer
        server_s = server_n = False
        if not cfg.override_no_update:
            server_n = True
        else:
            server_s = True
    elif client_s:
        server_s, server_n = True, False
    else:
        server_s, server_n = cfg.override_client_update, False
    flags = (client.flags & FLAG_E) | (FLAG_S if server_s else 0) | (FLAG_N if server_n else 0)
    if server_s != client_s:
        flags |= FLAG_O
    sent = client.labels or None
    name, source = _choose(sent, client.partial, address, cfg, NameSource.CLIENT_FQDN)
    reply = encode_fqdn_option(flags, name, client.encoding)
    on = name is not None
    return NameDecision(name, source, forward=on and server_s, reverse=on and not server_n,
                        reply_fqdn=reply)


def _both_ways(name: dns.name.Name | None, source: NameSource, cfg: DdnsConfig) -> NameDecision:
    """Option 12 or no option: the server does both updates (there are no flags to say else)."""
    if name is None:
        return NameDecision(None, NameSource.NONE, False, False)
    text = b".".join(name.labels[:-1])  # the octets as they are: option 12 is no zone file
    on = cfg.updates_on
    return NameDecision(name, source, forward=on, reverse=on, reply_hostname=text)


def _choose(sent: tuple[bytes, ...] | None, partial: bool, address: int, cfg: DdnsConfig,
            source: NameSource) -> tuple[dns.name.Name | None, NameSource]:
    mode = cfg.replace_client_name
    if sent is not None:
        if mode in (ReplaceClientName.ALWAYS, ReplaceClientName.WHEN_PRESENT):
            return _generated(address, cfg), NameSource.GENERATED
        name = _qualified(sent, partial, cfg)
        if name is not None:
            return name, source
    # no name sent, or an unusable one (rule 4)
    if mode in (ReplaceClientName.ALWAYS, ReplaceClientName.WHEN_NOT_PRESENT):
        return _generated(address, cfg), NameSource.GENERATED
    return None, NameSource.NONE


def _hostname_labels(value: bytes) -> tuple[bytes, ...] | None:
    text = value.rstrip(b"\x00").strip(b".")  # NUL-terminated by some clients (RFC 2132 3.14)
    if not text:
        return None
    return tuple(text.split(b"."))


def _sanitised(labels: tuple[bytes, ...], cfg: DdnsConfig) -> tuple[bytes, ...] | None:
    """Labels after hostname-char-set (None when the name is unusable, rule 4)."""
    out = []
    for raw in labels:
        try:
            label = raw.decode("ascii")
        except UnicodeDecodeError:
            label = raw.decode("latin-1")  # every octet is one char: the char set judges them
        if cfg.hostname_char_set:
            label = re.sub(cfg.hostname_char_set, cfg.hostname_char_replacement, label)
        try:
            encoded = label.encode("ascii").lower()
        except UnicodeEncodeError:
            return None
        if not encoded or len(encoded) > _MAX_LABEL:
            return None
        out.append(encoded)
    return tuple(out)


def _qualified(labels: tuple[bytes, ...], partial: bool,
               cfg: DdnsConfig) -> dns.name.Name | None:
    clean = _sanitised(labels, cfg)
    if not clean:
        return None
    labels = clean
    tail = _suffix_labels(cfg.qualifying_suffix) if partial else ()
    try:
        # one Name from labels: parsing the suffix text per call made an option 12
        # decision take 50 us; this takes 11 us
        return dns.name.Name((*labels, *tail, b""))
    except dns.exception.DNSException:  # over 255 octets
        return None


@functools.lru_cache(maxsize=64)
def _suffix_labels(suffix: str) -> tuple[bytes, ...]:
    return dns.name.from_text(suffix).labels[:-1] if suffix else ()


def _generated(address: int, cfg: DdnsConfig) -> dns.name.Name:
    dashed = "-".join(str((address >> s) & 0xFF) for s in (24, 16, 8, 0))
    suffix = cfg.qualifying_suffix
    return dns.name.from_text(f"{cfg.generated_prefix}-{dashed}" + (f".{suffix}" if suffix
                                                                     else "."))
