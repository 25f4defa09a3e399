"""``[high-availability]``: Kea's HA hook parameters under Kea's names, validated whole.

Reference: kea-ha.md section 6 (the Kea config used) and Kea 2.2's documented defaults. Times are
milliseconds as in Kea (``heartbeat-delay = 10000``); the model keeps them as Kea's integers and
offers seconds where the service needs them.

A pair config that cannot work is refused at load, with the key and the value at fault: no peer
named ``this-server-name``, two primaries, a ``standby`` in load-balancing mode, a ``secondary``
in hot-standby mode, a URL that is not ``http(s)://host:port/``, a password file that cannot be
read, TLS files on a plain-HTTP URL, a ``max-response-delay`` not above ``heartbeat-delay``.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

from fastdhcp.sections import Bad, CheckKeys, ProblemCount, open_table, take_bools, take_ints

__all__ = ["HAConfig", "HAMode", "HA_KEYS", "PEER_KEYS", "PeerConfig", "Role", "parse"]


class HAMode(enum.Enum):
    """``mode``: who serves whom while both peers run."""

    LOAD_BALANCING = "load-balancing"  #: each peer serves its half of the clients (the hash)
    HOT_STANDBY = "hot-standby"  #: the primary serves all; the standby waits for partner-down


class Role(enum.Enum):
    """``peers[].role``."""

    PRIMARY = "primary"
    SECONDARY = "secondary"  #: load-balancing only
    STANDBY = "standby"  #: hot-standby only
    BACKUP = "backup"  #: receives lease updates, never serves (not an HA partner)


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One ``[[high-availability.peers]]`` entry (this server is one of them)."""

    name: str
    """The peer's name; also the name of the load-balancing scope it serves."""
    url: str
    """The peer's HTTP control socket, ``http(s)://host:port/`` (where its commands go)."""
    role: Role
    """primary, secondary (load-balancing), standby (hot-standby) or backup."""
    auto_failover: bool = True
    """On this server's own entry: take the partner's scope by itself in partner-down (else
    only an operator's command does)."""
    basic_auth_user: str | None = None
    """HTTP basic authentication user sent to this peer."""
    basic_auth_password_file: str | None = None
    """File holding that user's password (first line; a clear-text password is refused)."""
    trust_anchor: str | None = None
    """HTTPS: CA file the peer's certificate must chain to (system CAs when unset)."""
    cert_file: str | None = None
    """HTTPS: the client certificate presented to the peer."""
    key_file: str | None = None
    """HTTPS: the client certificate's private key."""

    @property
    def host(self) -> str:
        """The URL's host (what Kea sends in ``Host:``, without the port)."""
        return urllib.parse.urlsplit(self.url).hostname or ""


