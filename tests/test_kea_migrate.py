"""Migration from Kea: its JSON dialect, its lease file, the resumable import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fastdhcp.config import GLOBAL_KEYS, RESERVATION_KEYS, SUBNET_KEYS, from_document
from fastdhcp.kea import jsonc
from fastdhcp.kea.config_export import export
from fastdhcp.kea.config_import import FindingKind, convert
from fastdhcp.kea.lease_import import ImportError_, SubnetRange, import_leases
from fastdhcp.kea.memfile import HEADER
from fastdhcp.store import LmdbLeaseStore
from tests.kea_helpers import kea_check, need_kea
from tests.service_helpers import ROOT

NET = [SubnetRange(1, 0xC0000200, 0xC00002FF)]  # 192.0.2.0/24


def test_comments_and_include(tmp_path: Path) -> None:
    inc = tmp_path / "sub.json"
    inc.write_text('# hash\n{ "id": 1 }\n')
    top = tmp_path / "kea.conf"
    top.write_text('// c\n{ /* a\n b */ "s": "x//y#z", "l": [ <?include "' + str(inc)
                   + '"?> ] }\n')
    assert jsonc.load(top) == {"s": "x//y#z", "l": [{"id": 1}]}


def test_error_names_the_included_file_and_line(tmp_path: Path) -> None:
    inc = tmp_path / "bad.json"
    inc.write_text('{\n "a": [1 2]\n}\n')
    top = tmp_path / "kea.conf"
    top.write_text('{\n"b": <?include "' + str(inc) + '"?>\n}\n')
    with pytest.raises(jsonc.KeaJsonError, match=r"bad.json:2: invalid JSON"):
        jsonc.load(top)


def _csv(path: Path, rows: list[str]) -> str:
    path.write_text(",".join(HEADER) + "\n" + "".join(r + "\n" for r in rows))
    return str(path)


def _row(ip: str, n: int, expire: int = 1900000000, valid: int = 3600) -> str:
    return f"{ip},02:00:00:00:00:{n:02x},,{valid},{expire},1,0,0,h{n},0,"


def test_bad_line_stops_before_writing(tmp_path: Path) -> None:
    f = _csv(tmp_path / "l.csv", [_row("192.0.2.10", 1), "192.0.2.11,zz,,3600,1,1,0,0,,0,"])
    with pytest.raises(ImportError_, match=r"l.csv:3: hwaddr"):
        import_leases([f], str(tmp_path / "db"), NET)
    assert not (tmp_path / "db").exists()
    report = import_leases([f], str(tmp_path / "db"), NET, skip_bad_lines=True)
    assert (report.bad_lines, report.total) == (1, 1)


def test_later_row_wins_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [_row(f"192.0.2.{i}", i) for i in range(1, 21)]
    rows.append(_row("192.0.2.5", 99, expire=1900009999))
    rows.append(_row("10.0.0.1", 7))
    f = _csv(tmp_path / "l.csv", rows)
    db = str(tmp_path / "db")
    real = LmdbLeaseStore.write
    calls = []

    def failing(self: LmdbLeaseStore, batch: list, **kw: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("interrupted")
        real(self, batch, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(LmdbLeaseStore, "write", failing)
    with pytest.raises(OSError):
        import_leases([f], db, NET, batch=8)
    monkeypatch.setattr(LmdbLeaseStore, "write", real)
    report = import_leases([f], db, NET, batch=8)
    assert (report.resumed_at, report.written, report.total, report.outside) == (8, 12, 20, 1)
    with LmdbLeaseStore(db, readonly=True) as store:
        assert len(store) == 20
        lease = store.get(0xC0000205)
        assert lease is not None and lease.expires == 1900009999


# -- client classes (issue 18): the reference's 18 ISP pattern configs, import and back ---------

PATTERNS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "kea_class_patterns.json").read_text())
"""The Kea JSON of ../shared/reference/kea-client-classes.md section 7, pattern by pattern."""
PLAIN_SUBNET = [{"id": 10, "subnet": "198.19.80.0/24",
                 "pools": [{"pool": "198.19.80.10 - 198.19.80.250"}]}]
#: What the import cannot carry yet, by pattern: Kea's always-send (P3).
NOT_CARRIED = {
    "P3": ["Dhcp4.client-classes[0].option-data[0].always-send"],
}
#: Option 43 / 125 as the real Kea 2.2 sent them to the pattern's client (reference P3, P4):
#: the import packs the class's sub-options into these bytes.
KEA_SENT = {
    "P3": (43, "012168747470733a2f2f6163732e6973702e6578616d706c653a373534372f63776d70"
               "0206504c414e2d41"),
    "P4": (125, "00000de9230b2168747470733a2f2f6163732e6973702e6578616d706c653a373534372f"
                "63776d70"),
}


def pattern_config(name: str) -> dict[str, Any]:
    """The whole Kea config of one pattern (a plain subnet where the pattern gives none)."""
    d4: dict[str, Any] = {"valid-lifetime": 3600, **PATTERNS[name]}
    if "subnet4" not in d4 and "shared-networks" not in d4:
        d4["subnet4"] = PLAIN_SUBNET
    return {"Dhcp4": d4}


def _guards(d4: dict[str, Any]) -> dict[tuple[int, int | None], dict[str, Any]]:
    """Every guard and required-class list of a Kea config, by (subnet id, pool index), with
    the pools' option-data and the subnets' reservations; a shared network's own guards are
    given to each of its subnets (they are carried so)."""
    out: dict[tuple[int, int | None], dict[str, Any]] = {}
    keys = ("client-class", "require-client-classes")
    nets = [({}, d4.get("subnet4", []))] + [(n, n["subnet4"]) for n in
                                             d4.get("shared-networks", [])]
    for net, subnets in nets:
        for s in subnets:
            got = {k: s.get(k, net.get(k)) for k in keys if k in s or k in net}
            out[(s["id"], None)] = got
            for j, p in enumerate(s.get("pools", [])):
                out[(s["id"], j)] = {k: p[k] for k in (*keys, "option-data") if k in p}
            got["reservations"] = s.get("reservations", [])
    return out


def _wire(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(e.get("name", e.get("code"))): e for e in entries}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_classes_round_trip(name: str) -> None:
    kea = pattern_config(name)
    result = convert(kea)
    assert sorted(f.path for f in result.unsupported) == sorted(NOT_CARRIED.get(name, [])), \
        [f.line() for f in result.unsupported]
    cfg = from_document(result.document)  # what check-config runs
    assert [c.name for c in cfg.client_classes] == \
        [c["name"] for c in kea["Dhcp4"]["client-classes"]]
    back, findings = export(cfg)
    assert not [f for f in findings if f.kind is FindingKind.UNSUPPORTED]
    d4 = back["Dhcp4"]
    assert _guards(d4) == _guards(kea["Dhcp4"])
    for orig, got in zip(kea["Dhcp4"]["client-classes"], d4["client-classes"], strict=True):
        plain = {k: v for k, v in orig.items() if k not in ("option-data", "option-def")}
        assert {k: v for k, v in got.items() if k not in ("option-data", "option-def")} == plain
        if name in KEA_SENT:  # sub-options of a space: packed into the bytes Kea sent
            code, hexdata = KEA_SENT[name]
            assert [(e["code"], e["data"]) for e in got["option-data"]] == [(code, hexdata)]
        else:
            assert _wire(got.get("option-data", [])) == _wire(orig.get("option-data", []))


def test_pattern_exports_pass_kea_check(tmp_path: Path) -> None:
    """Kea's own verdict (``kea-dhcp4 -t``) on every exported pattern config."""
    need_kea()
    for name in sorted(PATTERNS):
        back, _ = export(from_document(convert(pattern_config(name)).document))
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(back))
        cp = kea_check(path)
        assert cp.returncode == 0, (name, cp.stdout[-2000:], cp.stderr[-2000:])


