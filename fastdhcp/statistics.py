"""Kea's statistics (``statistic-get`` & co., ``stat-lease4-get``), as a view over the server's
one set of counters.

Nothing here is counted per packet. The packet path keeps what it always kept
(:class:`fastdhcp.metrics.Metrics`: datagrams received and sent by message type, drops by
reason, malformed datagrams), the engine counts the few events no packet counter can tell
(:class:`fastdhcp.engine.SubnetCounters`: new bindings, allocation failures, declines,
reclaims, reservation conflicts, per subnet), the lease table's in-memory index knows which
addresses are in use, and the pools' bitmaps their sizes. :class:`Statistics` derives Kea's
names from those when asked (on the loop: a few counters per subnet, and the addresses in use
per subnet counted in one compiled pass over the lease index), and the Prometheus endpoint
reads the same values (:meth:`Statistics.raw_values`).

Kea's semantics on top of monotonic counters (observed on Kea 2.2, see
docs/control-api.md, "Statistics"):

- ``statistic-reset`` sets a statistic to 0: here a *baseline* (the raw value at the reset)
  is subtracted from then on, so Prometheus' counters never go backwards.
- ``statistic-remove`` makes it disappear until its next change, when Kea recreates it from 0
  plus the change: here the same baseline, and the statistic hidden while the raw value
  still equals it.
- A statistic that Kea creates on its first event (``subnet[N].v4-allocation-fail*``) is shown
  from its first non-zero value.
- One sample per statistic (Kea keeps 20 by default): ``[[value, "YYYY-MM-DD
  HH:MM:SS.ffffff"]]`` in local time. The time is when the view first saw that value (a query
  after the change; the server's start for the values it started with), not the time of the
  packet that changed it: fastdhcp does not timestamp every packet.
"""

from __future__ import annotations

import bisect
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from fastdhcp.consts import MessageType
from fastdhcp.leases import LeaseState

if TYPE_CHECKING:
    from fastdhcp._engine import SubnetCounters
    from fastdhcp.config import Config
    from fastdhcp.leases import Lease
    from fastdhcp.metrics import Metrics

__all__ = [
    "KEA_GLOBAL",
    "KEA_SUBNET",
    "KEA_SUBNET_LAZY",
    "NOT_RECEIVE_DROPS",
    "Kind",
    "Sample",
    "Statistics",
    "StatisticsSource",
    "SubnetRow",
    "format_time",
]

#: Message types (option 53) with a ``pkt4-<name>-received`` statistic in Kea 2.2; every other
#: value (none: BOOTP; 9 and up) is ``pkt4-unknown-received``.
_RECEIVED = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
             7: "release", 8: "inform"}
#: Replies with a ``pkt4-<name>-sent`` statistic.
_SENT = {2: "offer", 5: "ack", 6: "nak"}
#: RFC 4388 answers with a ``pkt4-lease-query-response-<name>-sent`` statistic (Kea's
#: lease_query hook; shown when ``[leasequery]`` is configured).
_LEASEQUERY_SENT = {MessageType.LEASEUNASSIGNED: "unassigned", MessageType.LEASEUNKNOWN: "unknown",
                    MessageType.LEASEACTIVE: "active"}

#: Reasons counted in ``Metrics.dropped`` that Kea does not count in ``pkt4-receive-drop``
#: (a real Kea 2.2 counted none of these cases: a RELEASE or DECLINE of an unknown lease is
#: processed and needs no answer; an honoured one is not a drop at all, Outcome.SILENT;
#: a DISCOVER with no subnet or no free address is processed
#: and answered by silence, counted in v4-allocation-fail; a REQUEST from an unknown client
#: is ignored when not authoritative; packets while disabled by dhcp-disable are not counted).
#: What fails after the request was processed (the send, the commit) was received fine, and a
#: failed receive received nothing. Every other reason (a BOOTREPLY, a foreign server id, a
#: bad or unsupported request, a relay or rate guard, an internal error) is a receive drop.
NOT_RECEIVE_DROPS: frozenset[str] = frozenset({
    "release-unknown", "decline-unknown",
    "no-subnet", "pool-exhausted", "no-allowed-pool", "unknown-client", "no-requested-address",
    "dhcp-disabled", "disabled",
    "send-error", "commit-failed", "socket-closed", "recv-error",
})


