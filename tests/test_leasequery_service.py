"""The whole server on loopback with ``[leasequery]``: leases by relayed DORA (scapy, the
RelayClient of the service tests), then an RFC 4388 query from the relay's address and an
RFC 6926 bulk query over TCP; a reload keeps both; a bulk port that cannot be bound stops the
start with one line. The namespace version, with a stranger, is interop/test_leasequery.py."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from service_helpers import (
    RELAY_IP,
    SERVER_IP,
    InProcessServer,
    RelayClient,
    config_text,
    dhcp_options,
    free_port,
    free_tcp_port,
    mac,
)

from fastdhcp.config import loads
from fastdhcp.service.server import StartupError


def _toml(db: Path, port: int, tcp: int) -> str:
    return config_text(db, port) + f'''
[leasequery]
requesters = ["{RELAY_IP}"]

[leasequery.advanced]
bulk-query-enabled = true
lease-query-ip = "{SERVER_IP}"
lease-query-tcp-port = {tcp}
'''


def _query(client: RelayClient, xid: int, ciaddr: str) -> object:
    pkt = BOOTP(op=1, htype=1, hlen=6, xid=xid, ciaddr=ciaddr, giaddr=RELAY_IP,
                chaddr=bytes(16)) / DHCP(options=[("message-type", 10), "end"])
    client.send_raw(bytes(pkt))
    return client.recv(xid)


def _bulk(tcp: int, xid: int) -> list[object]:
    s = socket.create_connection((SERVER_IP, tcp), timeout=5, source_address=(RELAY_IP, 0))
    try:
        msg = bytes(BOOTP(op=1, htype=0, hlen=0, xid=xid, chaddr=bytes(16))
                    / DHCP(options=[("message-type", 14), "end"]))
        s.sendall(struct.pack("!H", len(msg)) + msg)
        buf, out = b"", []
        while not out or dhcp_options(out[-1])["message-type"] != 15:
            data = s.recv(65536)
            assert data, "closed before DHCPLEASEQUERYDONE"
            buf += data
            while len(buf) >= 2 and len(buf) - 2 >= struct.unpack("!H", buf[:2])[0]:
                n = struct.unpack("!H", buf[:2])[0]
                out.append(BOOTP(buf[2:2 + n]))
                buf = buf[2 + n:]
        return out
    finally:
        s.close()


def test_leasequery_and_bulk_through_the_server(tmp_path: Path) -> None:
    port, tcp = free_port(), free_tcp_port()
    text = _toml(tmp_path / "db", port, tcp)
    with InProcessServer(loads(text)) as srv, RelayClient(port) as client:
        _, ack = client.dora(mac(1), 100)
        lease_ip = ack.yiaddr
        r = _query(client, 200, lease_ip)
        o = dhcp_options(r)
        assert o["message-type"] == 13 and r.ciaddr == lease_ip and r.chaddr[:6] == mac(1)
        assert o["relay_agent_information"] == b"\x01\x06port-1"
        got = _bulk(tcp, 300)
        assert [(dhcp_options(x)["message-type"], x.ciaddr) for x in got] == \
            [(13, lease_ip), (15, "0.0.0.0")]
        # a reload (here with the same config) keeps both answering
        assert srv.call_soon(srv.server.reload, loads(text)) is None
        assert dhcp_options(_query(client, 201, lease_ip))["message-type"] == 13
        assert len(_bulk(tcp, 301)) == 2
        assert srv.server.metrics.received[10] == 2 and srv.server.metrics.sent[13] == 2
        assert srv.server.metrics.bulk_queries == 2


def test_a_bulk_port_in_use_stops_the_start(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind((SERVER_IP, 0))
    busy.listen()
    try:
        cfg = loads(_toml(tmp_path / "db", free_port(), busy.getsockname()[1]))
        with pytest.raises(StartupError, match=f"bulk leasequery on {SERVER_IP}:"), \
                InProcessServer(cfg):
            pass
    finally:
        busy.close()