def test_class_guards_and_kea3_names() -> None:
    kea = {"Dhcp4": {
        "client-classes": [{"name": "A", "test": "option[60].exists",
                            "only-in-additional-list": True, "comment": "kept"},
                           {"name": "B"}],
        "shared-networks": [{"name": "net", "client-class": "A",
                             "require-client-classes": ["B"],
                             "subnet4": [{"id": 1, "subnet": "198.18.1.0/24",
                                          "evaluate-additional-classes": ["A"],
                                          "pools": [{"pool": "198.18.1.10-198.18.1.20",
                                                     "client-classes": ["A", "B"]}],
                                          "reservations": [{"hw-address": "02:00:00:00:00:01",
                                                            "ip-address": "198.18.1.5",
                                                            "client-classes": ["B"]}]}]}]}}
    result = convert(kea)
    assert not result.unsupported, [f.line() for f in result.unsupported]
    s = result.document["subnet4"][0]
    assert (s["client-class"], s["require-client-classes"]) == ("A", ["B", "A"])
    assert s["pools"] == [{"pool": "198.18.1.10 - 198.18.1.20", "client-classes": ["A", "B"]}]
    assert s["reservations"][0]["client-classes"] == ["B"]
    assert result.document["client-classes"][0] == {
        "name": "A", "test": "option[60].exists", "only-if-required": True, "comment": "kept"}
    cfg = from_document(result.document)
    assert cfg.subnets[0].required_classes == ("B", "A")
    back, findings = export(cfg)
    # a Kea 2.2 pool guard names one class: the list of two is reported at its path
    assert [f.path for f in findings if f.kind is FindingKind.UNSUPPORTED] == \
        ["subnet4[0].pools[0].client-classes"]
    assert back["Dhcp4"]["client-classes"][0]["only-if-required"] is True


