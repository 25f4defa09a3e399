"""fastdhcp.config: valid configs load to the right values, bad ones report every problem.

Oracles: ``ipaddress`` for addresses and ranges, hand-decoded RFC 2132 bytes for options, and a
plain Python interval model for pool overlaps.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import ipaddress
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdhcp import config as config_mod
from fastdhcp.config import (
    GLOBAL_KEYS,
    LEASE_DATABASE_KEYS,
    RESERVATION_KEYS,
    SERVER_KEYS,
    SUBNET_KEYS,
    Config,
    Lifetimes,
    load,
    loads,
    parse_size,
)
from fastdhcp.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        loads(textwrap.dedent(text))
    assert ei.value.problems, "a ConfigError must carry its problems"
    assert str(ei.value) == "\n".join(ei.value.problems)
    return ei.value.problems


FULL = """
[server]
interfaces = ["eth0", "eth1"]
listen-addresses = ["127.0.0.1"]
port = 6767
client-port = 6868
metrics = "127.0.0.1:9167"
server-id = "192.0.2.254"
authoritative = true
log-level = "WARN"
stats-interval = 15

[lease-database]
path = "/tmp/fastdhcp-test"
sync = false
batch-size = 512
max-wait-ms = 5
map-size = "4GiB"

[global]
valid-lifetime = 7200
min-valid-lifetime = 600
max-valid-lifetime = 86400
renew-timer = 1800
rebind-timer = 3600
offer-lifetime = 30
decline-probation-period = 600

[global.option-data]
domain-name-servers = ["192.0.2.53", "192.0.2.54"]
domain-name = "example.net"
ntp-servers = "192.0.2.123"

[[subnet4]]
id = 1
subnet = "192.0.2.0/24"
interface = "eth0"
pools = ["192.0.2.100 - 192.0.2.200", "192.0.2.224/28", { pool = "192.0.2.10 - 192.0.2.19" }]
option-data = { routers = ["192.0.2.1"], domain-name = "lan.example.net" }
relay = ["198.51.100.1"]
authoritative = false
valid-lifetime = 5400

[[subnet4.reservations]]
hw-address = "aa:bb:cc:dd:ee:ff"
ip-address = "192.0.2.150"
hostname = "printer"
option-data = { ntp-servers = ["192.0.2.124"], boot-file-name = "pxelinux.0" }

[[subnet4.reservations]]
client-id = "01:11:22:33:44:55:66"
ip-address = "192.0.2.30"

[[subnet4.reservations]]
circuit-id = "'ge-0/0/1.100'"
ip-address = "192.0.2.31"

