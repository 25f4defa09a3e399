"""Client classes in the engine: Kea's order of assignment, subnet and pool guards, required
classes, option precedence and class lifetimes, DROP, and the counters, against the answers a
real Kea 2.2 gave (../shared/reference/kea-client-classes.md, sections 2-4 and the ISP
patterns of section 7 that need no fixed fields and no vendor options).

Requests are built byte by byte by tests/dhcpsim.py and replies decoded there (not with the
codec under test); the engine runs on a fake clock over an in-memory store."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from dhcpsim import (
    ACK,
    DISCOVER,
    NAK,
    OFFER,
    REQUEST,
    Network,
    Reply,
    build_request,
    ip,
    mac,
    opt,
    relay_agent_info,
)

from fastdhcp.config import loads
from fastdhcp.consts import Outcome
from fastdhcp.engine import Decision, Link
from fastdhcp.errors import ConfigError
from fastdhcp.metrics import Metrics
from fastdhcp.statistics import NOT_RECEIVE_DROPS, Statistics

SERVER = ip("198.19.77.1")
RELAY_A = ip("198.19.80.1")
RELAY_B = ip("198.19.81.1")
#: A PRL asking for every option the patterns set (2 4 6 7 42 66 67).
PRL = bytes((1, 2, 3, 4, 6, 7, 15, 42, 66, 67))

HEAD = """
[server]
listen-addresses = ["198.19.77.1"]

[global]
valid-lifetime = 3600
"""

#: The reference's plain subnet: 198.19.80.0/24, id 10, reached through relay 198.19.80.1.
SUBNET_10 = """
[[subnet4]]
id = 10
subnet = "198.19.80.0/24"
"""


def network(body: str, *, global_options: str = "") -> Network:
    return Network(loads(HEAD + global_options + body), Link("", SERVER))


def request_bytes(n: int, mtype: int = DISCOVER, *, giaddr: int = RELAY_A, vendor: bytes = b"",
                  extra: bytes = b"", **kw: object) -> bytes:
    if vendor:
        extra = opt(60, vendor) + extra
    kw.setdefault("prl", PRL)
    return build_request(mtype, xid=0x5E000000 + n, chaddr=kw.pop("chaddr", mac(n)),  # type: ignore[arg-type]
                         giaddr=giaddr, hops=1 if giaddr else 0, extra=extra, **kw)  # type: ignore[arg-type]


def discover(net: Network, n: int, **kw: object) -> tuple[Decision, Reply | None]:
    return net.exchange(request_bytes(n, **kw))  # type: ignore[arg-type]


def offer(net: Network, n: int, **kw: object) -> Reply:
    d, r = discover(net, n, **kw)
    assert r is not None and r.mtype == OFFER, d
    return r


def dora(net: Network, n: int, **kw: object) -> Reply:
    o = offer(net, n, **kw)
    d, r = net.exchange(request_bytes(n, REQUEST, requested_ip=o.yiaddr, server_id=o.server_id,
                                      **kw))  # type: ignore[arg-type]
    assert r is not None and r.mtype == ACK, d
    return r


def addr(r: Reply) -> str:
    return ".".join(str(b) for b in struct.pack("!I", r.yiaddr))


def ip4(r: Reply, code: int) -> str | None:
    v = r.options.get(code)
    return None if v is None else ".".join(str(b) for b in v[:4])


def lease_time(r: Reply) -> int | None:
    return r.u32(51)


# --------------------------------------------------------------- the 16 patterns (section 7)

P1 = """
[[client-classes]]
name = "STB"
test = "substring(option[60].text,0,4) == 'STB-'"
option-data = { domain-name-servers = ["198.18.10.53"] }