def test_sub_option_without_definition_is_reported() -> None:
    kea = {"Dhcp4": {
        "client-classes": [{"name": "V", "test": "vendor[4491].exists",
                            "option-data": [{"name": "vivso-suboptions", "data": "4491"},
                                            {"name": "tftp", "space": "vendor-4491",
                                             "data": "x"},
                                            {"code": 9, "space": "cwmp", "data": "y"}]}],
        "subnet4": PLAIN_SUBNET}}
    got = {f.path: f.reason for f in convert(kea).unsupported}
    assert set(got) == {"Dhcp4.client-classes[0].option-data[1]",
                        "Dhcp4.client-classes[0].option-data[2]"}
    assert "no option-def of that space" in got["Dhcp4.client-classes[0].option-data[1]"]


def test_cli_import_check_export_with_classes(tmp_path: Path) -> None:
    """The commands an operator runs, on pattern P2 (a VENDOR_CLASS_ guard in a shared
    network, next-server and boot-file-name from the class)."""
    src = tmp_path / "kea.json"
    src.write_text(json.dumps(pattern_config("P2")))
    toml_path, back_path = tmp_path / "fastdhcp.toml", tmp_path / "back.json"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fastdhcp", *args], capture_output=True,
                              text=True, timeout=120, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    cp = cli("import-kea", "--config", str(src), "--out", str(toml_path), "--db",
             str(tmp_path / "db"))
    assert cp.returncode == 0, cp.stderr
    doc = tomllib.loads(toml_path.read_text())
    assert doc["client-classes"][0]["next-server"] == "198.18.20.69"
    assert cli("check-config", "--config", str(toml_path)).returncode == 0
    cp = cli("export-kea", "--config", str(toml_path), "--out", str(back_path))
    assert cp.returncode == 0, cp.stderr
    back = json.loads(back_path.read_text())["Dhcp4"]
    assert back["client-classes"] == pattern_config("P2")["Dhcp4"]["client-classes"]
    assert _guards(back) == _guards(pattern_config("P2")["Dhcp4"])


