"""The client to a peer's HTTP control socket (kea-ctrl-agent, Kea's HA listener or another
fastdhcp), over aiohttp.

As Kea (kea-ha.md §1): ``POST /`` with ``Content-Type: application/json``, ``Host`` without the
port, persistent connections, and **two** of them: one for heartbeats, one for everything else
(sync pages, lease updates), so that a long sync or a burst of updates never delays a heartbeat
past ``max-response-delay``. The answer is a one-element JSON list (a bare map is accepted: the
agent's HTTP 400). Basic auth and TLS when configured.

Every failure (refused, reset, timeout, HTTP error without a JSON body, bad JSON) is a
:class:`~fastdhcp.ha.messages.PeerError`: the state machine treats them all as an unreachable
partner, as Kea does.
"""

from __future__ import annotations

import base64
import enum
import json
import ssl
from typing import Any

import aiohttp

from fastdhcp.ha.config import PeerConfig
from fastdhcp.ha.messages import PeerAnswer, PeerError, parse_answer

__all__ = ["COMMANDS_CONNECTIONS", "Channel", "PeerClient", "REQUEST_TIMEOUT"]

#: Seconds a request may take (Kea's HTTP client default, 10 s [INFER]); a sync page gets the
#: sync-timeout instead.
REQUEST_TIMEOUT = 10.0
#: Connections for commands (updates, sync pages) to one peer: also how many batched updates
#: are in flight at once (fastdhcp.ha.coalesce merges what waits behind them).
COMMANDS_CONNECTIONS = 4


class Channel(enum.Enum):
    """Which of the two connections a request uses."""

    HEARTBEAT = "heartbeat"
    COMMANDS = "commands"


def _ssl_context(peer: PeerConfig) -> ssl.SSLContext | None:
    if not peer.url.startswith("https:"):
        return None
    ctx = ssl.create_default_context(cafile=peer.trust_anchor)
    if peer.cert_file and peer.key_file:
        ctx.load_cert_chain(peer.cert_file, peer.key_file)
    return ctx


def _auth(peer: PeerConfig) -> dict[str, str]:
    """The Authorization header (RFC 7617), built here: aiohttp 3.14 deprecates BasicAuth."""
    if peer.basic_auth_user is None or peer.basic_auth_password_file is None:
        return {}
    with open(peer.basic_auth_password_file, encoding="utf-8") as f:
        password = f.readline().rstrip("\r\n")
    token = base64.b64encode(f"{peer.basic_auth_user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class PeerClient:
    """Commands to one peer. ``await start()`` before use, ``await close()`` after (both on
    the loop that sends). Credentials and TLS files are read at start."""

    def __init__(self, peer: PeerConfig, *,
                 commands_connections: int = COMMANDS_CONNECTIONS) -> None:
        self.peer = peer
        self._commands_connections = commands_connections
        self._sessions: dict[Channel, aiohttp.ClientSession] = {}
        #: the URL with the path "/" (Kea POSTs to the root)
        self.url = peer.url if peer.url.endswith("/") else peer.url + "/"

    async def start(self) -> None:
        """Open the two connection pools (connections are made on first use)."""
        ctx = _ssl_context(self.peer)
        auth = _auth(self.peer)
        for channel, limit in ((Channel.HEARTBEAT, 1),
                               (Channel.COMMANDS, self._commands_connections)):
            connector = aiohttp.TCPConnector(limit=limit, ssl=ctx if ctx is not None else False,
                                             keepalive_timeout=60.0)
            self._sessions[channel] = aiohttp.ClientSession(
                connector=connector,
                # Kea sends only Host, Content-Length and Content-Type (kea-ha.md §1)
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                headers={"Host": self.peer.host, **auth},
            )

    async def close(self) -> None:
        """Close the connections."""
        sessions, self._sessions = self._sessions, {}
        for s in sessions.values():
            await s.close()

    async def send(self, request: dict[str, Any], channel: Channel = Channel.COMMANDS,
                   timeout: float = REQUEST_TIMEOUT) -> PeerAnswer:
        """POST one command; its answer (PeerError on any failure to get one)."""
        session = self._sessions.get(channel)
        if session is None:
            raise PeerError("the peer client is not started")
        body = json.dumps(request, separators=(",", ":")).encode()
        try:
            async with session.post(self.url, data=body,
                                    headers={"Content-Type": "application/json"},
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError:
            raise PeerError(f"{request.get('command')}: no answer from {self.url} within "
                            f"{timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PeerError(f"{request.get('command')}: {self.url}: "
                            f"{type(exc).__name__}: {exc}") from None
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise PeerError(f"{request.get('command')}: HTTP {status} from {self.url} without "
                            "a JSON body") from None
        return parse_answer(value)

    async def heartbeat(self, request: dict[str, Any], timeout: float) -> PeerAnswer:
        """A heartbeat on its own connection."""
        return await self.send(request, Channel.HEARTBEAT, timeout)
