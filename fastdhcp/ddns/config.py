"""``[ddns]``: client name handling and dynamic DNS updates, under Kea's names, validated whole.

The name behaviour keys are Kea 2.2's global ``ddns-*`` and ``hostname-char-*`` parameters (their
defaults are what a stock Kea 2.2 reports in ``config-get``: prefix ``myhost``, replace
``never``, no qualifying suffix, send updates on, conflict resolution on). The DNS side is Kea's
D2 (``kea-dhcp-ddns``) configuration folded into the same table, since fastdhcp sends its
updates itself: ``[[ddns.tsig-keys]]``, ``[ddns.forward-ddns]`` and ``[ddns.reverse-ddns]``
each with ``[[...ddns-domains]]`` (``name``, ``key-name``, ``dns-servers``), and D2's
``dns-server-timeout``. Kea 2.2's ``ddns-use-conflict-resolution`` (a boolean) and later Kea's
``ddns-conflict-resolution-mode`` are both understood; giving both is refused.

A TSIG secret is read from ``secret-file`` (Kea 2.6's key); a ``secret`` in clear is refused,
as fastdhcp refuses every clear-text credential in its config (the config document is what
``config-get`` shows).

Every problem goes to the ``bad(path, value, reason)`` callback of fastdhcp.config, with its key
path, so that one load reports them all.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.tsig

from fastdhcp.sections import Bad, CheckKeys, ProblemCount, open_table, take_bools, take_ints

__all__ = [
    "ConflictMode", "DDNS_KEYS", "DdnsConfig", "DdnsDomain", "DnsServer", "DOMAIN_KEYS",
    "ReplaceClientName", "SERVER_KEYS", "TSIG_KEY_KEYS", "TsigKey", "parse",
]


class ReplaceClientName(enum.Enum):
    """``ddns-replace-client-name``: when the server's own name replaces the client's."""

    NEVER = "never"  #: use the client's name; none sent, none generated
    ALWAYS = "always"  #: always the generated name, whether the client sent one or not
    WHEN_PRESENT = "when-present"  #: a sent name is replaced; none sent, none generated
    WHEN_NOT_PRESENT = "when-not-present"  #: use the client's name; none sent, generate one


class ConflictMode(enum.Enum):
    """``ddns-conflict-resolution-mode`` (Kea 2.2's ``ddns-use-conflict-resolution = true`` is
    ``check-with-dhcid``, ``false`` is ``no-check-with-dhcid``)."""

    CHECK_WITH_DHCID = "check-with-dhcid"  #: RFC 4703: the DHCID must match to replace/remove
    NO_CHECK_WITH_DHCID = "no-check-with-dhcid"  #: overwrite, but still write the DHCID
    CHECK_EXISTS_WITH_DHCID = "check-exists-with-dhcid"  #: a DHCID must exist, any value
    NO_CHECK_WITHOUT_DHCID = "no-check-without-dhcid"  #: overwrite, no DHCID records at all


#: The TSIG algorithms accepted, by Kea's names (RFC 8945 section 6: HMAC-MD5 is deprecated,
#: HMAC-SHA256 mandatory; MD5 and SHA1 are still accepted for old DNS servers).
ALGORITHMS: dict[str, dns.name.Name] = {
    "HMAC-MD5": dns.tsig.HMAC_MD5,
    "HMAC-SHA1": dns.tsig.HMAC_SHA1,
    "HMAC-SHA224": dns.tsig.HMAC_SHA224,
    "HMAC-SHA256": dns.tsig.HMAC_SHA256,
    "HMAC-SHA384": dns.tsig.HMAC_SHA384,
    "HMAC-SHA512": dns.tsig.HMAC_SHA512,
}


@dataclass(frozen=True, slots=True)
class TsigKey:
    """One ``[[ddns.tsig-keys]]`` entry: a TSIG key (RFC 8945) shared with DNS servers."""

    name: str
    """The key's name, as the DNS server knows it (a domain name, e.g. ``dhcp-key.``)."""
    algorithm: str
    """One of HMAC-MD5, HMAC-SHA1, HMAC-SHA224, HMAC-SHA256, HMAC-SHA384, HMAC-SHA512."""
    secret_file: str
    """File holding the base64 secret (first line)."""
    secret: bytes = field(default=b"", repr=False)
    """The decoded secret read from ``secret_file``; never shown (repr)."""

    @property
    def algorithm_name(self) -> dns.name.Name:
        """The algorithm as dnspython's TSIG algorithm name."""
        return ALGORITHMS[self.algorithm]


