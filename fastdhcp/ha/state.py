"""Kea's HA state machine, sans-IO: driven by explicit events, the clock passed in.

Theory of operation (kea-ha.md section 3; every transition below is one the captures show
unless marked INFER, in which case docs/high-availability.md says why it is so):

- A server starts in ``waiting`` (DHCP off). Heartbeat answers tell it the partner's state.
  When the partner can give leases (ready, load-balancing/hot-standby, communication-recovery,
  partner-down, in-maintenance, partner-in-maintenance; or waiting, for the primary only:
  the primary syncs first) it goes ``syncing`` (the service pulls the partner's leases) and
  then ``ready``. With ``sync-leases = false`` it goes straight to ready.
- ``ready`` (DHCP off) becomes the mode's normal state, ``load-balancing`` or ``hot-standby``,
  once the partner is ready, in the normal state or in communication-recovery. A partner in
  in-maintenance makes it ``partner-in-maintenance`` (it serves every scope), a partner in
  partner-in-maintenance makes it ``in-maintenance`` (serves nothing).
- In the normal state: a partner in partner-down sends it back to ``waiting`` (a full resync,
  the partner served everyone); a ``terminated`` partner makes it terminated; a failed
  heartbeat or lease update makes it ``communication-recovery`` (load-balancing with
  ``delayed-updates-limit`` > 0: it serves its own scope and queues its updates) or leaves it
  in place (hot-standby, or a limit of 0) until the partner is declared down.
- The partner is declared down (``partner-down``: every scope served) when communication has
  been interrupted (no good contact for more than ``max-response-delay``) and either this
  server does not serve (waiting, ready: nothing can be analyzed), or it is the hot-standby
  primary (it serves everyone already), or ``max-unacked-clients`` is 0, or more than
  ``max-unacked-clients`` distinct partner-scope clients sent a ``secs`` above
  ``max-ack-delay`` (``max-unacked-clients + 1`` of them). Never with ``auto-failover =
  false``.
- From ``communication-recovery``, a partner back in ready/normal/communication-recovery gets
  the queued updates (action ``SEND_BACKLOG``), then the normal state; an overflowed queue means
  ``waiting`` (a full resync) instead.
- From ``partner-down``, a partner back in ``ready`` with the same ``unsent-update-count`` as
  before the outage means the normal state at once; a changed count means ``waiting`` (the
  partner served clients it could not tell us about: resync). A partner in waiting/syncing is
  left to sync from us.
- A partner clock more than 60 s off makes the server ``terminated`` (30 s: a warning);
  terminated keeps serving its own scope, sends no more updates nor heartbeats; restart it.
- ``unsent-update-count`` counts the lease changes this server could not send (partner-down,
  terminated, an overflowed backlog...): the partner compares it across an outage.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fastdhcp.ha.config import HAConfig, HAMode, Role
from fastdhcp.ha.hash import server_index

__all__ = ["Action", "HAState", "HAStateMachine", "HeartbeatReply", "Refused", "Step",
           "Transition", "UpdatePolicy"]

#: Clock skew (s) at which a warning is logged, and at which the server terminates
#: (kea-ha.md section 2: 40 s ahead warned, 70 s behind terminated; Kea's 30 s and 60 s).
SKEW_WARN = 30.0
SKEW_TERMINATE = 60.0


class HAState(enum.Enum):
    """Kea's HA state names (what ``ha-heartbeat`` reports and ``status-get`` shows)."""

    WAITING = "waiting"
    SYNCING = "syncing"
    READY = "ready"
    LOAD_BALANCING = "load-balancing"
    HOT_STANDBY = "hot-standby"
    COMMUNICATION_RECOVERY = "communication-recovery"
    PARTNER_DOWN = "partner-down"
    IN_MAINTENANCE = "in-maintenance"
    PARTNER_IN_MAINTENANCE = "partner-in-maintenance"
    TERMINATED = "terminated"
    BACKUP = "backup"
    PASSIVE_BACKUP = "passive-backup"
    #: the partner's state while no heartbeat succeeds (never a local state, never reported)
    UNAVAILABLE = "unavailable"


#: States a partner may report in a heartbeat (Kea: "unsupported HA partner state" else).
REPORTABLE = frozenset(s for s in HAState if s is not HAState.UNAVAILABLE)

_NORMAL = {HAMode.LOAD_BALANCING: HAState.LOAD_BALANCING, HAMode.HOT_STANDBY: HAState.HOT_STANDBY}

