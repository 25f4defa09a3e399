"""systemd's notify protocol (``sd_notify(3)``): READY, RELOADING, STOPPING and STATUS lines."""

from __future__ import annotations

import os
import socket

__all__ = ["sd_notify"]


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd's ``$NOTIFY_SOCKET``; False if none.

    The protocol is one datagram on an AF_UNIX socket; an address starting with ``@`` is in the
    abstract namespace. The send never blocks: it runs on the event loop, and a receiver that
    stops reading (its queue holds ~10 datagrams) would otherwise stop the server on its next
    status line; such a message is dropped instead.
    """
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    addr = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.connect(addr)
            s.send(state.encode())
        return True
    except OSError:
        return False