@dataclass(frozen=True, slots=True)
class HAConfig:
    """``[high-availability]``: one HA relationship (Kea's ``high-availability[0]``)."""

    this_server_name: str
    """Which of :attr:`peers` this server is."""
    mode: HAMode
    """``load-balancing`` or ``hot-standby``."""
    peers: tuple[PeerConfig, ...]
    """Every server of the relationship, this one included, in config order."""
    heartbeat_delay: int = 10000
    """ms between heartbeats to the partner."""
    max_response_delay: int = 60000
    """ms without a good contact after which communication counts as interrupted."""
    max_ack_delay: int = 10000
    """ms: a partner-scope client whose ``secs`` exceeds it counts as unacked."""
    max_unacked_clients: int = 10
    """Unacked clients tolerated; one more (with communication interrupted) is partner-down.
    0: partner-down as soon as communication is interrupted."""
    max_rejected_lease_updates: int = 10
    """Lease updates the partner may reject (result 1) before this server stops counting them
    as transient (0: unlimited)."""
    delayed_updates_limit: int = 100
    """Load-balancing: lease updates queued in communication-recovery; more means a full sync
    on return (0: no communication-recovery state)."""
    sync_leases: bool = True
    """Fetch the partner's leases at start-up (waiting -> syncing -> ready)."""
    sync_timeout: int = 60000
    """ms a sync may take; also the ``max-period`` (in s) of the partner's dhcp-disable."""
    sync_page_limit: int = 10000
    """Leases per ``lease4-get-page`` request."""
    send_lease_updates: bool = True
    """Send each lease change to the partner (and hold the ACK until it answers)."""
    wait_backup_ack: bool = False
    """Hold the ACK for backup servers' answers too."""

    @property
    def this_peer(self) -> PeerConfig:
        """This server's own entry."""
        for p in self.peers:
            if p.name == self.this_server_name:
                return p
        raise AssertionError("validated: this-server-name is a peer")

    @property
    def partner(self) -> PeerConfig | None:
        """The other active server (primary <-> secondary/standby); None for a backup."""
        me = self.this_peer
        if me.role is Role.BACKUP:
            return None
        for p in self.peers:
            if p.name != me.name and p.role is not Role.BACKUP:
                return p
        return None

    @property
    def backups(self) -> tuple[PeerConfig, ...]:
        """The backup servers (other than this one)."""
        return tuple(p for p in self.peers
                     if p.role is Role.BACKUP and p.name != self.this_server_name)

    @property
    def active_peers(self) -> tuple[PeerConfig, ...]:
        """The primary first, then the secondary/standby: the order of the load-balancing
        hash's server index (0 = primary, kea-ha.md section 5)."""
        order = {Role.PRIMARY: 0, Role.SECONDARY: 1, Role.STANDBY: 1}
        return tuple(sorted((p for p in self.peers if p.role is not Role.BACKUP),
                            key=lambda p: order[p.role]))

    @property
    def scope_names(self) -> tuple[str, ...]:
        """The scopes the clients are spread over, by the load-balancing hash's server index:
        both active peers in load-balancing, the primary alone in hot-standby (every client is
        in its scope). The state machine's scopes and the engine's ``HA_<name>`` classes."""
        names = tuple(p.name for p in self.active_peers)
        return names[:1] if self.mode is HAMode.HOT_STANDBY else names


HA_KEYS = (
    "this-server-name", "mode", "heartbeat-delay", "max-response-delay", "max-ack-delay",
    "max-unacked-clients", "max-rejected-lease-updates", "delayed-updates-limit",
    "sync-leases", "sync-timeout", "sync-page-limit", "send-lease-updates",
    "wait-backup-ack", "peers",
)
PEER_KEYS = (
    "name", "url", "role", "auto-failover", "basic-auth-user", "basic-auth-password-file",
    "trust-anchor", "cert-file", "key-file",
)
_MS_KEYS = {  # key -> (attribute, lowest, highest)
    "heartbeat-delay": ("heartbeat_delay", 1, 3_600_000),
    "max-response-delay": ("max_response_delay", 1, 3_600_000),
    "max-ack-delay": ("max_ack_delay", 1, 3_600_000),
    "max-unacked-clients": ("max_unacked_clients", 0, 1_000_000),
    "max-rejected-lease-updates": ("max_rejected_lease_updates", 0, 1_000_000),
    "delayed-updates-limit": ("delayed_updates_limit", 0, 1_000_000),
    "sync-timeout": ("sync_timeout", 1000, 86_400_000),
    "sync-page-limit": ("sync_page_limit", 1, 1_000_000),
}
_BOOL_KEYS = {"sync-leases": "sync_leases", "send-lease-updates": "send_lease_updates",
              "wait-backup-ack": "wait_backup_ack"}


