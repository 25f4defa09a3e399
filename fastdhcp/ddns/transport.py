"""Sending one update message: UDP, TCP when the answer comes back truncated (RFC 2136 section
6.1 / RFC 1035 4.2.1), TSIG checked on the answer (RFC 8945 section 5.3, by dnspython), every
way it can fail mapped to one :class:`Delivery`. Blocking; the worker's thread calls it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.query
import dns.tsig
import dns.update

from fastdhcp.ddns.config import DnsServer

__all__ = ["Delivery", "Sent", "send"]


class Delivery(enum.Enum):
    """How one exchange went."""

    ANSWERED = "answered"  #: an answer came back, parsed and (if signed) verified
    TIMEOUT = "timeout"  #: no answer within the timeout (retry, next server)
    UNREACHABLE = "unreachable"  #: could not send or connect (retry, next server)
    TSIG_REFUSED = "tsig-refused"  #: the server refused our key or signature (RFC 8945 5.2)
    BAD_ANSWER = "bad-answer"  #: the answer did not parse or verify


@dataclass(frozen=True, slots=True)
class Sent:
    """The result of :func:`send`."""

    delivery: Delivery
    """How the exchange went."""
    rcode: int = 0
    """The answer's RCODE (when :attr:`delivery` is ANSWERED)."""
    tcp: bool = False
    """The answer came over TCP (the UDP one was truncated)."""
    detail: str = ""
    """The exception text, for logs."""


def send(msg: dns.update.UpdateMessage, server: DnsServer, timeout: float) -> Sent:
    """Send ``msg`` to ``server`` and wait at most ``timeout`` seconds per transport."""
    try:
        answer, tcp = dns.query.udp_with_fallback(msg, server.ip_address, timeout=timeout,
                                                  port=server.port)
    except dns.exception.Timeout as exc:
        return Sent(Delivery.TIMEOUT, detail=str(exc) or "timed out")
    except dns.tsig.PeerError as exc:  # BADKEY, BADSIG, BADTIME, BADTRUNC from the server
        return Sent(Delivery.TSIG_REFUSED, detail=f"{type(exc).__name__}: {exc}")
    except OSError as exc:  # ECONNREFUSED (ICMP port unreachable), EHOSTUNREACH, ...
        return Sent(Delivery.UNREACHABLE, detail=str(exc))
    except (dns.exception.DNSException, ValueError, EOFError) as exc:
        return Sent(Delivery.BAD_ANSWER, detail=f"{type(exc).__name__}: {exc}")
    assert isinstance(answer, dns.message.Message)
    return Sent(Delivery.ANSWERED, answer.rcode(), tcp)