class Kind(enum.Enum):
    """How a statistic moves (for the Prometheus type and for docs)."""

    COUNTER = "counter"  #: only grows (until reset)
    GAUGE = "gauge"  #: a level: addresses in a subnet, assigned now, declined now


#: Server-wide statistics a Kea 2.2 shows from its start, in its (alphabetical) order.
KEA_GLOBAL: dict[str, Kind] = {
    "cumulative-assigned-addresses": Kind.COUNTER,
    "declined-addresses": Kind.GAUGE,
    "pkt4-ack-received": Kind.COUNTER,
    "pkt4-ack-sent": Kind.COUNTER,
    "pkt4-decline-received": Kind.COUNTER,
    "pkt4-discover-received": Kind.COUNTER,
    "pkt4-inform-received": Kind.COUNTER,
    "pkt4-nak-received": Kind.COUNTER,
    "pkt4-nak-sent": Kind.COUNTER,
    "pkt4-offer-received": Kind.COUNTER,
    "pkt4-offer-sent": Kind.COUNTER,
    "pkt4-parse-failed": Kind.COUNTER,
    "pkt4-receive-drop": Kind.COUNTER,
    "pkt4-received": Kind.COUNTER,
    "pkt4-release-received": Kind.COUNTER,
    "pkt4-request-received": Kind.COUNTER,
    "pkt4-sent": Kind.COUNTER,
    "pkt4-unknown-received": Kind.COUNTER,
    "reclaimed-declined-addresses": Kind.COUNTER,
    "reclaimed-leases": Kind.COUNTER,
    "v4-allocation-fail": Kind.COUNTER,
    "v4-allocation-fail-classes": Kind.COUNTER,
    "v4-allocation-fail-no-pools": Kind.COUNTER,
    "v4-allocation-fail-shared-network": Kind.COUNTER,
    "v4-allocation-fail-subnet": Kind.COUNTER,
    "v4-reservation-conflicts": Kind.COUNTER,
}

#: Per-subnet statistics (``subnet[N].<name>``) a Kea 2.2 shows from its start.
KEA_SUBNET: dict[str, Kind] = {
    "assigned-addresses": Kind.GAUGE,
    "cumulative-assigned-addresses": Kind.COUNTER,
    "declined-addresses": Kind.GAUGE,
    "reclaimed-declined-addresses": Kind.COUNTER,
    "reclaimed-leases": Kind.COUNTER,
    "total-addresses": Kind.GAUGE,
    "v4-reservation-conflicts": Kind.COUNTER,
}

#: Per-subnet statistics Kea creates at their first event.
KEA_SUBNET_LAZY: dict[str, Kind] = {
    "v4-allocation-fail": Kind.COUNTER,
    "v4-allocation-fail-classes": Kind.COUNTER,
    "v4-allocation-fail-no-pools": Kind.COUNTER,
    "v4-allocation-fail-shared-network": Kind.COUNTER,
    "v4-allocation-fail-subnet": Kind.COUNTER,
}

#: Per-subnet statistics whose value Kea sets anew at a reconfiguration (the pools' size and
#: a recount of the lease database): a reload forgets their reset baselines.
_RESET_BY_RELOAD = ("total-addresses", "assigned-addresses", "declined-addresses")


class StatisticsSource(Protocol):
    """What the view reads (``fastdhcp.service.Server`` is one)."""

    @property
    def config(self) -> Config: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def engine(self) -> Any: ...

    @property
    def store(self) -> Any: ...


def format_time(at: float) -> str:
    """A sample's time as Kea prints it: local time, microseconds."""
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True, slots=True)
class Sample:
    """A statistic's value and when the view first saw it (wall clock)."""

    value: int
    at: float

    def to_json(self) -> list[Any]:
        """Kea's sample: ``[value, "YYYY-MM-DD HH:MM:SS.ffffff"]``."""
        return [self.value, format_time(self.at)]


@dataclass(frozen=True, slots=True)
class SubnetRow:
    """One row of ``stat-lease4-get`` (Kea's columns, in Kea's order)."""

    subnet_id: int
    total_addresses: int
    cumulative_assigned_addresses: int
    assigned_addresses: int  #: leases in state default (declined ones not included)
    declined_addresses: int

    def to_json(self) -> list[int]:
        """The row as Kea's ``result-set`` has it."""
        return [self.subnet_id, self.total_addresses, self.cumulative_assigned_addresses,
                self.assigned_addresses, self.declined_addresses]


