"""Client classes with real clients on a broadcast link (issue 16), Kea 2.2 as the oracle.

::

    csrv [s0] 198.18.70.1/24 ---- veth ---- [c0] ccli (unconfigured: the clients configure it)

One configuration (Kea JSON; fastdhcp runs what ``fastdhcp import-kea`` makes of it): the
reference's PXE classes (P5b: option 93 architecture, iPXE by user class 77) giving next-server
and boot-file-name, and an STB class on option 60 guarding its own pool (the other pool guarded
by its negation). Each test runs against Kea first (the check that the test is right) and then
against fastdhcp:

- a PXE-style exchange sent by scapy (options 60 ``PXEClient:Arch:00007...``, 93, 77), DISCOVER
  and REQUEST by broadcast: the OFFER and the ACK carry the class's siaddr and file;
- ISC dhclient with ``send vendor-class-identifier "STB-..."`` binds an address of the STB
  pool; without the line it binds one of the open pool.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fastdhcp.kea.config_import import convert

from .classify_lab import Reply, log_tail, opt, start_fastdhcp, start_kea, wait_control
from .clients import Dhclient
from .netns import Cleanup, Namespace, create_namespace, create_veth

SERVER_IP = "198.18.70.1"
TFTP = "198.18.30.69"
STB_POOL = ("198.18.70.10", "198.18.70.19")
OPEN_POOL = ("198.18.70.100", "198.18.70.199")
#: A UEFI x64 PXE ROM: option 60 as such ROMs send it, 93 = 7 (EFI x64, RFC 4578), 55.
PXE = (opt(60, b"PXEClient:Arch:00007:UNDI:003016") + opt(93, b"\0\x07")
       + opt(55, bytes((1, 3, 6, 43, 60, 66, 67))))
#: The same machine once iPXE runs: user class 77 = "iPXE".
IPXE = PXE + opt(77, b"iPXE")


def classes(ifname: str) -> dict[str, Any]:
    """The ``Dhcp4`` body both servers serve (interface names are the lab's)."""
    return {
        "valid-lifetime": 600,
        "client-classes": [
            {"name": "iPXE", "test": "option[77].hex == 'iPXE'",
             "boot-file-name": "http://boot.isp.example/menu.ipxe"},
            {"name": "PXE_UEFI64",
             "test": "(option[93].hex == 0x0007 or option[93].hex == 0x0009) "
                     "and not member('iPXE')",
             "next-server": TFTP, "boot-file-name": "ipxe.efi"},
            {"name": "STB", "test": "substring(option[60].text,0,4) == 'STB-'"},
            # Kea 2.2 gives an unguarded pool to anybody, even an STB once its allocator has
            # moved past the STB pool (reference section 3): make the pools exclusive.
            {"name": "NOT_STB", "test": "not member('STB')"},
        ],
        "subnet4": [{"id": 70, "subnet": "198.18.70.0/24", "interface": ifname,
                     "pools": [{"pool": " - ".join(STB_POOL), "client-class": "STB"},
                               {"pool": " - ".join(OPEN_POOL), "client-class": "NOT_STB"}],
                     "option-data": [{"name": "routers", "data": SERVER_IP}]}],
    }


@dataclass
class ClientLab:
    """The two namespaces and one server (Kea or fastdhcp) in ``csrv``."""

    server: str
    workdir: Path
    srv: Namespace
    cli: Namespace
    srv_if: str
    cli_if: str
    cleanup: Cleanup

    def log(self) -> str:
        return log_tail(self.workdir / f"{self.server}.log", 40)


def _requirements() -> list[str]:
    out = [] if os.geteuid() == 0 else ["not root (namespaces, port 67, raw sockets)"]
    out += [f"{b} not found" for b in ("kea-dhcp4", "dhclient", "ip", "ethtool")
            if shutil.which(b) is None]
    return out


@pytest.fixture(scope="module", params=["kea", "fastdhcp"])
def lab(request: pytest.FixtureRequest) -> Iterator[ClientLab]:
    problems = _requirements()
    if problems:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("; ".join(problems), pytrace=False)
        pytest.skip("; ".join(problems))
    tag = str(os.getpid())
    work = Path(tempfile.mkdtemp(prefix=f"fastdhcp-classcli-{request.param}-"))
    cleanup = Cleanup()
    try:
        srv = create_namespace(f"fd{tag}-csrv", cleanup)
        cli = create_namespace(f"fd{tag}-ccli", cleanup)
        s_if, c_if = f"f{tag}cs", f"f{tag}cc"
        create_veth(srv, s_if, f"{SERVER_IP}/24", cli, c_if, None, cleanup)
        d4 = classes(s_if)
        sock = work / f"{request.param}.sock"
        if request.param == "kea":
            proc = start_kea(srv, work, {"Dhcp4": {
                "interfaces-config": {"interfaces": [s_if], "dhcp-socket-type": "raw"},
                "control-socket": {"socket-type": "unix", "socket-name": str(sock)},
                "lease-database": {"type": "memfile", "persist": False},
                "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                             "output_options": [{"output": "stderr"}]}],
                **d4}}, cleanup)
        else:
            result = convert({"Dhcp4": d4})
            assert not result.unsupported, [f.line() for f in result.unsupported]
            doc = dict(result.document)
            doc["server"] = {"interfaces": [s_if], "port": 67, "client-port": 68}
            doc["lease-database"] = {"path": str(work / "lmdb"), "sync": False}
            doc["control-sockets"] = [{"socket-type": "unix", "socket-name": str(sock)}]
            proc = start_fastdhcp(srv, work, doc, cleanup)
        wait_control(proc, sock, work / f"{request.param}.log")
        yield ClientLab(request.param, work, srv, cli, s_if, c_if, cleanup)
    finally:
        errors = cleanup.close()
        if not os.environ.get("FASTDHCP_INTEROP_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        assert not errors, errors


def _in(ip: str, pool: tuple[str, str]) -> bool:
    lo, hi = (ipaddress.IPv4Address(x) for x in pool)
    return lo <= ipaddress.IPv4Address(ip) <= hi


def test_pxe_exchange_gets_next_server_and_boot_file(lab: ClientLab) -> None:
    clients = [{"mac": "02:fb:00:00:00:01", "options": PXE.hex()},
               {"mac": "02:fb:00:00:00:02", "options": IPXE.hex()},
               {"mac": "02:fb:00:00:00:03", "options": opt(55, bytes((1, 3))).hex()}]
    probe = Path(__file__).with_name("pxe_probe.py")
    cp = lab.cli.run([sys.executable, str(probe), lab.cli_if, json.dumps(clients)], timeout=90)
    got = json.loads(cp.stdout)
    seen = []
    for step in ("offer", "ack"):
        replies = [Reply.parse(bytes.fromhex(r[step])) if r[step] else None for r in got]
        assert all(replies), (step, got, lab.log())
        pxe, ipxe, plain = replies
        assert pxe is not None and ipxe is not None and plain is not None
        seen.append((pxe.kind, ipxe.kind, plain.kind))
        # the ROM: TFTP server and the iPXE binary; then iPXE: the HTTP menu; others: nothing
        assert (pxe.siaddr, pxe.file) == (TFTP, "ipxe.efi"), (step, pxe, lab.log())
        assert (ipxe.siaddr, ipxe.file) == ("0.0.0.0", "http://boot.isp.example/menu.ipxe"), \
            (step, ipxe, lab.log())
        assert (plain.siaddr, plain.file) == ("0.0.0.0", ""), (step, plain, lab.log())
        assert all(_in(r.yiaddr, OPEN_POOL) for r in replies), (step, replies)
    assert seen == [(2, 2, 2), (5, 5, 5)]


@pytest.mark.parametrize("vendor,pool", [("STB-Amino-A140", STB_POOL), (None, OPEN_POOL)],
                         ids=["stb", "no-vendor-class"])
def test_dhclient_vendor_class_gets_its_pool(lab: ClientLab, vendor: str | None,
                                             pool: tuple[str, str]) -> None:
    client = Dhclient(lab.cli, lab.cli_if, lab.workdir / f"dhclient-{vendor or 'none'}")
    if vendor is not None:
        with open(client.conf, "a") as f:
            f.write(f'send vendor-class-identifier "{vendor}";\n')
    mac = "02:fb:00:00:01:01" if vendor else "02:fb:00:00:01:02"
    for argv in (["ip", "link", "set", lab.cli_if, "down"],
                 ["ip", "link", "set", lab.cli_if, "address", mac],
                 ["ip", "-4", "addr", "flush", "dev", lab.cli_if],
                 ["ip", "link", "set", lab.cli_if, "up"]):
        lab.cli.run(argv)
    try:
        ev = client.obtain()
        assert _in(ev.ip, pool), (f"{lab.server} gave {ev.ip}, not one of {pool}",
                                  client.report(), lab.log())
        client.release_lease()
    finally:
        client.close()
