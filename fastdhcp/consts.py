"""The DHCP closed sets as Python enums, mirrored from ``ext/fastdhcp/_consts.pxd``.

The compiled modules use the C enums of ``_consts.pxd``; Python code uses these. The two are
one definition read twice: ``tests/test_consts.py`` parses the ``.pxd`` and checks every value
here against it, so a change to one that misses the other fails the suite.
"""

from __future__ import annotations

import enum

__all__ = ["MessageType", "Outcome"]


class MessageType(enum.IntEnum):
    """DHCP message types, option 53 (RFC 2132 9.6; RFC 4388 and RFC 6926 for the
    leasequery ones)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8
    LEASEQUERY = 10
    LEASEUNASSIGNED = 11
    LEASEUNKNOWN = 12
    LEASEACTIVE = 13
    BULKLEASEQUERY = 14  #: RFC 6926, over TCP only
    LEASEQUERYDONE = 15  #: RFC 6926: the last reply of a bulk query


class Outcome(enum.IntEnum):
    """What the engine made of one request (``Decision.kind``).

    SILENT is a request handled as the RFC says with nothing to send: a RELEASE (RFC 2131
    4.3.4) or a DECLINE (4.3.3) honoured. It is processed, never a drop, in metrics and logs,
    as Kea counts it (``pkt4-release-received``, not ``pkt4-receive-drop``).
    """

    OFFER = 0
    ACK = 1
    NAK = 2
    SILENT = 3
    DROP = 4
