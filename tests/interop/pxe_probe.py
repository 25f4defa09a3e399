"""A PXE-style client on a broadcast link, with scapy: run inside the client namespace as a
script (``python3 pxe_probe.py IFACE JSON``). JSON is a list of clients
``{"mac": "02:..", "options": "<hex of option TLVs>"}``; for each, a broadcast DISCOVER with
those options (60, 93, 77 ... as a PXE ROM or iPXE sends them), and on an OFFER the REQUEST for
the offered address (options 50, 54 and the same ones). Prints one JSON line:
``[{"offer": hex or null, "ack": hex or null}, ...]``.
"""

from __future__ import annotations

import json
import sys

MAGIC = b"\x63\x82\x53\x63"


def _options(payload: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 240
    while i < len(payload) and payload[i] != 255:
        if payload[i] == 0:
            i += 1
            continue
        out[payload[i]] = payload[i + 2:i + 2 + payload[i + 1]]
        i += 2 + payload[i + 1]
    return out


def main() -> None:
    from scapy.all import conf, srp1
    from scapy.layers.dhcp import BOOTP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    conf.checkIPaddr = False  # the answer comes from the server's address, not broadcast's
    iface, clients = sys.argv[1], json.loads(sys.argv[2])
    out = []
    for n, c in enumerate(clients):
        mac = bytes.fromhex(c["mac"].replace(":", ""))
        extra = bytes.fromhex(c["options"])

        def ask(kind: int, more: bytes, xid: int, mac: bytes = mac,
                extra: bytes = extra) -> bytes | None:
            frame = (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
                     / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
                     / BOOTP(op=1, xid=xid, flags=0x8000, chaddr=mac.ljust(16, b"\0"),
                             options=MAGIC + bytes((53, 1, kind)) + more + extra + b"\xff"))
            ans = srp1(frame, iface=iface, timeout=4, retry=2, verbose=False)
            if ans is None or BOOTP not in ans:
                return None
            return bytes(ans[BOOTP])

        offer = ask(1, b"", 0x5E100000 + 2 * n)
        ack = None
        if offer is not None and _options(offer).get(53) == b"\x02":
            sid = _options(offer).get(54, b"\0\0\0\0")
            ack = ask(3, bytes((50, 4)) + offer[16:20] + bytes((54, 4)) + sid, 0x5E100001 + 2 * n)
        out.append({"offer": offer.hex() if offer else None, "ack": ack.hex() if ack else None})
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
