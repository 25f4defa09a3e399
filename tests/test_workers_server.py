"""``fastdhcp serve`` with ``[server] workers = 2`` in a namespace (docs/scaling.md): relayed
DORA from many MACs through the project's driver, directly attached clients broadcasting on a
veth, a worker killed mid-load. What must hold: one answer per request (no worker answers
another's client), no address bound twice, every ACKed lease in the table, both workers
allocating (addresses in both slices), the killed worker restarted on its slot."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from service_helpers import ServeProcess
from workers_helpers import (
    RELAY_IP,
    ROOT,
    SERVER_IP,
    WorkersLab,
    env,
    lab,
    last_json,
)

from fastdhcp.config import Pool
from fastdhcp.slices import pool_slices

__all__ = ["lab"]  # the fixture, used by name

RELAYED_POOL = ("198.19.1.0", "198.19.40.255")  # 10,240 addresses: 5,120 a worker
DIRECT_POOL = ("198.18.40.10", "198.18.40.250")


def _ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _config(lab: WorkersLab, db: Path) -> str:
    return f"""
[server]
interfaces = ["{lab.srv_if}"]
listen-addresses = ["{SERVER_IP}"]
workers = 2
stats-interval = 0

[lease-database]
path = "{db}"
sync = true

[global]
valid-lifetime = 3600

[[subnet4]]
id = 1
subnet = "198.18.40.0/24"
interface = "{lab.srv_if}"
pools = ["{DIRECT_POOL[0]} - {DIRECT_POOL[1]}"]

[[subnet4]]
id = 2
subnet = "198.19.0.0/16"
pools = ["{RELAYED_POOL[0]} - {RELAYED_POOL[1]}"]
relay = ["{RELAY_IP}"]
"""


DRIVER = r"""
import json, sys
from fastdhcp.loadgen import run_load
server, relay, clients, rate, duration, first = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                                  float(sys.argv[4]), float(sys.argv[5]),
                                                  int(sys.argv[6]))
s = run_load((server, 67), relay, clients=clients, max_exchanges=clients, rate=rate,
             duration=duration, timeout=2.0, first_mac=first, collect=True)
print(json.dumps({"acks": s.acks, "naks": s.naks, "timeouts": s.timeouts, "stray": s.stray,
                  "discovers": s.discovers, "leases": s.leases}))
"""

# Directly attached clients: DISCOVER with the broadcast flag from the client namespace's veth,
# then REQUEST (SELECTING) the offered address; every reply is broadcast back to port 68.
BROADCAST_CLIENTS = r"""
import json, socket, struct, sys, time
ifname, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
s.bind(("0.0.0.0", 68))
s.settimeout(0.2)

def packet(mtype, xid, mac, opts=b""):
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4),
                       bytes(4), bytes(4), bytes(4), mac + bytes(10), bytes(64), bytes(128))
    return head + b"\x63\x82\x53\x63" + bytes([53, 1, mtype]) + opts + b"\xff"