[[client-classes]]
name = "CPE"
test = "substring(option[60].text,0,4) == 'CPE-'"
""" + SUBNET_10 + """
pools = [
  { pool = "198.19.80.10 - 198.19.80.49", client-class = "STB" },
  { pool = "198.19.80.50 - 198.19.80.99", client-class = "CPE" },
  { pool = "198.19.80.100 - 198.19.80.199" },
]
"""


def test_p1_stb_cpe_other_pools_by_option_60() -> None:
    net = network(P1, global_options='option-data = { domain-name-servers = ["198.18.0.1"] }\n')
    stb = offer(net, 1, vendor=b"STB-Amino-A140")
    assert addr(stb) == "198.19.80.10" and ip4(stb, 6) == "198.18.10.53"
    assert net.engine.last_classes() == ["ALL", "STB", "UNKNOWN"]
    cpe = offer(net, 2, vendor=b"CPE-HGW-1")
    assert addr(cpe) == "198.19.80.50" and ip4(cpe, 6) == "198.18.0.1"
    assert net.engine.last_classes() == ["ALL", "CPE", "UNKNOWN"]
    pc = offer(net, 3, vendor=b"MSFT 5.0")
    assert addr(pc) == "198.19.80.100" and ip4(pc, 6) == "198.18.0.1"


P2 = """
[[client-classes]]
name = "VENDOR_CLASS_docsis3.0"
option-data.time-offset = 3600
option-data.time-servers = ["198.18.20.37"]
option-data.log-servers = ["198.18.20.14"]

[[client-classes]]
name = "NOT_CM"
test = "not member('VENDOR_CLASS_docsis3.0')"

[[subnet4]]
id = 30
subnet = "198.19.93.0/24"
shared-network = "cmts1"
relay = ["198.19.80.1"]
pools = ["198.19.93.10 - 198.19.93.250"]
client-class = "VENDOR_CLASS_docsis3.0"

[[subnet4]]
id = 31
subnet = "198.19.94.0/24"
shared-network = "cmts1"
relay = ["198.19.80.1"]
pools = ["198.19.94.10 - 198.19.94.250"]
client-class = "NOT_CM"
"""


def test_p2_docsis_modem_and_hosts_by_vendor_class_guard_in_a_shared_network() -> None:
    net = network(P2)
    cm = offer(net, 1, vendor=b"docsis3.0")
    assert addr(cm) == "198.19.93.10"
    assert cm.options[2] == bytes.fromhex("00000e10")
    assert cm.options[4] == bytes.fromhex("c6121425") and cm.options[7] == bytes.fromhex("c612140e")
    assert net.engine.last_classes() == ["ALL", "VENDOR_CLASS_docsis3.0", "UNKNOWN"]
    pc = offer(net, 2, vendor=b"MSFT 5.0")
    assert addr(pc) == "198.19.94.10" and 2 not in pc.options
    assert net.engine.last_classes() == ["ALL", "NOT_CM", "UNKNOWN"]


P6 = """
[[client-classes]]
name = "PXE"
test = "substring(option[60].text,0,9) == 'PXEClient'"
option-data = { tftp-server-name = "198.18.30.69", boot-file-name = "pxelinux.0" }
""" + SUBNET_10 + """
pools = [
  { pool = "198.19.80.10 - 198.19.80.19", client-class = "PXE" },
  { pool = "198.19.80.100 - 198.19.80.199" },
]
"""


def test_p6_pxe_clients_to_a_provisioning_pool_with_options_66_67() -> None:
    net = network(P6)
    pxe = offer(net, 1, vendor=b"PXEClient:Arch:00000:UNDI:002001")
    assert addr(pxe) == "198.19.80.10"
    assert pxe.options[66] == b"198.18.30.69" and pxe.options[67] == b"pxelinux.0"
    other = offer(net, 2, vendor=b"MSFT 5.0")
    assert addr(other) == "198.19.80.100" and 66 not in other.options and 67 not in other.options


P7 = """
[[client-classes]]
name = "OLT1"
test = "substring(relay4[2].hex,0,5) == 'OLT1-'"

