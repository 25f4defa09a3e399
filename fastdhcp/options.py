"""DHCPv4 option definitions and their encoders (RFC 2132 and later option RFCs).

Options are named as Kea 2.x names them (``routers``, ``domain-name-servers``, ``domain-search``,
...) and typed with Kea's type names (``ipv4-address``, ``string``, ``fqdn``, ``uint8/16/32``,
``int32``, ``boolean``, ``binary``), plus ``classless-route`` for option 121 (RFC 3442).

The table below is constant data (a tuple of frozen :class:`OptionDef` and read-only lookups
derived from it), not a registry that anything adds to at run time: the config loader asks it to
encode each ``option-data`` value once, at load time, into the exact bytes a reply carries.

Values follow the TOML config: addresses and names as strings, lists as TOML arrays (or one
comma-separated string, as Kea's ``csv-format`` data), integers as TOML integers (or decimal
strings), booleans as TOML booleans. An option given by decimal code, and any option of type
``binary``, takes hex text: ``"0a0b0c"``, ``"0a:0b:0c"``, ``"0a 0b 0c"`` or ``"0x0a0b0c"``.

Vendor options may be given as tables: option 43 as sub-option = value (RFC 2132 8.4), option
125 as enterprise number = table of sub-options (RFC 3925 3); sub-options are named by a client
class's definitions (:func:`custom_option_def`) or given by code with hex data.

Every rejection raises :class:`~fastdhcp.errors.ConfigError` whose line names the option, the
value and the reason.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fastdhcp.errors import ConfigError

__all__ = [
    "OptionDef",
    "OPTION_DEFS",
    "DHCP4_SPACE",
    "VENDOR_ENCAPSULATED_SPACE",
    "custom_option_def",
    "SERVER_CONTROLLED",
    "option_def",
    "option_name",
    "encode_option",
    "encode_option_data",
    "decode_option",
    "encode_domain_list",
    "encode_classless_routes",
    "format_value",
]


@dataclass(frozen=True, slots=True)
class OptionDef:
    """One DHCPv4 option: its code, Kea name, value type and the RFC limits that apply."""

    code: int
    """Option code (1-254)."""
    name: str
    """Kea's name for the option."""
    type: str
    """Kea's type name: ipv4-address, string, fqdn, uint8, uint16, uint32, int32, boolean,
    binary; or classless-route (RFC 3442)."""
    array: bool = False
    """True if the option carries one or more values of ``type``."""
    min: int | None = None
    """Smallest allowed integer value (integer types)."""
    max: int | None = None
    """Largest allowed integer value (integer types)."""
    choices: tuple[int, ...] = ()
    """The only allowed integer values, when the RFC enumerates them."""
    pairs: bool = False
    """ipv4-address arrays made of (address, address) pairs (options 21 and 33)."""
    domain: bool = False
    """String options whose value must be a DNS name (host-name, domain-name)."""
    compress: bool = False
    """fqdn lists encoded with RFC 1035 4.1.4 compression (RFC 3397 section 2)."""
    long: bool = False
    """May exceed 255 bytes: the reply builder splits it into instances per RFC 3396."""
    rfc: str = "RFC 2132"
    """Where the option is defined."""
    space: str = "dhcp4"
    """Kea's option space: ``dhcp4`` for options, ``vendor-encapsulated-options-space`` (or
    the space option 43 encapsulates) for 43's sub-options, ``vendor-<enterprise>`` for 125's."""
    encapsulate: str = ""
    """The space whose sub-options the option carries (option 43 defined ``empty``), or ""."""


_IP = "ipv4-address"


def _d(code: int, name: str, type_: str, **kw: Any) -> OptionDef:
    return OptionDef(code, name, type_, **kw)