def test_fixed_fields_at_every_level() -> None:
    """next-server / server-hostname / boot-file-name at the global, shared-network, subnet and
    reservation levels: carried where fastdhcp's config takes them (its key tables say where),
    reported at their path where it does not: never dropped."""
    fixed = {"next-server": "198.18.2.1", "server-hostname": "srv", "boot-file-name": "a.cfg"}
    kea = {"Dhcp4": {
        **fixed,
        "shared-networks": [{"name": "n", "next-server": "198.18.2.4", "subnet4": [
            {"id": 1, "subnet": "198.18.1.0/24", "boot-file-name": "s.cfg",
             "reservations": [{"hw-address": "02:00:00:00:00:01", "ip-address": "198.18.1.5",
                               "next-server": "198.18.2.7"}]}]}]}}
    result = convert(kea)
    reported = {f.path for f in result.unsupported}
    doc = result.document
    tables = {"Dhcp4": (GLOBAL_KEYS, doc.get("global", {})),
              "Dhcp4.shared-networks[0]": (SUBNET_KEYS, doc["subnet4"][0]),
              "Dhcp4.shared-networks[0].subnet4[0]": (SUBNET_KEYS, doc["subnet4"][0]),
              "Dhcp4.shared-networks[0].subnet4[0].reservations[0]":
                  (RESERVATION_KEYS, doc["subnet4"][0].get("reservations", [{}])[0])}
    kea_tables = {"Dhcp4": kea["Dhcp4"], "Dhcp4.shared-networks[0]":
                  kea["Dhcp4"]["shared-networks"][0]}
    kea_tables["Dhcp4.shared-networks[0].subnet4[0]"] = \
        kea_tables["Dhcp4.shared-networks[0]"]["subnet4"][0]
    kea_tables["Dhcp4.shared-networks[0].subnet4[0].reservations[0]"] = \
        kea_tables["Dhcp4.shared-networks[0].subnet4[0]"]["reservations"][0]
    for path, (keys, table) in tables.items():
        for key in (k for k in fixed if k in kea_tables[path]):
            if key in keys:
                assert f"{path}.{key}" not in reported
                if path != "Dhcp4.shared-networks[0]":  # the network's, under its subnet's
                    assert table[key] == kea_tables[path][key], (path, key)
            else:
                assert f"{path}.{key}" in reported, (path, key, reported)
    if "next-server" in SUBNET_KEYS:  # the network's value reaches its subnet; the way back
        assert doc["subnet4"][0]["next-server"] == "198.18.2.4"
        back, _ = export(from_document(doc))
        sub = back["Dhcp4"]["shared-networks"][0]["subnet4"][0]
        assert (sub["next-server"], sub["boot-file-name"]) == ("198.18.2.4", "s.cfg")
        assert back["Dhcp4"]["server-hostname"] == "srv"
        assert sub["reservations"][0]["next-server"] == "198.18.2.7"


def test_class_local_binary_option_43() -> None:
    """Reference section 6: a class redefining 43 as binary; Kea sent ``43 = de ad be ef``."""
    kea = {"Dhcp4": {
        "client-classes": [{"name": "VENDOR_CLASS_AcmeRaw",
                            "option-def": [{"name": "vendor-encapsulated-options", "code": 43,
                                            "type": "binary"}],
                            "option-data": [{"name": "vendor-encapsulated-options",
                                             "data": "DE:AD:BE:EF"}]}],
        "subnet4": PLAIN_SUBNET}}
    result = convert(kea)
    assert not result.unsupported, [f.line() for f in result.unsupported]
    cls = result.document["client-classes"][0]
    assert cls["option-data"] == {"43": "deadbeef"}
    assert cls["option-def"] == [{"name": "vendor-encapsulated-options", "code": 43,
                                  "type": "binary"}]
    cfg = from_document(result.document)
    assert cfg.client_classes[0].options[43] == bytes.fromhex("deadbeef")
    kea["Dhcp4"]["client-classes"][0]["option-data"][0]["data"] = "zz"
    assert [f.path for f in convert(kea).unsupported] == \
        ["Dhcp4.client-classes[0].option-data[0].data"]


def _ddns_kea(**more: Any) -> dict[str, Any]:
    return {"Dhcp4": {
        "dhcp-ddns": {"enable-updates": True, "server-ip": "127.0.0.1", "server-port": 53001,
                      "max-queue-size": 512, "ncr-protocol": "UDP"},
        "ddns-qualifying-suffix": "example.net", "ddns-replace-client-name": "when-not-present",
        "ddns-generated-prefix": "cpe", "ddns-override-client-update": True,
        "ddns-use-conflict-resolution": False, "hostname-char-set": "[^A-Za-z0-9-]",
        "hostname-char-replacement": "x", **more,
        "subnet4": [{"id": 1, "subnet": "198.18.1.0/24", "pools": [{"pool": "198.18.1.10 - "
                     "198.18.1.20"}], "ddns-qualifying-suffix": "example.net",
                     "ddns-send-updates": False}]}}