def options(data):
    out, i = {}, 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        out[data[i]] = data[i + 2:i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return out

def collect(seconds, want):
    got = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = s.recv(2048)
        except TimeoutError:
            continue
        if len(data) < 240 or data[0] != 2:
            continue
        o = options(data)
        if o.get(53, b"\0")[0] == want:
            xid = struct.unpack_from("!I", data, 4)[0]
            got.setdefault(xid, []).append((data[16:20], o.get(54, b"")))
    return got

macs = {0x7000 + i: bytes([2, 0x77, 0, 0, i >> 8, i & 255]) for i in range(count)}
for xid, mac in macs.items():
    s.sendto(packet(1, xid, mac), ("255.255.255.255", 67))
offers = collect(3.0, 2)
for xid, answers in offers.items():
    yiaddr, sid = answers[0]
    s.sendto(packet(3, xid, macs[xid], bytes([50, 4]) + yiaddr + bytes([54, 4]) + sid),
             ("255.255.255.255", 67))
acks = collect(3.0, 5)
print(json.dumps({
    "offers": {str(x): len(a) for x, a in offers.items()},
    "acks": {str(x): [len(a), socket.inet_ntoa(a[0][0]), macs[x].hex()] for x, a in acks.items()},
}))
"""


def _serve(lab: WorkersLab, tmp_path: Path) -> tuple[ServeProcess, Path]:
    db = tmp_path / "db"
    cfg = tmp_path / "w.toml"
    cfg.write_text(_config(lab, db))
    srv = ServeProcess(cfg, tmp_path, prefix=tuple(lab.srv.argv([])))
    if not srv.wait_notify(timeout=90):
        log = srv.log()
        srv.close()
        raise AssertionError(f"the 2-worker server did not get ready:\n{log[-4000:]}")
    return srv, db


def _drive(lab: WorkersLab, clients: int, rate: float, duration: float,
           first: int) -> subprocess.Popen[str]:
    return lab.popen(lab.srv, DRIVER, SERVER_IP, RELAY_IP, str(clients), str(rate),
                     str(duration), str(first))


def _result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    got = last_json(out)
    assert isinstance(got, dict)
    return got


def _table(db: Path) -> list[dict]:
    cp = subprocess.run([sys.executable, "-m", "fastdhcp", "leases", "--db", str(db), "--json",
                         "list"], capture_output=True, text=True, timeout=120, env=env(),
                        cwd=ROOT, check=True)
    rows = json.loads(cp.stdout)
    assert isinstance(rows, list)
    return rows


def _mac(chaddr: int) -> str:
    return ":".join(f"{b:02x}" for b in chaddr.to_bytes(6, "big"))


def _check_table(db: Path, acked: list[tuple[int, int]]) -> list[dict]:
    rows = _table(db)
    active = [r for r in rows if r["state"] == "default"]
    by_ip = {r["address"]: r for r in active}
    assert len(by_ip) == len(active)  # (the table is keyed by address: a sanity check)
    per_client: dict[str, int] = {}
    for r in active:
        per_client[r["hw-address"]] = per_client.get(r["hw-address"], 0) + 1
    doubled = [k for k, n in per_client.items() if n > 1]
    assert not doubled, doubled[:5]  # no client holds two addresses
    ips = [ip for _, ip in acked]
    assert len(ips) == len(set(ips)), "an address was ACKed to two clients"
    missing = [(hex(c), str(ipaddress.IPv4Address(ip))) for c, ip in acked
               if by_ip.get(str(ipaddress.IPv4Address(ip)), {}).get("hw-address") != _mac(c)]
    assert not missing, f"{len(missing)} ACKed leases not in the table: {missing[:5]}"
    return active


def _slices() -> list[tuple[int, int]]:
    pool = Pool(_ip(RELAYED_POOL[0]), _ip(RELAYED_POOL[1]), "relayed")
    return [(s.first, s.last) for s in pool_slices(pool, 2)]


def test_two_workers_serve_relayed_and_broadcast_clients_once(lab: WorkersLab,
                                                              tmp_path: Path) -> None:
    srv, db = _serve(lab, tmp_path)
    try:
        got = _result(_drive(lab, 3000, 0, 20.0, 0x020000000000))
        bcast = lab.python(lab.cli, BROADCAST_CLIENTS, lab.cli_if, "24", timeout=60)
        assert bcast.returncode == 0, bcast.stderr
        srv.signal(signal.SIGHUP)  # forwarded: every worker reloads the file
        deadline = time.monotonic() + 30
        while (len(re.findall(r"worker=\d fastdhcp: reload: applied", srv.log())) < 2
               and time.monotonic() < deadline):
            time.sleep(0.2)
        assert {m for m in re.findall(r"worker=(\d) fastdhcp: reload: applied",
                                      srv.log())} == {"0", "1"}, srv.log()[-3000:]
        srv.signal(signal.SIGTERM)
        assert srv.wait(60) == 0, srv.log()[-3000:]
        log = srv.log()
    finally:
        srv.close()
    assert got["acks"] == 3000 and got["naks"] == 0 and got["timeouts"] == 0, got
    assert got["stray"] == 0, got  # a second answer to any request would be stray
    acked = [(int(c), int(ip)) for c, ip in got["leases"]]
    _check_table(db, acked)
    # both workers allocated: ACKed addresses in each worker's slice of the relayed pool
    slices = _slices()
    per_worker = [sum(1 for _, ip in acked if a <= ip <= b) for a, b in slices]
    assert all(n > 500 for n in per_worker), per_worker
    assert sum(per_worker) == 3000
    # broadcast clients: each DISCOVER reached both workers' sockets, exactly one answered
    b = last_json(bcast.stdout)
    assert isinstance(b, dict)
    assert len(b["offers"]) == 24 and set(b["offers"].values()) == {1}, b
    assert len(b["acks"]) == 24 and {v[0] for v in b["acks"].values()} == {1}, b
    direct = [_ip(v[1]) for v in b["acks"].values()]
    assert len(set(direct)) == 24
    assert all(_ip(DIRECT_POOL[0]) <= ip <= _ip(DIRECT_POOL[1]) for ip in direct)
    d_pool = Pool(_ip(DIRECT_POOL[0]), _ip(DIRECT_POOL[1]), "direct")
    assert all(any(x.first <= ip <= x.last for ip in direct)  # both workers answered some
               for x in pool_slices(d_pool, 2))
    assert "worker=0 " in log and "worker=1 " in log
    # with N fixed nothing is forwarded (each client steers to the owner of its lease)
    assert len(re.findall(r"final .*forwarded 0, forwarded here 0", log)) == 2, log[-3000:]


def _worker_pids(log: str, k: int) -> list[int]:
    return [int(m) for m in re.findall(rf"worker {k} started \(pid (\d+)\)", log)]


def test_a_killed_worker_is_restarted_and_no_acked_lease_is_lost(lab: WorkersLab,
                                                                 tmp_path: Path) -> None:
    srv, db = _serve(lab, tmp_path)
    try:
        first = _drive(lab, 6000, 1500, 4.0, 0x020100000000)
        time.sleep(2.0)
        pids = _worker_pids(srv.log(), 1)
        assert len(pids) == 1, srv.log()[-2000:]
        os.kill(pids[0], signal.SIGKILL)  # a process this test's server started
        run1 = _result(first)
        deadline = time.monotonic() + 60
        while len(_worker_pids(srv.log(), 1)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_worker_pids(srv.log(), 1)) == 2, srv.log()[-3000:]
        while "worker=1 fastdhcp: fastdhcp serving" not in srv.log().split(
                "worker 1 died")[-1] and time.monotonic() < deadline:
            time.sleep(0.2)
        run2 = _result(_drive(lab, 2000, 0, 20.0, 0x020200000000))
        srv.signal(signal.SIGTERM)
        assert srv.wait(60) == 0, srv.log()[-3000:]
        log = srv.log()
    finally:
        srv.close()
    assert "worker 1 died (killed by signal 9)" in log
    assert run1["acks"] > 1000, run1  # the load ran across the kill
    assert run2["acks"] == 2000 and run2["naks"] == 0 and run2["timeouts"] == 0, run2
    acked = [(int(c), int(ip)) for c, ip in run1["leases"] + run2["leases"]]
    _check_table(db, acked)
    slices = _slices()
    after = [sum(1 for _, ip in run2["leases"] if a <= ip <= b) for a, b in slices]
    assert all(n > 300 for n in after), after  # the restarted worker serves its slice again


RELAYED_CLIENT = r"""
import json, socket, struct, sys
relay, server = sys.argv[1], sys.argv[2]
m1, m2 = bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4])
cid = b"\x00moving-client"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # beside the server's 0.0.0.0:67
s.bind((relay, 67))
s.settimeout(3.0)
giaddr = socket.inet_aton(relay)