@dataclass(slots=True)
class _Entry:
    """Reset/remove state and last sample of one statistic."""

    baseline: int = 0  #: raw value at the last reset or remove (subtracted)
    removed: bool = False  #: hidden until the raw value moves off the baseline
    value: int | None = None  #: the value last shown
    at: float = 0.0  #: when ``value`` was first seen


@dataclass(slots=True)
class _Raw:
    """The raw (never reset) values, computed once per query."""

    values: dict[str, int] = field(default_factory=dict)
    lazy: set[str] = field(default_factory=set)  #: names shown only once non-zero
    rows: list[SubnetRow] = field(default_factory=list)


class Statistics:
    """Kea's statistics over a running server's counters; see the module docstring.

    Made once the engine and the store are open (at start-up): it counts the DECLINED records
    already in the table then (one pass), and follows declines and reclaims by the engine's
    counters from there. Every method runs on the loop.
    """

    def __init__(self, source: StatisticsSource, clock: Callable[[], float] = time.time
                 ) -> None:
        self._src = source
        self._clock = clock
        self._started = clock()
        self._entries: dict[str, _Entry] = {}
        #: DECLINED addresses in the table at start-up, and the engine's counts then
        store = source.store
        self._declined_at_start = store.declined_addresses() if store is not None else []
        self._counts_at_start = {
            sid: (c.declined, c.reclaimed_declined)
            for sid, c in self._counters().items()
        }
        #: subnet id -> declined leases added (+) or removed (-) other than by the engine's
        #: decline and reclaim (the lease commands report them through lease_changed)
        self._declined_adjust: dict[int, int] = {}
        raw = self._raw()
        for name, value in raw.values.items():
            if not (name in raw.lazy and value == 0):
                self._entries[name] = _Entry(value=value, at=self._started)

    # ------------------------------------------------------------------ raw values

    def _counters(self) -> dict[int, SubnetCounters]:
        engine = self._src.engine
        if engine is None:
            return {}
        counters: dict[int, SubnetCounters] = engine.subnet_counters()
        return counters

    def _raw(self) -> _Raw:
        src = self._src
        m = src.metrics
        out = _Raw()
        v = out.values
        received = list(m.received)
        sent = list(m.sent)
        malformed = sum(m.malformed.values())
        v["pkt4-received"] = sum(received) + malformed
        for code, name in _RECEIVED.items():
            v[f"pkt4-{name}-received"] = received[code]
        v["pkt4-unknown-received"] = sum(received) - sum(received[c] for c in _RECEIVED)
        v["pkt4-sent"] = sum(sent)
        for code, name in _SENT.items():
            v[f"pkt4-{name}-sent"] = sent[code]
        if src.config.leasequery is not None:
            # Kea's lease_query hook makes these at load: a DHCPLEASEQUERY is its own
            # statistic there, no longer an unknown one
            v["pkt4-lease-query-received"] = received[MessageType.LEASEQUERY]
            v["pkt4-unknown-received"] -= received[MessageType.LEASEQUERY]
            for code, name in _LEASEQUERY_SENT.items():
                v[f"pkt4-lease-query-response-{name}-sent"] = sent[code]
        v["pkt4-parse-failed"] = malformed
        v["pkt4-receive-drop"] = malformed + sum(
            n for reason, n in m.dropped.items() if reason not in NOT_RECEIVE_DROPS)

        counters = self._counters()
        subnets = list(src.config.subnets)
        sizes: dict[int, int] = {}
        engine = src.engine
        if engine is not None:
            for st in engine.pool_stats():
                sizes[st.subnet_id] = sizes.get(st.subnet_id, 0) + int(st.size)
        store = src.store
        ordered = sorted(subnets, key=lambda s: int(s.network.network_address))
        spans = [(int(s.network.network_address), int(s.network.broadcast_address))
                 for s in ordered]
        in_use_of = dict(zip((s.id for s in ordered),
                             store.active_counts(spans) if store is not None else
                             [0] * len(spans), strict=True))
        shared = {s.id: s.shared_network is not None for s in subnets}
        has_pools = {s.id: bool(s.pools) for s in subnets}
        declined_total = 0
        fails = {"subnet": 0, "shared-network": 0, "no-pools": 0, "classes": 0}
        for sid, c in counters.items():
            declined_total += self._declined_now(sid, c, None)
            kind = ("no-pools" if not has_pools.get(sid, True)
                    else "shared-network" if shared.get(sid) else "subnet")
            fails[kind] += c.alloc_fail
            if kind != "no-pools":
                # Kea 2.2 counts -classes with every failure that had pools to try: a packet
                # is always in a class there (ALL), observed on a real server.
                fails["classes"] += c.alloc_fail
                # A subnet with pools none of which the client's classes allow: Kea's
                # allocator made no attempt, -no-pools too (its source; not observed).
                fails["no-pools"] += c.no_pools
        v["cumulative-assigned-addresses"] = sum(c.assigned for c in counters.values())
        v["declined-addresses"] = declined_total
        v["reclaimed-declined-addresses"] = sum(c.reclaimed_declined for c in counters.values())
        v["reclaimed-leases"] = sum(c.reclaimed for c in counters.values())
        v["v4-allocation-fail"] = sum(c.alloc_fail for c in counters.values())
        for kind, n in fails.items():
            v[f"v4-allocation-fail-{kind}"] = n
        v["v4-reservation-conflicts"] = sum(c.conflicts for c in counters.values())

        for s in sorted(subnets, key=lambda s: s.id):
            sid = s.id
            sc = counters.get(sid)
            first = int(s.network.network_address)
            last = int(s.network.broadcast_address)
            in_use = in_use_of[sid]
            declined = self._declined_now(sid, sc, (first, last)) if sc is not None else 0
            p = f"subnet[{sid}]."
            total = sizes.get(sid, 0)
            assigned = sc.assigned if sc is not None else 0
            v[p + "assigned-addresses"] = in_use  # Kea's counts a declined lease too
            v[p + "cumulative-assigned-addresses"] = assigned
            v[p + "declined-addresses"] = declined
            v[p + "reclaimed-declined-addresses"] = sc.reclaimed_declined if sc else 0
            v[p + "reclaimed-leases"] = sc.reclaimed if sc else 0
            v[p + "total-addresses"] = total
            v[p + "v4-reservation-conflicts"] = sc.conflicts if sc else 0
            fail = sc.alloc_fail if sc else 0
            kind = ("no-pools" if not s.pools else
                    "shared-network" if s.shared_network is not None else "subnet")
            for k in ("", "-classes", "-no-pools", "-shared-network", "-subnet"):
                name = p + "v4-allocation-fail" + k
                v[name] = fail if k in ("", "-" + kind) or (
                    k == "-classes" and kind != "no-pools") else 0
                if k == "-no-pools" and kind != "no-pools" and sc is not None:
                    v[name] = sc.no_pools
                out.lazy.add(name)
            out.rows.append(SubnetRow(sid, total, assigned, in_use - declined, declined))
        return out

    def _declined_now(self, sid: int, c: SubnetCounters, span: tuple[int, int] | None) -> int:
        """DECLINED leases of subnet ``sid`` now: those in the table at start-up (in the
        subnet's address range ``span``; by the engine's counts when None), plus honoured
        DECLINEs since, less declined leases reclaimed since."""
        d0, r0 = self._counts_at_start.get(sid, (0, 0))
        delta = (c.declined - d0) - (c.reclaimed_declined - r0) + self._declined_adjust.get(
            sid, 0)
        if span is None:
            return self._start_declined_of(sid) + delta
        at_start = self._declined_at_start
        first, last = span
        return (bisect.bisect_right(at_start, last) - bisect.bisect_left(at_start, first)
                + delta)

    def _start_declined_of(self, sid: int) -> int:
        for s in self._src.config.subnets:
            if s.id == sid:
                first = int(s.network.network_address)
                last = int(s.network.broadcast_address)
                at_start = self._declined_at_start
                return bisect.bisect_right(at_start, last) - bisect.bisect_left(at_start,
                                                                                first)
        return 0

    # ------------------------------------------------------------------ the view

    def _view(self) -> tuple[dict[str, Sample], _Raw]:
        raw = self._raw()
        now = self._clock()
        out: dict[str, Sample] = {}
        entries = self._entries
        for name, value in raw.values.items():
            e = entries.get(name)
            if e is None:
                if name in raw.lazy and value == 0:
                    continue  # Kea makes it at its first event
                e = entries[name] = _Entry()
            if e.removed:
                if value == e.baseline:
                    continue
                e.removed = False  # changed since its removal: back, from 0 + the change
            shown = value - e.baseline
            if shown != e.value:
                e.value = shown
                e.at = now
            out[name] = Sample(shown, e.at)
        return out, raw

    def get(self, name: str) -> Sample | None:
        """The statistic called ``name``, or None if there is none (or it is removed)."""
        return self._view()[0].get(name)

    def get_all(self) -> dict[str, Sample]:
        """Every statistic shown, by name (sorted, as Kea's answer)."""
        view = self._view()[0]
        return {k: view[k] for k in sorted(view)}

    def rows(self) -> list[SubnetRow]:
        """``stat-lease4-get``'s rows for every configured subnet, by subnet id.

        As Kea's stat_cmds: ``total-addresses`` and ``cumulative-assigned-addresses`` are the
        statistics (so a reset shows here), assigned and declined are counted in the lease
        table (state default, and declined)."""
        view, raw = self._view()
        rows = []
        for r in raw.rows:
            p = f"subnet[{r.subnet_id}]."
            total = view.get(p + "total-addresses")
            cumulative = view.get(p + "cumulative-assigned-addresses")
            rows.append(SubnetRow(r.subnet_id, total.value if total else 0,
                                  cumulative.value if cumulative else 0,
                                  r.assigned_addresses, r.declined_addresses))
        return rows

    def raw_values(self) -> dict[str, int]:
        """Kea's names with their raw values (never reset, never removed): what the
        Prometheus endpoint exposes, so that its counters only grow."""
        raw = self._raw()
        return {k: n for k, n in raw.values.items() if not (k in raw.lazy and n == 0)}

    # ------------------------------------------------------------------ changes

    def reset(self, name: str) -> bool:
        """Kea's ``statistic-reset``: the statistic shows 0 from now; False if none."""
        view, raw = self._view()
        if name not in view:
            return False
        self._reset(name, raw.values[name])
        return True

    def _reset(self, name: str, raw: int) -> None:
        e = self._entries[name]
        e.baseline = raw
        e.removed = False
        e.value = 0
        e.at = self._clock()

    def reset_all(self) -> None:
        """Kea's ``statistic-reset-all``: every statistic shown is reset."""
        view, raw = self._view()
        for name in view:
            self._reset(name, raw.values[name])

    def remove(self, name: str) -> bool:
        """Kea's ``statistic-remove``: hidden until it next changes; False if none."""
        view, raw = self._view()
        if name not in view:
            return False
        self._remove(name, raw.values[name])
        return True

    def _remove(self, name: str, raw: int) -> None:
        e = self._entries[name]
        e.baseline = raw
        e.removed = True
        e.value = None

    def remove_all(self) -> None:
        """Kea's ``statistic-remove-all``: every statistic shown is removed."""
        view, raw = self._view()
        for name in view:
            self._remove(name, raw.values[name])

    def exists(self, name: str) -> bool:
        """Whether ``statistic-get`` would show ``name`` now."""
        return name in self._view()[0]

    def config_changed(self) -> None:
        """After a reload: as Kea, which sets the subnets' sizes and recounts their leases at
        a reconfiguration, those statistics show their real values again."""
        for name, e in self._entries.items():
            if name.startswith("subnet[") and name.endswith(_RESET_BY_RELOAD):
                e.baseline = 0
                e.removed = False

    def lease_changed(self, old: Lease | None, new: Lease | None) -> None:
        """Follow a lease change made other than by a DHCP exchange or reclamation (the lease
        commands: add, update, delete, wipe), so that ``declined-addresses`` stays right.
        ``old`` is the record before (None if there was none), ``new`` after (None if
        deleted)."""
        # an import here cost ~10% of an HA partner's batch (py-spy, 2026-12-07)
        for lease, sign in ((old, -1), (new, 1)):
            if lease is not None and lease.state == _DECLINED:
                sid = int(lease.subnet_id)
                self._declined_adjust[sid] = self._declined_adjust.get(sid, 0) + sign


_DECLINED = int(LeaseState.DECLINED)


def kind_of(name: str) -> Kind:
    """Whether the Kea statistic ``name`` is a counter or a gauge."""
    if name.startswith("subnet["):
        short = name.split("].", 1)[-1]
        return KEA_SUBNET.get(short) or KEA_SUBNET_LAZY.get(short) or Kind.COUNTER
    return KEA_GLOBAL.get(name, Kind.COUNTER)
