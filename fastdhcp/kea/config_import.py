"""Kea's ``Dhcp4`` configuration -> fastdhcp's (the TOML file's document).

Kea and fastdhcp share most key names (subnet4, pools, reservations, valid-lifetime ...), so
the mapping is mostly structural: Kea's option-data *list* of ``{name|code, data, csv-format}``
becomes fastdhcp's table of ``name = value``; a shared network's subnets become subnets naming
the network, each with the network's options and lifetimes under its own (Kea's inheritance:
subnet over shared network over global); ``interfaces-config`` and ``authoritative`` go to
``[server]``, ``control-socket(s)`` to ``[[control-sockets]]``, the HA hook's parameters to
``[high-availability]``, the global ``ddns-*`` / ``hostname-char-*`` keys and ``dhcp-ddns``'s
``enable-updates`` / ``max-queue-size`` to ``[ddns]`` (fastdhcp.kea.ddns_map; per-subnet
values are reported, fastdhcp's ``[ddns]`` being global).

Every Kea key is accounted for, with its JSON path (``Dhcp4.subnet4[2].pools[0].client-class``):

- carried: the fastdhcp document has it (perhaps in another shape);
- a :attr:`FindingKind.NOTE`: not carried because fastdhcp does the same without a setting, or
  the setting is Kea's default behaviour anyway (``lfc-interval``: LMDB has no lease file to
  compact). Written as comments at the top of the TOML file;
- :attr:`FindingKind.UNSUPPORTED`: a behaviour fastdhcp does not have (a hook library,
  ``always-send``). The command exits 1 unless ``--allow-unsupported``.

Client classes (``client-classes``, the ``client-class`` / ``require-client-classes`` guards,
reservation ``client-classes``) carry over key for key; option-data in an option space
(sub-options of a class-local option 43, or of option 125 in ``vendor-<enterprise>``) is packed
into the bytes Kea sends, as hex of option 43 or 125 (fastdhcp has no option spaces).

Nothing is dropped silently and nothing is guessed: a value that cannot be carried exactly is
unsupported, not approximated.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any

from fastdhcp import config as fd_config
from fastdhcp.ddns import config as ddns_config
from fastdhcp.errors import ConfigError
from fastdhcp.ha.config import HA_KEYS, PEER_KEYS
from fastdhcp.kea.ddns_map import D2_CLIENT_KEYS, D2_LINK_KEYS, NAME_KEYS, kea_defaults
from fastdhcp.kea.option_defs import CustomDef, encode_csv, parse_def
from fastdhcp.options import OptionDef, encode_option, option_def

__all__ = ["Finding", "FindingKind", "KeaImport", "convert", "DEFAULT_DB_PATH"]

DEFAULT_DB_PATH = "/var/lib/fastdhcp"

_LIFETIMES = ("valid-lifetime", "min-valid-lifetime", "max-valid-lifetime", "renew-timer",
              "rebind-timer", "offer-lifetime", "decline-probation-period")
_LOG_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARN": "warning", "WARNING": "warning",
               "ERROR": "error", "FATAL": "error", "NONE": "error"}
#: A guard: Kea 2.2's one class name, Kea 3's list (either class admits).
_GUARD_KEYS = ("client-class", "client-classes")
#: Required classes: Kea 2.2's name, Kea 3's.
_REQUIRED_KEYS = ("require-client-classes", "evaluate-additional-classes")
#: Class keys carried as they are (config.py checks them again).
_CLASS_PLAIN = ("name", "test", "next-server", "server-hostname", "boot-file-name",
                "valid-lifetime", "min-valid-lifetime", "max-valid-lifetime", "user-context",
                "comment")
#: siaddr / sname / file, Kea's names at every level.
_FIXED = ("next-server", "server-hostname", "boot-file-name")
#: Option 43 (vendor-encapsulated-options) and 125 (vivso-suboptions), the two options whose
#: sub-options Kea takes from an option space.
_VENDOR_43, _VIVSO = 43, 125
#: Kea's T1/T2 percentages when calculate-tee-times is on, and fastdhcp's fixed ones.
_TEE_DEFAULTS = {"t1-percent": 0.5, "t2-percent": 0.875}


class FindingKind(enum.Enum):
    """What became of a Kea key that is not carried one to one."""

    NOTE = "note"  #: fastdhcp does the same without the key (or the key says the default)
    UNSUPPORTED = "unsupported"  #: a behaviour fastdhcp lacks: refused unless allowed


@dataclass(frozen=True, slots=True)
class Finding:
    """One Kea key not carried as it is, and why."""

    kind: FindingKind
    path: str  #: JSON path in the Kea file: ``Dhcp4.subnet4[0].option-data[1].always-send``
    reason: str

    def line(self) -> str:
        """The report line: ``unsupported: PATH: reason``."""
        return f"{self.kind.value}: {self.path}: {self.reason}"


@dataclass(slots=True)
class KeaImport:
    """The fastdhcp document made from a Kea config, and what was not carried."""

    document: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    @property
    def unsupported(self) -> list[Finding]:
        """The findings that make the import fail unless allowed."""
        return [f for f in self.findings if f.kind is FindingKind.UNSUPPORTED]


@dataclass(slots=True)
class _Level:
    """What a shared network passes down to its subnets (Kea's inheritance)."""

    options: dict[int, tuple[str, Any]] = field(default_factory=dict)
    lifetimes: dict[str, Any] = field(default_factory=dict)
    authoritative: bool | None = None
    interface: str | None = None
    relay: list[str] | None = None
    name: str | None = None
    client_class: str | None = None  #: the network's guard, given to each of its subnets
    required: list[str] = field(default_factory=list)  #: require-client-classes, in order
    fixed: dict[str, str] = field(default_factory=dict)  #: next-server & co., inherited


class _Converter:
    """One conversion: walks the Kea document, fills the fastdhcp one and the findings."""

    def __init__(self, db_path: str | None) -> None:
        self.findings: list[Finding] = []
        self.db_path = db_path
        self.server: dict[str, Any] = {}
        self.global_: dict[str, Any] = {}
        self.subnets: list[dict[str, Any]] = []
        self.control_sockets: list[dict[str, Any]] = []
        self.ha: dict[str, Any] | None = None
        #: The [ddns] table carried from Kea's DDNS keys (None: nothing to carry).
        self.ddns: dict[str, Any] | None = None
        #: The first reservation of each identifier (per shared network, else per subnet) and
        #: of each address: (scope, kind, value) -> its JSON path.
        self.reserved: dict[tuple[str, str, str], str] = {}
        #: Kea's option-def entries fastdhcp can encode, by name and by code.
        self.defs: dict[str | int, CustomDef] = {}
        #: Sub-option definitions of other option spaces (``cwmp``, ``vendor-3561``): space ->
        #: name or code -> definition.
        self.space_defs: dict[str, dict[str | int, CustomDef]] = {}
        self.classes: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ findings

    def note(self, path: str, reason: str) -> None:
        self.findings.append(Finding(FindingKind.NOTE, path, reason))

    def unsupported(self, path: str, reason: str) -> None:
        self.findings.append(Finding(FindingKind.UNSUPPORTED, path, reason))

    def _type(self, path: str, value: object, want: type | tuple[type, ...],
              what: str) -> bool:
        if isinstance(value, want) and not (want is int and isinstance(value, bool)):
            return True
        self.unsupported(path, f"expected {what}, found {type(value).__name__} {value!r}")
        return False

    # ------------------------------------------------------------------ top level

    def run(self, kea: object) -> dict[str, Any]:
        if not isinstance(kea, dict) or "Dhcp4" not in kea:
            raise ConfigError("the Kea file has no \"Dhcp4\" map: not a kea-dhcp4 config")
        for key in kea:
            if key != "Dhcp4":
                self.note(key, "not the DHCPv4 server's configuration (another Kea daemon's "
                               "section): not imported")
        d4 = kea["Dhcp4"]
        if not isinstance(d4, dict):
            raise ConfigError("Dhcp4: must be a map")
        # Kea's global hooks first: HA may need to know nothing else, but a missing hook
        # explains the commands it would have served.
        # Definitions before any option-data that uses them, wherever they are in the file.
        self._option_defs("Dhcp4.option-def", d4.get("option-def", []))
        self.ddns = self._ddns(d4)  # before the subnets: theirs are compared with it
        for key, value in d4.items():
            if key != "option-def":
                self._global_key(f"Dhcp4.{key}", key, value)
        doc: dict[str, Any] = {}
        if self.server:
            doc["server"] = self.server
        doc["lease-database"] = {"path": self.db_path or DEFAULT_DB_PATH, "sync": True}
        if self.global_:
            doc["global"] = self.global_
        if self.control_sockets:
            doc["control-sockets"] = self.control_sockets
        if self.ha is not None:
            doc["high-availability"] = self.ha
        if self.classes:
            doc["client-classes"] = self.classes
        if self.ddns is not None:
            doc["ddns"] = self.ddns
        doc["subnet4"] = self.subnets
        return doc

    def _global_key(self, path: str, key: str, value: Any) -> None:  # noqa: C901 - a table
        if key in _LIFETIMES:
            if self._type(path, value, int, "an integer"):
                self.global_[key] = value
        elif key == "option-data":
            opts = self._options(path, value)
            if opts:
                self.global_["option-data"] = _option_table(opts)
        elif key == "subnet4":
            if self._type(path, value, list, "a list of subnets"):
                for i, s in enumerate(value):
                    self._subnet(f"{path}[{i}]", s, _Level())
        elif key == "client-classes":
            if self._type(path, value, list, "a list of client classes"):
                for i, c in enumerate(value):
                    self._client_class(f"{path}[{i}]", c)
        elif key == "shared-networks":
            if self._type(path, value, list, "a list of shared networks"):
                for i, net in enumerate(value):
                    self._shared_network(f"{path}[{i}]", net)
        elif key == "authoritative":
            if self._type(path, value, bool, "true or false"):
                self.server["authoritative"] = value
        elif key == "interfaces-config":
            self._interfaces(path, value)
        elif key == "control-socket":
            self._control_socket(path, value)
        elif key == "control-sockets":
            if self._type(path, value, list, "a list of control sockets"):
                for i, sock in enumerate(value):
                    self._control_socket(f"{path}[{i}]", sock)
        elif key == "lease-database":
            self._lease_database(path, value)
        elif key == "hooks-libraries":
            if self._type(path, value, list, "a list of hook libraries"):
                for i, hook in enumerate(value):
                    self._hook(f"{path}[{i}]", hook)
        elif key == "loggers":
            self._loggers(path, value)
        elif key == "reservations":
            if value:
                self.unsupported(path, "global reservations: fastdhcp keeps reservations per "
                                       "subnet (move each into the subnet of its address)")
        elif key == "hosts-database" or key == "hosts-databases":
            self.unsupported(path, "a host database: fastdhcp reads reservations from its "
                                   "config and from reservation-add (LMDB) only")
        elif key == "dhcp-ddns" or key in NAME_KEYS:
            pass  # carried into [ddns] or reported by _ddns
        elif key in _FIXED:
            if self._fixed(path, key, value, fd_config.GLOBAL_KEYS):
                self.global_[key] = value
        elif key == "server-tag":
            self.note(path, "a config-backend tag: fastdhcp has no config backend")
        else:
            self._parameter(path, key, value)

    # ------------------------------------------------------------------ shared parameters

    def _parameter(self, path: str, key: str, value: Any) -> None:  # noqa: C901 - a table
        """A key Kea allows at the global, shared-network and subnet levels (and the global
        ones with no fastdhcp equivalent): a note or an unsupported finding."""
        if key in ("comment", "user-context"):
            self.note(path, "a comment for people: not carried into the TOML")
        elif key == "match-client-id":
            if value is False:
                self.unsupported(path, "fastdhcp always identifies a client by its client-id "
                                       "(option 61) when it sends one")
            else:
                self.note(path, "true is fastdhcp's behaviour")
        elif key == "echo-client-id":
            if value is False:
                self.unsupported(path, "fastdhcp always echoes the client-id (RFC 6842)")
            else:
                self.note(path, "true is fastdhcp's behaviour (RFC 6842)")
        elif key == "calculate-tee-times":
            self.note(path, "fastdhcp sends renew and rebind times at 50% and 87.5% of the "
                            "lease unless renew-timer / rebind-timer set them (RFC 2131 4.4.5)")
        elif key in _TEE_DEFAULTS:
            if value == _TEE_DEFAULTS[key]:
                self.note(path, "the percentage fastdhcp uses")
            else:
                self.unsupported(path, "fastdhcp's renew/rebind percentages are fixed at 50% "
                                       "and 87.5% (set renew-timer / rebind-timer instead)")
        elif key in ("client-class", "require-client-classes", "evaluate-additional-classes",
                     "client-classes"):
            # carried where Kea allows them (subnet, pool, shared network, reservation)
            self.unsupported(path, "not a place Kea or fastdhcp takes a class guard")
        elif key.startswith("ddns-") or key.startswith("hostname-char-"):
            self._ddns_local(path, key, value)
        elif key in ("reservations-in-subnet", "reservations-out-of-pool",
                     "reservation-mode", "reservations-global", "ip-reservations-unique",
                     "early-global-reservations-lookup", "host-reservation-identifiers"):
            self._reservation_mode(path, key, value)
        elif key in ("store-extended-info",):
            self.note(path, "fastdhcp keeps option 82 of every lease (relay-info) always")
        elif key in ("cache-threshold", "cache-max-age"):
            self.note(path, "lease caching: fastdhcp renews every lease in the group commit "
                            "(the cost Kea's cache avoids is an fsync, shared here)")
        elif key in ("multi-threading", "dhcp-queue-control", "parked-packet-limit",
                     "statistic-default-sample-count", "statistic-default-sample-age",
                     "sanity-checks", "expired-leases-processing", "dhcp4o6-port",
                     "compatibility", "lease-checks"):
            self._engine_setting(path, key, value)
        elif key.startswith("4o6-"):
            if value:
                self.unsupported(path, "fastdhcp has no DHCPv4-over-DHCPv6")
            else:
                self.note(path, "empty")
        else:
            self.unsupported(path, "no fastdhcp equivalent")

    # ------------------------------------------------------------------ DDNS

    def _ddns(self, d4: dict[str, Any]) -> dict[str, Any] | None:
        """Kea's global DDNS keys -> the [ddns] table (None when Kea's defaults with updates
        off: fastdhcp without [ddns] answers names as that Kea does)."""
        out: dict[str, Any] = {}
        where: dict[str, str] = {}  # [ddns] key -> its Kea path
        link = d4.get("dhcp-ddns")
        if link is not None and self._type("Dhcp4.dhcp-ddns", link, dict, "a map"):
            for key, value in link.items():
                p = f"Dhcp4.dhcp-ddns.{key}"
                if key in D2_CLIENT_KEYS:
                    out[key], where[key] = value, p
                elif key in D2_LINK_KEYS:
                    self.note(p, "addresses kea-dhcp-ddns: fastdhcp sends the DNS updates "
                                 "itself (its zones, servers and keys go in [ddns]: "
                                 "forward-ddns, reverse-ddns, tsig-keys)")
                elif key in ("comment", "user-context"):
                    self.note(p, "a comment for people: not carried into the TOML")
                else:
                    self.unsupported(p, "no fastdhcp [ddns] equivalent")
        for key in NAME_KEYS:
            if key in d4:
                out[key], where[key] = d4[key], f"Dhcp4.{key}"
        self._ddns_check(out, where)
        defaults = kea_defaults()
        if not out.get("enable-updates") and all(
                v == defaults[k] for k, v in out.items() if k != "enable-updates"):
            if out:
                self.note("Dhcp4.dhcp-ddns" if link is not None else next(iter(where.values())),
                          "DNS updates off and Kea's default name rules: no [ddns] needed "
                          "(fastdhcp answers options 12 and 81 as that Kea does without it)")
            return None
        out.setdefault("enable-updates", False)  # Kea's default; fastdhcp's [ddns] says on
        if out["enable-updates"]:
            self.note("Dhcp4.dhcp-ddns.enable-updates",
                      "updates on: copy the zones, DNS servers and TSIG keys of "
                      "kea-dhcp-ddns's config (DhcpDdns) into [ddns] (forward-ddns, "
                      "reverse-ddns, tsig-keys with secret-file); until then no zone matches "
                      "and no update is sent")
        return out

    def _ddns_check(self, out: dict[str, Any], where: dict[str, str]) -> None:
        """Drop from ``out`` what fastdhcp's [ddns] check refuses, reported at Kea's path."""
        refused: dict[str, str] = {}

        def bad(path: str, value: object, reason: str) -> None:
            key = path.split(".", 1)[1].split(".", 1)[0] if "." in path else path
            refused.setdefault(key, f"{value!r}: {reason}")

        def keys(table: dict[str, Any], path: str, allowed: tuple[str, ...],
                 what: str) -> None:
            for k in table:
                if k not in allowed:
                    bad(f"{path}.{k}", table[k], f"not a {what} key")

        ddns_config.parse(dict(out), bad, keys)
        if "ddns-use-conflict-resolution" in refused and "ddns-conflict-resolution-mode" in out:
            refused.pop("ddns-use-conflict-resolution")  # the pair: keep the newer key
            out.pop("ddns-use-conflict-resolution")
            self.note(where["ddns-use-conflict-resolution"],
                      "ddns-conflict-resolution-mode is given too: that one is carried")
        for key, reason in refused.items():
            if key in out:
                out.pop(key)
                self.unsupported(where[key], reason)

    def _ddns_local(self, path: str, key: str, value: Any) -> None:
        """A ddns-* / hostname-char-* key of a shared network or subnet (or a global one
        fastdhcp has no equivalent for): fastdhcp's [ddns] is one global table."""
        if key not in NAME_KEYS:
            self.unsupported(path, "no fastdhcp [ddns] equivalent")
            return
        have = (self.ddns or {}).get(key, NAME_KEYS[key])
        if value == have:
            self.note(path, "the same as the global value (fastdhcp's [ddns] is global)")
        else:
            self.unsupported(path, f"{value!r} here, {have!r} globally: fastdhcp's [ddns] "
                                   "is one global table (no per-subnet DDNS settings)")

    def _reservation_mode(self, path: str, key: str, value: Any) -> None:
        if key == "reservations-global" and value:
            self.unsupported(path, "fastdhcp has no global reservations")
        elif key == "reservation-mode" and value in ("disabled", "global"):
            self.unsupported(path, f"{value!r}: fastdhcp always honours subnet reservations")
        elif key == "reservations-in-subnet" and value is False:
            self.unsupported(path, "fastdhcp always honours subnet reservations")
        elif key == "ip-reservations-unique" and value is False:
            self.unsupported(path, "fastdhcp allows one reservation per address")
        elif key == "early-global-reservations-lookup" and value:
            self.unsupported(path, "fastdhcp has no global reservations")
        elif key == "host-reservation-identifiers":
            other = [v for v in value if v not in ("hw-address", "client-id", "circuit-id")] \
                if isinstance(value, list) else [value]
            self.note(path, "fastdhcp matches hw-address, then client-id, then circuit-id"
                      + (f" (not {', '.join(map(str, other))}: a reservation by those is "
                         "reported where it is)" if other else ""))
        else:
            self.note(path, "fastdhcp's behaviour: reservations inside or outside pools, "
                            "per subnet, one per address")

    def _engine_setting(self, path: str, key: str, value: Any) -> None:
        if key == "dhcp4o6-port" and value:
            self.unsupported(path, "fastdhcp has no DHCPv4-over-DHCPv6")
        elif key == "multi-threading":
            self.note(path, "fastdhcp's packet path is one compiled loop plus a writer thread "
                            "(docs/scaling.md for several workers)")
        elif key == "expired-leases-processing":
            self.note(path, "fastdhcp reclaims expired leases itself (engine reclaim), keeping "
                            "each client's affinity to its address")
        else:
            self.note(path, "tuning of Kea's own machinery: fastdhcp has no such setting")

    # ------------------------------------------------------------------ server level

    def _interfaces(self, path: str, value: Any) -> None:
        if not self._type(path, value, dict, "a map"):
            return
        for key, v in value.items():
            p = f"{path}.{key}"
            if key == "interfaces":
                if not self._type(p, v, list, "a list of interface names"):
                    continue
                names: list[str] = []
                for i, name in enumerate(v):
                    if not isinstance(name, str) or name == "*":
                        self.unsupported(f"{p}[{i}]", "'*' (every interface): fastdhcp serves "
                                                      "the interfaces it names")
                        continue
                    if "/" in name:
                        dev, _, addr = name.partition("/")
                        self.note(f"{p}[{i}]", f"{name!r}: fastdhcp serves all of {dev!r} "
                                               f"(address {addr} not singled out)")
                        name = dev
                    if name not in names:
                        names.append(name)
                if names:
                    self.server["interfaces"] = names
            elif key == "dhcp-socket-type":
                self.note(p, f"{v!r}: fastdhcp uses UDP sockets bound to each interface; it "
                             "answers clients without an address by broadcast")
            elif key in ("comment", "user-context"):
                self.note(p, "a comment for people: not carried")
            else:
                self.note(p, "socket tuning of Kea's: fastdhcp has no such setting")

    def _control_socket(self, path: str, value: Any) -> None:
        if not self._type(path, value, dict, "a map"):
            return
        sock: dict[str, Any] = {}
        for key, v in value.items():
            if key in ("socket-type", "socket-name", "socket-address", "socket-port",
                       "trust-anchor", "cert-file", "key-file", "cert-required",
                       "authentication", "max-connections", "idle-timeout"):
                sock[key] = v
            elif key in ("comment", "user-context"):
                self.note(f"{path}.{key}", "a comment for people: not carried")
            else:
                self.unsupported(f"{path}.{key}", "no fastdhcp control-socket equivalent")
        self.control_sockets.append(sock)

    def _lease_database(self, path: str, value: Any) -> None:
        if not self._type(path, value, dict, "a map"):
            return
        kind = value.get("type", "memfile")
        for key, v in value.items():
            p = f"{path}.{key}"
            if key == "type":
                if v != "memfile":
                    self.note(p, f"{v!r}: fastdhcp's leases live in LMDB; dump Kea's with "
                                 "'kea-admin lease-dump' to a memfile CSV and pass --leases")
                else:
                    self.note(p, "becomes [lease-database] (LMDB); import the lease file with "
                                 "--leases")
            elif key == "name" and kind == "memfile":
                self.note(p, f"Kea's lease file {v!r}: pass it (and its .2 file from LFC, "
                             "first) with --leases")
            elif key == "lfc-interval":
                self.note(p, "LMDB has no lease file to compact")
            elif key == "persist":
                if v is False:
                    self.note(p, "fastdhcp always persists leases (sync = true)")
            else:
                self.note(p, "a setting of Kea's lease backend: no LMDB equivalent needed")

    def _loggers(self, path: str, value: Any) -> None:
        if not self._type(path, value, list, "a list of loggers"):
            return
        for i, lg in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(lg, dict):
                self.unsupported(p, "expected a map")
                continue
            sev = str(lg.get("severity", "INFO")).upper()
            if lg.get("name") == "kea-dhcp4" and sev in _LOG_LEVELS:
                self.server["log-level"] = _LOG_LEVELS[sev]
                self.note(p, f"severity {sev} -> server.log-level; fastdhcp logs to stderr "
                             "(the service manager keeps the log), so output options are not "
                             "carried")
            else:
                self.note(p, "fastdhcp has one logger (server.log-level, to stderr)")

    def _hook(self, path: str, hook: Any) -> None:
        if not isinstance(hook, dict) or not isinstance(hook.get("library"), str):
            self.unsupported(path, "expected a map with a library")
            return
        lib = os.path.basename(hook["library"])
        if "libdhcp_lease_cmds" in lib or "libdhcp_stat_cmds" in lib \
                or "libdhcp_host_cmds" in lib:
            self.note(path, f"{lib}: its commands are built into fastdhcp's control channel")
        elif "libdhcp_ha" in lib:
            self._ha(f"{path}.parameters", hook.get("parameters"))
        elif "libdhcp_ping_check" in lib:
            self._ping_check(f"{path}.parameters", hook.get("parameters"))
        else:
            self.unsupported(path, f"{lib}: a hook library fastdhcp has no equivalent for")

    def _ping_check(self, path: str, params: Any) -> None:
        """Kea 2.6's ping_check hook -> the [global] ping-check keys (same names). Loaded, the
        hook checks unless told not to: ``enable-ping-check`` is written out either way."""
        params = params if isinstance(params, dict) else {}
        self.global_["enable-ping-check"] = params.get("enable-ping-check", True)
        for key, value in params.items():
            if key in ("enable-ping-check", "min-ping-requests", "reply-timeout",
                       "ping-cltt-secs"):
                self.global_[key] = value
            elif key == "ping-channel-threads":
                self.note(f"{path}.{key}", "fastdhcp probes from its event loop, with no "
                                           "thread pool to size")
            else:
                self.unsupported(f"{path}.{key}", "no fastdhcp ping-check equivalent")

    def _ha(self, path: str, params: Any) -> None:
        rels = params.get("high-availability") if isinstance(params, dict) else None
        if not isinstance(rels, list) or len(rels) != 1 or not isinstance(rels[0], dict):
            self.unsupported(f"{path}.high-availability", "fastdhcp takes one HA relationship "
                                                          "(a list of one map)")
            return
        rel = rels[0]
        base = f"{path}.high-availability[0]"
        ha: dict[str, Any] = {}
        for key, v in rel.items():
            if key == "peers" and isinstance(v, list):
                peers = []
                for i, peer in enumerate(v):
                    out = {}
                    for pk, pv in (peer.items() if isinstance(peer, dict) else ()):
                        if pk in PEER_KEYS:
                            out[pk] = pv
                        elif pk == "basic-auth-password":
                            self.unsupported(f"{base}.peers[{i}].{pk}",
                                             "a password in clear: put it in a file and name "
                                             "it with basic-auth-password-file")
                        else:
                            self.unsupported(f"{base}.peers[{i}].{pk}",
                                             "no fastdhcp HA peer equivalent")
                    peers.append(out)
                ha["peers"] = peers
            elif key in HA_KEYS:
                ha[key] = v
            else:
                self.unsupported(f"{base}.{key}", "no fastdhcp HA equivalent")
        self.note(base, "fastdhcp's own peer URL is where its HTTP control socket listens "
                        "(Kea's was its kea-ctrl-agent): add that socket to [[control-sockets]]")
        self.ha = ha

    # ------------------------------------------------------------------ networks and subnets

    def _shared_network(self, path: str, net: Any) -> None:
        if not self._type(path, net, dict, "a map"):
            return
        level = _Level(name=net.get("name"))
        if not isinstance(level.name, str) or not level.name:
            self.unsupported(f"{path}.name", "a shared network needs a name")
            return
        for key, v in net.items():
            p = f"{path}.{key}"
            if key in ("name", "subnet4"):
                continue
            if key in _LIFETIMES:
                if self._type(p, v, int, "an integer"):
                    level.lifetimes[key] = v
            elif key == "option-data":
                level.options = self._options(p, v)
            elif key == "authoritative":
                if self._type(p, v, bool, "true or false"):
                    level.authoritative = v
            elif key == "interface":
                if self._type(p, v, str, "an interface name"):
                    level.interface = v
            elif key == "relay":
                level.relay = self._relay(p, v)
            elif key in _GUARD_KEYS:
                guard = self._guard(p, key, v)
                if guard is not None:
                    level.client_class = guard[0] if guard else None
            elif key in _REQUIRED_KEYS:
                level.required = self._names(p, v)
            elif key in _FIXED:
                if self._fixed(p, key, v, fd_config.SUBNET_KEYS):
                    level.fixed[key] = v
            else:
                self._parameter(p, key, v)
        if level.client_class is not None or level.required:
            self.note(path, "the shared network's client-class and require-client-classes "
                            "are carried on each of its subnets (fastdhcp has no shared-network "
                            "table; the network's required classes come first, as in Kea)")
        subnets = net.get("subnet4", [])
        if self._type(f"{path}.subnet4", subnets, list, "a list of subnets"):
            for i, s in enumerate(subnets):
                self._subnet(f"{path}.subnet4[{i}]", s, level)

    def _relay(self, path: str, value: Any) -> list[str]:
        if not isinstance(value, dict):
            self.unsupported(path, "expected a map with ip-addresses")
            return []
        out: list[str] = []
        for key, v in value.items():
            if key == "ip-addresses" and isinstance(v, list):
                out.extend(str(x) for x in v)
            elif key == "ip-address" and isinstance(v, str):
                if v != "0.0.0.0":
                    out.append(v)
            else:
                self.unsupported(f"{path}.{key}", "expected ip-addresses (a list)")
        return out

    def _subnet(self, path: str, s: Any, level: _Level) -> None:  # noqa: C901 - a table
        if not self._type(path, s, dict, "a map"):
            return
        out: dict[str, Any] = {}
        if "id" not in s:
            self.unsupported(f"{path}.id", "a subnet without an id: Kea numbered it itself and "
                                           "its leases name that number; write the id Kea "
                                           "gave it (kea-shell subnet4-list)")
        lifetimes = dict(level.lifetimes)
        options = dict(level.options)
        relay = level.relay
        interface = level.interface
        authoritative = level.authoritative
        reservations: list[dict[str, Any]] = []
        guard: list[str] | None = None
        required = list(level.required)
        fixed = dict(level.fixed)
        for key, v in s.items():
            p = f"{path}.{key}"
            if key == "id":
                out["id"] = v
            elif key == "subnet":
                out["subnet"] = v
            elif key == "pools":
                out["pools"] = self._pools(p, v)
            elif key in _LIFETIMES:
                if self._type(p, v, int, "an integer"):
                    lifetimes[key] = v
            elif key == "option-data":
                options.update(self._options(p, v))
            elif key == "relay":
                relay = self._relay(p, v)
            elif key == "interface":
                interface = v
            elif key == "authoritative":
                authoritative = v
            elif key in _GUARD_KEYS:
                guard = self._guard(p, key, v)
                if guard and level.client_class is not None and guard != [level.client_class]:
                    self.unsupported(p, f"{v!r} inside a shared network guarded by "
                                        f"{level.client_class!r}: fastdhcp's subnet guard is "
                                        "one class list (either class), not both")
            elif key in _REQUIRED_KEYS:
                required += [n for n in self._names(p, v) if n not in required]
            elif key in _FIXED:
                if self._fixed(p, key, v, fd_config.SUBNET_KEYS):
                    fixed[key] = v
            elif key == "reservations":
                if self._type(p, v, list, "a list of reservations"):
                    for i, r in enumerate(v):
                        res = self._reservation(f"{p}[{i}]", r)
                        if res is not None and self._unique(f"{p}[{i}]", res,
                                                            level.name or path):
                            reservations.append(res)
            else:
                self._parameter(p, key, v)
        if level.name is not None:
            out["shared-network"] = level.name
        if interface is not None:
            out["interface"] = interface
        if relay:
            out["relay"] = relay
        if authoritative is not None:
            out["authoritative"] = authoritative
        if guard is None and level.client_class is not None:
            guard = [level.client_class]
        if guard:
            out["client-class" if len(guard) == 1 else "client-classes"] = \
                guard[0] if len(guard) == 1 else guard
        if required:
            out["require-client-classes"] = required
        out.update(fixed)
        out.update(lifetimes)
        if options:
            out["option-data"] = _option_table(options)
        if reservations:
            out["reservations"] = reservations
        self.subnets.append(out)

    def _pools(self, path: str, value: Any) -> list[str | dict[str, Any]]:
        """Plain pools as strings; a pool with a guard or required classes as a table."""
        out: list[str | dict[str, Any]] = []
        if not self._type(path, value, list, "a list of pools"):
            return out
        for i, pool in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(pool, dict) or not isinstance(pool.get("pool"), str):
                self.unsupported(p, "expected a map with a pool")
                continue
            text = " - ".join(x.strip() for x in pool["pool"].split("-"))
            table: dict[str, Any] = {"pool": text}
            for key, v in pool.items():
                if key in _GUARD_KEYS:
                    guard = self._guard(f"{p}.{key}", key, v)
                    if guard:
                        table["client-class" if len(guard) == 1 else "client-classes"] = \
                            guard[0] if len(guard) == 1 else guard
                elif key in _REQUIRED_KEYS:
                    names = self._names(f"{p}.{key}", v)
                    if names:
                        table["require-client-classes"] = names
            for key, v in pool.items():
                if key == "pool" or key in _GUARD_KEYS or key in _REQUIRED_KEYS:
                    continue  # carried above
                if key == "option-data":
                    opts = self._options(f"{p}.{key}", v)
                    if opts:
                        table["option-data"] = _option_table(opts)
                elif key in ("comment", "user-context"):
                    self.note(f"{p}.{key}", "a comment for people: not carried")
                elif key == "pool-id":
                    self.note(f"{p}.{key}", "fastdhcp numbers no pools (statistics are by "
                                            "subnet)")
                else:
                    self.unsupported(f"{p}.{key}", "no fastdhcp pool equivalent")
            out.append(table if len(table) > 1 else text)
        return out

    def _unique(self, path: str, res: dict[str, Any], scope: str) -> bool:
        """False (and reported) when ``res`` repeats an identifier of an earlier reservation
        of its scope or an address reserved anywhere: Kea refuses such a config too, and which
        of the two was meant is not for the import to guess."""
        kinds = [k for k in ("hw-address", "client-id", "circuit-id") if k in res]
        keys: list[tuple[str, str, str]] = [(scope, k, _ident_text(res[k])) for k in kinds]
        if "ip-address" in res:
            keys.append(("", "ip-address", str(res["ip-address"]).strip()))
        for key in keys:
            first = self.reserved.get(key)
            if first is not None:
                self.unsupported(f"{path}.{key[1]}", f"{res[key[1]]!r}: a duplicate reservation "
                                 f"(same {key[1]} as {first}): not carried")
                return False
        for key in keys:
            self.reserved[key] = path
        return True

    def _reservation(self, path: str, r: Any) -> dict[str, Any] | None:
        if not self._type(path, r, dict, "a map"):
            return None
        out: dict[str, Any] = {}
        for key, v in r.items():
            p = f"{path}.{key}"
            if key in ("hw-address", "client-id", "circuit-id", "ip-address", "hostname"):
                out[key] = v
            elif key == "option-data":
                opts = self._options(p, v)
                if opts:
                    out["option-data"] = _option_table(opts)
            elif key in ("duid", "flex-id"):
                self.unsupported(p, f"a reservation by {key}: fastdhcp matches hw-address, "
                                    "client-id or circuit-id")
                return None
            elif key == "client-classes":
                names = self._names(p, v)
                if names:
                    out[key] = names
            elif key in _FIXED:
                if self._fixed(p, key, v, fd_config.RESERVATION_KEYS):
                    out[key] = v
            elif key in ("comment", "user-context"):
                self._parameter(p, key, v)
            else:
                self.unsupported(p, "no fastdhcp reservation equivalent")
        if "ip-address" not in out:
            self.note(path, "a reservation without an address: the client is KNOWN (its "
                            "classes, hostname and options apply) and gets a pool address")
        return out

    def _fixed(self, path: str, key: str, value: Any, table: tuple[str, ...]) -> bool:
        """True when fastdhcp's table (its key list ``table``) takes the fixed field ``key``
        and ``value`` is a string: the caller carries it. Else reported, False."""
        if not isinstance(value, str):
            self.unsupported(path, f"expected a string, found {value!r}")
            return False
        if key in table:
            return True
        if value in ("", "0.0.0.0"):
            self.note(path, "empty, as fastdhcp leaves it")
        else:
            self.unsupported(path, "fastdhcp does not set siaddr, sname or file here "
                                   "(use options 66 tftp-server-name and 67 boot-file-name)")
        return False

    # ------------------------------------------------------------------ client classes

    def _names(self, path: str, value: Any) -> list[str]:
        """A list of class names (require-client-classes, a reservation's client-classes)."""
        if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
            return list(value)
        self.unsupported(path, f"expected a list of class names, found {value!r}")
        return []

    def _guard(self, path: str, key: str, value: Any) -> list[str] | None:
        """``client-class`` (one name, "" = none) or ``client-classes`` (Kea 3, a list)."""
        if key == "client-class":
            if not isinstance(value, str):
                self.unsupported(path, f"expected a class name, found {value!r}")
                return None
            return [value] if value else []
        return self._names(path, value)

    def _client_class(self, path: str, c: Any) -> None:  # noqa: C901 - a table
        if not self._type(path, c, dict, "a map"):
            return
        out: dict[str, Any] = {}
        local: dict[int, dict[str, Any]] = {}  # class-local option-def by code
        for key, v in c.items():
            p = f"{path}.{key}"
            if key in _CLASS_PLAIN:
                out[key] = v
            elif key in ("only-if-required", "only-in-additional-list"):
                if self._type(p, v, bool, "true or false") and v:
                    out["only-if-required"] = True
            elif key == "option-def":
                if self._type(p, v, list, "a list of option definitions"):
                    for i, d in enumerate(v):
                        if isinstance(d, dict) and isinstance(d.get("code"), int):
                            local[d["code"]] = d
                        else:
                            self.unsupported(f"{p}[{i}]", "expected a map with a code")
            elif key != "option-data":
                self.unsupported(p, "no fastdhcp client-class equivalent")
        defs = self._class_defs(f"{path}.option-def", local)
        if defs:
            out["option-def"] = defs
        opts = self._class_options(f"{path}.option-data", c.get("option-data", []), local)
        if opts:
            out["option-data"] = _option_table(opts)
        if "name" not in out:
            self.unsupported(f"{path}.name", "a class needs a name")
            return
        self.classes.append(out)

    def _class_defs(self, path: str, local: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
        """The class-local definitions fastdhcp keeps (config.py checks the codes); one that
        encapsulates an option space is not kept: its option is packed into hex here."""
        out = []
        for i, (code, d) in enumerate(local.items()):
            if d.get("encapsulate"):
                self.note(f"{path}[{i}]", f"option {code} encapsulates space "
                          f"{d['encapsulate']!r}: its sub-options are packed into option "
                          f"{code} as hex (fastdhcp has no option spaces)")
                continue
            out.append({k: v for k, v in d.items() if k not in ("comment", "user-context")})
        return out

    def _class_options(self, path: str, value: Any, local: dict[int, dict[str, Any]]
                       ) -> dict[int, tuple[str, Any]]:
        """A class's option-data: dhcp4 options as everywhere (a class-local binary or string
        definition of 43 / 224-254 encodes its data), sub-options of other spaces packed into
        the option 43 or 125 that carries them."""
        out: dict[int, tuple[str, Any]] = {}
        if not self._type(path, value, list, "a list of options"):
            return out
        subs: dict[str, list[tuple[str, int, bytes]]] = {}  # space -> (path, code, payload)
        carriers: list[tuple[str, int, str]] = []  # (path, 43 or 125, space)
        for i, e in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(e, dict):
                self.unsupported(p, "expected a map")
                continue
            space = e.get("space", "dhcp4")
            if space != "dhcp4":
                sub = self._sub_option(p, str(space), e)
                if sub is not None:
                    subs.setdefault(str(space), []).append((p, sub[0], sub[1]))
                continue
            code = e.get("code")
            if code is None and e.get("name") in ("vendor-encapsulated-options",
                                                  "vivso-suboptions"):
                code = _VENDOR_43 if e["name"] == "vendor-encapsulated-options" else _VIVSO
            d43 = local.get(code) if isinstance(code, int) else None
            if code == _VENDOR_43 and d43 is not None and d43.get("encapsulate"):
                self._always_send(p, e)
                carriers.append((p, _VENDOR_43, str(d43["encapsulate"])))
            elif code == _VIVSO and e.get("csv-format", True) is not False:
                self._always_send(p, e)
                ent = str(e.get("data", "")).strip()
                if not ent.isdecimal():
                    self.unsupported(f"{p}.data", f"{ent!r}: vivso-suboptions takes the "
                                                  "enterprise number")
                    continue
                carriers.append((p, _VIVSO, f"vendor-{int(ent)}"))
            elif isinstance(code, int) and d43 is not None and d43.get("type") in ("binary",
                                                                                    "string"):
                self._always_send(p, e)
                data = str(e.get("data", ""))
                try:
                    raw = (data.encode() if d43["type"] == "string" and e.get("csv-format", True)
                           else bytes.fromhex("".join(ch for ch in data if ch not in ": ")))
                except ValueError:
                    self.unsupported(f"{p}.data", f"{data!r}: not hex")
                    continue
                out[code] = (str(code), raw.hex())
            else:
                got = self._option(p, e)
                if got is not None:
                    out[got[0]] = (got[1], got[2])
        for _, carrier, space in carriers:
            packed = b"".join(bytes((c, len(v))) + v
                              for _, c, v in sorted(subs.pop(space, []), key=lambda x: x[1]))
            if carrier == _VIVSO:
                enterprise = int(space.removeprefix("vendor-"))
                packed = enterprise.to_bytes(4, "big") + bytes((len(packed),)) + packed
            out[carrier] = (str(carrier), packed.hex())
        for space, entries in subs.items():
            for p, _, _ in entries:
                self.unsupported(p, f"a sub-option of space {space!r}, which no option of "
                                    "this class carries")
        return out

    def _always_send(self, p: str, e: dict[str, Any]) -> None:
        if e.get("always-send"):
            self.unsupported(f"{p}.always-send", "fastdhcp sends an option only when the "
                                                 "client's parameter request list asks for it")

    def _sub_option(self, p: str, space: str, e: dict[str, Any]) -> tuple[int, bytes] | None:
        """One sub-option (code, payload) of ``space``, from its global definition."""
        defs = self.space_defs.get(space, {})
        name, code = e.get("name"), e.get("code")
        d = defs.get(name) if isinstance(name, str) else None
        if d is None and isinstance(code, int):
            d = defs.get(code)
        if e.get("always-send") and space.startswith("vendor-"):
            # Kea needs always-send on vendor sub-options: there is no way to request them
            # (reference §6); fastdhcp sends the whole 125 when the client asks for 125.
            self.note(f"{p}.always-send", "packed into option 125, which fastdhcp sends when "
                                          "the client's parameter request list has 125")
        data = e.get("data", "")
        if not isinstance(data, str):
            self.unsupported(f"{p}.data", "expected a string")
            return None
        if e.get("csv-format", True) is False:
            try:
                raw = bytes.fromhex("".join(ch for ch in data if ch not in ": "))
            except ValueError:
                self.unsupported(f"{p}.data", f"{data!r}: not hex")
                return None
            if not isinstance(code, int) and d is None:
                self.unsupported(p, f"sub-option {name!r} of space {space!r}: no definition "
                                    "gives its code")
                return None
            return (code if isinstance(code, int) else d.code), raw  # type: ignore[union-attr]
        if d is None:
            self.unsupported(p, f"sub-option {name or code!r} of space {space!r}: no "
                                "option-def of that space defines it")
            return None
        try:
            raw = encode_csv(d, data)
        except ValueError as exc:
            self.unsupported(f"{p}.data", f"{data!r}: {exc}")
            return None
        if len(raw) > 255:
            self.unsupported(f"{p}.data", "longer than 255 bytes")
            return None
        return d.code, raw

    # ------------------------------------------------------------------ options

    def _option_defs(self, path: str, value: Any) -> None:
        if not self._type(path, value, list, "a list of option definitions"):
            return
        for i, entry in enumerate(value):
            space = entry.get("space", "dhcp4") if isinstance(entry, dict) else "dhcp4"
            if space != "dhcp4":
                # a sub-option of another space: defined for its uses, packed where used
                d, problems = parse_def({k: v for k, v in entry.items() if k != "space"})
                for key, reason in problems:
                    self.unsupported(f"{path}[{i}]" + (f".{key}" if key else ""), reason)
                if d is not None:
                    self.space_defs.setdefault(str(space), {}).update({d.name: d, d.code: d})
                    self.note(f"{path}[{i}]", f"sub-option {d.name!r} ({d.code}) of space "
                              f"{space!r}: each use is packed into the option carrying the "
                              "space, in hex")
                continue
            d, problems = parse_def(entry)
            for key, reason in problems:
                self.unsupported(f"{path}[{i}]" + (f".{key}" if key else ""), reason)
            if d is None:
                continue
            if option_def(d.code) is not None or option_def(d.name) is not None:
                self.unsupported(f"{path}[{i}]", f"{d.name!r} ({d.code}) redefines a standard "
                                                 "option (Kea refuses that too)")
                continue
            self.defs[d.name] = self.defs[d.code] = d
            self.note(f"{path}[{i}]", f"{d.name!r}: fastdhcp has no option definitions; each "
                                      f"use is carried as option {d.code} in hex")

    def _options(self, path: str, value: Any) -> dict[int, tuple[str, Any]]:
        """Kea's option-data list -> {code: (fastdhcp key, value)}; the later entry of one code
        wins as in Kea's merge. Each value is encoded once here so that a bad one is reported
        at its Kea path."""
        out: dict[int, tuple[str, Any]] = {}
        if not self._type(path, value, list, "a list of options"):
            return out
        for i, entry in enumerate(value):
            p = f"{path}[{i}]"
            if not isinstance(entry, dict):
                self.unsupported(p, "expected a map")
                continue
            got = self._option(p, entry)
            if got is not None:
                out[got[0]] = (got[1], got[2])
        return out

    def _option(self, p: str, e: dict[str, Any]) -> tuple[int, str, Any] | None:
        for k in e:
            if k not in ("name", "code", "data", "csv-format", "space", "always-send",
                           "never-send", "comment", "user-context"):
                self.unsupported(f"{p}.{k}", "no fastdhcp option-data equivalent")
        if e.get("space", "dhcp4") != "dhcp4":
            self.unsupported(f"{p}.space", f"{e['space']!r}: fastdhcp has options of the "
                                           "dhcp4 space only (give vendor options as hex of "
                                           "option 43 or 125)")
            return None
        if e.get("always-send"):
            self.unsupported(f"{p}.always-send", "fastdhcp sends an option only when the "
                                                 "client's parameter request list asks for it")
        if e.get("never-send"):
            self.unsupported(f"{p}.never-send", "fastdhcp has no never-send")
            return None
        custom = self._custom(e)
        if custom is not None:
            return self._custom_option(p, e, custom)
        d = _definition(e)
        code = e.get("code", d.code if d is not None else None)
        if not isinstance(code, int) or isinstance(code, bool):
            self.unsupported(p, f"option {e.get('name')!r}: not an option fastdhcp knows by "
                                "name; give its code (csv-format false, hex data)")
            return None
        data = e.get("data", "")
        if not isinstance(data, str):
            self.unsupported(f"{p}.data", "expected a string")
            return None
        key: str
        value: Any
        if e.get("csv-format", True) is False:
            key, value = str(code), "".join(data.split())
        elif d is None:
            self.unsupported(p, f"option {code}: fastdhcp has no definition of it, so its "
                                "csv-format data cannot be encoded (give it as hex with "
                                "csv-format false)")
            return None
        else:
            key, value = d.name, _csv_value(d, data)
        try:
            encode_option(key, value)
        except ConfigError as exc:
            self.unsupported(f"{p}.data", f"{data!r}: {exc.problems[0]}")
            return None
        return code, key, value


    def _custom(self, e: dict[str, Any]) -> CustomDef | None:
        name, code = e.get("name"), e.get("code")
        d = self.defs.get(name) if isinstance(name, str) else None
        if d is None and isinstance(code, int) and not isinstance(code, bool) and name is None:
            d = self.defs.get(code)
        if d is not None and code is not None and code != d.code:
            return None  # a name and a code that disagree: reported by the standard path
        return d

    def _custom_option(self, p: str, e: dict[str, Any], d: CustomDef
                       ) -> tuple[int, str, Any] | None:
        data = e.get("data", "")
        if not isinstance(data, str):
            self.unsupported(f"{p}.data", "expected a string")
            return None
        if e.get("csv-format", True) is False:
            value = "".join(data.split())
        else:
            try:
                value = encode_csv(d, data).hex()
            except ValueError as exc:
                self.unsupported(f"{p}.data", f"{data!r}: option {d.name!r} ({d.type}"
                                              f"{' array' if d.array else ''}): {exc}")
                return None
        try:
            encode_option(str(d.code), value)
        except ConfigError as exc:
            self.unsupported(f"{p}.data", f"{data!r}: {exc.problems[0]}")
            return None
        return d.code, str(d.code), value


def _ident_text(value: Any) -> str:
    """An identifier as compared for duplicates: hex without separators, lower case; quoted
    text as it is."""
    text = str(value).strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text
    return "".join(c for c in text.lower() if c not in ":-. ")


def _definition(e: dict[str, Any]) -> OptionDef | None:
    name, code = e.get("name"), e.get("code")
    if isinstance(name, str):
        d = option_def(name)
        if d is not None and (code is None or code == d.code):
            return d
    return option_def(code) if isinstance(code, int) else None


def _csv_value(d: OptionDef, data: str) -> Any:
    """Kea's csv-format text for option ``d`` as the fastdhcp value (encoded by the caller,
    which reports a bad one)."""
    parts = [x.strip() for x in data.split(",")]
    if d.type in ("uint8", "uint16", "uint32", "int32"):
        ints = [int(x) if x.lstrip("-").isdecimal() else x for x in parts]
        return ints if d.array else ints[0]
    if d.type == "boolean":
        return {"true": True, "1": True, "false": False, "0": False}.get(data.strip().lower(),
                                                                         data)
    if d.type in ("fqdn", "classless-route"):
        return parts if (d.array or d.type == "classless-route") else data.strip()
    if d.type == "binary":
        return "".join(data.split())
    return data  # ipv4-address (one, or a comma list fastdhcp splits) and strings


def _option_table(opts: dict[int, tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for _, (key, value) in sorted(opts.items())}


def convert(kea: object, *, db_path: str | None = None) -> KeaImport:
    """Convert the parsed Kea document ``kea`` (``{"Dhcp4": {...}}``); raises
    :class:`~fastdhcp.errors.ConfigError` when it is not a kea-dhcp4 config at all."""
    conv = _Converter(db_path)
    doc = conv.run(kea)
    return KeaImport(doc, conv.findings)
