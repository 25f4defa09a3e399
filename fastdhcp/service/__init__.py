"""The running server: sockets, signals, timers and the group-commit pump (the only I/O).

The package, by job: :mod:`.server` (:class:`Server`: lifecycle, reload, the read loop, commit
callbacks, timers), :mod:`.endpoints` (sockets, read pacing, layer-2 unicast),
:mod:`.report_log` (the packet path's report into the log), :mod:`.stats_line` (the periodic
summary), :mod:`.notify` (systemd), :mod:`.ratelog` (bounded log rates), :mod:`.pingcheck`
(ping-check: ICMP probes of held OFFERs' addresses), :mod:`.ha_gate` (HA's allocation share,
burst counts and the ACK gate), :mod:`.leasequery_tcp` (the RFC 6926 bulk listener),
:mod:`.supervisor` (``[server] workers`` > 1: the sockets, the worker processes, restarts and
signals), :mod:`.worker` (what a Server does as one worker: its sockets, its slice, the NAK of a
binding its commit check refused), :mod:`.worker_paths` (the workers' private sockets),
:mod:`.control_front` (the configured control sockets in front of the workers) and
:mod:`.front_metrics` (their metrics with a ``worker`` label).

Theory of operation
-------------------
One non-blocking UDP socket per configured interface (``0.0.0.0:port`` + ``SO_BINDTODEVICE``,
its :class:`~fastdhcp.engine.Link` is the interface's name and IPv4) and one per listen address
(``Link("", address)``). Each socket is watched with ``loop.add_reader``; when it is readable
the service drains it (up to :data:`~.endpoints.READ_BATCH` datagrams), and for each datagram runs
``parse -> engine.handle -> send``, in compiled code (:mod:`fastdhcp._packetpath`, which counts
everything itself and reports the rare events, such as a malformed datagram, in a
:class:`~fastdhcp.pathreport.PathReport` this module drains after each burst to log them):

- an OFFER or NAK (no binding to commit) is sent at once;
- an ACK whose :class:`~fastdhcp.engine.Decision` carries a ``binding`` is *held*: the service
  gives the committer a :class:`~fastdhcp._packetpath.HeldAck` (endpoint, reply, held_at) and the
  reply leaves only in ``on_committed``, after the writer thread has made the batch durable
  (RFC 2131 3.1 step 4). ``on_failed`` drops those ACKs (counted), and asks the engine to roll
  the bindings back; the clients retransmit.
- after each drained burst the service calls ``committer.kick()``, so one burst of requests
  becomes one group commit.

Read pacing: most of the CPU a DORA costs at a few thousand per second is per wake-up, not per
datagram (epoll, the context switch, uvloop's dispatch, cold caches: at 3,000 DORA/s perfdhcp
a wake-up found ~3 datagrams). So after a burst that read something, the socket leaves epoll
and is read again a pace later, by a timer; the first tick that finds nothing puts it back in
epoll. A lone request is still answered at once; under load, a wake-up serves every datagram of
the last pace and one ``sendmmsg`` sends their replies. The pace adapts to the socket's arrival
rate (:func:`~.endpoints.pace_for`): the time :data:`~.endpoints.PACE_TARGET` datagrams take
to arrive, from :data:`~.endpoints.MIN_PACE` up to ``server.read-pace-ms``
(:data:`~.endpoints.READ_PACE`): 2 ms at 3,000 DORA/s, where
each wake-up saved is CPU saved, 0.7 ms at 11,000/s, where that already fills a read. The tick
is a timerfd watched by the loop (``fastdhcp._sockio.PaceTimer``), not a uvloop timer, whose
resolution is a whole millisecond.

Garbage collection: every DORA leaves a few long-lived container objects (leases, held
offers), and the default collector rescans all of them at each full collection: 30 ms stalls of
the loop (and so of every OFFER and ACK in flight) after a few seconds at 10,000 DORA/s, longer
as the table grows. The packet path makes no reference cycles (the collections under load find
nothing), so the server freezes what is alive (``gc.freeze()``, O(1)) at start and every
:data:`~.server.GC_FREEZE_INTERVAL` seconds: a collection only ever scans what was allocated
since the last freeze. A reference cycle that becomes garbage more than one interval after it
was made is not collected (refcounting still frees everything else).

The writer thread and the loop share the GIL: the service lowers the interpreter's switch
interval to :data:`~.server.SWITCH_INTERVAL` while it runs, so that neither waits the default
5 ms for the other (the writer after each fsync, the loop while the writer encodes a batch).

Between parse and engine, :class:`fastdhcp.limits.EdgeGuard` (when configured) drops relayed
requests from untrusted relays and requests over the per-client or per-relay rate, and a request
that was not relayed has its option 82 ignored (RFC 3046 2.1/2.2,
``Message.ignore_unrelayed_agent_info``).

Malformed datagrams (``MalformedPacket``), engine drops (BOOTREPLYs among them) and any unexpected
exception are counted by reason and logged at a bounded rate; nothing in the packet path can
stop the loop.

Where a reply goes is decided by the engine (RFC 2131 4.1, ``fastdhcp.engine.reply_destination``):
the service
only turns ``Decision.dest_ip/dest_port`` into a ``sendto``, and for ``Decision.l2_unicast``
injects an ARP entry for ``yiaddr -> chaddr`` on the receiving interface and unicasts, falling
back to the broadcast destination when it cannot (no ``CAP_NET_ADMIN``, not an interface
socket).

Timers: ``engine.reclaim`` at the time it asks for; a one-line statistics summary every
``stats-interval`` seconds. Signals (installed by :meth:`Server.serve_forever`): SIGTERM/SIGINT
stop intake, flush the pending commits and send their ACKs, close the store; SIGHUP reloads the
configuration (a config that does not load is logged and the running one keeps serving).

The control channel (``fastdhcp.control``) can do what the signals do: ``config-set`` and
``config-reload`` apply a configuration as SIGHUP does (:meth:`Server.apply_config`,
:meth:`Server.reload_from_file`, which report their problems back), ``shutdown`` stops as
SIGTERM does once its answer has left (:meth:`Server.request_shutdown`). ``dhcp-disable``
makes every socket read discard (``DatagramIO.discard``): one flag tested per burst, in
Python, is all the enabled path pays; the compiled path knows nothing of it
(:class:`fastdhcp.dhcp_state.DhcpServiceState` holds who disabled it).
"""

from fastdhcp.service.endpoints import (
    MIN_PACE,
    PACE_TARGET,
    READ_BATCH,
    READ_PACE,
    Endpoint,
    pace_for,
)
from fastdhcp.service.notify import sd_notify
from fastdhcp.service.ratelog import RateLimitedLog
from fastdhcp.service.server import (
    GC_FREEZE_INTERVAL,
    SWITCH_INTERVAL,
    ReloadResult,
    Server,
    StartupError,
)

__all__ = ["GC_FREEZE_INTERVAL", "MIN_PACE", "PACE_TARGET", "READ_BATCH", "READ_PACE",
           "SWITCH_INTERVAL", "Endpoint", "RateLimitedLog", "ReloadResult", "Server",
           "StartupError", "pace_for", "sd_notify"]