@dataclass(frozen=True, slots=True)
class DnsServer:
    """One ``dns-servers`` entry of a domain."""

    ip_address: str
    """The server's IPv4 or IPv6 address (text)."""
    port: int = 53
    """UDP and TCP port."""


@dataclass(frozen=True, slots=True)
class DdnsDomain:
    """One ``ddns-domains`` entry: a zone updates go to (forward or reverse)."""

    name: dns.name.Name
    """The zone's apex, absolute (``example.net.``, ``2.0.192.in-addr.arpa.``)."""
    servers: tuple[DnsServer, ...]
    """Where the zone's updates are sent, tried in order on failure."""
    key: TsigKey | None = None
    """The TSIG key that signs the updates; None sends them unsigned."""


@dataclass(frozen=True, slots=True)
class DdnsConfig:
    """``[ddns]``: name handling (Kea's ``ddns-*``) and the updates' destinations (Kea's D2)."""

    enable_updates: bool = True
    """Send DNS updates at all (Kea's ``dhcp-ddns.enable-updates``); False still answers
    option 81, with N set (RFC 4702 section 4: the server will not update)."""
    send_updates: bool = True
    """``ddns-send-updates``: update DNS for clients (False behaves as enable-updates off)."""
    override_client_update: bool = False
    """``ddns-override-client-update``: do the forward update even when the client asked to do
    it itself (option 81 S=0), telling it so with O=1."""
    override_no_update: bool = False
    """``ddns-override-no-update``: update even when the client asked for no update (N=1)."""
    replace_client_name: ReplaceClientName = ReplaceClientName.NEVER
    """``ddns-replace-client-name``: never, always, when-present, when-not-present."""
    generated_prefix: str = "myhost"
    """``ddns-generated-prefix``: generated names are ``<prefix>-<a>-<b>-<c>-<d>.<suffix>``."""
    qualifying_suffix: str = ""
    """``ddns-qualifying-suffix``: appended to partial names (a single label, or option 81's
    partial form); empty leaves a partial name as it is."""
    update_on_renew: bool = False
    """``ddns-update-on-renew``: send the updates again on every renewal, not only when the
    name or the address changed."""
    conflict_mode: ConflictMode = ConflictMode.CHECK_WITH_DHCID
    """``ddns-conflict-resolution-mode`` (or Kea 2.2's ``ddns-use-conflict-resolution``)."""
    hostname_char_set: str = "[^A-Za-z0-9.-]"
    """``hostname-char-set``: a regular expression; every match in a client's name is replaced
    (empty: no sanitising)."""
    hostname_char_replacement: str = ""
    """``hostname-char-replacement``: what replaces each ``hostname-char-set`` match."""
    tsig_keys: tuple[TsigKey, ...] = ()
    """``[[ddns.tsig-keys]]``."""
    forward_domains: tuple[DdnsDomain, ...] = ()
    """``[ddns.forward-ddns]``'s ``ddns-domains``: zones for A and DHCID records."""
    reverse_domains: tuple[DdnsDomain, ...] = ()
    """``[ddns.reverse-ddns]``'s ``ddns-domains``: zones for PTR and DHCID records."""
    max_queue_size: int = 1024
    """``max-queue-size`` (Kea's dhcp-ddns default): updates waiting to be sent; one more is
    dropped and counted (``queue-mgr-queue-full``)."""
    dns_server_timeout: int = 500
    """``dns-server-timeout`` (Kea D2's, ms): how long one update waits for its answer."""
    max_retries: int = 3
    """Attempts after the first one for an update that timed out or failed to send (the next
    server of the domain each time)."""
    retry_backoff: int = 500
    """``retry-backoff`` (ms): the wait before the first retry; doubled at each further one."""

    @property
    def updates_on(self) -> bool:
        """True when the server sends updates (both switches on)."""
        return self.enable_updates and self.send_updates

    def forward_domain(self, fqdn: dns.name.Name) -> DdnsDomain | None:
        """The forward domain whose zone holds ``fqdn`` (the longest match), or None."""
        return _best(self.forward_domains, fqdn)

    def reverse_domain(self, ptr_name: dns.name.Name) -> DdnsDomain | None:
        """The reverse domain whose zone holds ``ptr_name`` (the longest match), or None."""
        return _best(self.reverse_domains, ptr_name)