#: Every named option, by code. Names and types as in Kea 2.x; record-typed Kea options are
#: taken as ``binary`` (hex) here.
OPTION_DEFS: tuple[OptionDef, ...] = (
    _d(1, "subnet-mask", _IP),
    _d(2, "time-offset", "int32"),
    _d(3, "routers", _IP, array=True),
    _d(4, "time-servers", _IP, array=True),
    _d(5, "name-servers", _IP, array=True),
    _d(6, "domain-name-servers", _IP, array=True),
    _d(7, "log-servers", _IP, array=True),
    _d(8, "cookie-servers", _IP, array=True),
    _d(9, "lpr-servers", _IP, array=True),
    _d(10, "impress-servers", _IP, array=True),
    _d(11, "resource-location-servers", _IP, array=True),
    _d(12, "host-name", "string", domain=True),
    _d(13, "boot-size", "uint16"),
    _d(14, "merit-dump", "string"),
    _d(15, "domain-name", "string", domain=True),
    _d(16, "swap-server", _IP),
    _d(17, "root-path", "string"),
    _d(18, "extensions-path", "string"),
    _d(19, "ip-forwarding", "boolean"),
    _d(20, "non-local-source-routing", "boolean"),
    _d(21, "policy-filter", _IP, array=True, pairs=True),
    _d(22, "max-dgram-reassembly", "uint16", min=576),
    _d(23, "default-ip-ttl", "uint8", min=1),
    _d(24, "path-mtu-aging-timeout", "uint32"),
    _d(25, "path-mtu-plateau-table", "uint16", array=True, min=68),
    _d(26, "interface-mtu", "uint16", min=68),
    _d(27, "all-subnets-local", "boolean"),
    _d(28, "broadcast-address", _IP),
    _d(29, "perform-mask-discovery", "boolean"),
    _d(30, "mask-supplier", "boolean"),
    _d(31, "router-discovery", "boolean"),
    _d(32, "router-solicitation-address", _IP),
    _d(33, "static-routes", _IP, array=True, pairs=True),
    _d(34, "trailer-encapsulation", "boolean"),
    _d(35, "arp-cache-timeout", "uint32"),
    _d(36, "ieee802-3-encapsulation", "boolean"),
    _d(37, "default-tcp-ttl", "uint8", min=1),
    _d(38, "tcp-keepalive-interval", "uint32"),
    _d(39, "tcp-keepalive-garbage", "boolean"),
    _d(40, "nis-domain", "string"),
    _d(41, "nis-servers", _IP, array=True),
    _d(42, "ntp-servers", _IP, array=True),
    _d(43, "vendor-encapsulated-options", "binary", long=True),
    _d(44, "netbios-name-servers", _IP, array=True),
    _d(45, "netbios-dd-server", _IP, array=True),
    _d(46, "netbios-node-type", "uint8", choices=(1, 2, 4, 8)),
    _d(47, "netbios-scope", "string"),
    _d(48, "font-servers", _IP, array=True),
    _d(49, "x-display-manager", _IP, array=True),
    _d(50, "dhcp-requested-address", _IP),
    _d(51, "dhcp-lease-time", "uint32"),
    _d(52, "dhcp-option-overload", "uint8"),
    _d(53, "dhcp-message-type", "uint8"),
    _d(54, "dhcp-server-identifier", _IP),
    _d(55, "dhcp-parameter-request-list", "uint8", array=True),
    _d(56, "dhcp-message", "string"),
    _d(57, "dhcp-max-message-size", "uint16", min=576),
    _d(58, "dhcp-renewal-time", "uint32"),
    _d(59, "dhcp-rebinding-time", "uint32"),
    _d(60, "vendor-class-identifier", "string"),
    _d(61, "dhcp-client-identifier", "binary"),
    _d(62, "nwip-domain-name", "string", rfc="RFC 2242"),
    _d(63, "nwip-suboptions", "binary", rfc="RFC 2242"),
    _d(64, "nisplus-domain-name", "string"),
    _d(65, "nisplus-servers", _IP, array=True),
    _d(66, "tftp-server-name", "string"),
    _d(67, "boot-file-name", "string"),
    _d(68, "mobile-ip-home-agent", _IP, array=True),
    _d(69, "smtp-server", _IP, array=True),
    _d(70, "pop-server", _IP, array=True),
    _d(71, "nntp-server", _IP, array=True),
    _d(72, "www-server", _IP, array=True),
    _d(73, "finger-server", _IP, array=True),
    _d(74, "irc-server", _IP, array=True),
    _d(75, "streettalk-server", _IP, array=True),
    _d(76, "streettalk-directory-assistance-server", _IP, array=True),
    _d(77, "user-class", "binary", rfc="RFC 3004"),
    _d(78, "slp-directory-agent", "binary", rfc="RFC 2610"),
    _d(79, "slp-service-scope", "binary", rfc="RFC 2610"),
    _d(82, "dhcp-agent-options", "binary", rfc="RFC 3046"),
    _d(85, "nds-servers", _IP, array=True, rfc="RFC 2241"),
    _d(86, "nds-tree-name", "string", rfc="RFC 2241"),
    _d(87, "nds-context", "string", rfc="RFC 2241"),
    _d(88, "bcms-controller-names", "fqdn", array=True, rfc="RFC 4280"),
    _d(89, "bcms-controller-address", _IP, array=True, rfc="RFC 4280"),
    _d(90, "authenticate", "binary", rfc="RFC 3118"),
    _d(91, "client-last-transaction-time", "uint32", rfc="RFC 4388"),
    _d(92, "associated-ip", _IP, array=True, rfc="RFC 4388"),
    _d(93, "client-system", "uint16", array=True, rfc="RFC 4578"),
    _d(94, "client-ndi", "binary", rfc="RFC 4578"),
    _d(97, "uuid-guid", "binary", rfc="RFC 4578"),
    _d(98, "uap-servers", "string", rfc="RFC 2485"),
    _d(99, "geoconf-civic", "binary", rfc="RFC 4776"),
    _d(100, "pcode", "string", rfc="RFC 4833"),
    _d(101, "tcode", "string", rfc="RFC 4833"),
    _d(108, "v6-only-preferred", "uint32", rfc="RFC 8925"),
    _d(112, "netinfo-server-address", _IP, array=True, rfc="RFC 3679"),
    _d(113, "netinfo-server-tag", "string", rfc="RFC 3679"),
    _d(114, "v4-captive-portal", "string", rfc="RFC 8910"),
    _d(116, "auto-config", "uint8", choices=(0, 1), rfc="RFC 2563"),
    _d(117, "name-service-search", "uint16", array=True, rfc="RFC 2937"),
    _d(118, "subnet-selection", _IP, rfc="RFC 3011"),
    _d(119, "domain-search", "fqdn", array=True, compress=True, long=True, rfc="RFC 3397"),
    _d(121, "classless-static-route", "classless-route", long=True, rfc="RFC 3442"),
    _d(124, "vivco-suboptions", "binary", long=True, rfc="RFC 3925"),
    _d(125, "vivso-suboptions", "binary", long=True, rfc="RFC 3925"),
    _d(136, "pana-agent", _IP, array=True, rfc="RFC 5192"),
    _d(137, "v4-lost", "fqdn", rfc="RFC 5223"),
    _d(138, "capwap-ac-v4", _IP, array=True, rfc="RFC 5417"),
    _d(141, "sip-ua-cs-domains", "fqdn", array=True, compress=True, long=True, rfc="RFC 6011"),
    _d(146, "rdnss-selection", "binary", rfc="RFC 6731"),
    _d(159, "v4-portparams", "binary", rfc="RFC 7618"),
    _d(212, "option-6rd", "binary", rfc="RFC 5969"),
    _d(213, "v4-access-domain", "fqdn", rfc="RFC 5986"),
)

