"""Relay-mode DHCPv4 DORA load driver (the project's own perfdhcp, compiled hot path).

The driver behaves as one DHCP relay agent (RFC 2131 section 4.1, RFC 1542 section 4): it binds
``relay_ip:server_port``, sends DISCOVERs with giaddr = relay_ip and hops = 1 to the server, and
the server answers the relay at giaddr on the server port. For each client (chaddr taken from a
counter starting at ``first_mac``, wrapping after ``clients``) it plays DISCOVER -> OFFER ->
REQUEST (SELECTING, RFC 2131 section 4.3.2: option 50 = the offered yiaddr, option 54 = the
offer's server identifier, same xid) -> ACK, and counts NAKs and timeouts.

Rate control: ``rate > 0`` is an open loop (exchanges start on a fixed schedule, whatever the
server does: that is how overload shows as drops); ``rate == 0`` is a closed loop that keeps
``window`` exchanges in flight (the server's maximum rate, with a bounded queue).

Every run is bounded: it stops starting exchanges at ``duration`` seconds or after
``max_exchanges``, then waits at most ``timeout`` for the last replies. Latencies are measured
from the send to the kernel's receive stamp of the reply, into log-linear histograms (3 %
buckets) that give p50/p90/p99/p99.9 in milliseconds.

CLI: ``python3 -m fastdhcp.loadgen 127.0.0.1:67 --relay 127.0.0.2 --rate 5000 --duration 10``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import socket
import sys
from collections.abc import Callable
from typing import Any

from fastdhcp._loadgen import Driver

__all__ = ["LoadStats", "auto_tick", "run_load", "main"]

#: Percentile keys of ``LoadStats.offer_latency`` / ``ack_latency``.
PERCENTILES = ("p50", "p90", "p99", "p99.9")


@dataclasses.dataclass(frozen=True, slots=True)
class LoadStats:
    """Counters and latencies of one load run (or of a run in progress, for ``progress``)."""

    discovers: int
    """DISCOVERs sent (= exchanges started)."""
    offers: int
    """OFFERs matched to an exchange waiting for one."""
    requests: int
    """REQUESTs sent (one per matched OFFER)."""
    acks: int
    """ACKs matched to an exchange waiting for one (= exchanges completed)."""
    naks: int
    """NAKs received for an exchange in flight."""
    timeouts: int
    """Exchanges abandoned after ``timeout`` without an answer, in either phase."""
    elapsed: float
    """Seconds from the first DISCOVER to the later of the last send and the last answer."""
    exchanges_per_s: float
    """``acks / elapsed``: completed DORA exchanges per second."""
    offer_latency: dict[str, float]
    """DISCOVER -> OFFER percentiles in ms: keys p50, p90, p99, p99.9."""
    ack_latency: dict[str, float]
    """REQUEST -> ACK percentiles in ms."""
    in_flight: int = 0
    """Exchanges neither answered nor timed out (0 once the run is over)."""
    stray: int = 0
    """Replies that matched no exchange in flight (late after a timeout, duplicates)."""
    malformed: int = 0
    """Datagrams that were not well-formed BOOTREPLYs."""
    send_errors: int = 0
    """Datagrams the kernel refused to send (their exchanges time out)."""
    cpu_seconds: float = 0.0
    """CPU time (user + system) of the driver's loop thread."""
    done: bool = True
    """False for a progress snapshot of a run still going."""
    leases: tuple[tuple[int, int], ...] = ()
    """(chaddr as int, yiaddr as int) of every ACK, in arrival order, with ``collect=True``."""

    @property
    def cpu_per_exchange_us(self) -> float:
        """Driver CPU microseconds per completed exchange (0.0 when none completed)."""
        return self.cpu_seconds / self.acks * 1e6 if self.acks else 0.0

    @property
    def drop_ratio(self) -> float:
        """Fraction of started exchanges that did not complete (timeouts + NAKs)."""
        return (self.timeouts + self.naks) / self.discovers if self.discovers else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready), without ``leases``, plus the derived figures."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "leases"}
        d["cpu_per_exchange_us"] = self.cpu_per_exchange_us
        d["drop_ratio"] = self.drop_ratio
        return d

    def summary(self) -> str:
        """A few human-readable lines."""
        o, a = self.offer_latency, self.ack_latency
        return "\n".join([
            f"exchanges: {self.discovers} started, {self.acks} ACKed, {self.naks} NAKed, "
            f"{self.timeouts} timed out ({self.drop_ratio:.2%} dropped), "
            f"{self.stray} stray replies",
            f"rate: {self.exchanges_per_s:,.0f} DORA/s over {self.elapsed:.2f} s",
            "DISCOVER->OFFER ms: " + "  ".join(f"{k} {o[k]:.3f}" for k in PERCENTILES),
            "REQUEST->ACK ms:    " + "  ".join(f"{k} {a[k]:.3f}" for k in PERCENTILES),
            f"driver CPU: {self.cpu_seconds:.3f} s, {self.cpu_per_exchange_us:.1f} us per exchange",
        ])


