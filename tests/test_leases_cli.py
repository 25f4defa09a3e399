"""``fastdhcp leases`` on a real lease database, with a writer holding it open (as a server does).

The oracle is the list of leases the test committed; outputs are parsed back (csv, json) and
compared field by field.
"""

from __future__ import annotations

import argparse
import csv
import io
import ipaddress
import json
import subprocess
import sys

import pytest

from fastdhcp import leases_cli
from fastdhcp.leases import Lease, LeaseState
from fastdhcp.store import LmdbLeaseStore

BASE = 0xC6120000  # 198.18.0.0
N = 300


def mk(i: int) -> Lease:
    return Lease(
        BASE + i,
        b"\x01" + bytes([0x02, 0, 0, 0, i >> 8, i & 0xFF]),
        bytes([0x02, 0, 0, 0, i >> 8, i & 0xFF]),
        1 + i % 3,
        i % 4,
        1_700_000_000 + i,
        1_700_003_600 + i,
        f"host-{i}" if i % 2 else "",
        bytes([1, 4]) + b"eth%d" % (i % 10) if i % 5 == 0 else b"",
    )


LEASES = [mk(i) for i in range(N)]


@pytest.fixture
def db(tmp_path):
    """A database with N leases, kept open by a writer for the whole test (a running server)."""
    store = LmdbLeaseStore(str(tmp_path))
    for lease in LEASES:
        store.stage(lease)
    batch = store.take_pending()
    store.write(batch)
    store.committed(batch)
    yield str(tmp_path), store
    store.close()


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastdhcp.leases_cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


def expected_row(lease: Lease) -> dict[str, str]:
    return {
        "address": str(ipaddress.IPv4Address(lease.ip)),
        "state": ["default", "declined", "expired-reclaimed", "released"][lease.state],
        "hw-address": ":".join(f"{b:02x}" for b in lease.hw_address),
        "client-id": lease.client_key.hex(),
        "subnet-id": str(lease.subnet_id),
        "issued": str(lease.issued),
        "expires": str(lease.expires),
        "hostname": lease.hostname,
        "relay-info": lease.relay_info.hex(),
    }


def test_export_csv(db):
    path, _ = db
    p = cli("--db", path, "export")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert rows == [expected_row(x) for x in LEASES]


def test_export_json_lines(db):
    path, _ = db
    p = cli("--db", path, "--json", "export")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    want = [
        {
            k: (int(v) if k in ("subnet-id", "issued", "expires") else v)
            for k, v in expected_row(x).items()
        }
        for x in LEASES
    ]
    assert rows == want


def test_list_formats(db):
    path, _ = db
    p = cli("--db", path, "--json", "list")
    assert p.returncode == 0, p.stderr
    assert [r["address"] for r in json.loads(p.stdout)] == [
        str(ipaddress.IPv4Address(x.ip)) for x in LEASES
    ]
    p = cli("--db", path, "--csv", "list")
    assert list(csv.DictReader(io.StringIO(p.stdout))) == [expected_row(x) for x in LEASES]
    p = cli("--db", path, "list")
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["ADDRESS", "STATE", "HW-ADDRESS"]
    assert len(lines) == N + 1
    first = lines[1].split()
    assert first[:4] == ["198.18.0.0", "default", "02:00:00:00:00:00", "01020000000000"]
    assert "2023-11-14 23:13:20" in lines[1]  # 1700003600 in UTC


def test_show(db):
    path, _ = db
    lease = LEASES[7]
    p = cli("--db", path, "--json", "show", "198.18.0.7")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["client-id"] == lease.client_key.hex()
    assert got["state"] == "released" and LeaseState(lease.state) == LeaseState.RELEASED
    assert got["hostname"] == "host-7"
    p = cli("--db", path, "show", "198.18.0.7")
    assert "hostname:    host-7" in p.stdout
    assert "expires:     1700003607 (2023-11-14 23:13:27 UTC)" in p.stdout
    p = cli("--db", path, "--csv", "show", "198.18.0.7")
    assert list(csv.DictReader(io.StringIO(p.stdout))) == [expected_row(lease)]


def test_delete_while_writer_open(db):
    path, store = db
    p = cli("--db", path, "delete", "198.18.0.9")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "deleted 198.18.0.9\n"
    assert store.get(BASE + 9) is None
    assert store.get_by_client(LEASES[9].client_key) is None
    # The writer goes on committing after the CLI's write transaction.
    store.stage(mk(N))
    batch = store.take_pending()
    store.write(batch)
    store.committed(batch)
    p = cli("--db", path, "--json", "export")
    assert len(p.stdout.splitlines()) == N  # one deleted, one added
    p = cli("--db", path, "delete", "198.18.0.9")
    assert p.returncode == 1
    assert p.stderr.strip() == f"fastdhcp leases: {path}: no lease for 198.18.0.9"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["show", "198.18.99.99"], "no lease for 198.18.99.99"),
        (["show", "not-an-ip"], "'not-an-ip' is not an IPv4 address"),
        (["delete", "300.1.1.1"], "'300.1.1.1' is not an IPv4 address"),
    ],
)
def test_errors_are_one_line(db, argv, message):
    path, _ = db
    p = cli("--db", path, *argv)
    assert p.returncode == 1
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastdhcp leases: ")
    assert message in lines[0]


def test_bad_databases(tmp_path):
    missing = str(tmp_path / "missing")
    p = cli("--db", missing, "list")
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        f"fastdhcp leases: {missing}: cannot open lease database: directory does not exist"
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    p = cli("--db", str(empty), "export")
    assert p.returncode == 1 and "no data.mdb" in p.stderr and str(empty) in p.stderr
    (empty / "data.mdb").write_bytes(b"garbage" * 1000)
    for verb in (["list"], ["delete", "198.18.0.1"]):
        p = cli("--db", str(empty), *verb)
        assert p.returncode == 1
        assert len(p.stderr.splitlines()) == 1 and str(empty) in p.stderr
        assert "Traceback" not in p.stderr


def test_run_in_process(db):
    path, store = db
    store.close()  # LMDB allows one handle per environment and process
    parser = argparse.ArgumentParser()
    leases_cli.add_arguments(parser)
    out = io.StringIO()
    assert leases_cli.run(parser.parse_args(["--db", path, "--csv", "export"]), out) == 0
    assert len(out.getvalue().splitlines()) == N + 1


def test_main_cli_delegates(db):
    path, _ = db
    p = subprocess.run(
        [sys.executable, "-m", "fastdhcp", "leases", "--db", path, "--json", "show", "198.18.0.1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["address"] == "198.18.0.1"