def packet(mtype, xid, mac, opts=b"", ciaddr=bytes(4)):
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, xid, 0, 0, ciaddr,
                       bytes(4), bytes(4), giaddr, mac + bytes(10), bytes(64), bytes(128))
    return (head + b"\x63\x82\x53\x63" + bytes([53, 1, mtype, 61, len(cid)]) + cid + opts
            + b"\xff")

def answer(xid):
    while True:
        data = s.recv(2048)
        if struct.unpack_from("!I", data, 4)[0] == xid:
            i, o = 240, {}
            while data[i] != 255:
                o[data[i]] = data[i + 2:i + 2 + data[i + 1]]
                i += 2 + data[i + 1]
            return data, o

s.sendto(packet(1, 1, m1), (server, 67))
offer, o = answer(1)
yiaddr = offer[16:20]
s.sendto(packet(3, 2, m1, bytes([50, 4]) + yiaddr + bytes([54, 4]) + o[54]), (server, 67))
ack, o = answer(2)
out = {"bound": socket.inet_ntoa(yiaddr), "ack": o[53][0]}
# the same client (client-id) comes back with another chaddr, which steers to the other
# worker: INIT-REBOOT (50, no 54), then a renewal from ciaddr
s.sendto(packet(3, 3, m2, bytes([50, 4]) + yiaddr), (server, 67))
reboot, o = answer(3)
out["reboot"] = [o[53][0], socket.inet_ntoa(reboot[16:20])]
s.sendto(packet(3, 4, m2, ciaddr=yiaddr), (server, 67))
renew, o = answer(4)
out["renew"] = [o[53][0], socket.inet_ntoa(renew[16:20])]
print(json.dumps(out))
"""


def test_a_request_for_another_workers_address_is_forwarded_to_its_owner(
        lab: WorkersLab, tmp_path: Path) -> None:
    from fastdhcp.slices import steer

    macs = [bytes([2, 0x66, 0, 0, 0, i]) for i in range(64)]
    m1 = next(m for m in macs if steer(m, 2) == 0)
    m2 = next(m for m in macs if steer(m, 2) == 1)
    srv, db = _serve(lab, tmp_path)
    try:
        cp = lab.python(lab.srv, RELAYED_CLIENT, RELAY_IP, SERVER_IP, m1.hex(), m2.hex())
        srv.signal(signal.SIGTERM)
        assert srv.wait(60) == 0, srv.log()[-3000:]
        log = srv.log()
    finally:
        srv.close()
    final = {k: re.search(rf"worker={k} fastdhcp: final .*forwarded (\d+), forwarded here (\d+)",
                          log) for k in (0, 1)}
    assert final[0] and final[1], log[-3000:]
    assert final[1].groups() == ("2", "0") and final[0].groups() == ("0", "2")
    assert cp.returncode == 0, cp.stderr
    got = last_json(cp.stdout)
    assert isinstance(got, dict)
    bound = got["bound"]
    # worker 0 bound it, in its slice; worker 1 received the rest and handed it to worker 0,
    # which knows the binding: ACKs for the same address (without forwarding worker 1 has no
    # record of it: silence or a NAK)
    first, last = _slices()[0]
    assert first <= _ip(bound) <= last
    assert got["ack"] == 5 and got["reboot"] == [5, bound] and got["renew"] == [5, bound], got
    rows = [r for r in _table(db) if r["address"] == bound]
    assert len(rows) == 1 and rows[0]["state"] == "default"
