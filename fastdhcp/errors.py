"""The one error hierarchy of fastdhcp.

NAK, drop and ignore are decisions of the engine, not exceptions: these classes are for input
that cannot be understood (packets, config, database) and for allocator contract violations.
"""

from __future__ import annotations


class DHCPError(Exception):
    """Base of every error fastdhcp raises on purpose."""


class MalformedPacket(DHCPError, ValueError):
    """A datagram that is not a well-formed DHCPv4 message; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AllocationError(DHCPError):
    """An allocator contract was broken or could not be met."""


class PoolExhausted(AllocationError):
    """No free address is left in the pool."""


class DoubleFree(AllocationError):
    """An address that was already free was freed again."""


class AddressNotInPool(AllocationError, ValueError):
    """An address outside the pool's range was given to the pool."""


class StoreError(DHCPError):
    """The lease database cannot be opened, read or written; the message names path and cause."""


class ConfigError(DHCPError):
    """The configuration does not load; ``problems`` holds one line per problem.

    Each line names the key path, the bad value and the reason, e.g.
    ``subnet4[0].pools[1]: '10.0.0.5 - 10.0.0.1': first address is after last address``.
    """

    def __init__(self, problems: list[str] | str) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


class ExpressionError(DHCPError, ValueError):
    """A client-class test expression that does not parse; ``column`` is 1-based.

    The message reads ``column 8: Not defined client class 'NOPE'``, the position in the
    expression text as Kea's ``<string>:1.8`` gives it.
    """

    def __init__(self, column: int, reason: str) -> None:
        super().__init__(f"column {column}: {reason}")
        self.column = column
        self.reason = reason