_BY_CODE: Mapping[int, OptionDef] = MappingProxyType({d.code: d for d in OPTION_DEFS})
_BY_NAME: Mapping[str, OptionDef] = MappingProxyType({d.name: d for d in OPTION_DEFS})

#: Options the server itself puts in replies (or that only clients and relays send), rejected in
#: option-data, with the reason shown to the operator.
SERVER_CONTROLLED: Mapping[int, str] = MappingProxyType(
    {
        0: "pad is not an option",
        255: "end is not an option",
        50: "requested address is a client option, never sent by a server",
        51: "the lease time is set by the server from valid-lifetime "
        "(and min-/max-valid-lifetime)",
        52: "option overload is decided by the server when a reply does not fit",
        53: "the message type is set by the server for each reply",
        54: "the server identifier is set by the server (server.server-id or the receiving "
        "address)",
        55: "the parameter request list is a client option, never sent by a server",
        58: "the renewal time (T1) is set by the server from renew-timer",
        59: "the rebinding time (T2) is set by the server from rebind-timer",
        61: "the client identifier is the client's; the server echoes it (RFC 6842)",
        82: "relay agent information is added by relays and echoed by the server (RFC 3046)",
    }
)

_INT_RANGES = {
    "uint8": (0, 0xFF, ">B"),
    "uint16": (0, 0xFFFF, ">H"),
    "uint32": (0, 0xFFFFFFFF, ">I"),
    "int32": (-0x80000000, 0x7FFFFFFF, ">i"),
}

# RFC 2132 2: options carry at most 255 bytes; longer values are only accepted for the options
# whose RFCs expect RFC 3396 concatenation, and never beyond what any reply could carry.
_MAX_SHORT = 255
_MAX_LONG = 1200

_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_HEX_SEP = re.compile(r"[\s:.-]")


