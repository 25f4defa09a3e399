"""siaddr / sname / file (RFC 2131 table 3) from Kea's next-server, server-hostname and
boot-file-name, with Kea's precedence (reservation > first class > subnet > global, each
field on its own: the reference's "fixed" table), and option overload (52) that uses only the
header fields not carrying a value (RFC 2131 4.1, RFC 2132 9.3).

Replies are decoded by tests/dhcpsim.py (struct) and, for overload, by scapy: two decoders
independent of the codec under test."""

from __future__ import annotations

import struct

import pytest
from config_builder import ENGINE_GLOBAL, ENGINE_SERVER, ENGINE_SUBNET, config_text
from dhcpsim import (
    ACK,
    INFORM,
    NAK,
    OFFER,
    REQUEST,
    SERVER_IP,
    Client,
    Network,
    build_request,
    ip,
    mac,
)
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp._codec import ReplyBuilder, parse
from fastdhcp._engine import fixed_fields
from fastdhcp.config import ConfigError, loads
from fastdhcp.engine import Engine, Link
from fastdhcp.leases import MemoryLeaseStore

LINK = Link("eth0", SERVER_IP)
RES_MAC = mac(0x77)


def _config(global_: str = "", subnet: str = "", reservation: str = "", classes: str = "",
            options: dict[str, str] | None = None):
    sub = ENGINE_SUBNET if options is None else {
        **ENGINE_SUBNET, "option-data": {**ENGINE_SUBNET["option-data"], **options}}
    res = (f'\n[[subnet4.reservations]]\nhw-address = "{RES_MAC.hex(":")}"\n'
           f'ip-address = "198.18.0.50"\n{reservation}') if reservation else ""
    return loads(config_text(ENGINE_SERVER, global_=ENGINE_GLOBAL, subnets=[sub],
                             global_extra=global_, subnet_extra=subnet + res, more=classes))


def _fields(name: str, ns: str | None = None, host: str | None = None,
            file: str | None = None) -> str:
    out = ""
    if ns:
        out += f'next-server = "{ns}"\n'
    if host:
        out += f'server-hostname = "{host}"\n'
    if file:
        out += f'boot-file-name = "{file}"\n'
    return out


def _class(name: str, **kw: str) -> str:
    return f'\n[[client-classes]]\nname = "{name}"\n' + _fields(name, **kw)


GLOBAL = _fields("g", "198.18.2.1", "global-srv", "global.cfg")
SUBNET = _fields("s", "198.18.2.5", "subnet-srv", "subnet.cfg")
RES = _fields("r", "198.18.2.7", "res-srv", "res.cfg")
C1 = _class("C1", ns="198.18.2.2", host="class1-srv", file="class1.cfg")
C2 = _class("C2", ns="198.18.2.3", host="class2-srv", file="class2.cfg")


def _run(cfg, classes=("C1", "C2"), reserved=True):
    engine = Engine(cfg, MemoryLeaseStore())
    res = cfg.subnets[0].reservations[0] if reserved and cfg.subnets[0].reservations else None
    ids = [cfg.class_ids[c] for c in classes if c in cfg.class_ids]
    si, sname, file = fixed_fields(engine, 1, res, ids)
    return (si, sname, file)


def _want(a: str, sname: str, file: str):
    return (ip(a), sname.encode(), file.encode())


# ------------------------------------------------------------------ the precedence table


def test_reservation_beats_classes_subnet_and_global():
    cfg = _config(GLOBAL, SUBNET, RES, C1 + C2)
    assert _run(cfg) == _want("198.18.2.7", "res-srv", "res.cfg")


def test_first_class_beats_the_subnet():
    # unlike options (subnet > class), a class beats the subnet for these fields
    cfg = _config(GLOBAL, SUBNET, classes=C1 + C2)
    assert _run(cfg) == _want("198.18.2.2", "class1-srv", "class1.cfg")


def test_class_order_is_assignment_order():
    cfg = _config(GLOBAL, SUBNET, classes=C1 + C2)
    assert _run(cfg, classes=("C2", "C1")) == _want("198.18.2.3", "class2-srv", "class2.cfg")


def test_subnet_beats_global():
    cfg = _config(GLOBAL, SUBNET, classes=C1 + C2)
    assert _run(cfg, classes=()) == _want("198.18.2.5", "subnet-srv", "subnet.cfg")


def test_global_only():
    cfg = _config(GLOBAL)
    assert _run(cfg, classes=()) == _want("198.18.2.1", "global-srv", "global.cfg")