def _best(domains: tuple[DdnsDomain, ...], name: dns.name.Name) -> DdnsDomain | None:
    best: DdnsDomain | None = None
    for d in domains:
        if name.is_subdomain(d.name) and (best is None or len(d.name) > len(best.name)):
            best = d
    return best


DDNS_KEYS = (
    "enable-updates", "ddns-send-updates", "ddns-override-client-update",
    "ddns-override-no-update", "ddns-replace-client-name", "ddns-generated-prefix",
    "ddns-qualifying-suffix", "ddns-update-on-renew", "ddns-use-conflict-resolution",
    "ddns-conflict-resolution-mode", "hostname-char-set", "hostname-char-replacement",
    "tsig-keys", "forward-ddns", "reverse-ddns", "max-queue-size", "dns-server-timeout",
    "max-retries", "retry-backoff",
)
TSIG_KEY_KEYS = ("name", "algorithm", "secret-file")
DOMAIN_KEYS = ("name", "key-name", "dns-servers")
SERVER_KEYS = ("ip-address", "port")

_BOOLS = {
    "enable-updates": "enable_updates", "ddns-send-updates": "send_updates",
    "ddns-override-client-update": "override_client_update",
    "ddns-override-no-update": "override_no_update", "ddns-update-on-renew": "update_on_renew",
}
_INTS = {  # key -> (attribute, lowest, highest)
    "max-queue-size": ("max_queue_size", 1, 1_000_000),
    "dns-server-timeout": ("dns_server_timeout", 1, 60_000),
    "max-retries": ("max_retries", 0, 100),
    "retry-backoff": ("retry_backoff", 0, 3_600_000),
}
# RFC 1035 2.3.1 letters, digits, hyphen; the prefix is one label of a generated name.
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def parse(raw: object, bad: Bad, check_keys: CheckKeys) -> DdnsConfig | None:
    """Validate ``[ddns]``; every problem goes to ``bad``; None if there was any."""
    path = "ddns"
    opened = open_table(raw, path, DDNS_KEYS, "[ddns]", bad, check_keys)
    if opened is None:
        return None
    raw, count = opened
    kw: dict[str, Any] = {}
    take_bools(raw, path, _BOOLS, count, kw)
    take_ints(raw, path, _INTS, count, kw)
    if "ddns-replace-client-name" in raw:
        v = raw["ddns-replace-client-name"]
        try:
            kw["replace_client_name"] = ReplaceClientName(v)
        except ValueError:
            count.bad(f"{path}.ddns-replace-client-name", v, "must be one of "
                      + ", ".join(m.value for m in ReplaceClientName))
    _conflict_mode(raw, path, count, kw)
    _names(raw, path, count, kw)
    keys = _tsig_keys(raw.get("tsig-keys", []), f"{path}.tsig-keys", count, check_keys)
    kw["tsig_keys"] = tuple(keys.values())
    for key, attr, reverse in (("forward-ddns", "forward_domains", False),
                               ("reverse-ddns", "reverse_domains", True)):
        if key in raw:
            kw[attr] = _domains(raw[key], f"{path}.{key}", keys, reverse, count, check_keys)
    if count.n:
        return None
    return DdnsConfig(**kw)