def format_value(value: object, limit: int = 80) -> str:
    """Render a config value TOML-like for problem lines: strings quoted, ``true``/``false``."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        # single quotes as TOML literal strings; double quotes when the text has a ' itself
        text = f"'{value}'" if "'" not in value else '"' + value.replace('"', '\\"') + '"'
    elif isinstance(value, (bytes, bytearray)):
        text = "'" + bytes(value).hex() + "'"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(format_value(v, limit) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {format_value(v, limit)}" for k, v in value.items()) + "}"
    else:
        text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class _Bad(Exception):
    """An encoding problem inside one option: becomes one ConfigError line."""


def option_def(key: str | int) -> OptionDef | None:
    """The definition for a Kea name or a code (int or decimal str), or None if unnamed."""
    if isinstance(key, int) and not isinstance(key, bool):
        return _BY_CODE.get(key)
    if isinstance(key, str):
        if key.isdecimal():
            return _BY_CODE.get(int(key))
        return _BY_NAME.get(key)
    return None


def option_name(code: int) -> str:
    """Kea's name for ``code``, or the decimal code as text when the option has no name."""
    d = _BY_CODE.get(code)
    return d.name if d is not None else str(code)


def _resolve(key: str | int) -> tuple[int, OptionDef | None, bool]:
    """(code, definition, given-by-code) for an option-data key; raises _Bad."""
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise _Bad("option key must be a Kea option name or a decimal code")
    if isinstance(key, int) or key.strip().isdecimal():
        code = int(key)
        if not 0 <= code <= 255:
            raise _Bad("option code must be 1 to 254")
        return code, _BY_CODE.get(code), True
    d = _BY_NAME.get(key)
    if d is None:
        close = difflib.get_close_matches(key.lower().replace("_", "-"), list(_BY_NAME), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise _Bad(f"unknown option name{hint} (give a decimal code with hex data for others)")
    return d.code, d, False


def encode_option(key: str | int, value: object) -> tuple[int, bytes]:
    """Encode one option-data entry into ``(code, payload)``.

    ``key`` is a Kea option name or a decimal code (``str`` or ``int``). A value given by code,
    and the value of any ``binary`` option, is hex text. Raises ``ConfigError`` with one line
    ``option-data.KEY: value 'V': reason``.
    """
    try:
        return _encode(key, value)
    except _Bad as exc:
        raise ConfigError(_line(f"option-data.{key}", value, str(exc))) from None


def encode_option_data(mapping: object, path: str = "option-data",
                       defs: tuple[OptionDef, ...] = ()) -> dict[int, bytes]:
    """Encode a whole ``option-data`` table into ``{code: payload}``, sorted by code.

    ``defs`` are a client class's own definitions (:func:`custom_option_def`): options 43 and
    224-254 of space ``dhcp4`` by their names and types, and the sub-options of 43 and 125
    (see :func:`_encode`). Every bad entry is reported (one ``ConfigError`` with a line each);
    an option named twice (by name and by code) is a problem too.
    """
    if not isinstance(mapping, dict):
        hint = (" (Kea's list of { name, data } entries is written here as name = value)"
                if isinstance(mapping, list) else "")
        raise ConfigError(_line(
            path, mapping, f"option-data must be a table of option name (or code) = value{hint}"
        ))
    out: dict[int, bytes] = {}
    seen: dict[int, str] = {}
    problems: list[str] = []
    for key, value in mapping.items():
        try:
            code, payload = _encode(key, value, defs)
        except _Bad as exc:
            problems.append(_line(f"{path}.{key}", value, str(exc)))
            continue
        if code in seen:
            problems.append(
                _line(f"{path}.{key}", value, f"option {code} is also given as '{seen[code]}'")
            )
            continue
        seen[code] = str(key)
        out[code] = payload
    if problems:
        raise ConfigError(problems)
    return dict(sorted(out.items()))


def _line(path: str, value: object, reason: str) -> str:
    return f"{path}: value {format_value(value)}: {reason}"


def _encode(key: str | int, value: object,
            defs: tuple[OptionDef, ...] = ()) -> tuple[int, bytes]:
    """One option-data entry. Besides a value of its type, option 43 takes a table of
    sub-option = value (RFC 2132 8.4: code, length, data each) and option 125 a table of
    enterprise number = table of sub-options (RFC 3925 3); a sub-option is named by a class's
    definition in the matching space, or given by code with hex data."""
    local = _local_def(key, defs)
    if local is None:
        code, d, by_code = _resolve(key)
        # a class's definition of this code (by its standard name or number) redefines it
        local = _local_def(code, defs)
    if local is not None:
        code, d, by_code = local.code, local, False
    if code in SERVER_CONTROLLED:
        raise _Bad(f"option {code} cannot be set in option-data: {SERVER_CONTROLLED[code]}")
    limit = _MAX_LONG  # 43 and 125 may span instances (RFC 3396)
    if code == 43 and (isinstance(value, dict) or (d is not None and d.type == "empty")):
        payload = _enc_vendor_encapsulated(value, d, defs)
    elif code == 125 and isinstance(value, dict):
        payload = _enc_vivso(value, defs)
    elif by_code or d is None or d.type == "binary":
        payload = _hex(value)
        limit = _MAX_LONG
    else:
        payload = _ENCODERS[d.type](d, value)
        limit = _MAX_LONG if d.long else _MAX_SHORT
    if len(payload) > limit:
        raise _Bad(
            f"encodes to {len(payload)} bytes, more than the {limit} this option may carry"
        )
    return code, payload


# -- value parsers ---------------------------------------------------------------------------


def _hex(value: object) -> bytes:
    if not isinstance(value, str):
        raise _Bad("must be hex text such as '0a0b0c' or '0a:0b:0c'")
    text = value.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    text = _HEX_SEP.sub("", text)
    if len(text) % 2:
        raise _Bad("hex text has an odd number of digits")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _Bad("not hex text (digits 0-9, a-f; ':' or spaces between bytes)") from None


def _items(d: OptionDef, value: object) -> list[object]:
    """The values of an array option: a TOML array, or one comma-separated string."""
    if isinstance(value, str):
        items: list[object] = [v.strip() for v in value.split(",")]
    elif isinstance(value, list):
        items = list(value)
    else:
        items = [value]
    if not items or items == [""]:
        raise _Bad("needs at least one value")
    return items


def ipv4(text: object) -> int:
    """Parse dotted-quad IPv4 text into a host-order int; raises ValueError with a reason.

    Accepts what ``ipaddress.IPv4Address`` accepts (four decimal octets, no leading zeros),
    several times faster: a config may hold 100k reservations.
    """
    if not isinstance(text, str):
        raise ValueError("must be an IPv4 address in dotted-quad text")
    parts = text.strip().split(".")
    value = 0
    if len(parts) == 4:
        for part in parts:
            if not (part.isascii() and part.isdigit()) or len(part) > 3 or (
                    len(part) > 1 and part[0] == "0"):
                break
            octet = int(part)
            if octet > 255:
                break
            value = (value << 8) | octet
        else:
            return value
    raise ValueError(f"'{text}' is not an IPv4 address")


def _ip(item: object) -> int:
    try:
        return ipv4(item)
    except ValueError as exc:
        raise _Bad(str(exc)) from None


def _enc_ipv4(d: OptionDef, value: object) -> bytes:
    if not d.array:
        if isinstance(value, list):
            raise _Bad("takes one IPv4 address, not a list")
        return struct.pack(">I", _ip(value))
    addrs: list[int] = []
    for item in _items(d, value):
        if d.pairs and isinstance(item, str) and "-" in item:
            # "destination - router" (33) / "address - mask" (21) written as one pair
            a, _, b = item.partition("-")
            addrs += [_ip(a), _ip(b)]
        else:
            addrs.append(_ip(item))
    if d.pairs:
        if len(addrs) % 2:
            raise _Bad("takes pairs of addresses (an even number), e.g. '10.0.0.0 - 192.0.2.1'")
        if d.code == 33 and any(addrs[i] == 0 for i in range(0, len(addrs), 2)):
            raise _Bad("0.0.0.0 is not a valid static-routes destination (RFC 2132 5.8); "
                       "use routers or classless-static-route for a default route")
    return struct.pack(f">{len(addrs)}I", *addrs)


def _int(d: OptionDef, item: object) -> int:
    if isinstance(item, bool):
        raise _Bad(f"must be an integer ({d.type})")
    if isinstance(item, str) and re.fullmatch(r"\s*-?\d+\s*", item):
        item = int(item)
    if not isinstance(item, int):
        raise _Bad(f"must be an integer ({d.type})")
    lo, hi, _ = _INT_RANGES[d.type]
    lo = d.min if d.min is not None else lo
    hi = d.max if d.max is not None else hi
    if not lo <= item <= hi:
        raise _Bad(f"{item} is out of range {lo} to {hi}")
    if d.choices and item not in d.choices:
        raise _Bad(f"must be one of {', '.join(map(str, d.choices))}")
    return item


def _enc_int(d: OptionDef, value: object) -> bytes:
    fmt = _INT_RANGES[d.type][2]
    if not d.array:
        if isinstance(value, list):
            raise _Bad(f"takes one {d.type}, not a list")
        return struct.pack(fmt, _int(d, value))
    return b"".join(struct.pack(fmt, _int(d, v)) for v in _items(d, value))


def _enc_bool(d: OptionDef, value: object) -> bytes:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        value = value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise _Bad("must be true or false")
    return b"\x01" if value else b"\x00"


def _check_domain(text: str) -> list[str]:
    """Labels of a DNS name (RFC 1035 2.3.4 limits; letters, digits, '-' and '_')."""
    name = text.strip()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise _Bad("empty domain name")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise _Bad("empty label in domain name")
        if len(label) > 63:
            raise _Bad(f"label '{label[:20]}...' is longer than 63 bytes")
        if not _LABEL.match(label):
            raise _Bad(f"label '{label}' has characters other than letters, digits, '-', '_' "
                       "or starts/ends with '-'")
    if sum(len(x) + 1 for x in labels) + 1 > 255:
        raise _Bad("domain name is longer than 255 bytes on the wire")
    return labels


def _enc_string(d: OptionDef, value: object) -> bytes:
    if not isinstance(value, str):
        raise _Bad("must be a string")
    if not value:
        raise _Bad("must not be empty (RFC 2132: minimum length 1)")
    if any(not 0x20 <= ord(c) < 0x7F for c in value):
        raise _Bad("must be printable ASCII (NVT ASCII, RFC 2132 2)")
    if d.domain:
        _check_domain(value)
    return value.encode("ascii")


def encode_domain_list(names: list[str], compress: bool = True) -> bytes:
    """Encode DNS names in RFC 1035 3.1 form, one after another, as option 119 carries them.

    With ``compress`` a name's suffix already written is replaced by a pointer (RFC 1035 4.1.4),
    offsets counted from the start of the option data (RFC 3397 section 2). Suffixes match
    case-insensitively, as DNS names compare. Raises ValueError for a bad name.
    """
    try:
        return _encode_names(names, compress)
    except _Bad as exc:
        raise ValueError(str(exc)) from None


def _encode_names(names: list[str], compress: bool) -> bytes:
    out = bytearray()
    suffixes: dict[tuple[str, ...], int] = {}
    for name in names:
        if not isinstance(name, str):
            raise _Bad("domain names must be strings")
        labels = _check_domain(name)
        for i in range(len(labels)):
            key = tuple(x.lower() for x in labels[i:])
            if compress and key in suffixes:
                out += struct.pack(">H", 0xC000 | suffixes[key])
                break
            # pointers hold 14-bit offsets: a suffix further in cannot be pointed at
            if compress and len(out) < 0x4000:
                suffixes[key] = len(out)
            raw = labels[i].encode("ascii")
            out.append(len(raw))
            out += raw
        else:
            out.append(0)
    return bytes(out)


def _enc_fqdn(d: OptionDef, value: object) -> bytes:
    if not d.array:
        if not isinstance(value, str):
            raise _Bad("must be one domain name")
        return _encode_names([value], False)
    names = _items(d, value)
    if any(not isinstance(n, str) for n in names):
        raise _Bad("must be a list of domain names")
    return _encode_names([str(n) for n in names], d.compress)


def _route(item: object) -> tuple[int, int, int]:
    if not isinstance(item, str) or "-" not in item:
        raise _Bad(f"route {format_value(item)} must be 'network/length - router'")
    net_text, _, router_text = item.partition("-")
    try:
        net = ipaddress.IPv4Network(net_text.strip(), strict=True)
    except ValueError as exc:
        if "host bits" in str(exc):
            raise _Bad(f"route destination '{net_text.strip()}' has host bits set") from None
        raise _Bad(f"route destination '{net_text.strip()}' is not network/length") from None
    return int(net.network_address), net.prefixlen, _ip(router_text)


def encode_classless_routes(routes: list[tuple[int, int, int]]) -> bytes:
    """RFC 3442 section 2: per route, the prefix length, then only the significant octets of
    the destination (``ceil(width / 8)``), then the 4-byte router."""
    out = bytearray()
    for dest, width, router in routes:
        out.append(width)
        out += struct.pack(">I", dest)[: (width + 7) // 8]
        out += struct.pack(">I", router)
    return bytes(out)


def _enc_classless(d: OptionDef, value: object) -> bytes:
    return encode_classless_routes([_route(item) for item in _items(d, value)])


# -- vendor options (RFC 2132 8.4, RFC 3925) and class-local definitions -----------------------

DHCP4_SPACE = "dhcp4"
VENDOR_ENCAPSULATED_SPACE = "vendor-encapsulated-options-space"
"""Kea's space of option 43's sub-options (unless a class's 43 encapsulates another)."""
_VENDOR_SPACE = re.compile(r"^vendor-([0-9]+)$")
#: Types a class-local definition may have (Kea's names; "empty" only for 43 encapsulating).
_DEF_TYPES = ("binary", "string", "fqdn", "ipv4-address", "boolean", "uint8", "uint16",
              "uint32", "int32", "empty")


def custom_option_def(name: object, code: object, type_: object, space: object = DHCP4_SPACE,
                      encapsulate: object = "", array: object = False) -> OptionDef:
    """A client class's ``option-def`` entry as an :class:`OptionDef`, checked.

    Space ``dhcp4``: only codes 43 and 224-254 (Kea: other codes are standard options); 43
    may be ``type = "empty"`` with ``encapsulate`` naming its sub-options' space. Space
    ``vendor-encapsulated-options-space`` (or any space a 43 encapsulates): 43's sub-options,
    codes 1-254. Space ``vendor-<enterprise>``: 125's sub-options for that enterprise, codes
    1-254. Raises ``ValueError("key: reason")`` naming the entry's key at fault.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("name: an option definition needs a name")
    if not isinstance(space, str) or not space:
        raise ValueError("space: must be a space name, e.g. 'vendor-encapsulated-options-space'")
    if isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 254:
        raise ValueError("code: must be an integer 1 to 254")
    if space == DHCP4_SPACE:
        if code != 43 and not 224 <= code <= 254:
            raise ValueError(
                f"code: a class may only define option 43 or 224-254 (Kea: Not allowed option "
                f"definition for code '{code}' in space 'dhcp4')")
        std = _BY_NAME.get(name)
        if std is not None and std.code != code:
            raise ValueError(f"name: '{name}' is option {std.code}'s name")
    else:
        m = _VENDOR_SPACE.match(space)
        if m is not None and not 1 <= int(m.group(1)) <= 0xFFFFFFFF:
            raise ValueError("space: the enterprise number of vendor-<enterprise> must be 1 to "
                             "4294967295")
    if type_ not in _DEF_TYPES:
        raise ValueError(f"type: {format_value(type_)} is not one of {', '.join(_DEF_TYPES)}")
    if not isinstance(encapsulate, str):
        raise ValueError("encapsulate: must be a space name")
    if encapsulate and not (space == DHCP4_SPACE and code == 43 and type_ == "empty"):
        raise ValueError("encapsulate: only option 43 of type 'empty' carries another space's "
                         "sub-options here")
    if type_ == "empty" and not (space == DHCP4_SPACE and code == 43):
        raise ValueError("type: 'empty' is for option 43 carrying sub-options (with "
                         "encapsulate)")
    if not isinstance(array, bool):
        raise ValueError("array: must be true or false")
    if array and type_ in ("binary", "string", "empty"):
        raise ValueError(f"array: an array of {type_} has no item boundaries (Kea has none)")
    return OptionDef(code, name, str(type_), array=array, space=space,
                     encapsulate=encapsulate or (VENDOR_ENCAPSULATED_SPACE
                                                 if type_ == "empty" else ""),
                     long=code == 43)


def _local_def(key: object, defs: tuple[OptionDef, ...]) -> OptionDef | None:
    """A class's own dhcp4 definition named ``key`` (or of code ``key``), or None."""
    for d in defs:
        if d.space == DHCP4_SPACE and (d.name == key or str(d.code) == str(key).strip()):
            return d
    return None  # (a class's names come first: they may be any of its own)


def _sub_options(value: object, space: str, defs: tuple[OptionDef, ...], what: str) -> bytes:
    """A table of sub-option = value as TLVs (code, length, data), in the table's order."""
    if not isinstance(value, dict) or not value:
        raise _Bad(f"{what}: must be a table of sub-option name (of an option-def in space "
                   f"'{space}') or code = value")
    by_name = {d.name: d for d in defs if d.space == space}
    by_code = {d.code: d for d in defs if d.space == space}
    out = bytearray()
    seen: set[int] = set()
    for key, item in value.items():
        if str(key).strip().isdecimal():
            code = int(key)
            if not 1 <= code <= 254:
                raise _Bad(f"{what}: sub-option code {code} is not 1 to 254")
            d = by_code.get(code)
        else:
            d = by_name.get(str(key))
            if d is None:
                close = difflib.get_close_matches(str(key), list(by_name), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise _Bad(f"{what}: sub-option '{key}' has no option-def in space "
                           f"'{space}'{hint} (or give it by code with hex data)")
            code = d.code
        if code in seen:
            raise _Bad(f"{what}: sub-option {code} given twice")
        seen.add(code)
        try:
            data = _hex(item) if d is None or d.type == "binary" else _ENCODERS[d.type](d, item)
        except _Bad as exc:
            raise _Bad(f"{what}: sub-option {key} = {format_value(item)}: {exc}") from None
        if len(data) > _MAX_SHORT:
            raise _Bad(f"{what}: sub-option {key} encodes to {len(data)} bytes, more than the "
                       f"{_MAX_SHORT} its length byte can say")
        out += bytes((code, len(data))) + data
    return bytes(out)


def _enc_vendor_encapsulated(value: object, d: OptionDef | None,
                             defs: tuple[OptionDef, ...]) -> bytes:
    """Option 43 from sub-options (RFC 2132 8.4: "encapsulated vendor-specific options")."""
    space = d.encapsulate if d is not None and d.encapsulate else VENDOR_ENCAPSULATED_SPACE
    return _sub_options(value, space, defs, "vendor-encapsulated-options")


def _enc_vivso(value: object, defs: tuple[OptionDef, ...]) -> bytes:
    """Option 125 (RFC 3925 3): per enterprise, its 4-byte number, a length byte, and its
    sub-options (space ``vendor-<enterprise>``), enterprises in the table's order."""
    assert isinstance(value, dict)
    if not value:
        raise _Bad("vivso-suboptions: give at least one enterprise number = { sub-options }")
    out = bytearray()
    for ent, subs in value.items():
        text = str(ent).strip()
        if not text.isdecimal() or not 1 <= int(text) <= 0xFFFFFFFF:
            raise _Bad(f"vivso-suboptions: '{ent}' is not an enterprise number 1 to 4294967295")
        data = _sub_options(subs, f"vendor-{int(text)}", defs, f"vivso-suboptions.{text}")
        if len(data) > _MAX_SHORT:
            raise _Bad(f"vivso-suboptions.{text}: the enterprise's sub-options take "
                       f"{len(data)} bytes, more than the {_MAX_SHORT} of its data-len byte "
                       "(RFC 3925 3)")
        out += struct.pack(">IB", int(text), len(data)) + data
    return bytes(out)


_ENCODERS = {
    _IP: _enc_ipv4,
    "uint8": _enc_int,
    "uint16": _enc_int,
    "uint32": _enc_int,
    "int32": _enc_int,
    "boolean": _enc_bool,
    "string": _enc_string,
    "fqdn": _enc_fqdn,
    "classless-route": _enc_classless,
}


# -- display -----------------------------------------------------------------------------------


def _read_name(data: bytes, pos: int) -> tuple[str, int]:
    """Decode one RFC 1035 name at ``pos`` (following pointers); returns (name, next pos)."""
    labels: list[str] = []
    end = -1
    hops = 0
    while True:
        n = data[pos]
        if n & 0xC0 == 0xC0:
            if end < 0:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | data[pos + 1]
            hops += 1
            if hops > 64:
                raise ValueError("pointer loop")
            continue
        if n == 0:
            return ".".join(labels), (end if end >= 0 else pos + 1)
        if n > 63 or pos + 1 + n > len(data):
            raise ValueError("bad label")
        labels.append(data[pos + 1 : pos + 1 + n].decode("ascii"))
        pos += 1 + n


def decode_option(code: int, data: bytes) -> object:
    """Decode an option payload for display (``fastdhcp leases``, logs).

    Returns addresses as dotted text (a list for array types), integers, booleans, strings,
    domain-name lists, ``'net/len - router'`` strings for option 121, and hex text for binary,
    unknown or malformed data. Never raises.
    """
    d = _BY_CODE.get(code)
    data = bytes(data)
    if d is None or d.type == "binary":
        return data.hex()
    try:
        if d.type == _IP:
            if len(data) % 4 or not data:
                raise ValueError
            addrs = [str(ipaddress.IPv4Address(data[i : i + 4])) for i in range(0, len(data), 4)]
            return addrs if d.array else (addrs[0] if len(addrs) == 1 else addrs)
        if d.type in _INT_RANGES:
            fmt = _INT_RANGES[d.type][2]
            size = struct.calcsize(fmt)
            if len(data) % size or not data:
                raise ValueError
            vals = [struct.unpack(fmt, data[i : i + size])[0] for i in range(0, len(data), size)]
            return vals if d.array else (vals[0] if len(vals) == 1 else vals)
        if d.type == "boolean":
            if len(data) != 1:
                raise ValueError
            return data != b"\x00"
        if d.type == "string":
            return data.decode("ascii")
        if d.type == "fqdn":
            names = []
            pos = 0
            while pos < len(data):
                name, pos = _read_name(data, pos)
                names.append(name)
            return names if d.array else names[0]
        if d.type == "classless-route":
            routes = []
            pos = 0
            while pos < len(data):
                width = data[pos]
                n = (width + 7) // 8
                if width > 32 or pos + 1 + n + 4 > len(data):
                    raise ValueError
                dest = data[pos + 1 : pos + 1 + n] + bytes(4 - n)
                router = data[pos + 1 + n : pos + 5 + n]
                routes.append(
                    f"{ipaddress.IPv4Address(dest)}/{width} - {ipaddress.IPv4Address(router)}"
                )
                pos += 5 + n
            return routes
    except (ValueError, IndexError, UnicodeDecodeError):
        pass
    return data.hex()