def auto_tick(rate: float) -> float:
    """Default loop tick: 1 ms, longer at low open-loop rates so a wakeup serves ~4 exchanges.

    A wakeup costs tens of microseconds of CPU on a virtual machine, more than the packets it
    handles; batching several exchanges per wakeup is most of what keeps the driver cheap.
    Latencies are unaffected (they come from the kernel's receive stamps); only the REQUEST
    may leave up to one tick after its OFFER arrived, and DISCOVERs leave in small bursts.
    """
    if rate <= 0:
        return 0.001
    return min(0.004, max(0.001, 4.0 / rate))


def _snapshot(d: Driver, done: bool, collect: bool) -> LoadStats:
    elapsed = d.elapsed
    return LoadStats(
        discovers=d.discovers,
        offers=d.offers,
        requests=d.requests,
        acks=d.acks,
        naks=d.naks,
        timeouts=d.timeouts,
        elapsed=elapsed,
        exchanges_per_s=d.acks / elapsed if elapsed > 0 else 0.0,
        offer_latency=d.percentiles("offer"),
        ack_latency=d.percentiles("ack"),
        in_flight=d.in_flight,
        stray=d.stray,
        malformed=d.malformed,
        send_errors=d.send_errors,
        cpu_seconds=d.cpu_seconds,
        done=done,
        leases=tuple(d.acked_leases()) if (collect and done) else (),
    )


def run_load(
    server: tuple[str, int],
    relay_ip: str,
    *,
    clients: int = 100_000,
    rate: float = 0,
    window: int = 256,
    duration: float = 5.0,
    max_exchanges: int | None = None,
    timeout: float = 1.0,
    first_mac: int = 0,
    progress: Callable[[LoadStats], None] | None = None,
    progress_interval: float = 0.5,
    tick: float | None = None,
    collect: bool = False,
    relay_port: int | None = None,
) -> LoadStats:
    """Drive relayed DORA exchanges at ``server`` and return what happened.

    ``server`` is (address, port); the driver binds ``relay_ip`` on that same port, since a
    server answers a relay at giaddr on its own port (RFC 2131 section 4.1). ``rate`` > 0 starts
    exchanges at that many per second (open loop); 0 keeps ``window`` exchanges in flight.
    Stops starting exchanges at ``duration`` s or after ``max_exchanges``, then waits at most
    ``timeout`` s for answers; an exchange unanswered for ``timeout`` s counts as a timeout.
    ``clients`` distinct chaddrs are used in turn, from ``first_mac`` (a 48-bit int) upward.
    ``progress(stats)`` is called every ``progress_interval`` s with a snapshot.

    Beyond the contract: ``tick`` (s) batches the loop's work per tick (0 = react to every
    datagram, more CPU; None = ``auto_tick(rate)``); ``collect`` returns the ACKed
    (chaddr, address) pairs in ``LoadStats.leases``; ``relay_port`` binds the relay on another
    port than the server's (Kea moved with ``-p`` still answers relays at giaddr:67).
    Raises ``OSError`` if the relay address cannot be bound, ``ValueError`` for bad arguments.
    """
    host, port = server
    if clients < 1 or window < 1:
        raise ValueError("clients and window must be >= 1")
    if progress_interval <= 0:
        raise ValueError("progress_interval must be > 0")
    server_ip = socket.gethostbyname(host)
    if tick is None:
        tick = auto_tick(rate)
    d = Driver(
        server_ip, int(port), relay_ip, clients=clients, rate=float(rate), window=window,
        duration=float(duration), max_exchanges=max_exchanges, timeout=float(timeout),
        first_mac=first_mac, tick=float(tick), collect=collect, relay_port=relay_port or 0,
    )
    try:
        # Slices return to Python regularly so that signals (Ctrl-C) and progress get a turn.
        slice_s = min(progress_interval, 0.25) if progress is None else progress_interval
        while not d.step(slice_s):
            if progress is not None:
                progress(_snapshot(d, False, False))
        return _snapshot(d, True, collect)
    finally:
        d.close()