#: States in which the DHCP service answers clients (waiting/syncing/ready: Kea disables it).
_SERVING = frozenset({HAState.LOAD_BALANCING, HAState.HOT_STANDBY,
                      HAState.COMMUNICATION_RECOVERY, HAState.PARTNER_DOWN,
                      HAState.PARTNER_IN_MAINTENANCE, HAState.TERMINATED})


class Action(enum.Enum):
    """What the service must do after a step (the result comes back as an event)."""

    SYNC = "sync"  #: fetch the partner's leases, then call ``sync_finished``
    SEND_BACKLOG = "send-backlog"  #: send the queued updates, then call ``backlog_sent``


class UpdatePolicy(enum.Enum):
    """What happens to one lease change, decided by the state (Kea's lease update rules)."""

    SEND = "send"  #: send it now; the client's ACK waits for the partner's answer
    QUEUE = "queue"  #: communication-recovery: queue it, ACK at once; sent on recovery
    UNSENT = "unsent"  #: cannot be sent (partner-down, terminated...): counted, ACK at once
    OFF = "off"  #: send-lease-updates = false


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, and the partner state that caused it."""

    old: HAState
    new: HAState
    partner: HAState

    def log_line(self) -> str:
        """Kea's HA_STATE_TRANSITION wording (kea-ha.md section 3)."""
        partner = "UNDEFINED" if self.partner is HAState.UNAVAILABLE else \
            self.partner.value.upper()
        return (f"HA_STATE_TRANSITION server transitions from {self.old.value.upper()} to "
                f"{self.new.value.upper()} state, partner state is {partner}")


@dataclass(frozen=True, slots=True)
class Step:
    """What one event did: transitions (in order), actions to run, warnings to log."""

    transitions: tuple[Transition, ...] = ()
    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """A good ``ha-heartbeat`` answer from the partner (messages.parse_heartbeat_answer)."""

    state: HAState
    date_time: float  #: the partner's clock, Unix seconds
    scopes: tuple[str, ...] | None = None  #: None when left out (tolerated)
    unsent_update_count: int | None = None  #: None when left out (tolerated)


