"""fastdhcp's configuration -> Kea 2.2's ``Dhcp4`` map: the way back (docs/migrating-from-kea.md).

Works from the document the loader validated (``Config.document``: fastdhcp's keys, which are
mostly Kea's), so that what Kea gets is what fastdhcp ran, key for key. Subnets naming a
``shared-network`` are grouped into Kea's ``shared-networks``; option tables become Kea's
``option-data`` lists (an option given by code as ``csv-format: false`` hex); the lease
database becomes Kea's memfile naming the lease file written by
``fastdhcp leases export --format kea-csv``; HA and the lease commands become the hook
libraries Kea needs for them; client classes and their guards go back under Kea 2.2's names
(``client-class``, ``require-client-classes``, ``only-if-required``); ``[ddns]`` goes back
to ``dhcp-ddns`` and the global ``ddns-*`` / ``hostname-char-*`` keys. What Kea 2.2 cannot
express is listed, as on the way in.
"""

from __future__ import annotations

from typing import Any

from fastdhcp.config import Config
from fastdhcp.kea.config_import import Finding, FindingKind
from fastdhcp.kea.ddns_map import D2_CLIENT_KEYS, KEA_CONFLICT_BOOL, NAME_KEYS

__all__ = ["export", "HOOKS_DIR", "DEFAULT_LEASE_FILE"]

#: Where Debian's kea-dhcp4-server installs the hook libraries.
HOOKS_DIR = "/usr/lib/x86_64-linux-gnu/kea/hooks"
DEFAULT_LEASE_FILE = "/var/lib/kea/kea-leases4.csv"
_LIFETIMES = ("valid-lifetime", "min-valid-lifetime", "max-valid-lifetime", "renew-timer",
              "rebind-timer", "decline-probation-period")
#: siaddr / sname / file: the same names in Kea at the global, subnet and reservation level.
_FIXED = ("next-server", "server-hostname", "boot-file-name")
_LOG_SEVERITY = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "warn": "WARN",
                 "error": "ERROR"}


