"""Server counters and histograms, and their Prometheus exposition.

The packet path must stay cheap, so it never touches ``prometheus_client`` objects (each
``inc()`` there takes a lock): it bumps plain Python ints in lists indexed by message type and
in small dicts keyed by reason, and records latencies into fixed-bucket :class:`Histogram`
arrays. A custom collector turns those into metric families when Prometheus scrapes, on the
HTTP server's thread, into a registry of its own (never the process-global one, so that several
servers in one process, as in the tests, do not collide). Reads from that thread see a
consistent-enough snapshot: every update is a single int store under the GIL.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from fastdhcp.statistics import Kind, kind_of

#: DHCP message type names (RFC 2132 9.6, RFC 3203, RFC 4388, RFC 6926), lower case as label
#: values.
MESSAGE_TYPES: dict[int, str] = {
    0: "bootp",
    1: "discover",
    2: "offer",
    3: "request",
    4: "decline",
    5: "ack",
    6: "nak",
    7: "release",
    8: "inform",
    9: "forcerenew",
    10: "leasequery",
    11: "leaseunassigned",
    12: "leaseunknown",
    13: "leaseactive",
    14: "bulkleasequery",
    15: "leasequerydone",
}

#: Latency buckets in seconds: 50 us .. 5 s (receive to send, commit).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0,
)
#: Commit batch size buckets (leases per group commit).
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


def type_name(code: int) -> str:
    """Label value for DHCP message type ``code``."""
    return MESSAGE_TYPES.get(code, f"type{code}")


class Histogram:
    """A fixed-bucket histogram: ``observe`` is one bisect and two adds."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds: list[float] = list(bounds)
        self.counts: list[int] = [0] * (len(self.bounds) + 1)  # last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one value."""
        # bisect_left: the first bound >= value, i.e. Prometheus' "le" bucket.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self) -> tuple[list[int], float, int]:
        """Copies of (bucket counts, sum, count)."""
        return list(self.counts), self.sum, self.count

    def quantile(self, q: float, counts: Sequence[int] | None = None) -> float:
        """Upper bound of the bucket holding quantile ``q`` (0..1); inf past the last bound,
        0.0 when empty. ``counts`` may be a difference of two snapshots."""
        counts = self.counts if counts is None else counts
        total = sum(counts)
        if not total:
            return 0.0
        rank = q * total
        acc = 0
        for i, n in enumerate(counts):
            acc += n
            if acc >= rank and n:
                return self.bounds[i] if i < len(self.bounds) else float("inf")
        return float("inf")


