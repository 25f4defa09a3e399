"""The DHCID record (RFC 4701): who owns a name in DNS, without saying who it is.

RDATA = identifier type (2 octets) || digest type (1 octet, 1 = SHA-256) || SHA-256(identifier
|| FQDN in canonical wire form) (RFC 4701 section 3.3-3.5). For DHCPv4 the identifier is, in the
RFC's order of preference (section 3.3):

- type 2, the DUID, when the client-id (option 61) is an RFC 4361 node-specific one (type 255:
  IAID (4 octets) then DUID);
- type 1, the client-id option's contents, when the client sent one;
- type 0, the htype octet followed by chaddr (``hlen`` octets), otherwise.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

import dns.name

__all__ = ["DIGEST_SHA256", "DhcidIdentifier", "IdentifierType", "dhcid_rdata"]

#: RFC 4701 section 3.5: digest type 1 is SHA-256 (the only one defined).
DIGEST_SHA256 = 1
#: RFC 4361 section 6.1: a client-id of type 255 carries IAID (4 octets) then a DUID.
_RFC4361_TYPE = 255


class IdentifierType(enum.IntEnum):
    """RFC 4701 section 3.3 identifier type codes."""

    HTYPE_CHADDR = 0  #: htype octet + chaddr
    CLIENT_ID = 1  #: DHCPv4 option 61's contents
    DUID = 2  #: a DUID (DHCPv6, or RFC 4361 client-ids)


@dataclass(frozen=True, slots=True)
class DhcidIdentifier:
    """The client identity a DHCID is computed from."""

    kind: IdentifierType
    """Which RFC 4701 identifier this is."""
    data: bytes
    """The identifier's octets (client-id contents, DUID, or htype + chaddr)."""

    @classmethod
    def from_client(cls, client_id: bytes | None, htype: int,
                    chaddr: bytes) -> DhcidIdentifier:
        """The identifier of a DHCPv4 client: ``client_id`` is option 61's contents as sent
        (None when the client sent none), ``chaddr`` the first ``hlen`` octets."""
        if client_id:
            if client_id[0] == _RFC4361_TYPE and len(client_id) > 5:
                return cls(IdentifierType.DUID, client_id[5:])
            return cls(IdentifierType.CLIENT_ID, client_id)
        return cls(IdentifierType.HTYPE_CHADDR, bytes((htype,)) + chaddr)


def dhcid_rdata(identifier: DhcidIdentifier, fqdn: dns.name.Name) -> bytes:
    """The DHCID RDATA for ``identifier`` owning ``fqdn`` (RFC 4701 section 3.5).

    The FQDN is taken in canonical wire form (RFC 4034 section 6.2: lower case,
    uncompressed), so that ``Host.Example.COM`` and ``host.example.com`` own the same record.
    """
    wire = fqdn.canonicalize().to_wire()
    assert wire is not None  # (None only when writing into a file)
    digest = hashlib.sha256(identifier.data + wire).digest()
    return identifier.kind.to_bytes(2, "big") + bytes((DIGEST_SHA256,)) + digest