[[client-classes]]
name = "BUSINESS_PORT"
test = "relay4[1].hex == 'eth0/1/2:100'"
""" + SUBNET_10 + """
pools = [
  { pool = "198.19.80.10 - 198.19.80.19", client-class = "BUSINESS_PORT" },
  { pool = "198.19.80.20 - 198.19.80.99", client-class = "OLT1" },
  { pool = "198.19.80.100 - 198.19.80.199" },
]
"""


def test_p7_option_82_remote_id_and_circuit_id_to_pools() -> None:
    net = network(P7)
    olt = offer(net, 1, relay_info=relay_agent_info(remote_id=b"OLT1-0001"))
    assert addr(olt) == "198.19.80.20"
    assert net.engine.last_classes() == ["ALL", "OLT1", "UNKNOWN"]
    both = offer(net, 2, relay_info=relay_agent_info(circuit_id=b"eth0/1/2:100",
                                                     remote_id=b"OLT1-0002"))
    # In both classes: Kea 2.2's iterative allocator went on after .20 (.21, OLT1 pool);
    # fastdhcp takes the first allowed pool in config order (docs/classification.md).
    assert addr(both) == "198.19.80.10"
    assert net.engine.last_classes() == ["ALL", "OLT1", "BUSINESS_PORT", "UNKNOWN"]
    assert addr(offer(net, 3, relay_info=relay_agent_info(remote_id=b"OLT2-0001"))) \
        == "198.19.80.100"
    assert addr(offer(net, 4)) == "198.19.80.101"


def _walled(pool_dns: bool) -> str:
    pool_opts = ', option-data = { domain-name-servers = ["198.18.40.53"] }' if pool_dns else ""
    class_opts = "" if pool_dns else 'option-data = { domain-name-servers = ["198.18.40.53"] }\n'
    return f"""
[[client-classes]]
name = "WALLED"
test = "member('UNKNOWN')"
valid-lifetime = 300
{class_opts}""" + SUBNET_10 + f"""
pools = [
  {{ pool = "198.19.80.10 - 198.19.80.199", client-class = "KNOWN" }},
  {{ pool = "198.19.80.200 - 198.19.80.250", client-class = "UNKNOWN"{pool_opts} }},
]
option-data = {{ domain-name-servers = ["198.18.0.53"] }}

[[subnet4.reservations]]
hw-address = "02:01:00:00:07:01"
hostname = "cust-1001"
"""


@pytest.mark.parametrize("pool_dns", [False, True], ids=["P8-class-dns", "P8b-pool-dns"])
def test_p8_unknown_clients_to_a_walled_garden(pool_dns: bool) -> None:
    net = network(_walled(pool_dns))
    reg = offer(net, 1, chaddr=bytes.fromhex("020100000701"))
    assert addr(reg) == "198.19.80.10" and ip4(reg, 6) == "198.18.0.53"
    assert lease_time(reg) == 3600
    assert net.engine.last_classes() == ["ALL", "KNOWN"]
    unreg = offer(net, 2)
    assert addr(unreg) == "198.19.80.200" and lease_time(unreg) == 300
    # The class's DNS loses to the subnet's (P8); the pool's beats it (P8b).
    assert ip4(unreg, 6) == ("198.18.40.53" if pool_dns else "198.18.0.53")
    assert net.engine.last_classes() == ["ALL", "UNKNOWN", "WALLED"]


P9 = """
[[client-classes]]
name = "POP_B"
test = "pkt4.giaddr == 198.19.81.1"
option-data = { ntp-servers = ["198.18.50.123"] }
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]

[[subnet4]]
id = 11
subnet = "198.19.81.0/24"
pools = ["198.19.81.10 - 198.19.81.250"]
"""


def test_p9_per_relay_class_on_giaddr() -> None:
    net = network(P9)
    a = offer(net, 1)
    assert addr(a) == "198.19.80.10" and 42 not in a.options
    b = offer(net, 2, giaddr=RELAY_B)
    assert addr(b) == "198.19.81.10" and ip4(b, 42) == "198.18.50.123"


P10 = """
[[client-classes]]
name = "OUI_VOIP"
test = "substring(pkt4.mac,0,3) == 0x00040d"
option-data = { tftp-server-name = "voip-prov.isp.example" }
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]
"""


def test_p10_vendor_by_mac_oui() -> None:
    net = network(P10)
    phone = offer(net, 1, chaddr=bytes.fromhex("00040d112233"))
    assert addr(phone) == "198.19.80.10" and phone.options[66] == b"voip-prov.isp.example"
    other = offer(net, 2)
    assert addr(other) == "198.19.80.11" and 66 not in other.options


P11 = """
[[client-classes]]
name = "CAM"
test = "substring(option[host-name].text,0,4) == 'cam-'"
option-data = { ntp-servers = ["198.18.60.123"] }
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]
"""


def test_p11_hostname_prefix() -> None:
    net = network(P11)
    cam = offer(net, 1, hostname=b"cam-0001")
    assert addr(cam) == "198.19.80.10" and ip4(cam, 42) == "198.18.60.123"
    laptop = offer(net, 2, hostname=b"laptop")
    assert addr(laptop) == "198.19.80.11" and 42 not in laptop.options


P12 = """
[[client-classes]]
name = "VOICE_OPTS"
test = "option[60].exists"
only-if-required = true
option-data = { tftp-server-name = "voice.isp.example" }
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]
require-client-classes = ["VOICE_OPTS"]