[[subnet4]]
id = 2
subnet = "10.0.0.0/8"
relay = { ip-addresses = ["198.51.100.2"] }
pools = ["10.128.0.0/10"]
"""


def test_full_config_values():
    cfg = loads(FULL, "full.toml")
    assert isinstance(cfg, Config)
    assert cfg.source == "full.toml"
    s = cfg.server
    assert s.interfaces == ("eth0", "eth1")
    assert s.listen_addresses == ("127.0.0.1",)
    assert (s.port, s.client_port) == (6767, 6868)
    assert s.metrics == "127.0.0.1:9167"
    assert s.server_id == ip("192.0.2.254")
    assert s.authoritative is True
    assert s.log_level == "warning"
    assert s.stats_interval == 15.0
    db = cfg.lease_database
    assert (db.path, db.sync, db.batch_size, db.max_wait_ms) == ("/tmp/fastdhcp-test", False,
                                                                  512, 5.0)
    assert db.map_size == 4 * 2**30

    assert cfg.lifetimes == Lifetimes(7200, 600, 86400, 1800, 3600, 30, 600)
    a, b = cfg.subnets
    assert a.id == 1 and a.network == ipaddress.IPv4Network("192.0.2.0/24")
    assert [(p.first, p.last) for p in a.pools] == [
        (ip("192.0.2.100"), ip("192.0.2.200")),
        (ip("192.0.2.224"), ip("192.0.2.239")),
        (ip("192.0.2.10"), ip("192.0.2.19")),
    ]
    assert [p.size for p in a.pools] == [101, 16, 10]
    assert a.pools[1].text == "192.0.2.224/28"
    assert a.relay == (ip("198.51.100.1"),)
    assert a.interface == "eth0" and a.shared_network is None
    assert a.authoritative is False and b.authoritative is True  # subnet > server default
    # subnet overrides valid-lifetime; the rest comes from [global]
    assert a.lifetimes == Lifetimes(5400, 600, 86400, 1800, 3600, 30, 600)
    assert b.lifetimes == cfg.lifetimes
    assert b.relay == (ip("198.51.100.2"),)
    assert a.contains(ip("192.0.2.255")) and not a.contains(ip("192.0.3.0"))


def test_lifetime_override_and_order_against_global():
    # renew 1800 < rebind 3600 < valid 3600 fails: the subnet's valid-lifetime is reported
    lines = problems(FULL.replace("valid-lifetime = 5400", "valid-lifetime = 3600"))
    assert lines == [
        "subnet4[0].valid-lifetime: value 3600: must be greater than rebind-timer 3600 "
        "(from [global])"
    ]


def _full_ok() -> Config:
    return loads(FULL)


def test_options_encoded_and_merged_reservation_over_subnet_over_global():
    cfg = _full_ok()
    a, b = cfg.subnets
    assert a.lifetimes == Lifetimes(5400, 600, 86400, 1800, 3600, 30, 600)
    # hand-decoded RFC 2132 bytes
    dns = bytes([192, 0, 2, 53, 192, 0, 2, 54])
    assert cfg.options == {6: dns, 15: b"example.net", 42: bytes([192, 0, 2, 123])}
    assert a.options == {
        1: bytes([255, 255, 255, 0]),  # subnet-mask from the prefix
        3: bytes([192, 0, 2, 1]),
        6: dns,
        15: b"lan.example.net",  # subnet over global
        42: bytes([192, 0, 2, 123]),
    }
    assert list(a.options) == sorted(a.options)
    assert b.options[1] == bytes([255, 0, 0, 0])
    assert 3 not in b.options and b.options[15] == b"example.net"
    r0, r1, r2 = a.reservations
    assert r0.ip == ip("192.0.2.150") and r0.hw_address == bytes.fromhex("aabbccddeeff")
    assert r0.client_id is None and r0.circuit_id is None and r0.hostname == "printer"
    assert r0.options == {**a.options, 42: bytes([192, 0, 2, 124]), 67: b"pxelinux.0"}
    assert list(r0.options) == sorted(r0.options)
    assert r1.client_id == bytes.fromhex("01112233445566") and r1.hw_address is None
    assert r1.options is a.options  # nothing of its own: shares the subnet's dict
    assert r2.circuit_id == b"ge-0/0/1.100"
    assert a.by_hw_address[r0.hw_address] is r0
    assert a.by_client_id[r1.client_id] is r1
    assert a.by_circuit_id[b"ge-0/0/1.100"] is r2
    assert a.reserved_ips == {r.ip for r in a.reservations}
    # a reservation inside a pool is allowed (192.0.2.150 is in the first pool)
    assert a.pools[0].contains(r0.ip)


def test_model_is_frozen():
    cfg = _full_ok()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.server.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.subnets[0].pools[0].first = 0  # type: ignore[misc]


def test_defaults_of_an_almost_empty_config():
    cfg = loads('[[subnet4]]\nid = 7\nsubnet = "198.18.0.0/24"\n'
                'pools = ["198.18.0.10 - 198.18.0.20"]\n')
    s = cfg.server
    assert (s.interfaces, s.listen_addresses, s.port, s.client_port, s.metrics, s.server_id,
            s.authoritative, s.log_level, s.stats_interval) == ((), (), 67, 68, None, 0, False,
                                                                "info", 60.0)
    db = cfg.lease_database
    assert (db.path, db.sync, db.batch_size, db.max_wait_ms, db.map_size) == (
        "/var/lib/fastdhcp", True, 256, 2.0, 1 << 30)
    (sub,) = cfg.subnets
    assert sub.lifetimes == Lifetimes(3600, 3600, 3600, None, None, 60, 86400)
    assert sub.options == {1: bytes([255, 255, 255, 0])}
    assert sub.reservations == () and sub.relay == ()
    assert cfg.subnet(7) is sub and cfg.subnet(8) is None


def test_min_max_default_to_the_effective_valid_lifetime():
    cfg = loads("""