class Refused(Exception):
    """A command the current state does not allow; ``text`` is the answer's (result 1)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(slots=True)
class _Builder:
    transitions: list[Transition] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def step(self) -> Step:
        return Step(tuple(self.transitions), tuple(self.actions), tuple(self.warnings))


class HAStateMachine:
    """One server's HA state. Times: ``now`` is monotonic seconds, ``wall`` Unix seconds."""

    def __init__(self, config: HAConfig, now: float) -> None:
        self.config = config
        me = config.this_peer
        self._me = me
        self._backup = me.role is Role.BACKUP
        self.state = HAState.BACKUP if self._backup else HAState.WAITING
        self.partner_state = HAState.UNAVAILABLE
        self.partner_scopes: tuple[str, ...] = ()
        self._scopes: tuple[str, ...] = ()
        self._last_ok: float | None = None  # last good contact (monotonic)
        self._since = now  # the "age" baseline before any contact
        self._interrupted_since: float | None = None
        self._connecting: set[bytes] = set()
        self._unacked: set[bytes] = set()
        self._rejected: set[bytes] = set()
        self.analyzed_packets = 0
        #: lease changes this server could not send to the partner (its heartbeat reports it)
        self.unsent_update_count = 0
        self._partner_unsent = 0  # last count the partner reported
        self._partner_unsent_at_down = 0
        self.backlog_size = 0
        self.backlog_overflowed = False
        self._pre_maintenance: HAState | None = None
        self._normal = _NORMAL[config.mode]
        self._names = tuple(p.name for p in config.active_peers)
        self._mrd = config.max_response_delay / 1000.0

    # ------------------------------------------------------------------ queries

    @property
    def normal_state(self) -> HAState:
        """load-balancing or hot-standby, by the mode."""
        return self._normal

    def scopes(self) -> tuple[str, ...]:
        """The scopes (peer names) this server answers now."""
        return self._scopes

    @property
    def dhcp_enabled(self) -> bool:
        """Whether the DHCP service runs at all (off in waiting, syncing, ready,
        in-maintenance, backup)."""
        return self.state in _SERVING

    def scope_of(self, client_id: bytes | None, chaddr: bytes) -> str | None:
        """The scope a client belongs to: the hash in load-balancing, the primary's name in
        hot-standby; None when the client has no identifier to hash."""
        if self.config.mode is HAMode.HOT_STANDBY:
            return self._names[0]
        idx = server_index(client_id, chaddr, len(self._names))
        return None if idx is None else self._names[idx]

    def serves(self, client_id: bytes | None, chaddr: bytes) -> bool:
        """Whether this server answers this client now (option 61's value or None, and
        chaddr's hlen bytes)."""
        if self.state not in _SERVING or not self._scopes:
            return False
        scope = self.scope_of(client_id, chaddr)
        if scope is None:  # no identifier: only a server serving every scope takes it
            return len(self._scopes) == len(self._names)
        return scope in self._scopes

    @property
    def scope_count(self) -> int:
        """How many scopes the clients are spread over: the peers in load-balancing (the
        hash modulo), one in hot-standby (every client is the primary's)."""
        return len(self.config.scope_names)

    def scope_mask(self) -> int:
        """The served scopes as bits, bit i for the peer of index i (primary first): what
        :meth:`serves` answers, for the packet path's compiled filter."""
        if self.state not in _SERVING:
            return 0
        return sum(1 << i for i, name in enumerate(self._names[:self.scope_count])
                   if name in self._scopes)

    def communication_interrupted(self, now: float) -> bool:
        """No good contact for more than max-response-delay."""
        base = self._last_ok if self._last_ok is not None else self._since
        return self.partner_state is HAState.UNAVAILABLE and now - base > self._mrd

    @property
    def heartbeats_enabled(self) -> bool:
        """Whether heartbeats go to the partner (not in terminated; a backup has no
        partner)."""
        return not self._backup and self.state is not HAState.TERMINATED

    def update_policy(self) -> UpdatePolicy:
        """What to do with a lease change now."""
        if not self.config.send_lease_updates or self._backup:
            return UpdatePolicy.OFF
        if self.state in (self._normal, HAState.PARTNER_IN_MAINTENANCE):
            return UpdatePolicy.SEND
        if self.state is HAState.COMMUNICATION_RECOVERY:
            return UpdatePolicy.QUEUE
        return UpdatePolicy.UNSENT

    def lease_changes(self, n: int) -> UpdatePolicy:
        """Account for ``n`` lease changes about to be handled per :meth:`update_policy`:
        queued ones grow the backlog (over ``delayed-updates-limit`` it overflows: the rest is
        unsent and the return is a full resync), unsent ones are counted."""
        policy = self.update_policy()
        if policy is UpdatePolicy.QUEUE:
            room = self.config.delayed_updates_limit - self.backlog_size
            if n > room:
                self.backlog_overflowed = True
                self.unsent_update_count += n - max(room, 0)
                self.backlog_size += max(room, 0)
                return UpdatePolicy.UNSENT if room <= 0 else policy
            self.backlog_size += n
        elif policy is UpdatePolicy.UNSENT:
            self.unsent_update_count += n
        return policy

    def age(self, now: float) -> int:
        """Seconds since the last good contact (since start when none yet)."""
        base = self._last_ok if self._last_ok is not None else self._since
        return int(now - base)

    def status(self, now: float) -> dict[str, object]:
        """status-get's ``high-availability[0]`` entry, in Kea's shape (kea-ha.md §2)."""
        interrupted = self.communication_interrupted(now)
        partner = self.config.partner
        servers: dict[str, object] = {"local": {
            "role": self._me.role.value, "scopes": list(self._scopes),
            "state": self.state.value}}
        if partner is not None:
            left = (self.config.max_unacked_clients + 1 - len(self._unacked)
                    if interrupted else 0)
            servers["remote"] = {
                "age": self.age(now),
                "analyzed-packets": self.analyzed_packets,
                "communication-interrupted": interrupted,
                "connecting-clients": len(self._connecting),
                "in-touch": self._last_ok is not None,
                "last-scopes": list(self.partner_scopes),
                "last-state": self.partner_state.value,
                "role": partner.role.value,
                "unacked-clients": len(self._unacked),
                "unacked-clients-left": max(left, 0),
            }
        return {"ha-mode": self.config.mode.value, "ha-servers": servers}

    # ------------------------------------------------------------------ events

    def heartbeat_answered(self, now: float, wall: float, reply: HeartbeatReply) -> Step:
        """A good heartbeat answer: the partner's state, clock and counters."""
        b = _Builder()
        self._last_ok = now
        self._connecting.clear()
        self._unacked.clear()
        self.partner_state = reply.state
        if reply.scopes is not None:
            self.partner_scopes = reply.scopes
        skew = reply.date_time - wall
        if abs(skew) > SKEW_TERMINATE and self.state is not HAState.TERMINATED:
            b.warnings.append(f"HA_HIGH_CLOCK_SKEW_CAUSES_TERMINATION the partner's clock is "
                              f"{skew:+.0f} s from ours (more than {SKEW_TERMINATE:.0f} s)")
            self._go(b, HAState.TERMINATED)
            self._note_partner_unsent(reply)
            return b.step()
        if abs(skew) > SKEW_WARN:
            b.warnings.append(f"HA_HIGH_CLOCK_SKEW the partner's clock is {skew:+.0f} s from "
                              f"ours; at {SKEW_TERMINATE:.0f} s this server terminates")
        self._react(now, b, reply)
        self._note_partner_unsent(reply)
        return b.step()

    def heartbeat_failed(self, now: float) -> Step:
        """A heartbeat that failed: no answer, an error result, or a bad body (Kea treats
        each as an unreachable partner)."""
        return self._partner_unavailable(now)

    def lease_update_failed(self, now: float, client_key: bytes | None = None,
                            rejected: bool = False) -> Step:
        """The partner did not acknowledge a lease update (the client gets no ACK): no answer
        or result 2 (``rejected`` False), or result 1 (``rejected``: counted per client
        against max-rejected-lease-updates, beyond which this server terminates)."""
        if rejected and client_key is not None:
            self._rejected.add(client_key)
            limit = self.config.max_rejected_lease_updates
            if limit and len(self._rejected) > limit:
                b = _Builder()
                b.warnings.append(f"HA_LEASE_UPDATE_REJECTS_CAUSED_TERMINATION more than "
                                  f"{limit} lease updates rejected by the partner")
                self._go(b, HAState.TERMINATED)
                return b.step()
        return self._partner_unavailable(now)

    def client_query(self, now: float, client_key: bytes, secs: int,
                     in_partner_scope: bool) -> None:
        """A DHCP query this server saw (the engine calls it for queries it does not serve
        while communication is interrupted): Kea's failure detection. ``secs`` is the
        header's seconds; over max-ack-delay the client counts as unacked."""
        if not in_partner_scope or not self.communication_interrupted(now):
            return
        if self.state not in (self._normal, HAState.COMMUNICATION_RECOVERY):
            return
        self.analyzed_packets += 1
        if secs * 1000 > self.config.max_ack_delay:
            self._connecting.discard(client_key)
            self._unacked.add(client_key)
        elif client_key not in self._unacked:
            self._connecting.add(client_key)

    def tick(self, now: float) -> Step:
        """The heartbeat interval passed: decide partner-down on the counts so far."""
        b = _Builder()
        if self.partner_state is HAState.UNAVAILABLE and self._should_partner_down(now):
            if self.state in (HAState.WAITING, HAState.READY, self._normal,
                              HAState.COMMUNICATION_RECOVERY):
                self._go(b, HAState.PARTNER_DOWN)
        return b.step()

    def sync_finished(self, now: float, ok: bool) -> Step:
        """The start-up sync ended: ready, or back to waiting (retried)."""
        b = _Builder()
        if self.state is HAState.SYNCING:
            self._go(b, HAState.READY if ok else HAState.WAITING)
        return b.step()

    def backlog_sent(self, now: float, ok: bool) -> Step:
        """The queued updates went through (normal state) or not (partner unavailable)."""
        if self.state is not HAState.COMMUNICATION_RECOVERY:
            return Step()
        if not ok:
            return self._partner_unavailable(now)
        b = _Builder()
        self.backlog_size = 0
        self._go(b, self._normal)
        return b.step()

    # ------------------------------------------------------------------ commands

    def reset(self) -> tuple[Step, str]:
        """ha-reset: back to waiting (a full resync follows)."""
        b = _Builder()
        if self.state is HAState.WAITING:
            return b.step(), "HA state machine already in WAITING state."
        if not self._backup:
            self._go(b, HAState.WAITING)
        return b.step(), "HA state machine reset."

    def set_scopes(self, scopes: tuple[str, ...]) -> None:
        """ha-scopes: serve these scopes until the next transition (each a peer name)."""
        for s in scopes:
            if s not in self._names:
                raise Refused(f"invalid server name specified '{s}' while enabling/disabling "
                              f"HA scopes")
        self._scopes = tuple(n for n in self._names if n in scopes)

    def check_maintenance_start(self) -> None:
        """Raise :class:`Refused` unless ha-maintenance-start may run now."""
        if self.state in (HAState.IN_MAINTENANCE, HAState.PARTNER_IN_MAINTENANCE,
                          HAState.TERMINATED, HAState.BACKUP, HAState.PASSIVE_BACKUP,
                          HAState.SYNCING):
            raise Refused(f"Unable to transition the server from the {self.state.value} to "
                          f"partner-in-maintenance state.")

    def maintenance_started(self, partner_reached: bool) -> tuple[Step, str]:
        """ha-maintenance-start after the partner was notified: partner-in-maintenance, or
        partner-down when the partner could not be reached."""
        b = _Builder()
        self._pre_maintenance = self.state
        if partner_reached:
            self._go(b, HAState.PARTNER_IN_MAINTENANCE)
            return b.step(), ("Server is now in the partner-in-maintenance state and its "
                              "partner is in-maintenance state. The partner can be now "
                              "safely shut down.")
        self._go(b, HAState.PARTNER_DOWN)
        return b.step(), ("Server is now in the partner-down state as its partner appears "
                          "to be offline for maintenance.")

    def maintenance_notify(self, cancel: bool) -> tuple[Step, str]:
        """ha-maintenance-notify from the partner: into in-maintenance, or out of it."""
        b = _Builder()
        if cancel:
            if self.state is not HAState.IN_MAINTENANCE:
                raise Refused("Unable to cancel the maintenance for the server not in the "
                              "in-maintenance state.")
            self._go(b, self._pre_maintenance or HAState.WAITING)
            self._pre_maintenance = None
            return b.step(), "Server maintenance canceled."
        if self.state in (HAState.TERMINATED, HAState.BACKUP, HAState.PASSIVE_BACKUP,
                          HAState.PARTNER_IN_MAINTENANCE):
            raise Refused(f"Unable to transition the server from the {self.state.value} to "
                          f"in-maintenance state.")
        if self.state is not HAState.IN_MAINTENANCE:
            self._pre_maintenance = self.state
            self._go(b, HAState.IN_MAINTENANCE)
        return b.step(), "Server is in-maintenance state."

    def check_maintenance_cancel(self) -> None:
        """Raise :class:`Refused` unless ha-maintenance-cancel may run now."""
        if self.state is not HAState.PARTNER_IN_MAINTENANCE:
            raise Refused("Unable to cancel maintenance request because the server is not "
                          "in the partner-in-maintenance state.")

    def maintenance_canceled(self) -> tuple[Step, str]:
        """ha-maintenance-cancel once the partner left in-maintenance: the state before."""
        b = _Builder()
        self._go(b, self._pre_maintenance or HAState.WAITING)
        self._pre_maintenance = None
        return b.step(), "Server maintenance successfully canceled."

    # ------------------------------------------------------------------ the reactions

    def _note_partner_unsent(self, reply: HeartbeatReply) -> None:
        if reply.unsent_update_count is not None and self.state is not HAState.PARTNER_DOWN:
            self._partner_unsent = reply.unsent_update_count

    def _partner_unavailable(self, now: float) -> Step:
        b = _Builder()
        self.partner_state = HAState.UNAVAILABLE
        s = self.state
        if s is HAState.LOAD_BALANCING and self.config.delayed_updates_limit > 0:
            b.warnings.append("HA_LEASE_UPDATES_DISABLED lease updates are queued until the "
                              "partner is back")
            self.backlog_size = 0
            self.backlog_overflowed = False
            self._go(b, HAState.COMMUNICATION_RECOVERY)
        elif s is HAState.PARTNER_IN_MAINTENANCE:
            # the operator announced it: the partner is being shut down (INFER: at once)
            self._go(b, HAState.PARTNER_DOWN)
        elif s is HAState.SYNCING:
            pass  # the sync itself fails and says so
        if self._should_partner_down(now) and self.state in (
                HAState.WAITING, HAState.READY, self._normal, HAState.COMMUNICATION_RECOVERY):
            self._go(b, HAState.PARTNER_DOWN)
        return b.step()

    def _should_partner_down(self, now: float) -> bool:
        if not self._me.auto_failover or not self.communication_interrupted(now):
            return False
        if self.state in (HAState.WAITING, HAState.READY):
            return True  # DHCP is off: no client can be analyzed (kea-ha.md §3, bogus-state)
        if self.config.mode is HAMode.HOT_STANDBY and self._me.role is Role.PRIMARY:
            return True  # the primary serves everyone already: nothing to analyze
        limit = self.config.max_unacked_clients
        return limit == 0 or len(self._unacked) > limit

    def _react(self, now: float, b: _Builder, r: HeartbeatReply) -> None:
        """The partner answered in state ``r.state``: Kea's reaction for our state."""
        p = r.state
        s = self.state
        other_normal = (HAState.HOT_STANDBY if self._normal is HAState.LOAD_BALANCING
                        else HAState.LOAD_BALANCING)
        if p is other_normal:
            b.warnings.append(f"HA_INVALID_PARTNER_STATE_{p.name} the partner is in "
                              f"{p.value}, which {self.config.mode.value} mode does not have")
            return
        if s is HAState.WAITING:
            sync_now = p in (HAState.READY, self._normal, HAState.COMMUNICATION_RECOVERY,
                             HAState.PARTNER_DOWN, HAState.IN_MAINTENANCE,
                             HAState.PARTNER_IN_MAINTENANCE)
            if p is HAState.WAITING and self._me.role is Role.PRIMARY:
                sync_now = True  # both waiting: the primary syncs first (INFER)
            if sync_now:
                self._start_sync(b)
        elif s is HAState.READY:
            if p in (HAState.READY, self._normal, HAState.COMMUNICATION_RECOVERY):
                self._go(b, self._normal)
            elif p is HAState.IN_MAINTENANCE:
                self._go(b, HAState.PARTNER_IN_MAINTENANCE)
            elif p is HAState.PARTNER_IN_MAINTENANCE:
                self._go(b, HAState.IN_MAINTENANCE)
        elif s in (self._normal, HAState.COMMUNICATION_RECOVERY):
            if p is HAState.PARTNER_DOWN:
                self._go(b, HAState.WAITING)
            elif p is HAState.TERMINATED:
                self._go(b, HAState.TERMINATED)
            elif p is HAState.IN_MAINTENANCE:
                self._go(b, HAState.PARTNER_IN_MAINTENANCE)
            elif p is HAState.PARTNER_IN_MAINTENANCE:
                self._go(b, HAState.IN_MAINTENANCE)
            elif s is HAState.COMMUNICATION_RECOVERY and p in (
                    HAState.READY, self._normal, HAState.COMMUNICATION_RECOVERY):
                if self.backlog_overflowed:
                    self._go(b, HAState.WAITING)  # more was missed than queued: resync
                else:
                    b.actions.append(Action.SEND_BACKLOG)
        elif s is HAState.PARTNER_DOWN:
            if p is HAState.READY:
                changed = (r.unsent_update_count is not None
                           and r.unsent_update_count != self._partner_unsent_at_down)
                self._go(b, HAState.WAITING if changed else self._normal)
            elif p in (self._normal, HAState.PARTNER_DOWN, HAState.COMMUNICATION_RECOVERY):
                self._go(b, HAState.WAITING)  # both served every client: resync (INFER)
            elif p is HAState.TERMINATED:
                self._go(b, HAState.TERMINATED)
            elif p is HAState.IN_MAINTENANCE:
                self._go(b, HAState.PARTNER_IN_MAINTENANCE)
        # SYNCING waits for sync_finished; IN_MAINTENANCE, PARTNER_IN_MAINTENANCE (partner
        # answering), TERMINATED and BACKUP change only by command or restart.

    def _start_sync(self, b: _Builder) -> None:
        if self.config.sync_leases:
            self._go(b, HAState.SYNCING)
            b.actions.append(Action.SYNC)
        else:
            self._go(b, HAState.READY)

    def _go(self, b: _Builder, new: HAState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        b.transitions.append(Transition(old, new, self.partner_state))
        if new is HAState.PARTNER_DOWN:
            self._partner_unsent_at_down = self._partner_unsent
        if new is self._normal:  # every queued update went through (or there were none)
            self.backlog_size = 0
            self.backlog_overflowed = False
        self._scopes = self._scopes_for(new)

    def _scopes_for(self, state: HAState) -> tuple[str, ...]:
        if state in (HAState.PARTNER_DOWN, HAState.PARTNER_IN_MAINTENANCE):
            # hot-standby has one scope, the primary's (a real Kea primary in partner-down
            # reports ["server1"]): every client is in it
            if self.config.mode is HAMode.HOT_STANDBY:
                return (self._names[0],)
            return self._names
        if state in (self._normal, HAState.COMMUNICATION_RECOVERY, HAState.TERMINATED):
            if self.config.mode is HAMode.LOAD_BALANCING:
                return (self._me.name,)
            return (self._names[0],) if self._me.role is Role.PRIMARY else ()
        return ()
