# cython: language_level=3
"""The service's per-datagram path, compiled: read a burst, parse, guard, decide, queue or hold
each reply, send, count.

Why compiled: at 20,000 DORA/s the event-loop thread is the server's ceiling, and a fifth of its
active time was this glue in Python (a tuple per received datagram, a method call per datagram
and per reply, attribute lookups, a histogram ``observe`` per reply), around an engine and a
codec that were already compiled. Here a burst is read straight out of the ``DatagramIO``
receive slots, each datagram goes through ``parse`` and ``Engine.handle`` at C level, and the
latencies of a sent batch are summed into C arrays and added to the Python histograms once.

What is rare stays in Python, on the :class:`fastdhcp.service.Server` passed in (``server``):
logging and counting a malformed datagram (``_malformed``), a BOOTREPLY (``_bootreply``), a
guard or engine drop (``_guard_dropped``, ``_engine_dropped``), a failed receive or send
(``_recv_failed``, ``_send_failed``), an unexpected exception (``_internal_error``), the
debug line (``_log_decision``), and the layer-2 unicast of a reply to a client without an
address (``_dest_ip``: ARP injection). The service builds a new :class:`PacketPath` whenever
one of its inputs (engine, guard, log level) changes.

Semantics are those the service documents (``fastdhcp/service.py``): an OFFER or NAK is queued
on the endpoint's ``out`` list and leaves with the burst's ``sendmmsg``; an ACK that carries a
binding is held, as ``(endpoint, item, held_at)``, until its group commit is durable; items are
``(reply, dest_ip, dest_port, received_at)`` with times from ``CLOCK_MONOTONIC`` (Python's
``time.perf_counter``).
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint32_t

from fastdhcp._codec cimport Message, OFF_GIADDR, OFF_OP, OPT_MESSAGE_TYPE, OPT_RELAY_AGENT
from fastdhcp._codec cimport fd_load_be32, parse
from fastdhcp._engine cimport Decision, Engine
from fastdhcp._sockio cimport DatagramIO, RECV_BATCH, RECV_SIZE
from fastdhcp._sysnet cimport CLOCK_MONOTONIC, MSG_TRUNC, clock_gettime, ntohl, ntohs, timespec

from fastdhcp.errors import MalformedPacket
from fastdhcp.limits import strip_agent_info

_TRUNCATED = "datagram larger than 65536 bytes"


cdef inline double _monotonic() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


@cython.final
cdef class PacketPath:
    """The compiled packet path of one server configuration; see the module docstring.

    ``server`` answers the rare cases, ``engine`` (an :class:`fastdhcp.engine.Engine`) decides, ``metrics`` is the server's
    :class:`fastdhcp.metrics.Metrics`, ``guard`` an :class:`fastdhcp.limits.EdgeGuard` or None,
    ``hold`` takes the burst's held ACK tokens (``GroupCommitter.hold_many``), ``debug`` turns
    on one log line per decision.
    """

    def __init__(self, server, engine, metrics, guard, hold, bint debug):
        cdef Py_ssize_t i
        self.server = server
        self.engine = engine
        # the compiled engine is called at C level; anything else (a test's stand-in) by name
        self.cengine = engine if type(engine) is Engine else None
        self.metrics = metrics
        self.guard = guard
        self.hold = hold
        self.debug = debug
        self.received = metrics.received
        self.sent = metrics.sent
        self.offer_latency = metrics.offer_latency
        self.ack_latency = metrics.ack_latency
        bounds = self.offer_latency.bounds
        if list(bounds) != list(self.ack_latency.bounds) or len(bounds) > MAX_BUCKETS:
            raise ValueError("offer and ack latency histograms need the same bounds "
                             f"(at most {MAX_BUCKETS})")
        self.nbounds = len(bounds)
        for i in range(self.nbounds):
            self.bounds[i] = bounds[i]

    cpdef int read(self, object ep, int limit, double now, double t0) except -1:
        """Read and handle up to ``limit`` datagrams from ``ep`` (an Endpoint): its replies
        are queued on ``ep.out`` or held; returns how many were read. ``now`` is the wall
        clock (lease times), ``t0`` the monotonic receive time of the burst."""
        cdef DatagramIO io = <DatagramIO?>ep.io
        cdef list out = ep.out
        cdef list held = []
        cdef object link = ep.link
        cdef int n = 0, got, i
        cdef size_t size
        cdef bytes data
        while n < limit:
            try:
                got = io.recv_c(min(limit - n, <int>RECV_BATCH))
            except OSError as exc:
                self.server._recv_failed(ep, exc)
                break
            for i in range(got):
                if io.rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC:
                    self.metrics.bad(_TRUNCATED)
                    continue
                size = min(<size_t>io.rmsgs[i].msg_len, <size_t>RECV_SIZE)
                data = PyBytes_FromStringAndSize(<char*>io.riov[i].iov_base, size)
                self._datagram(ep, link, out, held, data, ntohl(io.raddr[i].sin_addr.s_addr),
                               ntohs(io.raddr[i].sin_port), now, t0)
            n += got
            if got < <int>RECV_BATCH:  # drained: save the EAGAIN call
                break
        if held:
            self.hold(held)
        return n

    cdef _datagram(self, object ep, object link, list out, list held, bytes data,
                   uint32_t src_ip, int src_port, double now, double t0):
        """One datagram: parse, decide, queue the reply or hold it. Never raises."""
        cdef Message msg
        cdef Decision d
        cdef const unsigned char *p
        cdef int mtype = 0
        cdef object dest
        cdef tuple item
        try:
            try:
                msg = parse(data)
            except MalformedPacket as exc:
                self.server._malformed(ep, exc, src_ip, src_port)
                return
            if msg._buf[OFF_OP] != 1:
                self.server._bootreply(ep, msg, src_ip, src_port)
                return
            if msg._view(OPT_MESSAGE_TYPE, &p) == 1:
                mtype = p[0]
            self.received[mtype] += 1
            if self.guard is not None:
                why = self.guard.check(msg, src_ip, t0)  # t0: monotonic
                if why is not None:
                    self.server._guard_dropped(ep, msg, why, src_ip, src_port)
                    return
            if fd_load_be32(msg._buf + OFF_GIADDR) == 0 and msg._view(OPT_RELAY_AGENT, &p) >= 0:
                # RFC 3046 2.1/2.2: not relayed, so its option 82 is nobody's to trust
                # (fastdhcp.limits.strip_agent_info): serve it as a plain client request.
                msg = parse(strip_agent_info(data))
                self.metrics.agent_info_ignored += 1
            if self.cengine is not None:
                d = self.cengine.handle(msg, link, now)
            else:
                d = <Decision?>self.engine.handle(msg, link, now)
            if self.debug:
                self.server._log_decision(ep, msg, d, src_ip, src_port)
            if d.reply is None:
                if d.kind == "drop":
                    self.server._engine_dropped(ep, msg, d, src_ip, src_port)
                return
            if d.l2_unicast is not None:
                dest = self.server._dest_ip(ep, d)
            else:
                dest = d.dest_ip
            item = (d.reply, dest, d.dest_port, t0)
            if d.binding is not None:
                # RFC 2131 3.1 step 4: this ACK leaves only once its binding is durable
                held.append((ep, item, _monotonic()))
            else:
                out.append(item)
        except Exception as exc:
            self.server._internal_error(ep, src_ip, src_port, exc)

    cpdef flush(self, object ep):
        """Send every reply queued on ``ep.out`` (one sendmmsg per 64), then count them."""
        cdef list out = ep.out
        cdef list failed
        cdef object bad = None
        cdef Py_ssize_t i, k
        cdef bytes reply
        cdef int code, b
        cdef double now, lat
        cdef long long offer_n[MAX_BUCKETS + 1]
        cdef long long ack_n[MAX_BUCKETS + 1]
        cdef double offer_sum = 0.0, ack_sum = 0.0
        cdef long long offers = 0, acks = 0
        ep.out = []
        if ep.closed:
            self.metrics.drop("socket-closed", len(out))
            return
        try:
            failed = (<DatagramIO?>ep.io).send(out)
        except Exception as exc:  # e.g. the socket was closed under us
            failed = [(k, getattr(exc, "errno", 0) or 0) for k in range(len(out))]
        if failed:
            bad = self.server._send_failed(ep, out, failed)
        for b in range(self.nbounds + 1):
            offer_n[b] = 0
            ack_n[b] = 0
        now = _monotonic()
        for i in range(len(out)):
            if bad is not None and i in bad:
                continue
            item = <tuple>out[i]
            reply = <bytes>item[0]
            # option 53 is the first option of every reply the codec builds (offset 240)
            code = reply[242] if len(reply) > 242 and reply[240] == 53 else 0
            self.sent[code] += 1
            if code == 2 or code == 5:
                lat = now - <double>item[3]
                b = self._bucket(lat)
                if code == 2:
                    offer_n[b] += 1
                    offer_sum += lat
                    offers += 1
                else:
                    ack_n[b] += 1
                    ack_sum += lat
                    acks += 1
        if offers:
            _add(self.offer_latency, offer_n, self.nbounds, offer_sum, offers)
        if acks:
            _add(self.ack_latency, ack_n, self.nbounds, ack_sum, acks)

    cpdef deliver(self, list tokens):
        """Queue the replies of held tokens ``(endpoint, item, held_at)`` whose commit is
        durable, then send each touched endpoint's queue."""
        cdef list touched = []
        cdef list out
        for tok in tokens:
            ep = (<tuple>tok)[0]
            out = ep.out
            if not out:
                touched.append(ep)
            out.append((<tuple>tok)[1])
        for ep in touched:
            self.flush(ep)

    cdef int _bucket(self, double v) noexcept:
        """bisect_left over the bounds: the first bound >= v (Prometheus' "le")."""
        cdef int lo = 0, hi = self.nbounds, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.bounds[mid] < v:
                lo = mid + 1
            else:
                hi = mid
        return lo


cdef _add(object hist, long long *counts, int nbounds, double total, long long n):
    """Add one flush's bucket counts to a :class:`fastdhcp.metrics.Histogram`."""
    cdef list hc = hist.counts
    cdef int b
    for b in range(nbounds + 1):
        if counts[b]:
            hc[b] += counts[b]
    hist.sum += total
    hist.count += n