[[subnet4]]
id = 11
subnet = "198.19.81.0/24"
pools = ["198.19.81.10 - 198.19.81.250"]
"""


def test_p12_subnet_scoped_option_through_a_required_class() -> None:
    net = network(P12)
    voice = offer(net, 1, vendor=b"X")
    assert addr(voice) == "198.19.80.10" and voice.options[66] == b"voice.isp.example"
    assert net.engine.last_classes() == ["ALL", "UNKNOWN", "VOICE_OPTS"]  # required: last
    other = offer(net, 2, vendor=b"X", giaddr=RELAY_B)
    assert addr(other) == "198.19.81.10" and 66 not in other.options
    assert net.engine.last_classes() == ["ALL", "UNKNOWN"]  # only-if-required: never else


P13 = """
[[client-classes]]
name = "HAS_RAI"
test = "relay4[1].exists or relay4[2].exists"
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]
client-class = "HAS_RAI"
"""


def test_p13_only_relayed_subscribers_with_option_82() -> None:
    net = network(P13)
    assert addr(offer(net, 1, relay_info=relay_agent_info(circuit_id=b"port-1"))) \
        == "198.19.80.10"
    d, r = discover(net, 2)
    assert r is None and d.kind is Outcome.DROP and d.reason == "no-subnet"


P14 = """
[[client-classes]]
name = "ONT"
test = "substring(option[61].hex,0,5) == 0x0048575443"
""" + SUBNET_10 + """
pools = [
  { pool = "198.19.80.10 - 198.19.80.19", client-class = "ONT" },
  { pool = "198.19.80.100 - 198.19.80.199" },
]
"""


def test_p14_client_id_serial_prefix() -> None:
    net = network(P14)
    assert addr(offer(net, 1, client_id=b"\x00HWTC12345678")) == "198.19.80.10"
    assert addr(offer(net, 2, client_id=b"\x01" + mac(2))) == "198.19.80.100"


P15 = """
[[client-classes]]
name = "IOT"
test = "substring(option[60].text,0,3) == 'iot'"
valid-lifetime = 600
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]
max-valid-lifetime = 7200
"""


def test_p15_class_valid_lifetime() -> None:
    net = network(P15)
    iot = offer(net, 1, vendor=b"iot-sensor")
    assert addr(iot) == "198.19.80.10" and lease_time(iot) == 600
    assert addr(other := offer(net, 2)) == "198.19.80.11" and lease_time(other) == 3600
    # The class's triplet bounds a client's option 51 (min = max = 600 when unset), where
    # the subnet would allow up to 7200; and the ACK binds for that time.
    ack = dora(net, 3, vendor=b"iot-sensor", lease_time=5000)
    assert lease_time(ack) == 600
    lease = net.store.get(ack.yiaddr)
    assert lease is not None and lease.expires - lease.issued == 600
    assert lease_time(dora(net, 4, lease_time=5000)) == 5000


P16 = """
[[client-classes]]
name = "DROP"
test = "substring(relay4[2].hex,0,7) == 'BLOCKED' or pkt4.mac == 0x02005e0006ff"
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]
"""


class _Source:
    """What fastdhcp.statistics reads: the network's engine and store, and the metrics the
    service would have counted from the decisions."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.metrics = Metrics()

    @property
    def config(self) -> object:
        return self.net.engine.config

    @property
    def engine(self) -> object:
        return self.net.engine

    @property
    def store(self) -> object:
        return self.net.store

    def count(self, d: Decision) -> None:
        if d.kind is Outcome.DROP:
            self.metrics.drop(d.reason)