def _conflict_mode(raw: dict[str, Any], path: str, count: ProblemCount, kw: dict[str, Any]) -> None:
    old, new = "ddns-use-conflict-resolution", "ddns-conflict-resolution-mode"
    if old in raw and new in raw:
        count.bad(f"{path}.{old}", raw[old], f"give {new} or {old} (Kea 2.2's), not both")
    elif old in raw:
        if not isinstance(raw[old], bool):
            count.bad(f"{path}.{old}", raw[old], "must be true or false")
        else:
            kw["conflict_mode"] = (ConflictMode.CHECK_WITH_DHCID if raw[old]
                                   else ConflictMode.NO_CHECK_WITH_DHCID)
    elif new in raw:
        try:
            kw["conflict_mode"] = ConflictMode(raw[new])
        except ValueError:
            count.bad(f"{path}.{new}", raw[new],
                      "must be one of " + ", ".join(m.value for m in ConflictMode))


def _names(raw: dict[str, Any], path: str, count: ProblemCount, kw: dict[str, Any]) -> None:
    if "ddns-generated-prefix" in raw:
        v = raw["ddns-generated-prefix"]
        if not isinstance(v, str) or not _LABEL.match(v) or len(v) > 47:
            # 47 + "-255-255-255-255" (16) = 63, the longest DNS label (RFC 1035 2.3.4)
            count.bad(f"{path}.ddns-generated-prefix", v, "must be one DNS label of letters, "
                      "digits and inner hyphens, at most 47 characters")
        else:
            kw["generated_prefix"] = v
    if "ddns-qualifying-suffix" in raw:
        v = raw["ddns-qualifying-suffix"]
        if not isinstance(v, str):
            count.bad(f"{path}.ddns-qualifying-suffix", v, "must be a domain name (text)")
        elif v.strip(".") and _domain_name(v, f"{path}.ddns-qualifying-suffix", count) is None:
            pass
        else:
            kw["qualifying_suffix"] = v.strip(".")
    if "hostname-char-set" in raw:
        v = raw["hostname-char-set"]
        try:
            if not isinstance(v, str):
                raise TypeError
            re.compile(v)
            kw["hostname_char_set"] = v
        except (TypeError, re.error) as exc:
            why = f": {exc}" if isinstance(exc, re.error) else ""
            count.bad(f"{path}.hostname-char-set", v, f"must be a regular expression{why}")
    if "hostname-char-replacement" in raw:
        v = raw["hostname-char-replacement"]
        if not isinstance(v, str) or (v and not re.fullmatch(r"[A-Za-z0-9-]+", v)):
            count.bad(f"{path}.hostname-char-replacement", v,
                      "must be letters, digits or hyphens (or empty: matches are removed)")
        else:
            kw["hostname_char_replacement"] = v


def _domain_name(v: object, path: str, count: ProblemCount) -> dns.name.Name | None:
    if not isinstance(v, str) or not v.strip("."):
        count.bad(path, v, "must be a domain name, e.g. 'example.net.'")
        return None
    try:
        return dns.name.from_text(v)
    except dns.exception.DNSException as exc:
        count.bad(path, v, f"not a domain name: {exc}")
        return None


def _tsig_keys(raw: object, path: str, count: ProblemCount,
               check_keys: CheckKeys) -> dict[str, TsigKey]:
    out: dict[str, TsigKey] = {}
    if not isinstance(raw, list):
        count.bad(path, raw, "must be an array of tables: write [[ddns.tsig-keys]]")
        return out
    for i, t in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            count.bad(p, t, "must be a table")
            continue
        check_keys({k: v for k, v in t.items() if k != "secret"}, p, TSIG_KEY_KEYS,
                   "[[ddns.tsig-keys]]")
        if "secret" in t:  # answered without echoing the value
            count.bad(f"{p}.secret", "(not shown)", "a TSIG secret in clear in the config is "
                      "refused: put it (base64) in a file named by secret-file")
        name = t.get("name")
        if _domain_name(name, f"{p}.name", count) is None:
            continue
        assert isinstance(name, str)
        if name in out:
            count.bad(f"{p}.name", name, "two tsig-keys have this name")
        algo = t.get("algorithm", "HMAC-SHA256")
        if not isinstance(algo, str) or algo.upper() not in ALGORITHMS:
            count.bad(f"{p}.algorithm", algo, "must be one of " + ", ".join(ALGORITHMS))
            continue
        secret = _secret(t.get("secret-file"), f"{p}.secret-file", count)
        if secret is not None:
            out[name] = TsigKey(name, algo.upper(), t["secret-file"], secret)
    return out