def test_each_field_from_the_first_class_that_sets_it():
    # the reference's last row: C1 sets only boot-file, C2 next-server + boot-file, subnet
    # next-server -> siaddr from C2, file from C1
    cfg = _config(subnet=_fields("s", ns="198.18.2.5"),
                  classes=_class("C1", file="class1.cfg")
                  + _class("C2", ns="198.18.2.3", file="class2.cfg"))
    assert _run(cfg) == (ip("198.18.2.3"), None, b"class1.cfg")


def test_subnet_field_inherits_global_per_field():
    cfg = _config(GLOBAL, _fields("s", host="subnet-srv"))
    assert cfg.subnets[0].fixed.next_server == ip("198.18.2.1")
    assert _run(cfg, classes=()) == _want("198.18.2.1", "subnet-srv", "global.cfg")


def test_reservation_overrides_only_the_fields_it_sets():
    cfg = _config(GLOBAL, reservation=_fields("r", file="res.cfg"),
                  classes=_class("C1", host="class1-srv"))
    assert _run(cfg, classes=("C1",)) == _want("198.18.2.1", "class1-srv", "res.cfg")


def test_classes_without_fields_and_unknown_ids_are_skipped():
    cfg = _config(GLOBAL, classes=_class("PLAIN") + C2)
    engine = Engine(cfg, MemoryLeaseStore())
    ids = [0, 2, cfg.class_ids["PLAIN"], 10_000, cfg.class_ids["C2"]]  # ALL, UNKNOWN, ...
    assert fixed_fields(engine, 1, None, ids) == _want("198.18.2.3", "class2-srv",
                                                      "class2.cfg")


def test_nothing_configured_gives_nothing():
    cfg = _config(classes=_class("PLAIN"))
    assert _run(cfg, classes=("PLAIN",)) == (0, None, None)


# ------------------------------------------------------------------ through the engine


def _net(cfg) -> Network:
    return Network(cfg, LINK)


def _header(data: bytes) -> tuple[int, bytes, bytes]:
    siaddr = struct.unpack_from("!I", data, 20)[0]
    return siaddr, data[44:108].rstrip(b"\0"), data[108:236].rstrip(b"\0")


def test_offer_and_ack_carry_the_subnet_fields():
    net = _net(_config(subnet=SUBNET))
    c = Client(net, mac(1))
    assert c.discover().mtype == OFFER
    assert _header(c.last_decision.reply) == _want("198.18.2.5", "subnet-srv", "subnet.cfg")
    assert c.select().mtype == ACK
    assert _header(c.last_decision.reply) == _want("198.18.2.5", "subnet-srv", "subnet.cfg")


def test_global_fields_reach_the_reply():
    net = _net(_config(GLOBAL))
    c = Client(net, mac(2))
    assert c.dora().mtype == ACK
    assert _header(c.last_decision.reply) == _want("198.18.2.1", "global-srv", "global.cfg")


def test_reservation_fields_reach_only_the_reserved_client():
    net = _net(_config(subnet=SUBNET, reservation=RES))
    r = Client(net, RES_MAC)
    assert r.dora().mtype == ACK and r.address == ip("198.18.0.50")
    assert _header(r.last_decision.reply) == _want("198.18.2.7", "res-srv", "res.cfg")
    other = Client(net, mac(3))
    assert other.dora().mtype == ACK
    assert _header(other.last_decision.reply) == _want("198.18.2.5", "subnet-srv",
                                                       "subnet.cfg")


def test_inform_ack_carries_the_fields_and_nak_does_not():
    net = _net(_config(subnet=SUBNET))
    d, r = net.exchange(build_request(INFORM, xid=5, chaddr=mac(4), ciaddr=ip("198.18.0.9")))
    assert r is not None and r.mtype == ACK
    assert _header(d.reply) == _want("198.18.2.5", "subnet-srv", "subnet.cfg")
    d, r = net.exchange(build_request(REQUEST, xid=6, chaddr=mac(4),
                                      requested_ip=ip("192.0.2.9")))
    assert r is not None and r.mtype == NAK
    assert _header(d.reply) == (0, b"", b"")


def test_no_fields_leave_the_header_empty():
    net = _net(_config())
    c = Client(net, mac(5))
    assert c.dora().mtype == ACK
    assert _header(c.last_decision.reply) == (0, b"", b"")


def test_reload_takes_new_fields():
    net = _net(_config(subnet=SUBNET))
    net.engine.reload(_config(GLOBAL))
    c = Client(net, mac(6))
    assert c.dora().mtype == ACK
    assert _header(c.last_decision.reply) == _want("198.18.2.1", "global-srv", "global.cfg")


