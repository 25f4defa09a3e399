"""A relay agent's sockets, driven from a test: run inside the relay namespace as a script
(``python3 relay_probe.py``; stdlib only, so it starts in a few tens of milliseconds).

One JSON object per line on standard input::

    {"sends": [{"src": "198.19.80.1", "dst": "198.18.60.1", "data": "<hex>"}, ...],
     "wait": 2.0}

Each datagram goes from ``src``:67 (a relay address of the namespace; giaddr in the message)
to ``dst``:67. The probe then collects, for ``wait`` seconds at most, the first reply to each
send: a datagram from ``dst`` with the same xid, arriving at ``src``:67 (where a server
answers a relay, RFC 2131 4.1). One line comes back: ``{"replies": [hex or null, ...]}`` in
the order of the sends. ``wait`` 0 sends and answers at once (RELEASE has no reply).
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time

PORT = 67


def main() -> None:
    socks: dict[str, socket.socket] = {}
    for line in sys.stdin:
        req = json.loads(line)
        sends = req["sends"]
        for s in sends:
            if s["src"] not in socks:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((s["src"], PORT))
                socks[s["src"]] = sock
        for sock in socks.values():  # drop late answers of an earlier request
            sock.setblocking(False)
            try:
                while sock.recv(4096):
                    pass
            except BlockingIOError:
                pass
        replies: list[str | None] = [None] * len(sends)
        want = {}
        for i, s in enumerate(sends):
            data = bytes.fromhex(s["data"])
            want[(s["src"], s["dst"], data[4:8])] = i
            socks[s["src"]].sendto(data, (s["dst"], PORT))
        deadline = time.monotonic() + float(req.get("wait", 2.0))
        by_fd = {sock.fileno(): (src, sock) for src, sock in socks.items()}
        while want and time.monotonic() < deadline:
            ready, _, _ = select.select(list(by_fd), [], [], max(0.0, deadline - time.monotonic()))
            for fd in ready:
                src, sock = by_fd[fd]
                try:
                    data, (peer, _port) = sock.recvfrom(4096)
                except BlockingIOError:
                    continue
                i = want.pop((src, peer, data[4:8]), None)
                if i is not None and data[0] == 2:
                    replies[i] = data.hex()
        sys.stdout.write(json.dumps({"replies": replies}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