def test_p16_drop_blocks_rogue_devices_counted_as_receive_drops() -> None:
    net = network(P16)
    src = _Source(net)
    for n, kw in ((1, {"relay_info": relay_agent_info(remote_id=b"BLOCKED-77")}),
                  (2, {"chaddr": bytes.fromhex("02005e0006ff")})):
        d, r = discover(net, n, **kw)
        src.count(d)
        assert r is None and d.reason == "class-drop"
    d, r = discover(net, 3)
    src.count(d)
    assert r is not None and addr(r) == "198.19.80.10"
    assert "class-drop" not in NOT_RECEIVE_DROPS
    stats = Statistics(src)  # type: ignore[arg-type]
    assert stats.get_all()["pkt4-receive-drop"].value == 2


def test_drop_may_depend_on_known() -> None:
    net = network("""
[[client-classes]]
name = "DROP"
test = "member('UNKNOWN') and pkt4.mac == 0x020000000002"
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:03"
ip-address = "198.19.80.5"
""")
    assert discover(net, 2)[0].reason == "class-drop"  # pass 2, after the lookup
    assert addr(offer(net, 3, chaddr=bytes.fromhex("020000000003"))) == "198.19.80.5"


# --------------------------------------------------------------- order (section 2)

ORDER = """
[[client-classes]]
name = "A"
test = "option[60].exists"

[[client-classes]]
name = "F_no_test"

[[client-classes]]
name = "J"
test = "member('F_no_test')"

[[client-classes]]
name = "C_known"
test = "member('KNOWN')"

[[client-classes]]
name = "R"
test = "'a' == 'a'"
only-if-required = true
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:01"
ip-address = "198.19.80.5"
client-classes = ["F_no_test"]
"""


def test_reserved_classes_come_first_and_pass_1_is_run_again() -> None:
    net = network(ORDER)
    offer(net, 1, vendor=b"v")
    # Kea: ALL, F_no_test, J..., KNOWN, C_known (the reserved class before the re-run).
    assert net.engine.last_classes() == ["ALL", "F_no_test", "A", "J", "KNOWN", "C_known"]
    offer(net, 2, vendor=b"v")
    assert net.engine.last_classes() == ["ALL", "A", "UNKNOWN"]


def test_classification_is_redone_for_every_packet() -> None:
    net = network(ORDER)
    ack = dora(net, 2, vendor=b"v")
    assert net.engine.last_classes() == ["ALL", "A", "UNKNOWN"]
    net.exchange(request_bytes(2, REQUEST, giaddr=0, ciaddr=ack.yiaddr))
    assert net.engine.last_classes() == ["ALL", "UNKNOWN"]


# --------------------------------------------------------------- guards (section 3)

def test_subnet_guard_is_checked_before_the_reservation_lookup() -> None:
    net = network(SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]
client-class = "KNOWN"

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:01"
ip-address = "198.19.80.5"
""")
    assert discover(net, 1)[1] is None  # even the reserved client: no answer


def test_pool_guard_by_a_required_class_is_not_passed_but_the_class_is_assigned() -> None:
    net = network("""
