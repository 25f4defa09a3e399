"""RFC 4703 conflict resolution as RFC 2136 update messages: sans-IO transactions.

A :class:`Transaction` is one direction (forward or reverse) of one name change (add or remove).
It hands out the update message to send now (:meth:`Transaction.message`) and, told the answer's
RCODE (:meth:`Transaction.answer`), moves to its next step or ends with an :class:`Outcome`.
Sending, timing out and retrying are the worker's; the rules are all here.

Steps per :class:`~fastdhcp.ddns.config.ConflictMode` (``check-with-dhcid`` is RFC 4703's):

- forward add (section 5.3.1): prerequisite "name not in use" (NXDOMAIN), add A and DHCID.
  YXDOMAIN -> (5.3.2) prerequisite "DHCID RR with our value exists", delete the name's A RRset,
  add our A. NXRRSET there means another client owns the name: :attr:`Outcome.CONFLICT`, and
  nothing is changed (section 5.4's "the DHCP server MUST NOT update").
  ``check-exists-with-dhcid`` asks only that some DHCID exists; the ``no-check`` modes overwrite.
- reverse add (section 5.4: the address is the server's to give, no check): delete the PTR
  and DHCID RRsets, add PTR (and DHCID, except in ``no-check-without-dhcid``).
- forward remove (section 5.5): prerequisite "our DHCID", delete our A record; then
  prerequisite "our DHCID, no A and no AAAA left", delete the DHCID RRset. A failed first
  prerequisite (NXRRSET, NXDOMAIN) means the name is not ours (or gone): CONFLICT, untouched.
- reverse remove: prerequisite "our DHCID" (check modes), delete every RR at the PTR name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.tsig
import dns.update

from fastdhcp.ddns.config import ConflictMode, DdnsDomain
from fastdhcp.ddns.dhcid import DhcidIdentifier, dhcid_rdata

__all__ = ["Change", "Direction", "NameChange", "Outcome", "Transaction", "transactions"]


class Change(enum.Enum):
    """What a name change does."""

    ADD = "add"  #: publish the lease's name (ACK of a new binding, or of a changed name)
    REMOVE = "remove"  #: withdraw it (RELEASE, expiry, DECLINE, lease deletion)


class Direction(enum.Enum):
    """Which zone a transaction updates."""

    FORWARD = "forward"  #: A + DHCID at the FQDN
    REVERSE = "reverse"  #: PTR + DHCID at the address's in-addr.arpa name


class Outcome(enum.Enum):
    """How a transaction ended (or that it goes on)."""

    CONTINUE = "continue"  #: send :meth:`Transaction.message` again (the next step)
    SUCCESS = "success"  #: the zone says what the lease says
    CONFLICT = "conflict"  #: the name belongs to another client (RFC 4703): left untouched
    REFUSED = "refused"  #: the server refused (REFUSED, NOTAUTH: key or ACL)
    ERROR = "error"  #: any other RCODE (SERVFAIL, FORMERR, NOTZONE, ...)


@dataclass(frozen=True, slots=True)
class NameChange:
    """One name change request (Kea's NCR): what the lease says, for both directions."""

    change: Change
    """Add or remove."""
    fqdn: dns.name.Name
    """The lease's absolute name."""
    address: int
    """The leased IPv4 address (host-order int)."""
    identifier: DhcidIdentifier
    """The client identity the DHCID is computed from."""
    forward: bool
    """Update the forward zone."""
    reverse: bool
    """Update the reverse zone."""
    ttl: int = 0
    """TTL of the records added (RFC 4702 section 5: a third of the lease time, see
    :func:`fastdhcp.ddns.worker.lease_ttl`)."""

    @property
    def address_text(self) -> str:
        """The address, dotted."""
        a = self.address
        return f"{a >> 24}.{(a >> 16) & 0xFF}.{(a >> 8) & 0xFF}.{a & 0xFF}"

    @property
    def ptr_name(self) -> dns.name.Name:
        """The address's in-addr.arpa name (RFC 1035 3.5)."""
        return dns.reversename.from_address(self.address_text)


@dataclass(slots=True)
class Transaction:
    """One direction of one :class:`NameChange`, against one domain (sans-IO)."""

    ncr: NameChange
    direction: Direction
    domain: DdnsDomain
    mode: ConflictMode
    step: int = 0
    """0 = first message; 1 = the second (forward add after YXDOMAIN, forward remove's DHCID)."""
    _dhcid: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        # The digest is over the FQDN in both zones: the PTR's DHCID is the forward one
        # (RFC 4703 section 5.4), tying the address to the same client and name.
        self._dhcid = dhcid_rdata(self.ncr.identifier, self.ncr.fqdn)

    @property
    def owner(self) -> dns.name.Name:
        """The name this transaction's records sit at."""
        return self.ncr.fqdn if self.direction is Direction.FORWARD else self.ncr.ptr_name

    def message(self) -> dns.update.UpdateMessage:
        """The update to send for the current step (signed when the domain has a key)."""
        key = self.domain.key
        msg = (dns.update.UpdateMessage(self.domain.name) if key is None else
               dns.update.UpdateMessage(self.domain.name,
                                        keyring={dns.name.from_text(key.name):
                                                 dns.tsig.Key(key.name, key.secret,
                                                              key.algorithm_name)},
                                        keyname=dns.name.from_text(key.name),
                                        keyalgorithm=key.algorithm_name))
        if self.direction is Direction.FORWARD:
            if self.ncr.change is Change.ADD:
                self._forward_add(msg)
            else:
                self._forward_remove(msg)
        elif self.ncr.change is Change.ADD:
            self._reverse_add(msg)
        else:
            self._reverse_remove(msg)
        return msg

    def answer(self, rcode: int) -> Outcome:
        """The answer's RCODE for the message of the current step -> what follows."""
        if rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
            return Outcome.REFUSED
        add = self.ncr.change is Change.ADD
        if self.direction is Direction.REVERSE:
            if rcode == dns.rcode.NOERROR:
                return Outcome.SUCCESS
            if not add and rcode in (dns.rcode.NXRRSET, dns.rcode.NXDOMAIN):
                return Outcome.CONFLICT
            return Outcome.ERROR
        if add:
            if rcode == dns.rcode.NOERROR:
                return Outcome.SUCCESS
            if self.step == 0 and rcode == dns.rcode.YXDOMAIN and self._checks_name():
                self.step = 1
                return Outcome.CONTINUE
            if self.step == 1 and rcode == dns.rcode.NXRRSET:
                return Outcome.CONFLICT
            return Outcome.ERROR
        if self.step == 0:
            if rcode == dns.rcode.NOERROR:
                if self.mode is ConflictMode.NO_CHECK_WITHOUT_DHCID:
                    return Outcome.SUCCESS  # no DHCID to clean up
                self.step = 1
                return Outcome.CONTINUE
            if rcode in (dns.rcode.NXRRSET, dns.rcode.NXDOMAIN):
                return Outcome.CONFLICT
            return Outcome.ERROR
        # step 1: the DHCID stays while other addresses (A or AAAA) remain: still a success
        if rcode in (dns.rcode.NOERROR, dns.rcode.YXRRSET, dns.rcode.NXRRSET):
            return Outcome.SUCCESS
        return Outcome.ERROR

    # -- the messages -------------------------------------------------------------------------

    def _checks_name(self) -> bool:
        return self.mode in (ConflictMode.CHECK_WITH_DHCID, ConflictMode.CHECK_EXISTS_WITH_DHCID)

    def _with_dhcid(self) -> bool:
        return self.mode is not ConflictMode.NO_CHECK_WITHOUT_DHCID

    def _dhcid_rr(self) -> dns.rdata.Rdata:
        return dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.DHCID, self._dhcid, 0,
                                   len(self._dhcid))

    def _require_ours(self, msg: dns.update.UpdateMessage) -> None:
        """Prerequisite: the DHCID says the name is this client's (per the mode)."""
        if self.mode is ConflictMode.CHECK_WITH_DHCID:
            msg.present(self.owner, self._dhcid_rr())  # RRset exists, value dependent
        elif self.mode is ConflictMode.CHECK_EXISTS_WITH_DHCID:
            msg.present(self.owner, dns.rdatatype.DHCID)  # value independent

    def _a_rr(self) -> dns.rdata.Rdata:
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, self.ncr.address_text)

    def _forward_add(self, msg: dns.update.UpdateMessage) -> None:
        name, ttl = self.ncr.fqdn, self.ncr.ttl
        if self.step == 0 and self._checks_name():
            msg.absent(name)  # RFC 4703 5.3.1: the name is not in use
            msg.add(name, ttl, self._a_rr())
            msg.add(name, ttl, self._dhcid_rr())
            return
        # 5.3.2 (or an overwriting mode): replace the addresses, keep/put the DHCID
        self._require_ours(msg)
        msg.delete(name, dns.rdatatype.A)
        msg.add(name, ttl, self._a_rr())
        if not self._checks_name() and self._with_dhcid():
            msg.delete(name, dns.rdatatype.DHCID)
            msg.add(name, ttl, self._dhcid_rr())

    def _forward_remove(self, msg: dns.update.UpdateMessage) -> None:
        name = self.ncr.fqdn
        self._require_ours(msg)
        if self.step == 0:
            msg.delete(name, self._a_rr())
            return
        msg.absent(name, dns.rdatatype.A)
        msg.absent(name, dns.rdatatype.AAAA)
        msg.delete(name, dns.rdatatype.DHCID)

    def _reverse_add(self, msg: dns.update.UpdateMessage) -> None:
        name, ttl = self.ncr.ptr_name, self.ncr.ttl
        ptr = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.PTR, self.ncr.fqdn.to_text())
        msg.delete(name, dns.rdatatype.PTR)
        msg.add(name, ttl, ptr)
        if self._with_dhcid():
            msg.delete(name, dns.rdatatype.DHCID)
            msg.add(name, ttl, self._dhcid_rr())

    def _reverse_remove(self, msg: dns.update.UpdateMessage) -> None:
        self._require_ours(msg)
        msg.delete(self.ncr.ptr_name)  # every RRset at the name (RFC 2136 2.5.3)


def transactions(ncr: NameChange, forward: DdnsDomain | None, reverse: DdnsDomain | None,
                 mode: ConflictMode) -> list[Transaction]:
    """The transactions ``ncr`` needs, given the domains its names fall in (None: no zone,
    that direction is skipped)."""
    out = []
    if ncr.forward and forward is not None:
        out.append(Transaction(ncr, Direction.FORWARD, forward, mode))
    if ncr.reverse and reverse is not None:
        out.append(Transaction(ncr, Direction.REVERSE, reverse, mode))
    return out
