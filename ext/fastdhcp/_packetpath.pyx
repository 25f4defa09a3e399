# cython: language_level=3
"""The service's per-datagram path, compiled: read a burst, parse, guard, decide, queue or hold
each reply, send, count.

Why compiled: at 20,000 DORA/s the event-loop thread is the server's ceiling, and a fifth of its
active time was this glue in Python (a tuple per received datagram, a method call per datagram
and per reply, attribute lookups, a histogram ``observe`` per reply), around an engine and a
codec that were already compiled. Here a burst is read straight out of the ``DatagramIO``
receive slots, each datagram goes through ``parse`` and ``Engine.handle`` at C level, and the
latencies of a sent batch are summed into C arrays and added to the Python histograms once.

The path flows one way: it calls down (codec, engine, socket I/O, metrics) and never up into
the service. Every event is counted in the :class:`fastdhcp.metrics.Metrics` it is given; the
rare ones worth a log line (malformed, guard or engine drop, failed receive or send,
an unexpected exception, and each decision when ``debug``) go into its
:class:`fastdhcp.pathreport.PathReport`, which the service drains after each burst. The one
thing it asks of its owner is ``l2_dest``, the layer-2 unicast of a reply to a client without
an address (RFC 2131 4.1: an ARP entry, then yiaddr), a callable given at construction.

Semantics are those the service documents (``fastdhcp/service.py``): an OFFER or NAK is queued
as an :class:`fastdhcp._sockio.Outgoing` on the endpoint's ``out`` list and leaves with the
burst's ``sendmmsg``; an ACK that carries a binding is held, as a :class:`HeldAck`, until its
group commit is durable; an OFFER whose decision asks for a ``probe`` (ping-check) is held, as
a :class:`HeldOffer`, by the ``probe`` sink the service gives (fastdhcp.service.pingcheck),
which sends it once the address is found free or hands it back to :meth:`PacketPath.redo`.
Times are ``CLOCK_MONOTONIC`` (Python's ``time.perf_counter``).
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint32_t

from fastdhcp._codec cimport Message, fd_load_be32, parse
from fastdhcp._consts cimport ACK, DECLINE, DISCOVER, LEASEQUERY, NAK, OFF_CIADDR
from fastdhcp._consts cimport OFF_GIADDR, OFF_OP, OFFER, OPT_MESSAGE_TYPE, OPT_REQUESTED_IP
from fastdhcp._consts cimport OPT_SERVER_ID, RELEASE, REQUEST
from fastdhcp._consts cimport OUT_ACK, OUT_DROP, OUT_NAK, OUT_OFFER, OUT_SILENT
from fastdhcp._engine cimport Decision, Engine
from fastdhcp._hascope cimport HA_PASS, ScopeFilter
from fastdhcp._sockio cimport DatagramIO, Outgoing, RECV_BATCH, RECV_SIZE
from fastdhcp._sysnet cimport CLOCK_MONOTONIC, MSG_TRUNC, clock_gettime, ntohl, ntohs, timespec

from fastdhcp.errors import MalformedPacket
from fastdhcp.pathreport import Event, PathEvent
from fastdhcp.slices import CHADDR_TAIL_OFFSET, STEER_MIX, STEER_SHIFT

# The chaddr steering hash (fastdhcp.slices.steer, the kernel's CBPF program), its constants
# read once from the one module that defines them.
cdef uint32_t _MIX = STEER_MIX
cdef uint32_t _SHIFT = STEER_SHIFT
cdef size_t _TAIL = CHADDR_TAIL_OFFSET


cdef inline uint32_t _steer(const unsigned char *p, size_t size, uint32_t n) noexcept:
    """``fastdhcp.slices.steer`` of the datagram's chaddr: 32-bit arithmetic as the kernel's
    classic BPF does it (a datagram too short to hold chaddr goes to worker 0, as the CBPF
    program's failed load does)."""
    cdef uint32_t tail
    if size < _TAIL + 4:
        return 0
    tail = ((<uint32_t>p[_TAIL] << 24) | (<uint32_t>p[_TAIL + 1] << 16)
            | (<uint32_t>p[_TAIL + 2] << 8) | <uint32_t>p[_TAIL + 3])
    return ((tail * _MIX) >> _SHIFT) % n


def steer_of(bytes datagram, uint32_t n):
    """The worker the compiled filter assigns ``datagram`` to (tests: it must agree with
    ``fastdhcp.slices.steer`` and the kernel)."""
    if n < 1:
        raise ValueError(f"workers must be at least 1, got {n}")
    return _steer(<const unsigned char*>datagram, len(datagram), n)

_TRUNCATED = "datagram larger than 65536 bytes"


cdef inline int _reply_type(int outcome) noexcept:
    """The message type of the reply of a decision with a reply (OFFER, ACK or NAK)."""
    if outcome == OUT_OFFER:
        return OFFER
    if outcome == OUT_ACK:
        return ACK
    return NAK if outcome == OUT_NAK else 0


@cython.final
@cython.freelist(128)
cdef class HeldAck:
    """An ACK held until its binding's group commit is durable (RFC 2131 3.1 step 4): the
    endpoint it leaves from, the reply, the monotonic time it was held (commit latency) and
    the binding it acknowledges (an HA pair sends it to the partner before the ACK leaves).
    In an HA pair a RELEASE or DECLINE is held too, with no reply (``out`` None) and the
    released or declined record, so that the partner hears of it after the commit.
    The committer keeps these in the order they were held; the batch they join is the batch
    whose durable commit releases them (fastdhcp.commit)."""

    def __init__(self, endpoint, Outgoing out, double held_at, lease=None):
        self.endpoint = endpoint
        self.out = out
        self.held_at = held_at
        self.lease = lease


@cython.final
@cython.freelist(32)
cdef class HeldOffer:
    """An OFFER held while ping-check probes its address (``Decision.probe``): the endpoint it
    leaves from, the reply, the DISCOVER it answers (handled again by :meth:`PacketPath.redo`
    if the address is in use), its client key, the address, the monotonic time it was held,
    and how many addresses of this DISCOVER were found in use before (the service bounds
    them)."""

    def __init__(self, endpoint, Outgoing out, Message msg, bytes key, uint32_t ip,
                 double held_at, int tries=0):
        self.endpoint = endpoint
        self.out = out
        self.msg = msg
        self.key = key
        self.ip = ip
        self.held_at = held_at
        self.tries = tries


cdef inline double _monotonic() noexcept:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9


@cython.final
cdef class PacketPath:
    """The compiled packet path of one server configuration; see the module docstring.

    ``engine`` (an :class:`fastdhcp.engine.Engine`) decides, ``metrics`` is the server's
    :class:`fastdhcp.metrics.Metrics`, ``report`` its :class:`fastdhcp.pathreport.PathReport`,
    ``guard`` an :class:`fastdhcp.limits.EdgeGuard` or None, ``hold`` takes the burst's
    :class:`HeldAck` list (``GroupCommitter.hold_many``), ``l2_dest(endpoint, decision)`` gives
    the address to send a layer-2 unicast reply to, ``debug`` reports every decision;
    ``probe`` takes the burst's :class:`HeldOffer` list (None: an OFFER marked for a probe is
    sent at once, as without ping-check). ``ha`` (a :class:`fastdhcp._hascope.ScopeFilter`, or
    None without HA) drops, before the engine, the queries this server of an HA pair must not
    answer; it counts them itself (the service folds its counts into the metrics after each
    burst). ``leasequery(endpoint, msg, src_ip, now, t0)``, when given, answers each
    DHCPLEASEQUERY (RFC 4388) instead of the engine, returning the reply to queue or None
    (:class:`fastdhcp.leasequery.udp.UdpLeaseQuery`); without it the engine drops them
    (``unexpected-type``) as before. Leasequery is rare: one integer compare per datagram is
    all DORA pays for the route.
    """

    def __init__(self, Engine engine, metrics, report, guard, hold, l2_dest, bint debug,
                 probe=None, ScopeFilter ha=None, leasequery=None, int worker=0,
                 int workers=1, forward=None, bint forward_all=False):
        cdef Py_ssize_t i
        if workers < 1 or not 0 <= worker < workers:
            raise ValueError(f"worker {worker} of {workers}")
        self.worker = worker
        self.workers = workers
        self.others = 0
        self.forward = forward
        self.forward_all = forward_all
        self.forwarded = 0
        self.injecting = False
        self.engine = engine
        self.metrics = metrics
        self.report = report
        self.guard = guard
        self.hold = hold
        self.probe = probe
        self.l2_dest = l2_dest
        self.debug = debug
        self.ha = ha
        self.leasequery = leasequery
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
        cdef list probes = []
        cdef object link = ep.link
        cdef str where = ep.key[1]
        cdef int n = 0, got, i
        cdef size_t size
        cdef bytes data
        while n < limit:
            try:
                got = io.recv_c(min(limit - n, <int>RECV_BATCH))
            except OSError as exc:
                self.metrics.drop("recv-error")
                self.report.add(PathEvent(Event.RECV_FAILED, where, error=exc))
                break
            for i in range(got):
                if io.rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC:
                    self.metrics.bad(_TRUNCATED)
                    continue
                size = min(<size_t>io.rmsgs[i].msg_len, <size_t>RECV_SIZE)
                if self.workers > 1 and _steer(<const unsigned char*>io.riov[i].iov_base,
                                               size, self.workers) != self.worker:
                    # A broadcast reaches every socket of the reuseport group: another
                    # worker's client (docs/scaling.md), dropped before any parsing.
                    self.others += 1
                    continue
                data = PyBytes_FromStringAndSize(<char*>io.riov[i].iov_base, size)
                self._datagram(ep, where, link, out, held, probes, data,
                               ntohl(io.raddr[i].sin_addr.s_addr), ntohs(io.raddr[i].sin_port),
                               now, t0)
            n += got
            if got < <int>RECV_BATCH:  # drained: save the EAGAIN call
                break
        if held:
            self.hold(held)
        if probes:
            self.probe(probes)
        return n

    cpdef int inject(self, object ep, bytes data, uint32_t src_ip, int src_port, double now,
                     double t0) except -1:
        """Handle ``data`` as if read from ``ep`` (a datagram another worker forwarded: never
        forwarded again, not filtered by steering), then send what it made."""
        cdef list held = []
        cdef list probes = []
        self.injecting = True
        try:
            self._datagram(ep, ep.key[1], ep.link, ep.out, held, probes, data, src_ip,
                           src_port, now, t0)
        finally:
            self.injecting = False
        if held:
            self.hold(held)
        if probes:
            self.probe(probes)
        if ep.out:
            self.flush(ep)
        return 1

    cpdef int redo(self, HeldOffer offer, double now) except -1:
        """Handle the DISCOVER of ``offer`` again (its address was found in use and declined):
        the new decision is queued, held or probed as a received one is (the burst's ``hold``
        and ``probe`` called, the endpoint flushed). Returns 1 if it made a reply, else 0."""
        ep = offer.endpoint
        cdef list held = []
        cdef list probes = []
        cdef list out = ep.out
        cdef Py_ssize_t before = len(out)
        cdef int made
        self._decide(ep, ep.key[1], ep.link, out, held, probes, offer.msg, DISCOVER, 0, 0, now,
                     offer.out.received_at, offer.tries + 1)
        made = 1 if held or probes or len(out) > before else 0
        if held:
            self.hold(held)
        if probes:
            self.probe(probes)
        if ep.out:
            self.flush(ep)
        return made

    cdef _event(self, object kind, str where, uint32_t src_ip, int src_port, Message msg,
                str reason):
        """Report one event about the datagram ``msg`` (None when it did not parse)."""
        cdef const unsigned char *p
        cdef int mtype = 0
        if msg is None:
            self.report.add(PathEvent(kind, where, src_ip, src_port, reason=reason))
            return
        if msg._view(OPT_MESSAGE_TYPE, &p) == 1:
            mtype = p[0]
        self.report.add(PathEvent(kind, where, src_ip, src_port, mtype, msg._buf[OFF_OP],
                                  msg.xid, msg.chaddr, fd_load_be32(msg._buf + OFF_GIADDR),
                                  reason))

    cdef _datagram(self, object ep, str where, object link, list out, list held, list probes,
                   bytes data, uint32_t src_ip, int src_port, double now, double t0):
        """One datagram: parse, guard, then ``_decide``. Never raises."""
        cdef Message msg = None
        cdef const unsigned char *p
        cdef int mtype = 0
        try:
            try:
                msg = parse(data)
            except MalformedPacket as exc:
                self.metrics.bad(exc.reason)
                self._event(Event.MALFORMED, where, src_ip, src_port, None, exc.reason)
                return
            if msg._view(OPT_MESSAGE_TYPE, &p) == 1:
                mtype = p[0]
            self.received[mtype] += 1
            if mtype == LEASEQUERY and self.leasequery is not None:
                # before the edge guard: its per-client rates and relay trust are for clients;
                # the handler applies the leasequery allow-list (giaddr and source address)
                item = self.leasequery(ep, msg, src_ip, now, t0)
                if item is not None:
                    out.append(item)
                return
            if self.guard is not None:
                why = self.guard.check(msg, src_ip, t0)  # t0: monotonic
                if why is not None:
                    self.metrics.drop(why)
                    self._event(Event.GUARD_DROP, where, src_ip, src_port, msg, why)
                    return
            if self.ha is not None and self.ha.check(msg) != HA_PASS:
                return  # Kea's HA: silently, before any allocation (kea-ha.md section 5)
            if msg.ignore_unrelayed_agent_info():  # RFC 3046 2.1 (see there)
                self.metrics.agent_info_ignored += 1
            # A worker's request that names an address of another worker (renewal, rebind,
            # INIT-REBOOT, release, decline: ciaddr or 50 without 54) goes to that worker
            # (fastdhcp.service.worker.Forwarder); DISCOVER and SELECTING, the DORA path, only
            # when the configuration has reservations the steering cannot place.
            if self.forward is not None and not self.injecting and (
                    self.forward_all or mtype == RELEASE or mtype == DECLINE
                    or (mtype == REQUEST and (fd_load_be32(msg._buf + OFF_CIADDR) != 0
                                              or msg._view(OPT_SERVER_ID, &p) < 0))):
                if self.forward(ep, msg, data, src_ip, src_port):
                    self.forwarded += 1
                    return
        except Exception as exc:
            self.metrics.internal_errors += 1
            self.metrics.drop("internal-error")
            self.report.add(PathEvent(Event.INTERNAL_ERROR, where, src_ip, src_port,
                                      error=exc))
            return
        self._decide(ep, where, link, out, held, probes, msg, mtype, src_ip, src_port, now, t0,
                     0)

    cdef _decide(self, object ep, str where, object link, list out, list held, list probes,
                 Message msg, int mtype, uint32_t src_ip, int src_port, double now, double t0,
                 int tries):
        """Decide on a parsed, guarded ``msg``: queue the reply, hold it (ACK: commit;
        OFFER: probe) or count the drop. Never raises."""
        cdef Decision d
        cdef uint32_t dest
        cdef Outgoing item
        try:
            d = self.engine.handle(msg, link, now)
            if self.debug:
                self._event(Event.DECISION, where, src_ip, src_port, msg,
                            f"{d.kind.name.lower()} ({d.reason})")
            if d.reply is None:
                if (d.outcome == OUT_SILENT and self.ha is not None
                        and (mtype == RELEASE or mtype == DECLINE)):
                    # an HA pair tells the partner of a release or decline after its
                    # commit: a token with no reply, carrying the record just staged
                    held.append(HeldAck(ep, None, _monotonic(), self.engine._sget(
                        fd_load_be32(msg._buf + OFF_CIADDR) if mtype == RELEASE
                        else <uint32_t>msg._opt_u32(OPT_REQUESTED_IP, 0))))
                    return
                if d.outcome == OUT_DROP:  # SILENT: processed, nothing to send
                    reason = d.reason or "engine"
                    self.metrics.drop(reason)
                    self._event(Event.ENGINE_DROP, where, src_ip, src_port, msg, reason)
                return
            dest = self.l2_dest(ep, d) if d.l2_unicast is not None else d.dest_ip
            item = Outgoing(d.reply, dest, d.dest_port, _reply_type(d.outcome), t0)
            if d.binding is not None:
                # RFC 2131 3.1 step 4: this ACK leaves only once its binding is durable
                held.append(HeldAck(ep, item, _monotonic(), d.binding))
                if mtype == DISCOVER:
                    self.metrics.rapid_commits += 1  # RFC 4039: an ACK to a DISCOVER
            elif d.probe and self.probe is not None:
                # ping-check: this OFFER leaves once its address is found free
                probes.append(HeldOffer(ep, item, msg, msg.client_key(), d.probe,
                                        _monotonic(), tries))
            else:
                out.append(item)
        except Exception as exc:
            self.metrics.internal_errors += 1
            self.metrics.drop("internal-error")
            self.report.add(PathEvent(Event.INTERNAL_ERROR, where, src_ip, src_port,
                                      error=exc))

    cpdef flush(self, object ep):
        """Send every reply queued on ``ep.out`` (one sendmmsg per 64; replies to one relay
        address of one size as UDP GSO messages: fastdhcp._sockio), then count them."""
        cdef list out = ep.out
        cdef list failed
        cdef set bad = None
        cdef Py_ssize_t i, k
        cdef Outgoing item
        cdef int code, b, err
        cdef double now, lat
        cdef long long offer_n[MAX_BUCKETS + 1]
        cdef long long ack_n[MAX_BUCKETS + 1]
        cdef double offer_sum = 0.0, ack_sum = 0.0
        cdef long long offers = 0, acks = 0
        cdef DatagramIO io
        cdef long long gso_sends, gso_datagrams, gso_fallbacks
        cdef bint gso
        ep.out = []
        if ep.closed:
            self.metrics.drop("socket-closed", len(out))
            return
        io = <DatagramIO?>ep.io
        gso, gso_sends, gso_datagrams = io.gso, io.gso_sends, io.gso_datagrams
        gso_fallbacks = io.gso_fallbacks
        try:
            failed = io.send(out)
        except Exception as exc:  # e.g. the socket was closed under us
            failed = [(k, getattr(exc, "errno", 0) or 0) for k in range(len(out))]
        if io.gso_sends != gso_sends:
            self.metrics.gso_sends += io.gso_sends - gso_sends
            self.metrics.gso_datagrams += io.gso_datagrams - gso_datagrams
        if io.gso_fallbacks != gso_fallbacks:
            self.metrics.gso_fallbacks += io.gso_fallbacks - gso_fallbacks
        if gso and not io.gso:
            self.metrics.gso_disabled += 1
            self.report.add(PathEvent(Event.GSO_OFF, ep.key[1], errno=io.gso_errno))
        if failed:
            bad = set()
            for k, err in failed:
                bad.add(k)
                item = <Outgoing>out[k]
                self.metrics.send_errors += 1
                self.metrics.drop("send-error")
                self.report.add(PathEvent(Event.SEND_FAILED, ep.key[1], item.dest_ip,
                                          item.dest_port, item.message_type, errno=err))
        for b in range(self.nbounds + 1):
            offer_n[b] = 0
            ack_n[b] = 0
        now = _monotonic()
        for i in range(len(out)):
            if bad is not None and i in bad:
                continue
            item = <Outgoing>out[i]
            code = item.message_type
            self.sent[code] += 1
            if code == OFFER or code == ACK:
                lat = now - item.received_at
                b = self._bucket(lat)
                if code == OFFER:
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

    cpdef deliver(self, list held):
        """Queue the replies of ``held`` (:class:`HeldAck`) whose commit is durable, then send
        each touched endpoint's queue."""
        cdef list touched = []
        cdef list out
        cdef HeldAck h
        for obj in held:
            h = <HeldAck?>obj
            if h.out is None:  # a release or decline an HA partner was told of: no reply
                continue
            out = h.endpoint.out
            if not out:
                touched.append(h.endpoint)
            out.append(h.out)
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
