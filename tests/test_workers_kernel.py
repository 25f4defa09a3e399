"""The chaddr steering of the multi-worker server, proven by the kernel: the supervisor's
reuseport groups (fastdhcp.service.supervisor.open_groups) with the CBPF program attached
deliver each unicast datagram to socket ``steer(chaddr, n)`` of its group, and a broadcast to
every socket of an interface group (which is why each worker filters broadcasts itself)."""

from __future__ import annotations

import random

from workers_helpers import SRV_IF_IP, WorkersLab, lab, last_json

from fastdhcp.slices import steer

__all__ = ["lab"]  # the fixture, used by name

N = 3
PORT = 16067

RECEIVER = r"""
import json, select, sys, time
from fastdhcp.service.supervisor import open_groups
ifname, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
groups = open_groups([("if", ifname, port), ("addr", addr, port + 1)], n)
socks = {s.fileno(): (kind, i, s) for kind, g in (("if", groups[("if", ifname, port)]),
                                                  ("addr", groups[("addr", addr, port + 1)]))
         for i, s in enumerate(g)}
print("ready", flush=True)
got = []
deadline = time.monotonic() + 30
last = time.monotonic()
while time.monotonic() < deadline and time.monotonic() - last < 3:
    r, _, _ = select.select(list(socks), [], [], 0.5)
    for fd in r:
        kind, i, s = socks[fd]
        data = s.recv(2048)
        got.append([kind, i, data[28:34].hex()])
        last = time.monotonic()
print(json.dumps(got))
"""

SENDER = r"""
import socket, sys
srv_addr, port, bcast_if = sys.argv[1], int(sys.argv[2]), sys.argv[3]
macs = [bytes.fromhex(m) for m in sys.argv[4].split(",")]
bmacs = [bytes.fromhex(m) for m in sys.argv[5].split(",")]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # one source port for every datagram
for m in macs:
    u.sendto(bytes(28) + m + bytes(266), (srv_addr, port + 1))
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
b.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bcast_if.encode())
for m in bmacs:
    b.sendto(bytes(28) + m + bytes(266), ("255.255.255.255", port))
print("sent", flush=True)
"""


def test_reuseport_cbpf_steers_by_chaddr_and_broadcasts_reach_every_socket(
        lab: WorkersLab) -> None:
    rng = random.Random(11)
    macs = [rng.randbytes(6) for _ in range(200)]
    macs += [(0x02005E000000 + i).to_bytes(6, "big") for i in range(100)]  # one vendor block
    bmacs = [rng.randbytes(6) for _ in range(12)]
    # the receiver listens on the server namespace's veth (interface group: broadcasts) and
    # on SRV_IF_IP + 1 port (address group: unicast from the client namespace)
    rx = lab.popen(lab.srv, RECEIVER, lab.srv_if, SRV_IF_IP, str(PORT), str(N))
    try:
        assert rx.stdout is not None
        assert rx.stdout.readline().strip() == "ready", rx.stderr.read() if rx.stderr else ""
        cp = lab.python(lab.cli, SENDER, SRV_IF_IP, str(PORT), lab.cli_if,
                        ",".join(m.hex() for m in macs), ",".join(m.hex() for m in bmacs))
        assert cp.returncode == 0, cp.stderr
        out, err = rx.communicate(timeout=60)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    got = last_json(out)
    assert isinstance(got, list), err
    uni = [(i, m) for kind, i, m in got if kind == "addr"]
    assert sorted(m for _, m in uni) == sorted(m.hex() for m in macs)  # each once
    wrong = [(i, m) for i, m in uni if i != steer(bytes.fromhex(m), N)]
    assert not wrong, wrong[:5]
    assert {i for i, _ in uni} == set(range(N))  # and every socket got some
    bc = [(i, m) for kind, i, m in got if kind == "if"]
    for m in bmacs:  # a broadcast reached all N sockets of the interface's group
        assert sorted(i for i, x in bc if x == m.hex()) == list(range(N)), (m.hex(), bc)
