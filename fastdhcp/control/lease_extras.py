"""What Kea's lease commands carry beyond fastdhcp's lease record: ``user-context`` and the
``fqdn-fwd`` / ``fqdn-rev`` flags, kept in the ``lease-extras`` table of the lease database
(4-byte address -> msgpack), written only by ``lease4-add`` / ``lease4-update``.

An entry names the client it was written for: a later binding of the address to another client
(a DORA) shows none of it, and a ``lease4-del`` or ``lease4-wipe`` removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

__all__ = ["LeaseExtras"]

#: One packer for every entry: ``msgpack.packb`` makes a Packer per call, which was 1.5 of
#: the 1.9 us an entry took (the Kea import writes one per lease with fqdn flags).
_pack = msgpack.Packer(use_bin_type=True).pack


@dataclass(frozen=True, slots=True)
class LeaseExtras:
    """The extras of one lease, and the client key they belong to."""

    client_key: bytes
    user_context: dict[str, Any] | None = None
    fqdn_fwd: bool = False
    fqdn_rev: bool = False

    @property
    def empty(self) -> bool:
        """Nothing to keep (the table then holds no entry)."""
        return self.user_context is None and not self.fqdn_fwd and not self.fqdn_rev

    def encode(self) -> bytes:
        """The table's value: ``[client key, user-context or nil, fwd, rev]``."""
        raw: bytes = _pack([self.client_key, self.user_context, self.fqdn_fwd, self.fqdn_rev])
        return raw

    @classmethod
    def decode(cls, raw: bytes) -> LeaseExtras | None:
        """The entry ``raw``, or None when it is not one this version wrote (ignored, as if
        absent: extras are never worth refusing a lease read)."""
        try:
            key, ctx, fwd, rev = msgpack.unpackb(raw, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            return None
        if not isinstance(key, bytes) or not (ctx is None or isinstance(ctx, dict)):
            return None
        return cls(key, ctx, bool(fwd), bool(rev))