def parse(raw: object, bad: Bad, check_keys: CheckKeys) -> HAConfig | None:
    """Validate ``[high-availability]``; every problem goes to ``bad``; None if any."""
    path = "high-availability"
    if isinstance(raw, list):  # Kea's JSON shape: a list of relationships; one is supported
        if len(raw) != 1:
            bad(path, raw, "one HA relationship is supported: write one [high-availability]")
            return None
        raw = raw[0]
    opened = open_table(raw, path, HA_KEYS, "[high-availability]", bad, check_keys)
    if opened is None:
        return None
    raw, count = opened
    kw: dict[str, Any] = {}
    name = raw.get("this-server-name")
    if not isinstance(name, str) or not name:
        count.bad(f"{path}.this-server-name", name, "must name this server's peer entry")
    mode_raw = raw.get("mode", None)
    mode: HAMode | None = None
    try:
        mode = HAMode(mode_raw)
    except ValueError:
        count.bad(f"{path}.mode", mode_raw, "must be 'load-balancing' or 'hot-standby'")
    take_ints(raw, path, _MS_KEYS, count, kw)
    take_bools(raw, path, _BOOL_KEYS, count, kw)
    hb = kw.get("heartbeat_delay", 10000)
    mrd = kw.get("max_response_delay", 60000)
    if mrd <= hb:
        count.bad(f"{path}.max-response-delay", mrd,
                  f"must be greater than heartbeat-delay ({hb}): a partner is declared "
                  "unreachable only after heartbeats had the chance to fail")
    peers = _peers(raw.get("peers"), f"{path}.peers", count, check_keys)
    if peers is not None and isinstance(name, str) and name:
        _pair_checks(peers, name, mode, path, count)
    if count.n or peers is None or mode is None or not isinstance(name, str):
        return None
    return HAConfig(this_server_name=name, mode=mode, peers=peers, **kw)




def _peers(raw: object, path: str, count: ProblemCount,
           check_keys: CheckKeys) -> tuple[PeerConfig, ...] | None:
    if not isinstance(raw, list) or not raw:
        count.bad(path, raw, "must list the servers: write [[high-availability.peers]]")
        return None
    out: list[PeerConfig] = []
    names: set[str] = set()
    before = count.n
    for i, t in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(t, dict):
            count.bad(p, t, "must be a table")
            continue
        peer = _peer(t, p, count, check_keys)
        if peer is None:
            continue
        if peer.name in names:
            count.bad(f"{p}.name", peer.name, "two peers have this name")
        names.add(peer.name)
        out.append(peer)
    return tuple(out) if count.n == before else None


def _peer(t: dict[str, Any], p: str, count: ProblemCount,
          check_keys: CheckKeys) -> PeerConfig | None:
    before = count.n
    # (the clear-text password key is answered below, without echoing its value)
    check_keys({k: v for k, v in t.items() if k != "basic-auth-password"}, p, PEER_KEYS,
               "[[high-availability.peers]]")
    if "basic-auth-password" in t:
        count.bad(f"{p}.basic-auth-password", "(not shown)",
                  "a password in clear in the config is refused: put it in a file named by "
                  "basic-auth-password-file")
    name = t.get("name")
    if not isinstance(name, str) or not name.strip():
        count.bad(f"{p}.name", name, "must be a non-empty string")
    role_raw = t.get("role")
    role: Role | None = None
    try:
        role = Role(role_raw)
    except ValueError:
        count.bad(f"{p}.role", role_raw, "must be one of primary, secondary, standby, backup")
    url = t.get("url")
    scheme = _url(url, f"{p}.url", count)
    kw: dict[str, Any] = {}
    if "auto-failover" in t:
        if not isinstance(t["auto-failover"], bool):
            count.bad(f"{p}.auto-failover", t["auto-failover"], "must be true or false")
        else:
            kw["auto_failover"] = t["auto-failover"]
    user = t.get("basic-auth-user")
    pwfile = t.get("basic-auth-password-file")
    if user is not None:
        if not isinstance(user, str) or not user or ":" in user:
            count.bad(f"{p}.basic-auth-user", user, "must be a non-empty string without ':'")
        else:
            kw["basic_auth_user"] = user
        if pwfile is None:
            count.bad(f"{p}.basic-auth-user", user, "needs basic-auth-password-file")
    if pwfile is not None:
        if user is None:
            count.bad(f"{p}.basic-auth-password-file", pwfile, "needs basic-auth-user")
        elif _readable(pwfile, f"{p}.basic-auth-password-file", count):
            kw["basic_auth_password_file"] = pwfile
    for key, attr in (("trust-anchor", "trust_anchor"), ("cert-file", "cert_file"),
                      ("key-file", "key_file")):
        if key in t:
            if scheme == "http":
                count.bad(f"{p}.{key}", t[key], "TLS files need an https:// url")
            elif _readable(t[key], f"{p}.{key}", count):
                kw[attr] = t[key]
    if ("cert-file" in t) != ("key-file" in t):
        key = "cert-file" if "cert-file" in t else "key-file"
        count.bad(f"{p}.{key}", t[key], "cert-file and key-file go together")
    if count.n > before or role is None or not isinstance(name, str):
        return None
    assert isinstance(url, str)
    return PeerConfig(name=name, url=url, role=role, **kw)