def _parse_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, 67
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad server address {text!r}: want HOST[:PORT]") from None


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python3 -m fastdhcp.loadgen",
        description="Relay-mode DHCPv4 DORA load driver (binds RELAY:PORT; needs root for 67).",
    )
    p.add_argument("server", type=_parse_server,
                   help="server address HOST[:PORT] (default port 67)")
    p.add_argument("-l", "--relay", default="127.0.0.2",
                   help="relay (giaddr) address to bind and send from (default 127.0.0.2)")
    p.add_argument("--relay-port", type=int, default=None,
                   help="port to bind on the relay address (default: the server's port)")
    p.add_argument("-r", "--rate", type=float, default=0.0,
                   help="exchanges per second, open loop; 0 = closed loop with --window")
    p.add_argument("-w", "--window", type=int, default=256,
                   help="exchanges in flight in closed loop (default 256)")
    p.add_argument("-R", "--clients", type=int, default=100_000,
                   help="distinct clients (chaddrs) used in turn (default 100000)")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="seconds (default 5)")
    p.add_argument("-n", "--max-exchanges", type=int, default=None,
                   help="stop after starting this many exchanges")
    p.add_argument("-t", "--timeout", type=float, default=1.0,
                   help="seconds to wait for an answer (default 1)")
    p.add_argument("--first-mac", type=lambda s: int(s.replace(":", ""), 16), default=0,
                   help="first chaddr, hex (default 000000000000)")
    p.add_argument("--tick", type=float, default=None,
                   help="ms of work batched per loop turn; 0 = per datagram "
                        "(default: 1, up to 4 at low rates)")
    p.add_argument("--progress", type=float, default=1.0,
                   help="seconds between progress lines on stderr; 0 = none (default 1)")
    p.add_argument("--json", action="store_true", help="print the final stats as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry: exit 0 when at least one exchange completed, 1 when none did, 2 on errors."""
    args = _build_parser().parse_args(argv)

    def report(s: LoadStats) -> None:
        print(f"[{s.elapsed:6.1f} s] sent {s.discovers}  acked {s.acks}  "
              f"timeouts {s.timeouts}  in flight {s.in_flight}  "
              f"{s.exchanges_per_s:,.0f}/s", file=sys.stderr, flush=True)

    try:
        stats = run_load(
            args.server, args.relay, clients=args.clients, rate=args.rate, window=args.window,
            duration=args.duration, max_exchanges=args.max_exchanges, timeout=args.timeout,
            first_mac=args.first_mac, relay_port=args.relay_port,
            tick=None if args.tick is None else args.tick / 1000.0,
            progress=report if args.progress > 0 else None,
            progress_interval=args.progress if args.progress > 0 else 0.5,
        )
    except (OSError, ValueError) as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(stats.as_dict(), indent=2) if args.json else stats.summary())
    return 0 if stats.acks else 1


if __name__ == "__main__":
    sys.exit(main())