def _option_list(table: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, value in table.items():
        text = str(key)
        if text.isdecimal():
            out.append({"code": int(text), "csv-format": False,
                        "data": "".join(c for c in str(value) if c not in ": ")})
            continue
        if isinstance(value, bool):
            data = "true" if value else "false"
        elif isinstance(value, list):
            data = ", ".join(str(v) for v in value)
        else:
            data = str(value)
        if key in ("vendor-encapsulated-options",):
            out.append({"name": key, "csv-format": False,
                        "data": "".join(c for c in data if c not in ": ")})
        else:
            out.append({"name": key, "data": data})
    return out


class _Exporter:
    def __init__(self, lease_file: str) -> None:
        self.findings: list[Finding] = []
        self.lease_file = lease_file

    def unsupported(self, path: str, reason: str) -> None:
        self.findings.append(Finding(FindingKind.UNSUPPORTED, path, reason))

    def note(self, path: str, reason: str) -> None:
        self.findings.append(Finding(FindingKind.NOTE, path, reason))

    def run(self, doc: dict[str, Any]) -> dict[str, Any]:
        d4: dict[str, Any] = {}
        self._server(doc.get("server", {}), d4)
        d4["lease-database"] = {"type": "memfile", "persist": True, "name": self.lease_file,
                                "lfc-interval": 3600}
        glob = doc.get("global", {})
        for key, value in glob.items():
            if key in _LIFETIMES or key in _FIXED:
                d4[key] = value
            elif key == "option-data":
                d4["option-data"] = _option_list(value)
            elif key == "offer-lifetime":
                self.note(f"global.{key}", "Kea 2.2 holds no offers (offer-lifetime is Kea "
                                           "2.6's): not written")
            else:
                self.unsupported(f"global.{key}", "Kea 2.2 has no such setting (the limits "
                                                  "hook of Kea is a different model)")
        if "ddns" in doc:
            self._ddns(doc["ddns"], d4)
        hooks: list[dict[str, Any]] = [{"library": f"{HOOKS_DIR}/libdhcp_lease_cmds.so"}]
        ha = doc.get("high-availability")
        if ha is not None:
            rel = ha[0] if isinstance(ha, list) else ha
            hooks.append({"library": f"{HOOKS_DIR}/libdhcp_ha.so",
                          "parameters": {"high-availability": [rel]}})
            self.note("high-availability", "Kea receives its partner's commands through "
                                           "kea-ctrl-agent listening at its own peer url")
        d4["hooks-libraries"] = hooks
        self._control(doc.get("control-sockets", []), d4)
        classes = [self._client_class(f"client-classes[{i}]", c)
                   for i, c in enumerate(doc.get("client-classes", []))]
        if classes:
            d4["client-classes"] = classes
        self._subnets(doc.get("subnet4", []), d4)
        return {"Dhcp4": d4}

    def _ddns(self, dd: dict[str, Any], d4: dict[str, Any]) -> None:
        """[ddns] -> Kea 2.2's dhcp-ddns map and global ddns-* parameters (ddns_map)."""
        link = {"enable-updates": bool(dd.get("enable-updates", True))}  # fastdhcp's default
        link.update({k: dd[k] for k in D2_CLIENT_KEYS if k in dd and k != "enable-updates"})
        d4["dhcp-ddns"] = link
        for key, value in dd.items():
            if key in D2_CLIENT_KEYS:
                continue
            if key == "ddns-conflict-resolution-mode":
                if value in KEA_CONFLICT_BOOL:
                    d4["ddns-use-conflict-resolution"] = KEA_CONFLICT_BOOL[value]
                else:
                    self.unsupported(f"ddns.{key}", f"{value!r}: Kea 2.2 has only "
                                     "ddns-use-conflict-resolution (true / false)")
            elif key in NAME_KEYS:
                d4[key] = value
            else:
                self.note(f"ddns.{key}", "kea-dhcp-ddns's setting (its DhcpDdns config), not "
                                         "kea-dhcp4's: not written")
        if link["enable-updates"]:
            self.note("ddns.enable-updates", "Kea sends its updates through kea-dhcp-ddns "
                      "(dhcp-ddns.server-ip 127.0.0.1, port 53001 by default): run it with "
                      "the zones, servers and keys of [ddns]")

    def _client_class(self, path: str, c: dict[str, Any]) -> dict[str, Any]:
        """A class as Kea 2.2 writes it: Kea 3's only-in-additional-list as only-if-required,
        option-data as Kea's list (43 / 125 packed by the import stay hex, csv-format false)."""
        out: dict[str, Any] = {}
        for key, value in c.items():
            if key in ("only-if-required", "only-in-additional-list"):
                if value:
                    out["only-if-required"] = True
            elif key == "option-data":
                out["option-data"] = _option_list(value)
            elif key == "option-def":
                out["option-def"] = [dict(d) for d in value]
            else:
                out[key] = value
        return out

    def _guard(self, path: str, t: dict[str, Any], out: dict[str, Any]) -> None:
        """client-class / client-classes -> Kea 2.2's one ``client-class``; required classes
        -> ``require-client-classes``."""
        names = ([t["client-class"]] if "client-class" in t
                 else list(t.get("client-classes", [])))
        if len(names) == 1:
            out["client-class"] = names[0]
        elif names:
            self.unsupported(f"{path}.client-classes", f"{names!r}: a Kea 2.2 guard names one "
                                                       "class (Kea 3 takes a list)")
        for key in ("require-client-classes", "evaluate-additional-classes"):
            if t.get(key):
                out["require-client-classes"] = list(t[key])

    def _pool(self, path: str, p: str | dict[str, Any]) -> dict[str, Any]:
        if not isinstance(p, dict):
            return {"pool": p}
        out: dict[str, Any] = {"pool": p["pool"]}
        self._guard(path, p, out)
        if p.get("option-data"):
            out["option-data"] = _option_list(p["option-data"])
        return out

    def _server(self, srv: dict[str, Any], d4: dict[str, Any]) -> None:
        interfaces = list(srv.get("interfaces", []))
        for key, value in srv.items():
            path = f"server.{key}"
            if key == "interfaces":
                continue
            if key == "authoritative":
                d4["authoritative"] = value
            elif key == "log-level":
                d4["loggers"] = [{"name": "kea-dhcp4", "severity":
                                  _LOG_SEVERITY.get(str(value), "INFO"),
                                  "output_options": [{"output": "stderr"}]}]
            elif key == "listen-addresses":
                self.unsupported(path, "Kea listens on interfaces: name each address's "
                                       "interface as 'ifname/address' in "
                                       "interfaces-config.interfaces by hand")
            elif key in ("port", "client-port"):
                self.note(path, "Kea takes its port on the command line (kea-dhcp4 -p)")
            elif key == "server-id":
                self.note(path, "Kea uses the receiving interface's address as server id")
            else:
                self.note(path, "fastdhcp's own (metrics, limits, pacing): Kea has none")
        d4["interfaces-config"] = {"interfaces": interfaces, "dhcp-socket-type": "raw"}

    def _control(self, socks: list[dict[str, Any]], d4: dict[str, Any]) -> None:
        for i, sock in enumerate(socks):
            if sock.get("socket-type") == "unix" and "control-socket" not in d4:
                d4["control-socket"] = {"socket-type": "unix",
                                        "socket-name": sock["socket-name"]}
            else:
                self.note(f"control-sockets[{i}]", "Kea 2.2 has one unix socket; HTTP is "
                                                   "kea-ctrl-agent's")

    def _subnets(self, subnets: list[dict[str, Any]], d4: dict[str, Any]) -> None:
        plain: list[dict[str, Any]] = []
        networks: dict[str, list[dict[str, Any]]] = {}
        for i, s in enumerate(subnets):
            out = self._subnet(f"subnet4[{i}]", s)
            net = s.get("shared-network")
            if net is None:
                plain.append(out)
            else:
                networks.setdefault(net, []).append(out)
        if networks:
            d4["shared-networks"] = [{"name": name, "subnet4": members}
                                     for name, members in networks.items()]
        d4["subnet4"] = plain

    def _subnet(self, path: str, s: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in s.items():
            if key in ("id", "subnet", "interface", "authoritative", *_LIFETIMES, *_FIXED):
                out[key] = value
            elif key == "pools":
                out["pools"] = [self._pool(f"{path}.pools[{j}]", p) for j, p in enumerate(value)]
            elif key in ("client-class", "client-classes", "require-client-classes",
                         "evaluate-additional-classes"):
                continue  # below, once
            elif key == "relay":
                ips = value.get("ip-addresses", []) if isinstance(value, dict) else value
                out["relay"] = {"ip-addresses": list(ips)}
            elif key == "option-data":
                out["option-data"] = _option_list(value)
            elif key == "reservations":
                out["reservations"] = [self._reservation(r) for r in value]
            elif key == "shared-network":
                continue
            elif key == "offer-lifetime":
                self.note(f"{path}.{key}", "Kea 2.2 holds no offers: not written")
            else:
                self.unsupported(f"{path}.{key}", "no Kea 2.2 equivalent")
        self._guard(path, s, out)
        return out

    def _reservation(self, r: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in r.items() if k != "option-data"}
        if "option-data" in r:
            out["option-data"] = _option_list(r["option-data"])
        return out


def export(config: Config, *, lease_file: str = DEFAULT_LEASE_FILE
           ) -> tuple[dict[str, Any], list[Finding]]:
    """The Kea document for ``config`` and the findings (what Kea 2.2 cannot express)."""
    exp = _Exporter(lease_file)
    return exp.run(config.document), exp.findings