def _url(url: object, path: str, count: ProblemCount) -> str | None:
    if not isinstance(url, str):
        count.bad(path, url, "must be the peer's control socket URL, e.g. "
                  "'http://192.0.2.1:8000/'")
        return None
    parts = urllib.parse.urlsplit(url)
    why = None
    try:
        port = parts.port
    except ValueError:
        port = None
        why = "the port is not a number from 1 to 65535"
    if parts.scheme not in ("http", "https"):
        why = "must start with http:// or https://"
    elif not parts.hostname:
        why = "has no host"
    elif why is None and port is None:
        why = "must give the port (Kea's peers talk to a control socket, e.g. :8000)"
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        why = "must have no path, query or fragment (commands are POSTed to /)"
    elif parts.username or parts.password:
        why = "must not carry credentials (use basic-auth-user and basic-auth-password-file)"
    else:
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            if not all(c.isalnum() or c in "-." for c in parts.hostname):
                why = "the host is neither an address nor a DNS name"
    if why is not None:
        count.bad(path, url, why)
        return None
    return parts.scheme


def _readable(value: object, path: str, count: ProblemCount) -> bool:
    if not isinstance(value, str) or not value:
        count.bad(path, value, "must be a file path")
        return False
    try:
        with open(value, "rb"):
            pass
    except OSError as exc:
        count.bad(path, value, f"cannot be read: {exc.strerror or exc}")
        return False
    if os.path.isdir(value) and not path.endswith("trust-anchor"):
        count.bad(path, value, "is a directory")
        return False
    return True


def _pair_checks(peers: tuple[PeerConfig, ...], name: str, mode: HAMode | None, path: str,
                 count: ProblemCount) -> None:
    names = [p.name for p in peers]
    if name not in names:
        count.bad(f"{path}.this-server-name", name,
                  f"no peer has this name (peers: {', '.join(names)})")
    by_role: dict[Role, list[int]] = {}
    for i, p in enumerate(peers):
        by_role.setdefault(p.role, []).append(i)
    prim = by_role.get(Role.PRIMARY, [])
    if len(prim) > 1:
        count.bad(f"{path}.peers[{prim[1]}].role", "primary",
                  f"two primaries ({peers[prim[0]].name} and {peers[prim[1]].name})")
    elif not prim:
        count.bad(f"{path}.peers", names, "no peer has role 'primary'")
    if mode is None:
        return
    wanted, wrong = ((Role.SECONDARY, Role.STANDBY) if mode is HAMode.LOAD_BALANCING
                     else (Role.STANDBY, Role.SECONDARY))
    for i in by_role.get(wrong, []):
        count.bad(f"{path}.peers[{i}].role", wrong.value,
                  f"a {wrong.value} has no place in {mode.value} mode (use {wanted.value})")
    mates = by_role.get(wanted, [])
    if len(mates) > 1:
        count.bad(f"{path}.peers[{mates[1]}].role", wanted.value,
                  f"two {wanted.value} servers: a relationship has one partner")
    elif not mates and not by_role.get(wrong):
        count.bad(f"{path}.peers", names,
                  f"{mode.value} needs a peer with role '{wanted.value}'")
