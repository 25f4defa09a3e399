"""Leasequery (RFC 4388) and bulk leasequery (RFC 6926) against leases made by real DORA.

A lab of its own (the session server holds port 67 in the shared lab)::

    srv [l0] 198.18.20.1/24 ---- 198.18.20.2/24 [l1] relay   (+ 198.18.21.1, 198.18.21.9)

The relay namespace plays a relay agent as perfdhcp does: each client's DISCOVER and REQUEST
leave from 198.18.21.1:67 with giaddr 198.18.21.1 (which selects the subnet 198.18.21.0/24)
and option 82 (circuit-id, a remote-id per client, one relay-id for all), built and read with
scapy, an independent DHCP implementation. Then, from the same namespace: scapy
DHCPLEASEQUERYs by IP address, MAC and client-id, and a plain-socket TCP client of bulk
leasequery by relay-id, remote-id and for all. 198.18.21.9, an address of the same namespace
that is not in ``requesters``, gets nothing over UDP or TCP.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from .netns import Cleanup, Namespace, create_namespace, create_veth, stop_process

REPO = Path(__file__).resolve().parents[2]
SERVER = "198.18.20.1"
GIADDR = "198.18.21.1"
STRANGER = "198.18.21.9"
RELAY_ID = "relay-A"
CLIENTS = 4

#: The client run inside the relay namespace: scapy for the DHCP messages, plain sockets.
CLIENT = textwrap.dedent('''
    import json, socket, struct, sys
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.config import conf
    conf.checkIPaddr = False

    def rai(i, relay_id):
        relay_id = relay_id.encode()
        remote = b"cpe-%d" % i
        circuit = b"port-%d" % i
        return (bytes((1, len(circuit))) + circuit + bytes((2, len(remote))) + remote
                + bytes((12, len(relay_id))) + relay_id)

    def mac(i):
        return bytes((2, 0x1e, 0, 0, 0, i))

    def udp(src):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 67))
        s.settimeout(2.0)
        return s

    def ask(s, pkt, server):
        s.sendto(bytes(pkt), (server, 67))
        try:
            data = s.recv(4096)
        except socket.timeout:
            return None
        return BOOTP(data)

    def opts(p):
        out = {}
        for o in p[DHCP].options:
            if isinstance(o, tuple):
                v = o[1] if len(o) == 2 else o[1:]
                out[str(o[0])] = v.hex() if isinstance(v, bytes) else v
        return out

    def dora(server, giaddr, n, relay_id):
        s = udp(giaddr)
        out = []
        for i in range(1, n + 1):
            cid = b"\\x00client-%d" % i
            base = BOOTP(op=1, htype=1, hlen=6, hops=1, xid=1000 + i, giaddr=giaddr,
                         chaddr=mac(i) + bytes(10))
            o = [("message-type", "discover"), ("client_id", cid),
                 ("relay_agent_information", rai(i, relay_id)), "end"]
            offer = ask(s, base / DHCP(options=o), server)
            assert offer is not None, "no OFFER"
            o = [("message-type", "request"), ("client_id", cid),
                 ("requested_addr", offer.yiaddr), ("server_id", server),
                 ("relay_agent_information", rai(i, relay_id)), "end"]
            ack = ask(s, base / DHCP(options=o), server)
            assert ack is not None and opts(ack)["message-type"] == 5, "no ACK"
            out.append({"mac": mac(i).hex(), "ip": ack.yiaddr, "cid": cid.hex()})
        return out

    def query(server, src, giaddr, kind, value):
        s = udp(src)
        # the answer goes to giaddr:67: listen there even when asking from another address
        back = s if src == giaddr else udp(giaddr)
        p = BOOTP(op=1, htype=1, hlen=6, xid=77, giaddr=giaddr)
        o = [("message-type", 10)]
        if kind == "ip":
            p.ciaddr = value
        elif kind == "mac":
            p.chaddr = bytes.fromhex(value) + bytes(10)
        else:
            p.chaddr = bytes(16)
            o.append(("client_id", bytes.fromhex(value)))
        s.sendto(bytes(p / DHCP(options=o + ["end"])), (server, 67))
        try:
            r = BOOTP(back.recv(4096))
        except socket.timeout:
            return None
        return {"type": opts(r)["message-type"], "ciaddr": r.ciaddr, "xid": r.xid,
                "chaddr": bytes(r.chaddr)[:6].hex(), "options": opts(r)}

    def bulk(server, port, src, kind, value):
        s = socket.create_connection((server, port), timeout=5, source_address=(src, 0))
        p = BOOTP(op=1, htype=0, hlen=0, xid=4242, chaddr=bytes(16))
        o = [("message-type", 14)]
        if kind == "relay-id":
            o.append(("relay_agent_information", bytes((12, len(value))) + value.encode()))
        elif kind == "both":
            o.append(("relay_agent_information", bytes((12, len(value))) + value.encode()
                      + bytes((2, len(value))) + value.encode()))
        elif kind == "remote-id":
            o.append(("relay_agent_information", bytes((2, len(value))) + value.encode()))
        msg = bytes(p / DHCP(options=o + ["end"]))
        s.sendall(struct.pack("!H", len(msg)) + msg)
        buf, out = b"", []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    return {"closed": True, "replies": out}
                buf += data
                while len(buf) >= 2 and len(buf) - 2 >= struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    r = BOOTP(buf[2:2 + n])
                    buf = buf[2 + n:]
                    out.append({"type": opts(r)["message-type"], "ciaddr": r.ciaddr,
                                "xid": r.xid, "options": opts(r)})
                    if out[-1]["type"] == 15:
                        return {"closed": False, "replies": out}
        except ConnectionResetError:
            return {"closed": True, "replies": out}

    cmd, args = sys.argv[1], json.loads(sys.argv[2])
    result = {"dora": dora, "query": query, "bulk": bulk}[cmd](*args)
    print(json.dumps(result))
''')


class _Lab:
    def __init__(self, tag: str, work: Path) -> None:
        self.cleanup = Cleanup()
        self.work = work
        try:
            self.srv = create_namespace(f"lq{tag}-srv", self.cleanup)
            self.relay = create_namespace(f"lq{tag}-rly", self.cleanup)
            create_veth(self.srv, f"l{tag}s0", f"{SERVER}/24", self.relay, f"l{tag}r0",
                        "198.18.20.2/24", self.cleanup)
            for extra in (GIADDR, STRANGER):
                self.relay.run(["ip", "addr", "add", f"{extra}/24", "dev", f"l{tag}r0"])
            self.srv.run(["ip", "route", "add", "198.18.21.0/24", "via", "198.18.20.2"])
        except BaseException:
            self.cleanup.close()
            raise
        self.script = work / "lqclient.py"
        self.script.write_text(CLIENT)

    def client(self, cmd: str, *args: object) -> object:
        cp = self.relay.run([sys.executable, str(self.script), cmd, json.dumps(args)],
                            timeout=60)
        return json.loads(cp.stdout)


@pytest.fixture
def lq_lab(interop_ready: None, tmp_path: Path):
    lab = _Lab(str(os.getpid() % 100000), tmp_path)
    config = tmp_path / "fastdhcp.toml"
    config.write_text(textwrap.dedent(f'''
        [server]
        listen-addresses = ["{SERVER}"]
        port = 67
        client-port = 68

        [lease-database]
        path = "{tmp_path / 'leases.lmdb'}"
        sync = true

        [global]
        valid-lifetime = 3600

        [[subnet4]]
        id = 21
        subnet = "198.18.21.0/24"
        pools = ["198.18.21.100 - 198.18.21.199"]
        option-data = {{ routers = ["{GIADDR}"] }}

        [leasequery]
        requesters = ["{GIADDR}"]

        [leasequery.advanced]
        bulk-query-enabled = true
        lease-query-ip = "{SERVER}"
        lease-query-tcp-port = 67
    '''))
    log = (tmp_path / "server.log").open("w")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    proc = lab.srv.popen([sys.executable, "-m", "fastdhcp", "serve", "--config", str(config)],
                         stdout=log, stderr=log, env=env)
    lab.cleanup.push("fastdhcp", lambda: stop_process(proc))
    try:
        _wait_listening(lab.srv, proc, tmp_path / "server.log")
        yield lab
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
    finally:
        errors = lab.cleanup.close()
        log.close()
        assert not errors, errors


def _wait_listening(ns: Namespace, proc: object, log: Path) -> None:
    import time
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = ns.run(["ss", "-ltn", "sport = :67"], check=False).stdout
        if SERVER in out:
            return
        time.sleep(0.2)
    raise AssertionError("fastdhcp did not start listening:\n" + log.read_text()[-3000:])


def test_relay_rebuilds_its_table_by_leasequery(lq_lab: _Lab) -> None:
    leases = lq_lab.client("dora", SERVER, GIADDR, CLIENTS, RELAY_ID)
    assert isinstance(leases, list) and len(leases) == CLIENTS
    first = leases[0]

    # RFC 4388 over UDP, from the relay's address: by IP, by MAC, by client-id
    r = lq_lab.client("query", SERVER, GIADDR, GIADDR, "ip", first["ip"])
    assert isinstance(r, dict) and r["type"] == 13 and r["ciaddr"] == first["ip"], r
    assert r["chaddr"] == first["mac"] and r["xid"] == 77
    o = r["options"]
    assert o["server_id"] == SERVER and 3500 <= o["lease_time"] <= 3600, o
    assert bytes.fromhex(o["relay_agent_information"]).startswith(b"\x01\x06port-1"), o
    assert o["client_id"] == first["cid"], o
    for kind, value in (("mac", first["mac"]), ("client-id", first["cid"])):
        r = lq_lab.client("query", SERVER, GIADDR, GIADDR, kind, value)
        assert isinstance(r, dict) and r["type"] == 13 and r["ciaddr"] == first["ip"], (kind, r)
    r = lq_lab.client("query", SERVER, GIADDR, GIADDR, "ip", "198.18.21.250")  # not in a pool
    assert isinstance(r, dict) and r["type"] == 12, r
    free = next(f"198.18.21.{n}" for n in range(100, 200)
                if f"198.18.21.{n}" not in {x["ip"] for x in leases})
    r = lq_lab.client("query", SERVER, GIADDR, GIADDR, "ip", free)
    assert isinstance(r, dict) and r["type"] == 11, r

    # RFC 6926 over TCP, from the relay's address: by relay-id, remote-id, all
    for kind, value, want in (("relay-id", RELAY_ID, {x["ip"] for x in leases}),
                              ("remote-id", "cpe-2", {leases[1]["ip"]}),
                              ("all", "", {x["ip"] for x in leases})):
        r = lq_lab.client("bulk", SERVER, 67, GIADDR, kind, value)
        assert isinstance(r, dict) and not r["closed"], (kind, r)
        replies = r["replies"]
        # DHCPLEASEQUERYDONE last, with no status-code (151): success
        assert replies[-1]["type"] == 15 and "151" not in replies[-1]["options"], (kind, r)
        assert {x["ciaddr"] for x in replies[:-1] if x["type"] == 13} == want, (kind, r)
        assert all(x["xid"] == 4242 for x in replies), r
        assert all("152" in x["options"] for x in replies[:-1]), r  # base-time
        if kind == "all":
            assert all(x["options"]["156"] == "02" for x in replies[:-1]), r  # ACTIVE
    # a malformed bulk query (two selectors) is refused with MalformedQuery (3)
    r = lq_lab.client("bulk", SERVER, 67, GIADDR, "both", RELAY_ID)
    assert isinstance(r, dict) and [x["type"] for x in r["replies"]] == [15], r
    assert r["replies"][0]["options"]["151"].startswith("03"), r

    # outside the allow-list: no answer over UDP, the TCP connection closed with nothing
    assert lq_lab.client("query", SERVER, STRANGER, STRANGER, "ip", first["ip"]) is None
    assert lq_lab.client("query", SERVER, STRANGER, GIADDR, "ip", first["ip"]) is None
    r = lq_lab.client("bulk", SERVER, 67, STRANGER, "all", "")
    assert r == {"closed": True, "replies": []}, r
