"""The move from Kea with a real client (issue 18): ISC dhclient gets its lease from a real Kea
2.2 on a broadcast link, Kea stops, ``fastdhcp import-kea`` takes its config and lease file,
``fastdhcp serve`` starts on the result, and dhclient's own next renewal (a unicast RENEW at
T1) is ACKed with the same address, routers, name servers and domain.

A private two-namespace link (not the session lab: the lab's server namespace runs the session's
server on port 67, and Kea and fastdhcp here take turns on it). The relayed and shared-network
half of the round trip, and the way back, are tests/test_kea_migrate_roundtrip.py.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from .clients import Dhclient
from .netns import Cleanup, Namespace, create_namespace, create_veth, stop_process
from .servers import REPO, FastdhcpServer

SUBNET = "198.18.40.0/24"
SERVER = "198.18.40.1"
PERF_SERVER, PERF_RELAY = "198.18.41.1", "198.18.41.2"
#: perfdhcp's clients: MACs it picks from at random for each exchange (-M).
PERF_MACS = [f"02:41:00:00:00:{i:02x}" for i in range(1, 21)]


def _kea_config(ifname: str, perf_ifname: str, tmp: Path) -> dict:
    return {"Dhcp4": {
        "interfaces-config": {"interfaces": [ifname, perf_ifname]},
        "lease-database": {"type": "memfile", "persist": True,
                           "name": str(tmp / "kea-leases4.csv"), "lfc-interval": 0},
        # T1 of 4 s: dhclient renews on its own within seconds; T2 far away, so a RENEW.
        "valid-lifetime": 600, "renew-timer": 4, "rebind-timer": 500,
        "option-data": [{"name": "domain-name-servers", "data": "198.18.40.53, 198.18.40.54"},
                        {"name": "domain-name", "data": "moved.example"}],
        "subnet4": [{"id": 40, "subnet": SUBNET, "interface": ifname,
                     "pools": [{"pool": "198.18.40.100 - 198.18.40.150"}],
                     "option-data": [{"name": "routers", "data": SERVER}]},
                    {"id": 41, "subnet": "198.18.41.0/24", "relay": {"ip-addresses": [PERF_RELAY]},
                     "pools": [{"pool": "198.18.41.100 - 198.18.41.199"}],
                     "option-data": [{"name": "routers", "data": PERF_SERVER}]}],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                     "output_options": [{"output": str(tmp / "kea.log")}]}],
    }}


def _perfdhcp(perf: Namespace, macs: Path) -> None:
    """60 DORAs at 30/s through a relay address (giaddr 198.18.41.2), MACs from ``macs``."""
    perf.run(["perfdhcp", "-4", "-g", "single", "-l", PERF_RELAY, "-r", "30", "-n", "60",
              "-M", str(macs), "-W", "1000000", "-d", "1", PERF_SERVER], check=False,
             timeout=60)


def _kea_leases(path: Path) -> dict[str, tuple[str, int]]:
    """hw-address -> (address, expiry) of the live leases in Kea's memfile (last row wins)."""
    latest: dict[str, dict[str, str]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            latest[row["address"]] = row
    return {r["hwaddr"].lower(): (ip, int(r["expire"])) for ip, r in latest.items()
            if r["valid_lifetime"] != "0"}


def _fastdhcp_leases(db: Path) -> dict[str, tuple[str, int]]:
    cp = subprocess.run([sys.executable, "-m", "fastdhcp", "leases", "--db", str(db), "--json",
                         "list"], capture_output=True, text=True, cwd=REPO, timeout=60,
                        check=True)
    views = [FastdhcpServer._view(rec) for rec in json.loads(cp.stdout)]
    return {v.hw_address: (v.ip, v.expires) for v in views}


def test_dhclient_keeps_its_address_across_the_move(interop_ready: None,
                                                    tmp_path: Path) -> None:
    tag = f"{os.getpid() % 10_000_000}"
    cleanup = Cleanup()
    procs: list[subprocess.Popen] = []
    client: Dhclient | None = None
    try:
        srv = create_namespace(f"kmig{tag}-srv", cleanup)
        cli = create_namespace(f"kmig{tag}-cli", cleanup)
        perf = create_namespace(f"kmig{tag}-perf", cleanup)
        srv_if, cli_if = create_veth(srv, f"km{tag}s", f"{SERVER}/24",
                                     cli, f"km{tag}c", None, cleanup)
        srv_perf, _ = create_veth(srv, f"km{tag}t", f"{PERF_SERVER}/24",
                                  perf, f"km{tag}p", f"{PERF_RELAY}/24", cleanup)
        macs = tmp_path / "macs.txt"
        macs.write_text("\n".join(PERF_MACS) + "\n")
        kdir = tmp_path / "kea"
        kdir.mkdir()
        kconf = kdir / "kea-dhcp4.json"
        kconf.write_text(json.dumps(_kea_config(srv_if.ifname, srv_perf.ifname, kdir), indent=1))
        env = dict(os.environ, KEA_PIDFILE_DIR=str(kdir), KEA_LOCKFILE_DIR=str(kdir))
        with open(kdir / "kea.stderr", "ab") as err:
            kea = srv.popen(["kea-dhcp4", "-c", str(kconf)], stdout=err, stderr=err, env=env)
        procs.append(kea)

        client = Dhclient(cli, cli_if.ifname, tmp_path / "dhclient")
        bound = client.obtain()
        assert bound.ip.startswith("198.18.40."), client.report()
        _perfdhcp(perf, macs)
        assert stop_process(kea) == 0, (kdir / "kea.log").read_text(errors="replace")

        toml = tmp_path / "fastdhcp.toml"
        cp = subprocess.run([sys.executable, "-m", "fastdhcp", "import-kea", "--config",
                             str(kconf), "--leases", str(kdir / "kea-leases4.csv"), "--out",
                             str(toml), "--db", str(tmp_path / "db")],
                            capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
        assert cp.returncode == 0 and "unsupported" not in cp.stderr, cp.stderr
        kea_leases = _kea_leases(kdir / "kea-leases4.csv")
        assert len(kea_leases) > 10, kea_leases
        assert bound.ip in {ip for ip, _ in kea_leases.values()}, kea_leases
        assert f"{len(kea_leases)} leases imported" in cp.stdout, cp.stdout

        fenv = dict(os.environ, PYTHONUNBUFFERED="1",
                    PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(tmp_path / "fastdhcp.stderr", "ab") as err:
            fd = srv.popen([sys.executable, "-m", "fastdhcp", "serve", "--config", str(toml)],
                           stdout=err, stderr=err, env=fenv)
        procs.append(fd)
        renewed = client.renew()
        log = (tmp_path / "fastdhcp.stderr").read_text(errors="replace")
        assert renewed.ip == bound.ip, f"{client.report()}\n{log}"
        assert (renewed.routers, renewed.dns, renewed.domain) == \
            (bound.routers, bound.dns, bound.domain), client.report()
        # perfdhcp's clients come back (DORA again, from the same MACs): each one Kea knew is
        # ACKed the address Kea gave it (a MAC perfdhcp first picks now is a new client)
        _perfdhcp(perf, macs)
        after = _fastdhcp_leases(tmp_path / "db")
        assert {mac: after[mac][0] for mac in kea_leases} == \
            {mac: ip for mac, (ip, _) in kea_leases.items()}
        assert set(after) - set(kea_leases) <= set(PERF_MACS)
        # ...and the ACKs were fastdhcp's: most of the returning leases were extended by it
        extended = [m for m in kea_leases if after[m][1] > kea_leases[m][1]]
        assert len(extended) >= 10, (after, kea_leases)
        assert fd.poll() is None, log
        assert stop_process(fd) == 0, log
    finally:
        if client is not None:
            client.close()
        for proc in procs:
            if proc.poll() is None:
                stop_process(proc)
        errors = cleanup.close()
    assert not errors, errors