[global]
valid-lifetime = 100
[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
valid-lifetime = 900
""")
    lt = cfg.subnets[0].lifetimes
    assert (lt.valid_lifetime, lt.min_valid_lifetime, lt.max_valid_lifetime) == (900, 900, 900)


@pytest.mark.parametrize("text,size", [
    (4096, 4096), ("4GiB", 4 << 30), ("512 MiB", 512 << 20), ("2G", 2 << 30),
    ("1.5GiB", 3 << 29), ("10MB", 10_000_000), ("1048576", 1 << 20),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


# -- problems ------------------------------------------------------------------------------------

SUB = '[[subnet4]]\nid = 1\nsubnet = "192.0.2.0/24"\n'


@pytest.mark.parametrize("text,path,value,reason", [
    # unknown keys, with "did you mean" or where the key belongs
    ('[server]\ninterfacs = ["eth0"]', "server.interfacs", "['eth0']",
     "unknown key; did you mean 'interfaces'?"),
    ("[global]\nvalid_lifetime = 5", "global.valid_lifetime", "5",
     "did you mean 'valid-lifetime'?"),
    ("[server]\nvalid-lifetime = 5", "server.valid-lifetime", "5",
     "'valid-lifetime' belongs in [global] or a [[subnet4]], not in [server]"),
    ("[dhcp4]\nx = 1", "dhcp4", "{x = 1}", "unknown key in the top level"),
    ('[[subnet]]\nid = 1', "subnet", "[{id = 1}]", "did you mean 'subnet4'?"),
    (SUB + "pool = []", "subnet4[0].pool", "[]", "did you mean 'pools'?"),
    (SUB + '[[subnet4.reservations]]\nhw-address = "aa:bb:cc:dd:ee:ff"\nip = "192.0.2.5"\n'
     'ip-address = "192.0.2.6"', "subnet4[0].reservations[0].ip", "'192.0.2.5'",
     "did you mean 'ip-address'?"),
    # wrong types and ranges
    ('[server]\nport = "67"', "server.port", "'67'", "must be an integer from 1 to 65535"),
    ("[server]\nport = 70000", "server.port", "70000", "out of range: must be from 1 to 65535"),
    ("[server]\nauthoritative = 1", "server.authoritative", "1", "must be true or false"),
    ('[server]\ninterfaces = "eth0"', "server.interfaces", "'eth0'", "must be an array"),
    ('[server]\ninterfaces = ["eth0", "eth0"]', "server.interfaces[1]", "'eth0'",
     "listed twice"),
    ('[server]\ninterfaces = ["a very long interface"]', "server.interfaces[0]",
     "'a very long interface'", "not an interface name"),
    ('[server]\nlisten-addresses = ["127.0.0.256"]', "server.listen-addresses[0]",
     "'127.0.0.256'", "not an IPv4 address"),
    ('[server]\nserver-id = "224.0.0.1"', "server.server-id", "'224.0.0.1'",
     "must be a unicast address"),
    ('[server]\nmetrics = "9167"', "server.metrics", "'9167'", "must be 'host:port'"),
    ('[server]\nmetrics = "example.com:9167"', "server.metrics", "'example.com:9167'",
     "host must be an IPv4 address or 'localhost'"),
    ('[server]\nlog-level = "loud"', "server.log-level", "'loud'", "must be one of debug"),
    ("[server]\nstats-interval = -1", "server.stats-interval", "-1", "out of range"),
    ("[server]\nread-pace-ms = -1", "server.read-pace-ms", "-1", "out of range"),
    ("[server]\nread-pace-ms = 101", "server.read-pace-ms", "101", "out of range"),
    ("[lease-database]\nbatch-size = 0", "lease-database.batch-size", "0", "out of range"),
    ('[lease-database]\nmap-size = "4 parsecs"', "lease-database.map-size", "'4 parsecs'",
     "must be a size in bytes or text such as '4GiB'"),
    ("[lease-database]\nmap-size = 1024", "lease-database.map-size", "1024",
     "must be from 1MiB to 16TiB"),
    ("[lease-database]\nsync = \"yes\"", "lease-database.sync", "'yes'", "must be true or false"),
    ("[lease-database]\npath = \"\"", "lease-database.path", "''", "must be a non-empty string"),
    ("[global]\nvalid-lifetime = 0", "global.valid-lifetime", "0", "out of range"),
    ("[global]\nvalid-lifetime = 3600.0", "global.valid-lifetime", "3600.0",
     "must be an integer"),
    ("[global]\noffer-lifetime = 100000", "global.offer-lifetime", "100000", "out of range"),
    # lifetimes out of order
    ("[global]\nrenew-timer = 2000\nrebind-timer = 1000", "global.renew-timer", "2000",
     "must be less than rebind-timer 1000"),
    ("[global]\nrebind-timer = 3600", "global.rebind-timer", "3600",
     "must be less than valid-lifetime 3600"),
    ("[global]\nmin-valid-lifetime = 7200", "global.min-valid-lifetime", "7200",
     "must be at most valid-lifetime 3600"),
    ("[global]\nmax-valid-lifetime = 60", "global.max-valid-lifetime", "60",
     "must be at least valid-lifetime 3600"),
    ("[global]\nmin-valid-lifetime = 600\n" + SUB + "valid-lifetime = 300",
     "subnet4[0].valid-lifetime", "300",
     "must be at least min-valid-lifetime 600 (from [global])"),
    # subnets
    ('[[subnet4]]\nid = 1\nsubnet = "192.0.2.1/24"', "subnet4[0].subnet", "'192.0.2.1/24'",
     "host bits set; did you mean '192.0.2.0/24'?"),
    ('[[subnet4]]\nid = 1\nsubnet = "192.0.2.0"', "subnet4[0].subnet", "'192.0.2.0'",
     "must be 'network/length'"),
    ('[[subnet4]]\nid = 0\nsubnet = "192.0.2.0/24"', "subnet4[0].id", "0", "out of range"),
    ("[subnet4]\nid = 1", "subnet4", "{id = 1}", "must be an array of tables: write [[subnet4]]"),
    (SUB + 'interface = "eth9"', "subnet4[0].interface", "'eth9'",
     "not in server.interfaces (none listed)"),
    (SUB + 'relay = ["198.51.100.300"]', "subnet4[0].relay[0]", "'198.51.100.300'",
     "not an IPv4 address"),
    (SUB + 'relay = "198.51.100.1"', "subnet4[0].relay", "'198.51.100.1'",
     "must be an array of strings"),
    # pools
    (SUB + 'pools = ["192.0.2.50 - 192.0.2.10"]', "subnet4[0].pools[0]",
     "'192.0.2.50 - 192.0.2.10'", "first address is after last address"),
    (SUB + 'pools = ["192.0.3.10 - 192.0.3.20"]', "subnet4[0].pools[0]",
     "'192.0.3.10 - 192.0.3.20'", "pool is outside its subnet 192.0.2.0/24"),
    (SUB + 'pools = ["192.0.2.0/25"]', "subnet4[0].pools[0]", "'192.0.2.0/25'",
     "pool contains the network address 192.0.2.0"),
    (SUB + 'pools = ["192.0.2.200 - 192.0.2.255"]', "subnet4[0].pools[0]",
     "'192.0.2.200 - 192.0.2.255'", "pool contains the broadcast address 192.0.2.255"),
    (SUB + 'pools = ["192.0.2.1/24"]', "subnet4[0].pools[0]", "'192.0.2.1/24'",
     "host bits set"),
    (SUB + 'pools = ["192.0.2.10"]', "subnet4[0].pools[0]", "'192.0.2.10'",
     "a pool is 'first - last'"),
    (SUB + "pools = [5]", "subnet4[0].pools[0]", "5", "a pool is a string"),
    (SUB + 'pools = ["192.0.2.1 - 192.0.2.20"]\noption-data = { routers = ["192.0.2.1"] }',
     "subnet4[0].pools[0]", "'192.0.2.1 - 192.0.2.20'",
     "pool contains 192.0.2.1, a router (option-data routers)"),
    (SUB + 'pools = ["192.0.2.1 - 192.0.2.20"]\nrelay = ["192.0.2.5"]',
     "subnet4[0].pools[0]", "'192.0.2.1 - 192.0.2.20'",
     "pool contains 192.0.2.5, a relay address (relay)"),
    ('[[subnet4]]\nid = 1\nsubnet = "10.0.0.0/7"\npools = ["10.0.0.1 - 11.255.255.254"]',
     "subnet4[0].pools[0]", "'10.0.0.1 - 11.255.255.254'", "at most 2^24"),
    # reservations
    (SUB + '[[subnet4.reservations]]\nhw-address = "aa:bb:cc:dd:ee:ff"\n'
     'ip-address = "192.0.3.5"', "subnet4[0].reservations[0].ip-address", "'192.0.3.5'",
     "outside the subnet 192.0.2.0/24"),
    (SUB + '[[subnet4.reservations]]\nhw-address = "aa:bb:cc:dd:ee:ff"\n'
     'ip-address = "192.0.2.255"', "subnet4[0].reservations[0].ip-address", "'192.0.2.255'",
     "network or broadcast address"),
    (SUB + '[[subnet4.reservations]]\nhw-address = "aa:bb:cc:dd:ee:fg"\n'
     'ip-address = "192.0.2.5"', "subnet4[0].reservations[0].hw-address",
     "'aa:bb:cc:dd:ee:fg'", "not hex bytes"),
    (SUB + '[[subnet4.reservations]]\nhw-address = "\'printer\'"\n'
     'ip-address = "192.0.2.5"', "subnet4[0].reservations[0].hw-address", "\"'printer'\"",
     "not hex bytes"),
    (SUB + '[[subnet4.reservations]]\nclient-id = "01"\nip-address = "192.0.2.5"',
     "subnet4[0].reservations[0].client-id", "'01'", "2 to 255 bytes"),
    (SUB + '[[subnet4.reservations]]\ncircuit-id = "\'\'"\nip-address = "192.0.2.5"',
     "subnet4[0].reservations[0].circuit-id", "\"''\"", "empty quoted text"),
    (SUB + '[[subnet4.reservations]]\nhw-address = "aa:bb:cc:dd:ee:ff"\n'
     'ip-address = "192.0.2.5"\nhostname = "bad host"', "subnet4[0].reservations[0].hostname",
     "'bad host'", "characters other than"),
    (SUB + '[[subnet4.reservations]]\nhw-address = "aa:bb:cc:dd:ee:ff"\n'
     'ip-address = "192.0.2.5"\noption-data = { dhcp-lease-time = 5 }',
     "subnet4[0].reservations[0].option-data.dhcp-lease-time", "5",
     "option 51 cannot be set in option-data"),
    # options
    (SUB + 'option-data = { routers = ["192.0.2.300"] }', "subnet4[0].option-data.routers",
     "['192.0.2.300']", "'192.0.2.300' is not an IPv4 address"),
    ('[global]\noption-data = { domain-name-server = ["192.0.2.53"] }',
     "global.option-data.domain-name-server", "['192.0.2.53']",
     "did you mean 'domain-name-servers'?"),
    ("[global]\noption-data = { 54 = \"c0000201\" }", "global.option-data.54", "'c0000201'",
     "option 54 cannot be set in option-data"),
    ('[global]\noption-data = "routers"', "global.option-data", "'routers'",
     "option-data must be a table"),
    ('[global]\noption-data = [{ name = "routers", data = "192.0.2.1" }]', "global.option-data",
     "[{name = 'routers', data = '192.0.2.1'}]", "Kea's list of { name, data } entries"),
])
def test_each_problem_names_path_value_and_reason(text, path, value, reason):
    lines = problems(text)
    prefix = f"{path}: value {value}: "
    match = [line for line in lines if line.startswith(prefix)]
    assert match, f"no line starts with {prefix!r}: {lines}"
    assert any(reason in line for line in match), (reason, match)


@pytest.mark.parametrize("text,line", [
    ("[[subnet4]]\nsubnet = \"192.0.2.0/24\"",
     "subnet4[0].id: required key is missing (a stable subnet id, 1 to 4294967294)"),
    ("[[subnet4]]\nid = 1", "subnet4[0].subnet: required key is missing (e.g. '192.0.2.0/24')"),
    (SUB + '[[subnet4.reservations]]\nip-address = "192.0.2.5"',
     "subnet4[0].reservations[0]: a reservation needs exactly one of hw-address, client-id, "
     "circuit-id (found 0)"),
    (SUB + '[[subnet4.reservations]]\nip-address = "192.0.2.5"\nhw-address = "aa:bb:cc:dd:ee:ff"'
     '\nclient-id = "01aabbccddeeff"',
     "subnet4[0].reservations[0]: a reservation needs exactly one of hw-address, client-id, "
     "circuit-id (found 2)"),
    (SUB + 'option-data = { routers = ["192.0.2.1"], classless-static-route = '
     '["10.0.0.0/8 - 192.0.2.2"] }',
     "subnet4[0].option-data: classless-static-route without a default route "
     "('0.0.0.0/0 - router') while routers is set: RFC 3442 clients ignore routers when they "
     "get classless-static-route"),
])
def test_problems_without_a_value(text, line):
    assert line in problems(text)


def test_cross_subnet_problems():
    lines = problems("""
[server]
interfaces = ["eth0", "eth1"]

[[subnet4]]
id = 1
subnet = "192.0.2.0/24"
pools = ["192.0.2.10 - 192.0.2.130"]
relay = ["198.51.100.1"]
shared-network = "s"
interface = "eth0"
[[subnet4.reservations]]
hw-address = "aa:bb:cc:dd:ee:ff"
ip-address = "192.0.2.50"
[[subnet4.reservations]]
hw-address = "AA-BB-CC-DD-EE-FF"
ip-address = "192.0.2.51"
[[subnet4.reservations]]
client-id = "01:02"
ip-address = "192.0.2.50"

[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
pools = ["198.18.0.10 - 198.18.0.100"]
relay = ["198.51.100.1"]
shared-network = "s"
interface = "eth1"
[[subnet4.reservations]]
hw-address = "aabbccddeeff"
ip-address = "198.18.0.5"

[[subnet4]]
id = 3
subnet = "192.0.2.128/25"
pools = ["192.0.2.129 - 192.0.2.140"]
relay = ["198.51.100.1"]
""")
    expected = [
        "subnet4[0].reservations[1].hw-address: value 'AA-BB-CC-DD-EE-FF': same hw-address as "
        "subnet4[0].reservations[0]",
        "subnet4[0].reservations[2].ip-address: value '192.0.2.50': already reserved by "
        "subnet4[0].reservations[0]",
        "subnet4[1].id: value 1: duplicate subnet id: subnet4[0] has id 1",
        "subnet4[2].subnet: value '192.0.2.128/25': overlaps subnet4[0] '192.0.2.0/24'",
        "subnet4[2].pools[0]: value '192.0.2.129 - 192.0.2.140': overlaps subnet4[0].pools[0] "
        "'192.0.2.10 - 192.0.2.130'",
        "subnet4[2].relay[0]: value '198.51.100.1': also a relay of subnet4[0], which is not in "
        "the same shared-network",
        "subnet4[1].interface: value 'eth1': shared-network 's' has interface 'eth0' in "
        "subnet4[0]: one shared network is one link",
        "subnet4[1].reservations[0].hw-address: value 'aabbccddeeff': same hw-address as "
        "subnet4[0].reservations[0] in shared-network 's'",
    ]
    for line in expected:
        assert line in lines, (line, lines)
    assert len(lines) == len(expected), lines


def test_several_problems_all_reported_in_one_error():
    lines = problems("""
[server]
interfacs = ["eth0"]
port = "67"
[global]
valid-lifetime = 100
renew-timer = 200
option-data = { routers = "1.2.3" }
[[subnet4]]
id = 1
subnet = "192.0.2.1/24"
pools = ["192.0.2.100 - 192.0.2.50", "10.0.0.0/24"]
[[subnet4]]
id = 1
subnet = "198.51.100.0/24"
pools = ["198.51.100.10 - 198.51.100.20", "198.51.100.15 - 198.51.100.30"]
[[subnet4.reservations]]
hw-address = "zz"
ip-address = "192.0.2.10"
""")
    paths = [line.split(":", 1)[0] for line in lines]
    assert paths == [
        "server.interfacs",
        "server.port",
        "global.renew-timer",
        "global.option-data.routers",
        "subnet4[0].subnet",
        "subnet4[0].pools[0]",
        "subnet4[0].pools[1]",  # checked against the intended 192.0.2.0/24 despite host bits
        "subnet4[1].reservations[0].hw-address",
        "subnet4[1].reservations[0].ip-address",
        "subnet4[1].id",
        "subnet4[1].pools[1]",
    ]


def test_reservation_inside_a_pool_is_allowed():
    cfg = loads(SUB + 'pools = ["192.0.2.10 - 192.0.2.20"]\n[[subnet4.reservations]]\n'
                'hw-address = "02:00:00:00:00:01"\nip-address = "192.0.2.15"\n')
    assert cfg.subnets[0].reservations[0].ip == ip("192.0.2.15")


def test_shared_network_subnets_may_share_a_relay():
    cfg = loads("""
[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
shared-network = "olt"
[[subnet4]]
id = 2
subnet = "198.18.1.0/24"
shared-network = "olt"
relay = ["198.18.0.1"]
[[subnet4]]
id = 3
subnet = "198.18.2.0/24"
shared-network = "olt"
relay = ["198.18.0.1"]
""")
    assert [s.shared_network for s in cfg.subnets] == ["olt"] * 3


@pytest.mark.parametrize("text,expected", [
    ('"aa:bb:cc:dd:ee:ff"', bytes.fromhex("aabbccddeeff")),
    ('"AA-BB-CC-DD-EE-FF"', bytes.fromhex("aabbccddeeff")),
    ('"aabb.ccdd.eeff"', bytes.fromhex("aabbccddeeff")),
    ('"aabbccddeeff"', bytes.fromhex("aabbccddeeff")),
])
def test_hw_address_forms(text, expected):
    cfg = loads(SUB + f"[[subnet4.reservations]]\nhw-address = {text}\nip-address = "
                '"192.0.2.5"\n')
    assert cfg.subnets[0].reservations[0].hw_address == expected


@pytest.mark.parametrize("text,expected", [
    ("\"'eth0'\"", b"eth0"),
    ('"65:74:68:30"', b"eth0"),
    ('"0x65746830"', b"eth0"),
    ("\"'cafe'\"", b"cafe"),
    ('"cafe"', b"\xca\xfe"),
    ("\"'port 1/2'\"", b"port 1/2"),
])
def test_circuit_id_hex_or_quoted_text(text, expected):
    cfg = loads(SUB + f"[[subnet4.reservations]]\ncircuit-id = {text}\nip-address = "
                '"192.0.2.5"\n')
    assert cfg.subnets[0].reservations[0].circuit_id == expected


def test_toml_syntax_error_and_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as ei:
        loads("[server\nport = 67", "bad.toml")
    (line,) = ei.value.problems
    assert line.startswith("bad.toml: invalid TOML: ") and "line 1" in line
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as ei:
        load(missing)
    assert ei.value.problems == [f"{missing}: cannot read the config: No such file or directory"]
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(binary)


def test_load_from_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(SUB)
    cfg = load(path)
    assert cfg.source == str(path) and cfg.subnets[0].id == 1


# -- pools against an interval model -------------------------------------------------------------

BASE = ip("10.0.0.0")


@given(ranges=st.lists(st.tuples(st.integers(1, 400), st.integers(0, 60)), min_size=1,
                       max_size=8))
@settings(max_examples=300, deadline=None)
def test_pool_overlaps_match_an_interval_model(ranges):
    pools = [(BASE + a, BASE + a + n) for a, n in ranges]
    text = '[[subnet4]]\nid = 1\nsubnet = "10.0.0.0/16"\npools = [' + ", ".join(
        f'"{ipaddress.IPv4Address(a)} - {ipaddress.IPv4Address(b)}"' for a, b in pools) + "]\n"
    overlapping = {
        j for j in range(len(pools)) for i in range(len(pools))
        if i != j and pools[i][0] <= pools[j][1] and pools[j][0] <= pools[i][1]
    }
    if not overlapping:
        cfg = loads(text)
        assert [(p.first, p.last) for p in cfg.subnets[0].pools] == pools
        return
    lines = problems(text)
    assert all("overlaps subnet4[0].pools[" in line for line in lines)
    reported = {int(line.split("pools[")[1].split("]")[0]) for line in lines}
    # every overlapping pool is either reported or is the one others are reported against
    assert reported <= overlapping
    assert len(lines) >= 1


@given(prefix=st.integers(8, 30), offset=st.integers(0, 2**32 - 1), data=st.data())
@settings(max_examples=200, deadline=None)
def test_cidr_pool_matches_ipaddress(prefix, offset, data):
    net = ipaddress.IPv4Network((offset, prefix), strict=False)
    sub_prefix = data.draw(st.integers(prefix + 1, 32))
    subs = list(net.subnets(new_prefix=sub_prefix)) if sub_prefix - prefix <= 4 else [
        ipaddress.IPv4Network((int(net.network_address) + (1 << (32 - sub_prefix)), sub_prefix))]
    pool = data.draw(st.sampled_from(subs))
    text = f'[[subnet4]]\nid = 1\nsubnet = "{net}"\npools = ["{pool}"]\n'
    first, last = int(pool.network_address), int(pool.broadcast_address)
    edge = first == int(net.network_address) or last == int(net.broadcast_address)
    if edge:
        assert any("pool contains the" in line for line in problems(text))
    else:
        (p,) = loads(text).subnets[0].pools
        assert (p.first, p.last, p.size) == (first, last, pool.num_addresses)


# -- examples, docs, docstrings ------------------------------------------------------------------


def test_small_office_example_loads():
    cfg = load(ROOT / "examples" / "small-office.toml")
    (s,) = cfg.subnets
    assert cfg.server.interfaces == ("eth1",) and s.interface == "eth1"
    assert len(s.reservations) == 3
    assert all(r.hw_address for r in s.reservations)
    pxe = s.reservations[2]
    assert pxe.options[66] == b"192.168.10.5" and pxe.options[67] == b"pxelinux.0"
    assert s.options[3] == bytes([192, 168, 10, 1])


def test_isp_example_loads():
    cfg = load(ROOT / "examples" / "isp.toml")
    assert cfg.server.interfaces == () and cfg.server.listen_addresses == ("203.0.113.10",)
    assert len(cfg.subnets) >= 3
    shared = [s for s in cfg.subnets if s.shared_network]
    assert len(shared) >= 2 and len({s.shared_network for s in shared}) == 1
    circuits = [r.circuit_id for s in cfg.subnets for r in s.reservations if r.circuit_id]
    assert b"bng1 eth 0/1/0/7:100" in circuits
    assert any(119 in s.options for s in cfg.subnets)
    assert any(121 in s.options for s in cfg.subnets)


def test_docs_document_every_key():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for key in (*SERVER_KEYS, *LEASE_DATABASE_KEYS, *GLOBAL_KEYS, *SUBNET_KEYS,
                *RESERVATION_KEYS):
        assert f"`{key}`" in doc, key
    for section in ("[server]", "[lease-database]", "[global]", "[[subnet4]]",
                    "[[subnet4.reservations]]"):
        assert f"`{section}`" in doc, section


def test_every_model_field_has_a_docstring():
    tree = ast.parse(inspect.getsource(config_mod))
    classes = {"ServerConfig", "LeaseDatabaseConfig", "Lifetimes", "Pool", "Reservation",
               "Subnet4", "Config"}
    seen = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in classes:
            seen.add(node.name)
            body = node.body
            for i, stmt in enumerate(body):
                if isinstance(stmt, ast.AnnAssign):
                    nxt = body[i + 1] if i + 1 < len(body) else None
                    assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                        and isinstance(nxt.value.value, str), (node.name, stmt.target.id)
    assert seen == classes


def test_many_reservations_load():
    lines = [SUB.replace("192.0.2.0/24", "10.0.0.0/16"), 'pools = ["10.0.128.0 - 10.0.200.255"]\n']
    for i in range(5000):
        lines.append(f'[[subnet4.reservations]]\nhw-address = "02:00:00:00:{i >> 8:02x}:'
                     f'{i & 255:02x}"\nip-address = "{ipaddress.IPv4Address(BASE + 1 + i)}"\n')
    cfg = loads("".join(lines))
    s = cfg.subnets[0]
    assert len(s.reservations) == 5000 == len(s.by_hw_address) == len(s.reserved_ips)
    assert all(r.options is s.options for r in s.reservations)