def _secret(value: object, path: str, count: ProblemCount) -> bytes | None:
    if not isinstance(value, str) or not value:
        count.bad(path, value, "must name the file holding the key's base64 secret")
        return None
    try:
        with open(value, encoding="ascii") as f:
            text = f.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        count.bad(path, value, f"cannot be read: {why}")
        return None
    try:
        secret = base64.b64decode(text, validate=True)
    except binascii.Error:
        secret = b""
    if not secret:
        count.bad(path, value, "does not hold a base64 secret on its first line")
        return None
    return secret


def _domains(raw: object, path: str, keys: dict[str, TsigKey], reverse: bool, count: ProblemCount,
             check_keys: CheckKeys) -> tuple[DdnsDomain, ...]:
    if not isinstance(raw, dict):
        count.bad(path, raw, "must be a table with ddns-domains")
        return ()
    check_keys(raw, path, ("ddns-domains",), f"[{path}]")
    entries = raw.get("ddns-domains", [])
    path = f"{path}.ddns-domains"
    if not isinstance(entries, list):
        count.bad(path, entries, f"must be an array of tables: write [[{path}]]")
        return ()
    out: list[DdnsDomain] = []
    seen: set[dns.name.Name] = set()
    for i, t in enumerate(entries):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            count.bad(p, t, "must be a table")
            continue
        check_keys(t, p, DOMAIN_KEYS, f"[[{path}]]")
        name = _domain_name(t.get("name"), f"{p}.name", count)
        if name is None:
            continue
        if reverse and not name.is_subdomain(dns.name.from_text("in-addr.arpa.")):
            count.bad(f"{p}.name", t["name"], "a reverse zone for IPv4 is under in-addr.arpa.")
        if name in seen:
            count.bad(f"{p}.name", t["name"], "two domains have this name")
        seen.add(name)
        key = None
        if "key-name" in t:
            key = keys.get(t["key-name"]) if isinstance(t["key-name"], str) else None
            if key is None:
                count.bad(f"{p}.key-name", t["key-name"],
                          f"no tsig-keys entry has this name (known: {', '.join(keys) or '-'})")
        servers = _servers(t.get("dns-servers"), f"{p}.dns-servers", count, check_keys)
        if servers:
            out.append(DdnsDomain(name, servers, key))
    return tuple(out)


def _servers(raw: object, path: str, count: ProblemCount,
             check_keys: CheckKeys) -> tuple[DnsServer, ...]:
    if not isinstance(raw, list) or not raw:
        count.bad(path, raw, "must list the zone's servers, e.g. "
                  "[{ ip-address = \"192.0.2.53\" }]")
        return ()
    out: list[DnsServer] = []
    for i, t in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            count.bad(p, t, "must be a table such as { ip-address = \"192.0.2.53\" }")
            continue
        check_keys(t, p, SERVER_KEYS, "a dns-servers entry")
        ip = t.get("ip-address")
        try:
            if not isinstance(ip, str):
                raise ValueError
            ipaddress.ip_address(ip)
        except ValueError:
            count.bad(f"{p}.ip-address", ip, "must be an IP address (text)")
            continue
        port = t.get("port", 53)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            count.bad(f"{p}.port", port, "must be an integer from 1 to 65535")
            continue
        out.append(DnsServer(ip, port))
    return tuple(out)