def test_ddns_keys_are_carried_into_ddns() -> None:
    """Issue 18: Kea's DDNS name rules and enable-updates map one to one into [ddns]; the
    link to kea-dhcp-ddns is noted; a per-subnet value that differs is reported."""
    kea = _ddns_kea()
    result = convert(kea)
    dd = result.document["ddns"]
    d4 = kea["Dhcp4"]
    for key in ("ddns-qualifying-suffix", "ddns-replace-client-name", "ddns-generated-prefix",
                "ddns-override-client-update", "ddns-use-conflict-resolution",
                "hostname-char-set", "hostname-char-replacement"):
        assert dd[key] == d4[key], key
    assert (dd["enable-updates"], dd["max-queue-size"]) == (True, 512)
    cfg = from_document(result.document).ddns  # check-config's load accepts it
    assert cfg is not None and cfg.qualifying_suffix == "example.net"
    assert cfg.generated_prefix == "cpe" and cfg.override_client_update
    assert cfg.conflict_mode.value == "no-check-with-dhcid" and cfg.max_queue_size == 512
    kinds = {f.path: f.kind for f in result.findings}
    for key in ("server-ip", "server-port", "ncr-protocol"):
        assert kinds[f"Dhcp4.dhcp-ddns.{key}"] is FindingKind.NOTE
    assert kinds["Dhcp4.subnet4[0].ddns-qualifying-suffix"] is FindingKind.NOTE  # the same
    assert kinds["Dhcp4.subnet4[0].ddns-send-updates"] is FindingKind.UNSUPPORTED  # differs
    assert not any(p.startswith("Dhcp4.ddns-") or p.startswith("Dhcp4.hostname-char")
                   for p in {f.path for f in result.unsupported})


def test_ddns_values_ddns_refuses_and_unknown_keys_are_reported() -> None:
    result = convert(_ddns_kea(**{"ddns-generated-prefix": "bad_prefix",
                                  "ddns-ttl-percent": 0.5}))
    bad = {f.path: f.reason for f in result.unsupported}
    assert "bad_prefix" in bad["Dhcp4.ddns-generated-prefix"]
    assert "Dhcp4.ddns-ttl-percent" in bad
    dd = result.document["ddns"]
    assert "ddns-generated-prefix" not in dd and "ddns-ttl-percent" not in dd
    assert from_document(result.document).ddns is not None


@pytest.mark.parametrize(("kea", "want"), [
    # updates off, Kea's defaults (a config-get dump): no [ddns], fastdhcp answers 12 as is
    ({"dhcp-ddns": {"enable-updates": False}, "ddns-send-updates": True,
      "ddns-qualifying-suffix": "", "hostname-char-set": "[^A-Za-z0-9.-]"}, None),
    # updates off but a suffix: Kea still qualifies names, so [ddns] with updates off
    ({"ddns-qualifying-suffix": "example.net"},
     {"enable-updates": False, "ddns-qualifying-suffix": "example.net"}),
])
def test_ddns_off_writes_ddns_only_when_names_differ_from_kea_defaults(
        kea: dict[str, Any], want: dict[str, Any] | None) -> None:
    result = convert({"Dhcp4": {**kea, "subnet4": []}})
    assert result.document.get("ddns") == want
    assert not result.unsupported


def test_ddns_exported_back(tmp_path: Path) -> None:
    """[ddns] -> dhcp-ddns and the global ddns-* keys, accepted by kea-dhcp4 -t."""
    doc = convert(_ddns_kea()).document
    doc["ddns"]["ddns-conflict-resolution-mode"] = "check-with-dhcid"
    doc["ddns"].pop("ddns-use-conflict-resolution")
    back, findings = export(from_document(doc))
    d4 = back["Dhcp4"]
    assert d4["dhcp-ddns"] == {"enable-updates": True, "max-queue-size": 512}
    assert d4["ddns-qualifying-suffix"] == "example.net"
    assert d4["ddns-replace-client-name"] == "when-not-present"
    assert d4["hostname-char-replacement"] == "x"
    assert d4["ddns-use-conflict-resolution"] is True
    assert "ddns-conflict-resolution-mode" not in d4
    assert not [f for f in findings if f.kind is FindingKind.UNSUPPORTED]
    again = convert(back).document["ddns"]  # and in again: the same table
    assert {k: v for k, v in again.items() if k != "ddns-use-conflict-resolution"} == \
        {k: v for k, v in doc["ddns"].items() if k != "ddns-conflict-resolution-mode"}
    need_kea()
    path = tmp_path / "ddns.json"
    path.write_text(json.dumps(back))
    cp = kea_check(path)
    assert cp.returncode == 0, (cp.stdout[-2000:], cp.stderr[-2000:])