class Metrics:
    """Every counter the service keeps, as plain Python values.

    Attributes are mutated on the event loop only; the collector reads them from the HTTP thread.
    """

    def __init__(self) -> None:
        #: datagrams received / sent, by DHCP message type (index = option 53 value).
        self.received: list[int] = [0] * 256
        self.sent: list[int] = [0] * 256
        #: datagrams (or decisions) dropped, by reason
        self.dropped: dict[str, int] = {}
        #: datagrams that did not parse, by MalformedPacket.reason
        self.malformed: dict[str, int] = {}
        self.commits = 0
        self.commit_failures = 0
        self.acks_lost = 0  #: held ACKs dropped because their commit failed
        self.send_errors = 0
        #: UDP GSO (fastdhcp._sockio): messages of several replies sent, the replies in them,
        #: GSO messages the kernel refused and that were re-sent one by one, sockets on which
        #: the kernel refused GSO altogether (it is then off for that socket)
        self.gso_sends = 0
        self.gso_datagrams = 0
        self.gso_fallbacks = 0
        self.gso_disabled = 0
        self.internal_errors = 0
        self.reloads = 0
        #: unrelayed requests (giaddr 0) whose option 82 was ignored (RFC 3046 2.1/2.2)
        self.agent_info_ignored = 0
        #: rate limiter tables, read at scrape time: (limit name, keys tracked, evictions)
        self.limiters: Callable[[], Iterable[tuple[str, int, int]]] | None = None
        self.reload_failures = 0
        #: datagrams read and thrown away while the DHCP service was disabled (dhcp-disable);
        #: not drops: Kea does not count them in pkt4-receive-drop either
        self.disabled_discards = 0
        #: DISCOVERs answered with a rapid-commit ACK (RFC 4039), counted by the packet path
        self.rapid_commits = 0
        #: ping-check (fastdhcp.service.pingcheck): addresses probed, found in use (declined),
        #: found free, probes that could not be sent (the OFFER left unprobed), DISCOVERs given
        #: up after too many addresses in use
        self.ping_checks = 0
        self.ping_conflicts = 0
        self.ping_free = 0
        self.ping_errors = 0
        self.ping_gave_up = 0
        #: RFC 6926 bulk leasequery over TCP (fastdhcp.service.leasequery_tcp): connections
        #: accepted / refused (not a requester, or over max-requester-connections), open now,
        #: queries served, reply messages sent (DHCPLEASEACTIVE, DHCPLEASEUNASSIGNED and
        #: DHCPLEASEQUERYDONE), and connections closed as idle
        self.bulk_connections = 0
        self.bulk_refused = 0
        self.bulk_open = 0
        self.bulk_queries = 0
        self.bulk_replies = 0
        self.bulk_idle_closed = 0
        self.offer_latency = Histogram(LATENCY_BUCKETS)
        self.ack_latency = Histogram(LATENCY_BUCKETS)
        self.commit_latency = Histogram(LATENCY_BUCKETS)
        self.commit_batch = Histogram(BATCH_BUCKETS)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` drops for ``reason`` (numbers in it are folded, see :func:`label`)."""
        key = _LABELS.get(reason) or label(reason)
        d = self.dropped
        d[key] = d.get(key, 0) + n

    def bad(self, reason: str) -> None:
        """Count one malformed datagram (numbers in the reason are folded)."""
        key = _LABELS.get(reason) or label(reason)
        d = self.malformed
        d[key] = d.get(key, 0) + 1


_LABELS: dict[str, str] = {}
_DIGITS = re.compile(r"\d+")


def label(reason: str) -> str:
    """A reason as a metric label: every number becomes ``N`` so that the label set stays small
    ("too short: 4 bytes" and "too short: 17 bytes" are one series), cached."""
    key = _DIGITS.sub("N", reason)
    if len(_LABELS) > 4096:  # reasons are templates: this only bounds a pathological input
        _LABELS.clear()
    _LABELS[reason] = key
    return key


#: What the pool collector needs: (subnet id, subnet text, pool text, size, used) rows.
PoolRows = Callable[[], Iterable[tuple[int, str, str, int, int]]]
#: Kea's statistics by name, raw (never reset): ``fastdhcp.statistics.Statistics.raw_values``.
KeaValues = Callable[[], "dict[str, int] | None"]


@dataclass(frozen=True, slots=True)
class HAGauges:
    """What the HA gauges show, read on the loop at scrape time (fastdhcp.ha.service)."""

    states: tuple[str, ...]  #: every HA state name (each a series of the state sets)
    state: str  #: this server's state
    partner_state: str  #: the partner's last known state ("unavailable" when not in touch)
    unsent_updates: int  #: unsent-update-count
    update_rtt: float | None  #: seconds of the last lease update to the partner


class ServerCollector(Collector):
    """Exposes a :class:`Metrics` (and pool use read at scrape time) as Prometheus families."""

    def __init__(
        self,
        metrics: Metrics,
        pool_rows: PoolRows,
        leases: Callable[[], int | None] | None = None,
        kea: KeaValues | None = None,
        ha: Callable[[], HAGauges | None] | None = None,
    ) -> None:
        self._m = metrics
        self._pool_rows = pool_rows
        self._leases = leases
        self._kea = kea
        self._ha = ha

    def describe(self) -> Iterable[Metric]:
        # No describe-time work: collect() reads live engine state, which must not run when
        # the collector is registered.
        return []

    def collect(self) -> Iterator[Metric]:
        m = self._m
        fam = CounterMetricFamily(
            "fastdhcp_packets_received", "DHCP datagrams received, by message type",
            labels=["type"],
        )
        for code, n in enumerate(list(m.received)):
            if n:
                fam.add_metric([type_name(code)], n)
        yield fam
        fam = CounterMetricFamily(
            "fastdhcp_packets_sent", "DHCP replies sent, by message type", labels=["type"]
        )
        for code, n in enumerate(list(m.sent)):
            if n:
                fam.add_metric([type_name(code)], n)
        yield fam
        fam = CounterMetricFamily(
            "fastdhcp_dropped", "Requests dropped without a reply, by reason", labels=["reason"]
        )
        for reason, n in sorted(dict(m.dropped).items()):
            fam.add_metric([reason], n)
        yield fam
        fam = CounterMetricFamily(
            "fastdhcp_malformed", "Datagrams that are not valid DHCPv4, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(dict(m.malformed).items()):
            fam.add_metric([reason], n)
        yield fam
        for name, doc, value in (
            ("fastdhcp_commits", "Group commits to the lease database", m.commits),
            ("fastdhcp_commit_failures", "Group commits that failed", m.commit_failures),
            ("fastdhcp_acks_lost", "ACKs not sent because their commit failed", m.acks_lost),
            ("fastdhcp_send_errors", "Replies the kernel refused to send", m.send_errors),
            ("fastdhcp_gso_sends", "UDP GSO messages sent (several replies to one address "
             "in one message)", m.gso_sends),
            ("fastdhcp_gso_datagrams", "Replies sent inside UDP GSO messages", m.gso_datagrams),
            ("fastdhcp_gso_fallbacks", "UDP GSO messages refused by the kernel and re-sent "
             "one reply a message", m.gso_fallbacks),
            ("fastdhcp_gso_disabled", "Sockets on which the kernel refused UDP GSO (off "
             "since)", m.gso_disabled),
            ("fastdhcp_internal_errors", "Unexpected exceptions in the packet path",
             m.internal_errors),
            ("fastdhcp_reloads", "Configuration reloads applied", m.reloads),
            ("fastdhcp_relay_info_ignored", "Unrelayed requests whose option 82 was ignored "
             "(RFC 3046)", m.agent_info_ignored),
            ("fastdhcp_reload_failures", "Configuration reloads rejected", m.reload_failures),
            ("fastdhcp_disabled_discards", "Datagrams discarded while the DHCP service was "
             "disabled (dhcp-disable)", m.disabled_discards),
            ("fastdhcp_rapid_commits", "DISCOVERs answered with a rapid-commit ACK (RFC 4039)",
             m.rapid_commits),
            ("fastdhcp_ping_checks", "Addresses probed by ping-check before an OFFER",
             m.ping_checks),
            ("fastdhcp_ping_conflicts", "Probed addresses that answered (declined)",
             m.ping_conflicts),
            ("fastdhcp_ping_free", "Probed addresses that did not answer (offered)",
             m.ping_free),
            ("fastdhcp_ping_errors", "Probes that could not be sent (OFFER sent unprobed)",
             m.ping_errors),
            ("fastdhcp_ping_gave_up", "DISCOVERs dropped after too many addresses in use",
             m.ping_gave_up),
            ("fastdhcp_bulk_leasequery_connections", "Bulk leasequery (RFC 6926) TCP "
             "connections accepted", m.bulk_connections),
            ("fastdhcp_bulk_leasequery_refused", "Bulk leasequery connections refused (not a "
             "requester, or too many)", m.bulk_refused),
            ("fastdhcp_bulk_leasequery_queries", "Bulk leasequery queries served",
             m.bulk_queries),
            ("fastdhcp_bulk_leasequery_replies", "Bulk leasequery reply messages sent",
             m.bulk_replies),
            ("fastdhcp_bulk_leasequery_idle_closed", "Bulk leasequery connections closed as "
             "idle (max-requester-idle-time)", m.bulk_idle_closed),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("fastdhcp_bulk_leasequery_open",
                                "Bulk leasequery connections open now", value=m.bulk_open)
        for name, doc, h in (
            ("fastdhcp_offer_latency_seconds", "DISCOVER received to OFFER sent", m.offer_latency),
            ("fastdhcp_ack_latency_seconds", "REQUEST received to ACK sent (includes the commit)",
             m.ack_latency),
            ("fastdhcp_commit_seconds", "First ACK held in a batch to the batch committed",
             m.commit_latency),
            ("fastdhcp_commit_batch_size", "ACKs released per group commit", m.commit_batch),
        ):
            counts, total, _ = h.snapshot()
            buckets: list[tuple[str, float]] = []
            acc = 0
            for bound, n in zip(h.bounds + [float("inf")], counts, strict=True):
                acc += n
                buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), acc))
            yield HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total)
        if m.limiters is not None:
            tracked = GaugeMetricFamily(
                "fastdhcp_rate_limit_tracked", "Keys in a rate limiter's table",
                labels=["limit"])
            evicted = CounterMetricFamily(
                "fastdhcp_rate_limit_evictions", "Keys evicted from a rate limiter's table "
                "(many: a storm of new clients)", labels=["limit"])
            for name, keys, evictions in m.limiters():
                tracked.add_metric([name], keys)
                evicted.add_metric([name], evictions)
            yield tracked
            yield evicted
        size = GaugeMetricFamily(
            "fastdhcp_pool_size", "Addresses in the pool", labels=["subnet_id", "subnet", "pool"]
        )
        used = GaugeMetricFamily(
            "fastdhcp_pool_used", "Addresses in use (bound, declined, offered, reserved)",
            labels=["subnet_id", "subnet", "pool"],
        )
        ssize = GaugeMetricFamily(
            "fastdhcp_subnet_size", "Addresses in the subnet's pools",
            labels=["subnet_id", "subnet"],
        )
        sused = GaugeMetricFamily(
            "fastdhcp_subnet_used", "Pool addresses in use in the subnet",
            labels=["subnet_id", "subnet"],
        )
        per_subnet: dict[tuple[str, str], list[int]] = {}
        try:
            rows = list(self._pool_rows())
        except Exception:  # a scrape during a reload must not fail the whole page
            rows = []
        for sid, subnet, pool, psize, pused in rows:
            size.add_metric([str(sid), subnet, pool], psize)
            used.add_metric([str(sid), subnet, pool], pused)
            acc2 = per_subnet.setdefault((str(sid), subnet), [0, 0])
            acc2[0] += psize
            acc2[1] += pused
        for key, (s, u) in per_subnet.items():
            ssize.add_metric(list(key), s)
            sused.add_metric(list(key), u)
        yield size
        yield used
        yield ssize
        yield sused
        if self._leases is not None:
            records: int | None
            try:
                records = self._leases()
            except Exception:
                records = None
            if records is not None:
                yield GaugeMetricFamily(
                    "fastdhcp_lease_records", "Lease records in the database", value=records
                )
        if self._kea is not None:
            yield from _kea_families(self._kea)
        if self._ha is not None:
            yield from _ha_families(self._ha)


class HACollector(Collector):
    """The HA gauges alone: the control front of a multi-worker server, which runs the HA
    service beside its workers' pages (fastdhcp.service.front_ha)."""

    def __init__(self, ha: Callable[[], HAGauges | None]) -> None:
        self._ha = ha

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from _ha_families(self._ha)


def _ha_families(ha: Callable[[], HAGauges | None]) -> Iterator[Metric]:
    """The HA state sets (1 for the current state, 0 for the others), unsent updates and the
    last update's round trip."""
    try:
        g = ha()
    except Exception:  # as the pool rows: a scrape must not fail the page
        g = None
    if g is None:
        return
    for name, doc, now in (
            ("fastdhcp_ha_state", "This server's HA state (1: the current one)", g.state),
            ("fastdhcp_ha_partner_state", "The partner's last known HA state (1: the current "
             "one)", g.partner_state)):
        fam = GaugeMetricFamily(name, doc, labels=["state"])
        for st in g.states:
            fam.add_metric([st], 1 if st == now else 0)
        yield fam
    yield GaugeMetricFamily("fastdhcp_ha_unsent_updates", "Lease changes not sent to the "
                            "partner (Kea's unsent-update-count)", value=g.unsent_updates)
    if g.update_rtt is not None:
        yield GaugeMetricFamily("fastdhcp_ha_update_rtt_seconds", "Round trip of the last "
                                "lease update to the partner", value=g.update_rtt)


def _kea_families(kea: KeaValues) -> Iterator[Metric]:
    """Kea's statistics under Kea's names (the values ``statistic-get`` shows before any
    ``statistic-reset``): counters and gauges as two families labelled by ``name``."""
    try:
        values = kea()
    except Exception:  # as the pool rows: a scrape during a reload must not fail the page
        values = None
    if values is None:
        return
    counters = CounterMetricFamily(
        "fastdhcp_kea_statistic", "Kea's statistics that count events, by Kea's name "
        "(statistic-get-all)", labels=["name"])
    gauges = GaugeMetricFamily(
        "fastdhcp_kea_gauge", "Kea's statistics that are levels (addresses), by Kea's name "
        "(statistic-get-all)", labels=["name"])
    for name, n in values.items():
        (gauges if kind_of(name) is Kind.GAUGE else counters).add_metric([name], n)
    yield counters
    yield gauges


def registry_of(*collectors: Collector) -> CollectorRegistry:
    """A registry of its own (never the process-global one) holding ``collectors``: what the
    metrics endpoint serves and the ``metrics-get`` command renders (a worker of a
    multi-worker server has no endpoint of its own; the control front gathers them)."""
    registry = CollectorRegistry(auto_describe=False)
    for c in collectors:
        registry.register(c)
    return registry


class MetricsServer:
    """The Prometheus HTTP endpoint (``prometheus_client.start_http_server``) serving
    ``registry``, on its own daemon thread."""

    def __init__(self, registry: CollectorRegistry, address: str) -> None:
        from prometheus_client import start_http_server

        host, port = parse_address(address)
        self.registry = registry
        self._httpd: Any
        self._thread: threading.Thread
        self._httpd, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.address: tuple[str, int] = self._httpd.server_address[:2]

    def close(self) -> None:
        """Stop the HTTP server and join its thread."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` (or ``":port"``, ``"port"``) -> (host, port); host defaults to 127.0.0.1."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"metrics address {text!r}: port is not a number") from None
    if not 0 <= p <= 65535:
        raise ValueError(f"metrics address {text!r}: port out of range")
    return host, p
