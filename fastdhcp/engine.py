"""The DHCPv4 server's decisions, sans-IO: ``Engine.handle(message, link, now) -> Decision``.

Theory of operation
===================

The engine owns no socket, thread or clock: the service hands it a parsed request, the link it
arrived on and the time, and gets back what to send, where, and which binding must be durable
first. Timers are asked for (:meth:`Engine.reclaim` returns when to call it next), never slept.

State, and where it lives
-------------------------
* **Leases** (the :class:`~fastdhcp.leases.LeaseStore`): one record per address, the durable
  truth. A record is *active* in state DEFAULT (bound) or DECLINED (probation) and inactive in
  RELEASED or EXPIRED_RECLAIMED, where it only remembers the last client (affinity: a client
  that comes back gets its previous address while it is still free, RFC 2131 4.3.1).
* **Offers** (memory only, never persisted): client key -> offered address, held for the
  subnet's offer-lifetime so that no other client is offered the same address. A repeated
  DISCOVER gets the same offer back. DISCOVER commits nothing (Kea's "fake allocation").
* **Pool bitmaps** (memory, rebuilt at start): a bit is *used* exactly when something claims the
  address: an active lease, a held offer, or a reservation. ``_settle`` re-derives a
  bit from those three whenever one of them lets go, so a bit is never freed from under a claim.

Transitions (client key = option 61 if sent, else htype + chaddr)
-----------------------------------------------------------------
=================  ==========================================================================
DISCOVER           hold an offer: existing binding > reservation > requested address (50)
                   if free > fresh allocation (previous address as hint); nothing staged.
REQUEST selecting  (54 present) ours: bind the requested address if it is the client's to
                   have (its offer, or free) -> stage DEFAULT, ACK; else NAK. Another
                   server's id: drop our offer silently, free its address.
REQUEST init-reb.  (no 54, 50 set, ciaddr 0) right address and link -> ACK; wrong network or
                   another client's address -> NAK; no record of the client -> silence
                   (NAK when authoritative).
REQUEST renew/reb. (ciaddr set) the client's binding -> extend, stage, ACK; the address is
                   another client's -> NAK; no record -> silence (NAK when authoritative).
DECLINE            the client's binding -> stage DECLINED until now + decline-probation-period;
                   the address stays used and is never offered meanwhile.
RELEASE            the client's binding -> stage RELEASED (keeps affinity), bit freed.
INFORM             ACK with configuration options only (no 51/58/59, yiaddr 0).
reclaim(now)       expired DEFAULT -> stage EXPIRED_RECLAIMED, bit freed; DECLINED past
                   probation -> EXPIRED_RECLAIMED, bit freed; expired offers dropped.
reload(config)     (SIGHUP) the store is untouched; offers whose address is still in a pool
                   (and not reserved) are kept, others dropped; unchanged pools keep their
                   bitmap, new or resized ones are rebuilt from the store's active addresses,
                   the reservations and the held offers. A binding left outside every pool is
                   NAKed when the client renews, rebinds or reboots (``address-unavailable``)
                   and expires as usual.
=================  ==========================================================================

Defences (``[global]`` keys, all off by default; docs/configuration.md)
-----------------------------------------------------------------------
* **Subscriber lease limit**: a subscriber is option 82's circuit-id (or remote-id), on one
  link. The engine keeps ``{(link id, subscriber id): bound leases}``, one entry per subscriber
  and none per lease, updated wherever a DEFAULT lease is staged or ended (bind, the old
  binding a bind ends, release, decline, expiry), and rebuilt from the store's records (their
  stored option 82) at start, after a reload and after a failed commit. A renewal, which is
  unicast and so carries no option 82, keeps the relay information stored with the binding.
  Past the limit a DISCOVER gets no offer and a REQUEST a NAK (``subscriber-limit``), as Kea's
  limits hook does; a client whose own binding already counts for that subscriber is never
  refused (renewing or moving leaves the count unchanged). Since an offer holds an address
  here (unlike Kea's fake allocation), a DISCOVER also counts the offers held for the
  subscriber's other clients (``{subscriber: offers}``, kept with each offer), so a burst of
  DISCOVERs from many MACs on one circuit holds at most the limit; a REQUEST checks bound
  leases only, so the cap on bindings is exact.
* **DECLINE limits**: at most ``decline-limit`` honoured DECLINEs per client and per subscriber
  in a fixed ``decline-window`` (tables swept by :meth:`Engine.reclaim`), and at most
  ``decline-max-fraction`` of a pool on probation at once (per-pool counts, rebuilt like the
  subscriber counts). A DECLINE past either is ignored: nothing is set aside, the binding stays.

Rapid commit and ping-check (both off by default; docs/rapid-commit-and-ping-check.md)
------------------------------------------------------------------------------------
* **Rapid commit** (RFC 4039, ``rapid-commit``): a DISCOVER with option 80 is bound as a
  REQUEST in SELECTING would be and answered with an ACK carrying option 80, its binding
  staged in ``Decision.binding`` like any ACK's; no offer is held.
* **Ping-check** (``enable-ping-check``): an OFFER of an address that is not the client's
  binding, reservation or already-probed offer carries ``Decision.probe``; the service probes
  it and reports through :meth:`Engine.ping_result` (free: the offer stands; in use: DECLINED
  for the probation period, within ``decline-max-fraction``, and the DISCOVER is handled
  again). A DISCOVER whose address needs a probe gets that OFFER even with option 80.

What is durable when
--------------------
``store.stage(lease)`` makes a change visible at once and puts it in the open batch. An ACK's
:class:`Decision` carries the staged lease in ``binding``: the service sends the ACK only after
that batch has committed (RFC 2131 3.1 step 4). RELEASE, DECLINE and reclamation stage too, but
have no reply to hold back. OFFERs go out at once: an offer lost in a crash costs the client one
more DISCOVER, never an address given twice, since a held offer is not a binding. If a batch
fails, the service calls :meth:`Engine.rollback` with it, and the bitmaps follow the store back.

Options
-------
Configuration options come already merged (reservation > subnet > global). A reply carries:
54 server identifier, 51/58/59 for leases, then option 1 (subnet mask) always (computed from the
subnet when not configured; RFC 2132 3.3 wants it before 3), the options the client asked for in
its parameter request list (55) in the client's order, and routers (3), domain name servers (6)
and domain name (15) whenever configured even if not asked for (as Kea does: clients that send
no PRL still get a usable configuration); then the client identifier echoed (RFC 6842) and
option 82 echoed verbatim, last (RFC 3046 2.2). The filtered list is cached per (option source,
PRL bytes, lease time).

Decision reasons (``Decision.reason``; ``Decision.kind`` is a :class:`fastdhcp.consts.Outcome`)
--------------------------------------------------------------------------------------------
* offer: ``binding``, ``reservation``, ``requested``, ``previous``, ``allocated``,
  ``same-offer`` (how the address was chosen);
* ack: ``selecting``, ``init-reboot``, ``renewing``, ``rebinding``, ``inform``,
  ``rapid-commit`` (a DISCOVER's, RFC 4039);
* nak: ``wrong-network``, ``not-yours``, ``unknown-client`` (authoritative only), ``declined``,
  ``reserved-elsewhere``, ``address-unavailable``;
* drop: ``bootreply``, ``bootp``, ``unexpected-type``, ``no-client-id``,
  ``relay-info-too-long`` (option 82 cannot be echoed within the size limit), ``no-subnet``,
  ``pool-exhausted``, ``other-server``, ``no-requested-address``, ``unknown-client``,
  ``release-unknown``, ``decline-unknown`` (counted in ``fastdhcp_dropped_total``);
* silent (processed, nothing to send, never a drop: RFC 2131 4.3.3, 4.3.4): ``released``,
  ``declined``;
* defences: ``subscriber-limit`` (a DISCOVER dropped, or a REQUEST NAKed), ``decline-limit``
  and ``decline-pool-cap`` (a DECLINE ignored).

Where the code is
-----------------
The per-packet path is compiled: ``ext/fastdhcp/_engine.pyx`` (declarations in ``_engine.pxd``;
one part file ``_engine_<concern>.pxi`` per concern, mapped at the top of ``_engine.pyx``)
reads requests through the codec's C-level API and allocates through ``PoolBitmap.allocate_c``.
This module is the public face: import :class:`Engine`, :class:`Decision`, :class:`Link`,
:class:`PoolStat`, :class:`SubnetCounters` (per-subnet event counts behind Kea's
statistics: new bindings, allocation failures, declines, reclaims, reservation conflicts)
from here. Also here: ``SubnetSelector`` (subnet selection: option 118, then
82.5, then giaddr / ``relay``, then ``ciaddr`` of a request not relayed, then the receiving
link; shared networks) and ``reply_destination`` (the RFC 2131 4.1 rules: a test's view of
the one ``_destination`` that every reply goes through).
"""

from fastdhcp._engine import (
    Decision,
    Engine,
    Link,
    PoolStat,
    SubnetCounters,
    SubnetSelector,
    reply_destination,
)

__all__ = ["Decision", "Engine", "Link", "PoolStat", "SubnetCounters", "SubnetSelector",
           "reply_destination"]