[[client-classes]]
name = "R"
test = "option[60].exists"
only-if-required = true
""" + SUBNET_10 + """
pools = [
  { pool = "198.19.80.10 - 198.19.80.19", client-class = "R" },
  { pool = "198.19.80.100 - 198.19.80.199" },
]
require-client-classes = ["R", "NOT_DEFINED"]
""")
    assert addr(offer(net, 1, vendor=b"v")) == "198.19.80.100"
    assert net.engine.last_classes() == ["ALL", "UNKNOWN", "R"]


def test_a_guarded_pool_falls_through_to_the_open_pool_when_full() -> None:
    net = network(P6.replace("198.19.80.10 - 198.19.80.19", "198.19.80.10 - 198.19.80.10"))
    assert addr(offer(net, 1, vendor=b"PXEClient:x")) == "198.19.80.10"
    assert addr(offer(net, 2, vendor=b"PXEClient:y")) == "198.19.80.100"


ONLY_STB = """
[[client-classes]]
name = "STB"
test = "substring(option[60].text,0,4) == 'STB-'"
""" + SUBNET_10 + """
pools = [{ pool = "198.19.80.10 - 198.19.80.49", client-class = "STB" }]
"""


def test_no_allowed_pool_is_no_offer_counted_as_kea_does() -> None:
    net = network(ONLY_STB)
    src = _Source(net)
    d, r = discover(net, 1, vendor=b"MSFT 5.0")
    assert r is None and d.reason == "pool-exhausted"
    c = net.engine.subnet_counters()[10]
    assert (c.alloc_fail, c.no_pools) == (1, 1)
    v = {name: s.value for name, s in Statistics(src).get_all().items()}  # type: ignore[arg-type]
    assert v["v4-allocation-fail"] == 1 and v["v4-allocation-fail-classes"] == 1
    assert v["v4-allocation-fail-no-pools"] == 1
    assert v["subnet[10].v4-allocation-fail-no-pools"] == 1
    assert v["pkt4-receive-drop"] == 0
    assert addr(offer(net, 2, vendor=b"STB-1")) == "198.19.80.10"


def test_a_renewal_from_a_pool_the_client_may_no_longer_use_is_naked() -> None:
    net = network(P1)
    ack = dora(net, 1, vendor=b"STB-1")
    assert addr(ack) == "198.19.80.10"
    # Still an STB: renewed.
    d, r = net.exchange(request_bytes(1, REQUEST, giaddr=0, ciaddr=ack.yiaddr,
                                      vendor=b"STB-1"))
    assert r is not None and r.mtype == ACK
    # No longer in STB (Kea: the address is outside the pools its classes allow).
    d, r = net.exchange(request_bytes(1, REQUEST, giaddr=0, ciaddr=ack.yiaddr,
                                      vendor=b"MSFT 5.0"))
    assert r is not None and r.mtype == NAK
    # A DISCOVER then gets an address of a pool it may use.
    assert addr(offer(net, 1, vendor=b"MSFT 5.0")) == "198.19.80.100"


def test_a_client_s_reserved_address_in_a_guarded_pool_is_not_guarded() -> None:
    net = network(ONLY_STB + """
[[subnet4.reservations]]
hw-address = "02:00:00:00:00:01"
ip-address = "198.19.80.20"
""")
    assert addr(offer(net, 1, vendor=b"MSFT 5.0")) == "198.19.80.20"


def test_pools_are_counted_each_on_its_own() -> None:
    net = network(P1)
    dora(net, 1, vendor=b"STB-1")
    dora(net, 2, vendor=b"STB-2")
    dora(net, 3)
    used = {(s.subnet_id, s.pool): (s.size, s.used) for s in net.engine.pool_stats()}
    assert used == {(10, "198.19.80.10 - 198.19.80.49"): (40, 2),
                    (10, "198.19.80.50 - 198.19.80.99"): (50, 0),
                    (10, "198.19.80.100 - 198.19.80.199"): (100, 1)}


# --------------------------------------------------------------- precedence (section 4)

def _precedence(levels: set[str], *, b_first: bool = False) -> str:
    def dns(value: str, level: str) -> str:
        return f'option-data = {{ domain-name-servers = ["{value}"] }}\n' if level in levels \
            else ""
    a = '[[client-classes]]\nname = "A"\ntest = "option[60].exists"\n' + dns("198.18.0.2", "A")
    b = '[[client-classes]]\nname = "B"\ntest = "option[60].exists"\n' + dns("198.18.0.3", "B")
    r = ('[[client-classes]]\nname = "R"\ntest = "option[60].exists"\nonly-if-required = true\n'
         + dns("198.18.0.8", "R"))
    pool_opts = (', option-data = { domain-name-servers = ["198.18.0.6"] }' if "pool" in levels
                 else "")
    res = ('[[subnet4.reservations]]\nhw-address = "02:00:00:00:00:01"\n'
           'ip-address = "198.19.80.5"\n' + dns("198.18.0.7", "reservation"))
    return (r + (b + a if b_first else a + b) + SUBNET_10
            + f'pools = [{{ pool = "198.19.80.10 - 198.19.80.250"{pool_opts} }}]\n'
            + 'require-client-classes = ["R"]\n' + dns("198.18.0.5", "subnet") + res)


GLOBAL_DNS = 'option-data = { domain-name-servers = ["198.18.0.1"] }\n'


@pytest.mark.parametrize(("levels", "b_first", "answer"), [
    ({"reservation", "pool", "subnet", "A", "B"}, False, "198.18.0.7"),
    ({"pool", "subnet", "A", "B"}, False, "198.18.0.6"),
    ({"subnet", "A", "B"}, False, "198.18.0.5"),
    ({"A", "B"}, False, "198.18.0.2"),
    ({"B"}, False, "198.18.0.3"),
    (set(), False, "198.18.0.1"),
    ({"A", "B"}, True, "198.18.0.3"),
    ({"R", "A"}, False, "198.18.0.2"),
    ({"R", "subnet"}, False, "198.18.0.5"),
    ({"R"}, False, "198.18.0.8"),
])
def test_option_precedence(levels: set[str], b_first: bool, answer: str) -> None:
    net = network(_precedence(levels, b_first=b_first), global_options=GLOBAL_DNS)
    reserved = "reservation" in levels
    r = offer(net, 1, vendor=b"v") if reserved else offer(net, 2, vendor=b"v")
    assert ip4(r, 6) == answer
    ack = dora(net, 1 if reserved else 2, vendor=b"v")
    assert ip4(ack, 6) == answer  # the ACK by the same rule


def test_host_reservation_class_beats_an_expression_class() -> None:
    net = network("""
