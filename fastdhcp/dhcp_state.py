"""Whether the DHCP service answers, and who switched it off (Kea's ``dhcp-disable`` /
``dhcp-enable``, reference: kea-control-api.md C13).

Origins are independent, as in Kea: the user (an operator's ``dhcp-disable``) and the HA
partner (the HA hook disables a server while it syncs) each hold the service off on their own,
and it serves again only once every origin that disabled it has enabled it again. A disable
with ``max-period`` ends by itself after that many seconds, for that origin only (a safety net:
a partner that dies while it holds the service off does not leave it off for ever).

Sans-IO like the engine: the clock is a parameter and timers are asked for, never slept. The
service (``fastdhcp.service.Server``) arms one loop timer per origin with a deadline and calls
:meth:`DhcpServiceState.expire` when it fires; while :attr:`~DhcpServiceState.enabled` is
False it reads and discards every DHCP datagram (counted in ``Metrics.disabled_discards``, not
as a drop: Kea does not count them in ``pkt4-receive-drop`` either).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DhcpServiceState", "Origin", "OriginHold"]


class Origin(enum.Enum):
    """Who disabled the service (``origin`` of dhcp-disable / dhcp-enable, Kea's names)."""

    USER = "user"
    HA_PARTNER = "ha-partner"


@dataclass(frozen=True, slots=True)
class OriginHold:
    """One origin holding the service off: until ``until`` (monotonic seconds), or until it
    enables it again (``until`` None)."""

    origin: Origin
    until: float | None


class DhcpServiceState:
    """The service's enabled state: which origins hold it disabled, and until when."""

    __slots__ = ("_holds",)

    def __init__(self) -> None:
        self._holds: dict[Origin, OriginHold] = {}

    @property
    def enabled(self) -> bool:
        """True when no origin holds the service disabled."""
        return not self._holds

    def disable(self, origin: Origin, max_period: float | None, now: float) -> None:
        """``origin`` disables the service, for ``max_period`` seconds or until it enables it.
        A second disable from the same origin replaces the first (its period, or none)."""
        until = None if max_period is None else now + max_period
        self._holds[origin] = OriginHold(origin, until)

    def enable(self, origin: Origin) -> bool:
        """``origin`` lets go (whether it held the service or not); True if the service is
        enabled now (no other origin still holds it)."""
        self._holds.pop(origin, None)
        return self.enabled

    def expire(self, origin: Origin, now: float) -> bool:
        """``origin``'s max-period timer fired: drop its hold if its deadline has passed (a
        later disable may have moved or removed it). True if the hold was dropped."""
        hold = self._holds.get(origin)
        if hold is None or hold.until is None or hold.until > now:
            return False
        del self._holds[origin]
        return True

    def holds(self) -> list[OriginHold]:
        """The origins holding the service off, in :class:`Origin` order."""
        return [self._holds[o] for o in Origin if o in self._holds]

    def deadline(self, origin: Origin) -> float | None:
        """When ``origin``'s hold ends by itself (monotonic seconds), or None."""
        hold = self._holds.get(origin)
        return None if hold is None else hold.until
