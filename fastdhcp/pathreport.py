"""What the compiled packet path (``fastdhcp._packetpath``) reports to the service.

The path never calls back up into the service: it counts every event in
:class:`fastdhcp.metrics.Metrics` itself, and records the rare ones that deserve a log line
(a malformed datagram, a drop (a BOOTREPLY is the engine's ``bootreply``),
a failed send, an unexpected exception, and with debug logging
every decision) as :class:`PathEvent` in a :class:`PathReport`. The service drains the report
after each burst it reads and each batch it sends, and writes the log lines
(``fastdhcp.service.report_log.ReportLog.drain``).

A report holds at most :data:`MAX_EVENTS` events between drains; past that they are only
counted (``lost``): the counters are exact whatever the rate, the log lines are rate-limited
anyway, and a flood of malformed datagrams must not grow a list without bound.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["MAX_EVENTS", "Event", "PathEvent", "PathReport"]

#: Events kept between two drains: a burst is at most 64 datagrams (READ_BATCH), so 256 keeps
#: every event of several bursts and bounds a flood's.
MAX_EVENTS = 256


class Event(enum.Enum):
    """What happened to one datagram or one send (the log line the service writes)."""

    MALFORMED = "malformed"          #: not valid DHCPv4 (``reason``)
    GUARD_DROP = "guard-drop"        #: refused by the edge guard (``reason``: the limit)
    ENGINE_DROP = "engine-drop"      #: refused or ignored by the engine (``reason``)
    DECISION = "decision"            #: debug logging: what the engine decided (``reason``)
    INTERNAL_ERROR = "internal"      #: an unexpected exception (``error``)
    RECV_FAILED = "recv-failed"      #: the receive call failed (``error``)
    SEND_FAILED = "send-failed"      #: one reply could not be sent (``errno``)
    GSO_OFF = "gso-off"              #: the kernel refused UDP GSO on a socket (``errno``)


@dataclass(frozen=True, slots=True)
class PathEvent:
    """One reported event. ``where`` is the endpoint's name (interface or address); the
    message fields are those of the datagram when there was one (0 / empty otherwise)."""

    event: Event
    where: str
    ip: int = 0                      #: the sender (received) or the destination (sent)
    port: int = 0
    message_type: int = 0
    op: int = 0
    xid: int = 0
    chaddr: bytes = b""
    giaddr: int = 0
    reason: str = ""
    error: BaseException | None = None
    errno: int = 0


class PathReport:
    """The events of the packet path since the last :meth:`take`, at most MAX_EVENTS."""

    __slots__ = ("events", "lost")

    def __init__(self) -> None:
        self.events: list[PathEvent] = []
        self.lost = 0

    def add(self, event: PathEvent) -> None:
        """Record ``event``, or count it as lost when the report is full."""
        if len(self.events) < MAX_EVENTS:
            self.events.append(event)
        else:
            self.lost += 1

    def take(self) -> tuple[list[PathEvent], int]:
        """The events recorded and how many were lost since the last take; empties both."""
        events, lost = self.events, self.lost
        self.events = []
        self.lost = 0
        return events, lost
