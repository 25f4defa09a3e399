"""``fastdhcp import-kea`` on bad and on typical input (issue 18): what it refuses, reports and
carries, through the command itself (exit status, messages, files written or not).

The typical configs are small ones in the shapes Kea's documentation shows for kea-dhcp4 (a
subnet with pools and options, a shared network, host reservations by the identifiers fastdhcp
has, custom options of option-def, a relayed subnet, the control socket and the lease_cmds hook);
they are written here from those documented shapes, not copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fastdhcp.cli import main
from fastdhcp.config import load
from fastdhcp.kea.lease_import import MARKER_KEY, import_leases
from fastdhcp.kea.memfile import HEADER
from fastdhcp.leases import LeaseState
from fastdhcp.store import LmdbLeaseStore
from tests.test_kea_migrate import NET

SUBNET = {"id": 1, "subnet": "192.0.2.0/24",
          "pools": [{"pool": "192.0.2.100 - 192.0.2.200"}]}


def _kea(tmp: Path, d4: dict[str, Any], name: str = "kea.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps({"Dhcp4": d4}, indent=1))
    return path


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text(",".join(HEADER) + "\n" + "".join(r + "\n" for r in rows))
    return path


def _row(ip: str, n: int, *, subnet: int = 1, valid: int = 3600, state: int = 0) -> str:
    return f"{ip},02:00:00:00:00:{n:02x},,{valid},{1900000000 + n},{subnet},0,0,h{n},{state},"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["import-kea", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_unsupported_keys_listed_with_path_exit_1(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    sub = dict(SUBNET, **{"option-data": [{"name": "routers", "data": "192.0.2.1",
                                           "always-send": True}]})
    kea = _kea(tmp_path, {"subnet4": [sub], "frobnicate": 1, "hooks-libraries": [
        {"library": "/usr/lib/kea/hooks/libdhcp_radius.so"}]})
    out = tmp_path / "out.toml"
    rc, _, err = _run(capsys, "--config", str(kea), "--out", str(out))
    assert rc == 1
    for path in ("Dhcp4.frobnicate", "Dhcp4.hooks-libraries[0]",
                 "Dhcp4.subnet4[0].option-data[0].always-send"):
        assert f"unsupported: {path}: " in err, err
    assert "nothing written" in err and not out.exists()
    rc, _, err = _run(capsys, "--config", str(kea), "--out", str(out), "--allow-unsupported")
    assert rc == 0, err
    text = out.read_text()
    # the header keeps the list; the rest is a config that loads
    assert "#   unsupported: Dhcp4.frobnicate: " in text
    assert load(str(out)).subnets[0].id == 1


def test_malformed_row_writes_nothing_unless_skipped(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    kea = _kea(tmp_path, {"subnet4": [SUBNET]})
    leases = _csv(tmp_path / "l.csv", [_row("192.0.2.10", 1), _row("192.0.2.11", 2),
                                       "192.0.2.12,02:00:00:00:00:03,,3600,x,1,0,0,,0,",
                                       _row("192.0.2.13", 4)])
    out, db = tmp_path / "out.toml", tmp_path / "db"
    rc, _, err = _run(capsys, "--config", str(kea), "--leases", str(leases), "--out", str(out),
                      "--db", str(db))
    assert rc == 1
    assert "l.csv:4: expire: 'x': not an integer" in err, err
    assert not out.exists() and not db.exists()
    rc, stdout, err = _run(capsys, "--config", str(kea), "--leases", str(leases), "--out",
                           str(out), "--db", str(db), "--skip-bad-lines")
    assert rc == 0, err
    assert "l.csv:4: expire" in err and "1 malformed rows skipped" in stdout
    assert "3 leases imported" in stdout
    with LmdbLeaseStore(str(db), readonly=True) as store:
        assert sorted(lease.ip & 0xFF for lease in store) == [10, 11, 13]


def test_outside_subnets_reported_and_skipped(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    kea = _kea(tmp_path, {"subnet4": [SUBNET, {"id": 2, "subnet": "198.51.100.0/24"}]})
    leases = _csv(tmp_path / "l.csv", [
        _row("192.0.2.10", 1), _row("203.0.113.5", 2), _row("198.51.100.7", 3, subnet=1),
        _row("192.0.2.11", 4, subnet=9)])
    out, db = tmp_path / "out.toml", tmp_path / "db"
    rc, stdout, err = _run(capsys, "--config", str(kea), "--leases", str(leases), "--out",
                           str(out), "--db", str(db))
    assert rc == 0, err
    assert "lease 203.0.113.5 (subnet-id 1): outside every configured subnet" in err
    assert "lease 198.51.100.7: subnet-id 1 is another subnet's id; the address is in " \
           "subnet4 id 2" in err
    assert "lease 192.0.2.11: subnet-id 9 is a subnet-id the config does not have" in err
    assert "1 leases imported" in stdout and "3 leases outside" in stdout
    with LmdbLeaseStore(str(db), readonly=True) as store:
        assert [lease.ip & 0xFF for lease in store] == [10]


def test_duplicate_reservation_reported_at_its_kea_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = {"name": "n1", "relay": {"ip-addresses": ["192.0.2.1"]}, "subnet4": [
        dict(SUBNET, reservations=[{"hw-address": "AA:BB:CC:00:00:01", "ip-address": "192.0.2.5"},
                                   {"circuit-id": "'p1'", "ip-address": "192.0.2.6"}]),
        {"id": 2, "subnet": "198.51.100.0/24", "reservations": [
            {"hw-address": "aa-bb-cc-00-00-01", "ip-address": "198.51.100.5"},
            {"circuit-id": "'p2'", "ip-address": "192.0.2.6"}]}]}
    kea = _kea(tmp_path, {"shared-networks": [net]})
    out = tmp_path / "out.toml"
    rc, _, err = _run(capsys, "--config", str(kea), "--out", str(out))
    assert rc == 1 and not out.exists()
    base = "Dhcp4.shared-networks[0].subnet4"
    assert (f"unsupported: {base}[1].reservations[0].hw-address: 'aa-bb-cc-00-00-01': a "
            f"duplicate reservation (same hw-address as {base}[0].reservations[0])") in err, err
    assert (f"unsupported: {base}[1].reservations[1].ip-address: '192.0.2.6': a duplicate "
            f"reservation (same ip-address as {base}[0].reservations[1])") in err, err
    rc, _, err = _run(capsys, "--config", str(kea), "--out", str(out), "--allow-unsupported")
    assert rc == 0, err
    kept = [r.ip for s in load(str(out)).subnets for r in s.reservations]
    assert len(kept) == 2  # the first of each pair, and it says so above


def test_states_and_deletion_rows_carry_over(tmp_path: Path) -> None:
    f = _csv(tmp_path / "l.csv", [
        _row("192.0.2.10", 1, state=1), _row("192.0.2.11", 2, state=2),
        _row("192.0.2.12", 3), _row("192.0.2.12", 3, valid=0)])
    report = import_leases([str(f)], str(tmp_path / "db"), NET)
    assert (report.total, report.deleted) == (2, 1)
    with LmdbLeaseStore(str(tmp_path / "db"), readonly=True) as store:
        states = {lease.ip & 0xFF: lease.state for lease in store}
    assert states == {10: LeaseState.DECLINED, 11: LeaseState.EXPIRED_RECLAIMED}


def test_db_of_something_else_refused(tmp_path: Path) -> None:
    from fastdhcp.kea.lease_import import ImportError_

    a = _csv(tmp_path / "a.csv", [_row("192.0.2.10", 1)])
    b = _csv(tmp_path / "b.csv", [_row("192.0.2.20", 2)])
    db = str(tmp_path / "db")
    import_leases([str(a)], db, NET)
    assert import_leases([str(a)], db, NET).written == 0  # a rerun of a complete import
    with pytest.raises(ImportError_, match="holds an import of other lease files"):
        import_leases([str(b)], db, NET)
    other = str(tmp_path / "served")
    with LmdbLeaseStore(other, create=True) as store:
        with LmdbLeaseStore(db, readonly=True) as src:
            store.write(list(src))
        assert store.meta_get(MARKER_KEY) is None
    with pytest.raises(ImportError_, match="already holds 1 leases and no import-kea marker"):
        import_leases([str(a)], other, NET)


# ---- configs in the shapes of Kea's documentation

DOC_SHAPES: dict[str, dict[str, Any]] = {
    "subnet, pools, options": {
        "interfaces-config": {"interfaces": ["eth0"]},
        "valid-lifetime": 4000, "renew-timer": 1000, "rebind-timer": 2000,
        "lease-database": {"type": "memfile", "persist": True,
                           "name": "/var/lib/kea/kea-leases4.csv", "lfc-interval": 3600},
        "option-data": [{"name": "domain-name-servers", "data": "192.0.2.1, 192.0.2.2"},
                        {"code": 15, "data": "example.org"},
                        {"name": "domain-search", "data": "mydomain.example.com, example.com"}],
        "subnet4": [{"id": 1, "subnet": "192.0.2.0/24",
                     "pools": [{"pool": "192.0.2.10 - 192.0.2.20"}, {"pool": "192.0.2.64/26"}],
                     "option-data": [{"name": "routers", "data": "192.0.2.1"}]}],
    },
    "shared network": {
        "interfaces-config": {"interfaces": ["eth1"]},
        "shared-networks": [{
            "name": "frog", "interface": "eth1",
            "option-data": [{"name": "domain-name-servers", "data": "192.0.2.53"}],
            "valid-lifetime": 200,
            "subnet4": [
                {"id": 1, "subnet": "10.0.0.0/8", "pools": [{"pool": "10.0.0.1 - 10.0.0.99"}]},
                {"id": 2, "subnet": "192.0.3.0/24", "pools": [{"pool": "192.0.3.10/31"}],
                 "valid-lifetime": 100}]}],
    },
    "host reservations": {
        "subnet4": [{
            "id": 1, "subnet": "192.0.2.0/24", "pools": [{"pool": "192.0.2.10 - 192.0.2.200"}],
            "reservations": [
                {"hw-address": "1a:1b:1c:1d:1e:1f", "ip-address": "192.0.2.202",
                 "hostname": "special-snowflake"},
                {"client-id": "01:11:22:33:44:55:66", "ip-address": "192.0.2.100",
                 "hostname": "special-snowflake2"},
                {"circuit-id": "'charter950'", "ip-address": "192.0.2.203"},
                {"hw-address": "aa:bb:cc:dd:ee:ff", "ip-address": "192.0.2.204",
                 "option-data": [{"name": "domain-name-servers", "data": "10.1.1.202"}]}]}],
    },
    "custom options": {
        "option-def": [{"name": "foo", "code": 222, "type": "uint32"},
                       {"name": "bar", "code": 223, "type": "ipv4-address", "array": True},
                       {"name": "motd", "code": 224, "type": "string"}],
        "option-data": [{"name": "foo", "data": "12345"},
                        {"name": "bar", "data": "192.0.2.1, 192.0.2.2"},
                        {"code": 224, "data": "hello"}],
        "subnet4": [dict(SUBNET)],
    },
    "relayed subnet, control socket, lease commands": {
        "control-socket": {"socket-type": "unix", "socket-name": "/tmp/kea4-ctrl-socket"},
        "hooks-libraries": [{"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/"
                                        "libdhcp_lease_cmds.so"}],
        "authoritative": True,
        "subnet4": [{"id": 1, "subnet": "192.0.2.0/24", "relay": {"ip-addresses": ["10.0.0.1"]},
                     "pools": [{"pool": "192.0.2.10 - 192.0.2.20"}],
                     "match-client-id": True}],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                     "output_options": [{"output": "/var/log/kea-dhcp4.log"}]}],
    },
}


@pytest.mark.parametrize("shape", list(DOC_SHAPES))
def test_documented_shapes_import_and_check(tmp_path: Path, shape: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    kea = _kea(tmp_path, DOC_SHAPES[shape])
    out = tmp_path / "out.toml"
    rc, _, err = _run(capsys, "--config", str(kea), "--out", str(out), "--db",
                      str(tmp_path / "db"))
    assert rc == 0 and "unsupported" not in err, err
    assert main(["check-config", "--config", str(out)]) == 0, capsys.readouterr()


def test_custom_option_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kea = _kea(tmp_path, DOC_SHAPES["custom options"])
    out = tmp_path / "out.toml"
    assert _run(capsys, "--config", str(kea), "--out", str(out))[0] == 0
    opts = load(str(out)).options
    assert opts[222] == (12345).to_bytes(4, "big")
    assert opts[223] == bytes([192, 0, 2, 1, 192, 0, 2, 2])
    assert opts[224] == b"hello"


def test_option_def_it_cannot_encode_is_unsupported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kea = _kea(tmp_path, {"option-def": [
        {"name": "rec", "code": 230, "type": "record", "record-types": "uint8, string"},
        {"name": "routers", "code": 3, "type": "ipv4-address"}],
        "option-data": [{"name": "rec", "data": "1, x"}], "subnet4": [SUBNET]})
    rc, _, err = _run(capsys, "--config", str(kea), "--out", str(tmp_path / "o.toml"))
    assert rc == 1
    assert "unsupported: Dhcp4.option-def[0].record-types: " in err
    assert "unsupported: Dhcp4.option-def[1]: 'routers' (3) redefines a standard" in err
    assert "unsupported: Dhcp4.option-data[0]: option 'rec': not an option fastdhcp" in err


@pytest.mark.parametrize("row", [
    "192.0.2.10,02:00:00:00:00:01,,3600,1900000000,1,0,0,h1,0,",
    "192.0.2.11,02:00:00:00:00:02,01:02:00:00:00:00:02,3600,1900000000,1,1,1,a&#x2cb,1,",
    "192.0.2.12,02:00:00:00:00:03,ff:00:01,4294967295,4294967295,7,true,false,,2,",
    "192.0.2.13,02:00:00:00:00:04,,0,1900000000,1,0,0,,0,",
    "192.0.2.14,2:0:0:0:0:5,,3600,100,1,0,0,,3,",  # 1-digit hex: only the checked path
    '192.0.2.15,02:00:00:00:00:06,,3600,1900000000,1,0,0,,0,{ "a": 1 }',
    "010.0.2.16,02:00:00:00:00:07,,3600,1900000000,1,0,0,,0,",  # inet_aton: octal 8.0.2.16
    "192.0.2.17,02:AB:cd:00:00:08,01:FF:ee,0036,+1900000000,01,false,true,h\u00e9,3,",
    "192.0.2.18,02:00:00:00:00:09,,3600,100,1,0,0,x,0,",  # expire < valid: issued 0
    "255.255.255.255,02:00:00:00:00:0a,,4294967295,9223372036854775807,4294967295,1,1,,0,",
])
def test_fast_row_path_builds_what_the_checked_rule_builds(row: str) -> None:
    from fastdhcp.kea.memfile import _parse_checked, parse_row

    fields = row.split(",")
    assert parse_row(fields, 11) == _parse_checked(fields, 11)
    wider = [*fields, "7"]  # Kea 2.6's pool_id: read by neither rule
    assert parse_row(wider, 12) == _parse_checked(wider, 12)


def test_fast_rule_takes_the_rows_kea_writes_and_leaves_the_rest() -> None:
    # The compiled rule must really take Kea's usual rows (else the speed is gone, unseen),
    # and leave every form it does not read exactly as the checked rule to that rule.
    from fastdhcp import _memfile
    from fastdhcp.kea.memfile import _STATE_BY_DIGIT, KeaLease

    def fast(row: str, width: int = 11) -> KeaLease | None:
        kl: KeaLease | None = _memfile.parse_fast(row, width, _STATE_BY_DIGIT, KeaLease)
        return kl

    kl = fast("192.0.2.10,02:00:00:00:00:01,01:02:00:00:00:00:01,3600,1900000000,1,1,0,h1,1,")
    assert kl is not None and kl.fqdn_fwd and not kl.fqdn_rev and kl.valid_lifetime == 3600
    assert kl.lease.state is LeaseState.DECLINED and kl.lease.issued == 1899996400
    assert fast("192.0.2.10,02:00:00:00:00:01,,3600,1900000000,1,0,0,,0,,7", 12) is not None
    for row in ["010.0.2.16,02:00:00:00:00:07,,3600,1900000000,1,0,0,,0,",
                "192.0.2.11,02:00:00:00:00:02,,3600,1900000000,1,0,0,a&#x2cb,0,",
                "192.0.2.11,02:00:00:00:00:02,,3600,1900000000,1,0,0,,0,{}",
                "192.0.2.11,2:0:0:0:0:2,,3600,1900000000,1,0,0,,0,",
                "192.0.2.11,02:00:00:00:00:02,,+3600,1900000000,1,0,0,,0,",
                "192.0.2.11,02:00:00:00:00:02,,3600,1900000000,1,0,0,,0",
                "192.0.2.11,02:00:00:00:00:02,,3600,1900000000,1,0,0,,0,,",
                "192.0.2.11,02:00:00:00:00:0g,,3600,1900000000,1,0,0,,0,",
                "192.0.2.11,02:00:00:00:00:02,01,3600,1900000000,1,0,0,,0,",
                "192.0.2.256,02:00:00:00:00:02,,3600,1900000000,1,0,0,,0,",
                "192.0.2.11,02:00:00:00:00:02,,3600,1900000000,4294967296,0,0,,0,",
                "192.0.2.11,02:00:00:00:00:02,,3600,1900000000,1,0,0,,4,"]:
        assert fast(row) is None, row


def test_read_rows_applies_fast_and_checked_rows_in_file_order() -> None:
    # The compiled reader against a model: parse_row on each line, applied in order.
    from fastdhcp.kea.memfile import BadLine, KeaLease, parse_row, read_rows
    from fastdhcp.leases import Lease

    rows = [
        "192.0.2.1,02:00:00:00:00:01,,3600,1900000001,1,1,1,a,0,",  # fast, flagged
        "192.0.2.2,02:00:00:00:00:02,,3600,1900000002,1,0,0,b&#x2c,0,",  # checked
        "",
        "192.0.2.3,02:00:00:00:00:03,,3600,1900000003,1,0,0,,0,{\"k\": 1}",  # checked, context
        "192.0.2.1,02:00:00:00:00:11,,3600,1900000011,1,0,0,a2,0,",  # replaces 1, no flags
        "192.0.2.4,02:00:00:00:00:zz,,3600,1900000004,1,0,0,,0,",  # bad: line 7
        "192.0.2.3,02:00:00:00:00:03,,0,1900000003,1,0,0,,0,",  # deletes 3 (and its context)
        "192.0.2.5,02:00:00:00:00:05,,3600,1900000005,1,0,1,e,2,\r",
        "192.0.2.2,02:00:00:00:00:02,,3600,1900000012,1,0,0,b2,1,",  # replaces 2
        "192.0.2.6,02:00:00:00:00:06,,0,1900000006,1,0,0,,0,",  # deletes nothing
    ]
    data = (",".join(HEADER) + "\n" + "\n".join(rows)).encode()
    leases: dict[int, Lease] = {}
    extras: dict[int, KeaLease] = {}
    bad: list[tuple[int, str]] = []
    counts = read_rows(data, data.index(b"\n") + 1, 2, 11, leases, extras,
                       lambda n, exc: bad.append((n, exc.field)))
    want: dict[int, KeaLease] = {}
    replaced = deleted = 0
    for line in rows:
        if not line:
            continue
        try:
            kl = parse_row(line.rstrip("\r").split(","), 11)
        except BadLine:
            continue
        if kl.valid_lifetime == 0:
            deleted += want.pop(kl.lease.ip, None) is not None
            continue
        replaced += kl.lease.ip in want
        want[kl.lease.ip] = kl
    assert bad == [(7, "hwaddr")]
    assert (counts.rows, counts.replaced, counts.deleted) == (9, replaced, deleted) == (9, 2, 1)
    assert leases == {ip: kl.lease for ip, kl in want.items()}
    assert extras == {ip: kl for ip, kl in want.items()
                      if kl.fqdn_fwd or kl.fqdn_rev or kl.user_context is not None}
    assert sorted(ip & 0xFF for ip in extras) == [5]


def test_fqdn_flags_and_user_context_reach_the_extras_table(tmp_path: Path) -> None:
    from fastdhcp.control.lease_extras import LeaseExtras

    f = _csv(tmp_path / "l.csv", [
        "192.0.2.10,02:00:00:00:00:01,,3600,1900000000,1,1,0,h,0,",
        '192.0.2.11,02:00:00:00:00:02,,3600,1900000000,1,0,0,,0,{ "a": 1 }',
        "192.0.2.12,02:00:00:00:00:03,,3600,1900000000,1,0,1,,0,",
        "192.0.2.12,02:00:00:00:00:03,,3600,1900000100,1,0,0,,0,"])  # later, no flags
    import_leases([str(f)], str(tmp_path / "db"), NET)
    with LmdbLeaseStore(str(tmp_path / "db"), readonly=True) as store:
        got = {k: store.extras_get(0xC0000200 + k) for k in (10, 11, 12)}
    assert LeaseExtras.decode(got[10] or b"") == LeaseExtras(b"\x01\x02\0\0\0\0\x01",
                                                             None, True, False)
    assert LeaseExtras.decode(got[11] or b"") == LeaseExtras(b"\x01\x02\0\0\0\0\x02",
                                                             {"a": 1}, False, False)
    assert got[12] is None


@pytest.mark.parametrize(("row", "field"), [
    ("192.0.2.10,02:00:00:00:00:zz,,3600,1900000000,1,0,0,,0,", "hwaddr"),
    ("192.0.2.10,02:00:00:00:00:01,01,3600,1900000000,1,0,0,,0,", "client_id"),
    ("192.0.2.10,02:00:00:00:00:01,,-1,1900000000,1,0,0,,0,", "valid_lifetime"),
    ("192.0.2.10,02:00:00:00:00:01,,3600,1900000000,4294967296,0,0,,0,", "subnet_id"),
    ("192.0.2.10,02:00:00:00:00:01,,3600,1900000000,1,2,0,,0,", "fqdn_fwd"),
    ("192.0.2.10,02:00:00:00:00:01,,3600,1900000000,1,0,0,,9,", "state"),
    ("192.0.2,02:00:00:00:00:01,,3600,1900000000,1,0,0,,0,", "address"),
])
def test_bad_rows_name_their_field(row: str, field: str) -> None:
    from fastdhcp.kea.memfile import BadLine, parse_row

    with pytest.raises(BadLine) as info:
        parse_row(row.split(","), 11)
    assert info.value.field == field