[[client-classes]]
name = "A"
test = "'a' == 'a'"
option-data = { domain-name-servers = ["198.18.0.2"] }

[[client-classes]]
name = "H"
option-data = { domain-name-servers = ["198.18.0.9"] }
""" + SUBNET_10 + """
pools = ["198.19.80.10 - 198.19.80.250"]

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:01"
ip-address = "198.19.80.5"
client-classes = ["H"]
""")
    assert ip4(offer(net, 1), 6) == "198.18.0.9"
    assert ip4(offer(net, 2), 6) == "198.18.0.2"


# --------------------------------------------------------------- no classes, reload

def test_without_classes_nothing_is_assigned() -> None:
    net = network(SUBNET_10 + 'pools = ["198.19.80.10 - 198.19.80.250"]\n')
    assert addr(offer(net, 1, vendor=b"STB-1")) == "198.19.80.10"
    assert net.engine.last_classes() == []


def test_a_bad_expression_is_refused_with_the_class_name_and_column() -> None:
    with pytest.raises(ConfigError) as e:
        loads(HEAD + '[[client-classes]]\nname = "STB"\ntest = "option[60].text"\n' + SUBNET_10)
    assert any("class 'STB'" in line and "column" in line for line in e.value.problems)


def test_a_reload_carrying_a_bad_expression_keeps_the_old_config_serving(
        tmp_path: Path) -> None:
    from service_helpers import InProcessServer, RelayClient, config_text, free_port

    from fastdhcp.config import load

    port = free_port()
    good = config_text(tmp_path / "db", port, pools=("198.18.0.100", "198.18.0.199")) + """
[[client-classes]]
name = "PORT9"
test = "relay4[1].hex == 'port-9'"
option-data = { ntp-servers = ["198.18.9.123"] }
"""
    path = tmp_path / "fastdhcp.toml"
    path.write_text(good)
    with InProcessServer(load(path)) as srv, RelayClient(port) as relay:
        first = relay.exchange("discover", mac(1), 0x100, circuit=b"port-9",
                               options=[("param_req_list", [1, 3, 6, 42])])
        path.write_text(good.replace("relay4[1].hex == 'port-9'", "relay4[1].hex ==="))
        result = srv.call_soon(srv.server.reload_from_file)
        assert not result.ok
        assert any("class 'PORT9'" in line and "column" in line for line in result.problems)
        again = relay.exchange("discover", mac(2), 0x200, circuit=b"port-9",
                               options=[("param_req_list", [1, 3, 6, 42])])
    for reply in (first, again):
        ntp = [o for o in reply["DHCP"].options if isinstance(o, tuple) and o[0] == "NTP_server"]
        assert ntp and ntp[0][1] == "198.18.9.123"