# ------------------------------------------------------------------ option overload (52)

# With 576 bytes (no option 57) the options field holds 304 bytes; 14 and the basic options
# take ~210 of them, so 17 and 18 (122 bytes) go to file (127) and 40 (42) to sname (63).
BIG = {14: "m" * 150, 17: "r" * 100, 18: "e" * 20, 40: "n" * 40}
BIG_OPTS = {"merit-dump": BIG[14], "root-path": BIG[17], "extensions-path": BIG[18],
            "nis-domain": BIG[40]}
PRL = bytes((1, 3, 6, 14, 15, 17, 18, 40))


def _scapy_options(area: bytes) -> dict[object, object]:
    """scapy decodes one options area (it does not follow option 52 itself)."""
    out: dict[object, object] = {}
    for o in DHCP(area).options:
        if isinstance(o, tuple):
            out[o[0]] = o[1]
    return out


def _offer(cfg, prl: bytes = PRL) -> bytes:
    net = _net(cfg)
    d, r = net.exchange(build_request(1, xid=9, chaddr=mac(8), prl=prl))
    assert r is not None and r.mtype == OFFER
    assert len(d.reply) <= 576 - 28
    return d.reply


def _as_text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def test_overload_uses_file_then_sname_when_they_are_free():
    cfg = _config(options=BIG_OPTS)
    pkt = BOOTP(_offer(cfg))
    main = _scapy_options(bytes(pkt[DHCP]))
    assert main["message-type"] == 2
    assert main["dhcp-option-overload"] == 3
    found = {**main, **_scapy_options(pkt.file), **_scapy_options(pkt.sname)}
    assert _as_text(found["root_disk_path"]) == BIG[17]
    assert _as_text(found["extensions-path"]) == BIG[18]
    assert _as_text(found["NIS_domain"]) == BIG[40]
    assert _as_text(found["dump_path"]) == BIG[14]


def test_no_overload_when_everything_fits():
    cfg = _config(options=BIG_OPTS)
    pkt = BOOTP(_offer(cfg, prl=bytes((1, 3, 6, 40))))
    main = _scapy_options(bytes(pkt[DHCP]))
    assert "dhcp-option-overload" not in main and _as_text(main["NIS_domain"]) == BIG[40]


def test_a_field_carrying_a_value_is_never_overloaded():
    # 14 leaves ~45 bytes in the options field: 17 (62) needs sname, file is taken
    cfg = _config(_fields("g", file="pxelinux.0"),
                  options={"merit-dump": "m" * 200, "root-path": "r" * 60})
    pkt = BOOTP(_offer(cfg))
    assert pkt.file.rstrip(b"\0") == b"pxelinux.0"
    main = _scapy_options(bytes(pkt[DHCP]))
    assert main["dhcp-option-overload"] == 2  # sname only
    assert _as_text(_scapy_options(pkt.sname)["root_disk_path"]) == "r" * 60
    assert _as_text(main["dump_path"]) == "m" * 200 and "server_id" in main


def test_both_fields_set_means_no_overload_and_the_rest_dropped():
    cfg = _config(subnet=_fields("s", ns="198.18.2.5", host="tftp1", file="pxelinux.0"),
                  options=BIG_OPTS)
    pkt = BOOTP(_offer(cfg))
    assert (pkt.siaddr, pkt.sname.rstrip(b"\0"), pkt.file.rstrip(b"\0")) == (
        "198.18.2.5", b"tftp1", b"pxelinux.0")
    main = _scapy_options(bytes(pkt[DHCP]))
    assert "dhcp-option-overload" not in main
    # the required options are there; what did not fit was dropped, not written over a field
    assert main["server_id"] == "198.18.0.1" and "lease_time" in main
    assert not {"root_disk_path", "dump_path"} <= set(main)


def test_builder_refuses_an_oversized_field():
    req = parse(build_request(1, xid=1, chaddr=mac(1)))
    with pytest.raises(ValueError, match="sname"):
        ReplyBuilder().build(req, 2, 0, 0, 0, [], -1, b"x" * 65)
    with pytest.raises(ValueError, match="file"):
        ReplyBuilder().build(req, 2, 0, 0, 0, [], -1, None, b"x" * 129)
    out = ReplyBuilder().build(req, 2, 0, 0, 0, [], -1, b"s" * 64, b"f" * 128)
    assert out[44:108] == b"s" * 64 and out[108:236] == b"f" * 128


# ------------------------------------------------------------------ config checks


@pytest.mark.parametrize(("where", "line", "reason"), [
    ("global", 'next-server = "224.0.0.1"', "global.next-server: value '224.0.0.1'"),
    ("global", 'next-server = "nope"', "global.next-server: value 'nope'"),
    ("subnet", "server-hostname = '" + "h" * 65 + "'", "subnet4[0].server-hostname"),
    ("subnet", "boot-file-name = 7", "subnet4[0].boot-file-name: value 7"),
    ("reservation", "boot-file-name = '" + "f" * 129 + "'",
     "subnet4[0].reservations[0].boot-file-name"),
])
def test_bad_fixed_fields_are_refused_with_key_and_value(where, line, reason):
    kw = {"global": {"global_": line + "\n"}, "subnet": {"subnet": line + "\n"},
          "reservation": {"reservation": line + "\n"}}[where]
    with pytest.raises(ConfigError) as e:
        _config(**kw)
    assert reason in str(e.value)


# ------------------------------------------------------------------ with the engine's classes

P5B = """
[[client-classes]]
name = "iPXE"
test = "option[77].hex == 'iPXE'"
boot-file-name = "http://boot.isp.example/menu.ipxe"
[[client-classes]]
name = "PXE_BIOS"
test = "option[93].hex == 0x0000 and not member('iPXE')"
next-server = "198.18.30.69"
boot-file-name = "undionly.kpxe"
[[client-classes]]
name = "PXE_UEFI64"
test = "(option[93].hex == 0x0007 or option[93].hex == 0x0009) and not member('iPXE')"
next-server = "198.18.30.69"
boot-file-name = "ipxe.efi"
"""


def _opt(code: int, value: bytes) -> bytes:
    return bytes((code, len(value))) + value


@pytest.mark.parametrize(("extra", "want"), [
    # the reference's P5b, as Kea 2.2 answered
    (_opt(60, b"PXEClient:Arch:00000:UNDI:002001") + _opt(93, b"\0\0"),
     (ip("198.18.30.69"), b"", b"undionly.kpxe")),
    (_opt(60, b"PXEClient:Arch:00007:UNDI:003016") + _opt(93, b"\0\x07"),
     (ip("198.18.30.69"), b"", b"ipxe.efi")),
    (_opt(77, b"iPXE") + _opt(93, b"\0\x07"), (0, b"", b"http://boot.isp.example/menu.ipxe")),
    (b"", (0, b"", b"")),
])
def test_pxe_boot_by_architecture_and_user_class(extra, want):
    net = _net(_config(classes=P5B))
    d, r = net.exchange(build_request(1, xid=11, chaddr=mac(11), extra=extra))
    assert r is not None and r.mtype == OFFER
    assert _header(d.reply) == want
    d, r = net.exchange(build_request(REQUEST, xid=12, chaddr=mac(11), extra=extra,
                                      requested_ip=r.yiaddr, server_id=SERVER_IP))
    assert r is not None and r.mtype == ACK
    assert _header(d.reply) == want


def test_vendor_class_named_class_gives_the_cable_modem_its_config_file():
    # P2's modem class: VENDOR_CLASS_docsis3.0, assigned from option 60, no test
    net = _net(_config(classes='\n[[client-classes]]\nname = "VENDOR_CLASS_docsis3.0"\n'
                               'next-server = "198.18.20.69"\nboot-file-name = "cm-100M.cfg"\n'))
    d, r = net.exchange(build_request(1, xid=13, chaddr=mac(13), extra=_opt(60, b"docsis3.0")))
    assert r is not None and _header(d.reply) == (ip("198.18.20.69"), b"", b"cm-100M.cfg")
    d, r = net.exchange(build_request(1, xid=14, chaddr=mac(14), extra=_opt(60, b"docsis3.1")))
    assert r is not None and _header(d.reply) == (0, b"", b"")


def test_reserved_client_class_and_subnet_through_the_engine():
    cfg = _config(subnet=_fields("s", ns="198.18.2.5", host="subnet-srv"),
                  reservation='client-classes = ["C1"]\n' + _fields("r", host="res-srv"),
                  classes=_class("C1", ns="198.18.2.2", file="class1.cfg"))
    net = _net(cfg)
    c = Client(net, RES_MAC)
    assert c.dora().mtype == ACK
    assert _header(c.last_decision.reply) == _want("198.18.2.2", "res-srv", "class1.cfg")
