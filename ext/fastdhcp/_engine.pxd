# Declarations of fastdhcp._engine: every cdef field and method of the compiled engine.
# The theory of operation is in fastdhcp/engine.py, the public module that re-exports these.

cimport cython
from libc.stdint cimport int64_t, uint32_t

from fastdhcp._bitmap cimport PoolBitmap
from fastdhcp._classify cimport ClassSet, Program
from fastdhcp._codec cimport Message, ReplyBuilder
from fastdhcp._hostfilter cimport HostFilter


# The client state a DHCPREQUEST is sent in (RFC 2131 4.3.2), told apart by server id,
# requested address, ciaddr and how it arrived.
cdef enum RequestState:
    RS_SELECTING = 0
    RS_INIT_REBOOT = 1
    RS_RENEWING = 2
    RS_REBINDING = 3


# Where one reply goes (RFC 2131 4.1), fastdhcp._engine._destination.
cdef struct Dest:
    uint32_t ip
    int port
    bint broadcast                    # ip is 255.255.255.255
    bint l2                           # may be unicast at layer 2 to yiaddr/chaddr instead
    bint set_broadcast_flag           # a NAK through a relay: the relay must broadcast it


@cython.final
cdef class Decision:
    cdef public int outcome           # fastdhcp._consts OUT_* (Outcome); `kind` is the enum
    cdef public object reply          # bytes | None
    cdef public uint32_t dest_ip
    cdef public int dest_port
    cdef public bint broadcast
    cdef public object l2_unicast     # tuple[int, bytes] | None
    cdef public object binding        # Lease | None
    cdef public str reason
    cdef public uint32_t probe        # an OFFER to send only once this address is found free
                                      # by ICMP echo (ping-check); 0 = send at once


@cython.final
cdef class _Offer:
    cdef uint32_t ip
    cdef double expires
    cdef bint alone                   # the client had no binding elsewhere when offered
    cdef bint renews                  # the address offered is the client's own binding
    cdef object sub                   # subscriber the offer counts against, or None
    cdef bytes key                    # the client it is held for
    cdef double at                    # its key in Engine._offer_heap (<= expires)
    cdef int64_t seq                  # ties in the heap: queued first, popped first
    cdef bint probing                 # held while ping-check probes its address


@cython.final
cdef class SubnetCounters:
    # Events the engine counts per subnet, for the Kea statistics view (fastdhcp.statistics):
    # monotonic, kept across reloads (by subnet id), bumped only where the event happens.
    cdef readonly int64_t assigned            # new bindings, not renewals
    cdef readonly int64_t alloc_fail          # DISCOVERs that found no free address
    cdef readonly int64_t declined            # DECLINEs honoured (address set aside)
    cdef readonly int64_t reclaimed           # expired leases reclaimed (declined ones included)
    cdef readonly int64_t reclaimed_declined  # declined leases reclaimed after probation
    cdef readonly int64_t conflicts           # reserved address found held by another client
    cdef readonly int64_t rapid_commits       # DISCOVERs ACKed at once (RFC 4039)
    cdef readonly int64_t ping_conflicts      # offered addresses that answered a ping-check
    cdef readonly int64_t no_pools            # of alloc_fail: no pool the client's classes
                                              # allow (Kea's v4-allocation-fail-no-pools)


@cython.final
cdef class _Fixed:
    # siaddr / sname / file of one level or one reply (_engine_fields.pxi): 0 / None = unset.
    cdef uint32_t siaddr
    cdef bytes sname
    cdef bytes file


@cython.final
cdef class _SubnetInfo:
    cdef readonly object subnet
    cdef SubnetCounters counts        # this subnet's events (the engine's _counters[id])
    cdef readonly int id
    cdef int64_t valid
    cdef int64_t min_valid
    cdef int64_t max_valid
    cdef object renew                 # int | None
    cdef object rebind                # int | None
    cdef double offer_lifetime
    cdef int64_t probation
    cdef bint rapid_commit            # rapid-commit (RFC 4039)
    cdef bint ping_check              # enable-ping-check
    cdef int64_t ping_cltt            # ping-cltt-secs
    cdef uint32_t net_first
    cdef uint32_t net_last
    cdef dict options
    cdef list bitmaps
    cdef bint authoritative
    cdef dict by_hw
    cdef dict by_cid
    cdef dict by_circuit
    # Classification (_engine_classes.pxi): ids in the engine's class set.
    cdef tuple guard                  # client-class(es): any of these; () = everybody
    cdef tuple required               # require-client-classes, in order
    cdef dict own_options             # the subnet's own option-data (+ subnet mask)
    cdef list pools                   # _PoolInfo per bitmap, in config order
    cdef bint guarded                 # a subnet of this link has a guard
    cdef bint pools_guarded           # one of its pools has a guard (_allocate_guarded)
    cdef uint32_t cursor              # last address _allocate_guarded handed out here
    # Per-packet shortcuts (set by Engine._apply): no dict lookup by subnet id per request.
    cdef tuple group                  # this link's infos (its shared network), self first
    cdef bint has_res                 # a subnet of this link has reservations
    # One-entry cache of Engine._options(self, self.options, ...): the last PRL (b"" when
    # absent) and lease time asked of this subnet, and the option list they gave.
    cdef bytes opt_prl
    cdef int64_t opt_lt
    cdef list opt_list
    cdef _Fixed fixed                 # next-server etc.: the subnet's over global (or None)



@cython.final
cdef class _PoolInfo:
    # One pool of the configuration as the engine uses it: its bitmap, subnet and classes.
    cdef readonly object pool         # fastdhcp.config.Pool
    cdef PoolBitmap bm
    cdef _SubnetInfo info
    cdef tuple guard                  # class ids: any of these; () = everybody
    cdef tuple required               # require-client-classes ids, in order
    cdef dict options                 # the pool's own option-data ({} if none)


@cython.final
cdef class _ClassDef:
    # One [[client-classes]] entry as the engine evaluates and applies it.
    cdef readonly int id
    cdef readonly str name
    cdef readonly object cls          # the fastdhcp.config.ClientClass (fixed fields etc.)
    cdef Program prog                 # None without a test
    cdef dict options                 # option-data ({} if none)
    cdef bint has_valid               # valid-lifetime set: (min, valid, max) below
    cdef int64_t valid
    cdef int64_t min_valid
    cdef int64_t max_valid


@cython.final
cdef class _Classes:
    # The configuration's classes, ready per packet (built by _apply, _engine_classes.pxi).
    cdef bint active                  # any class or guard or required class configured
    cdef int capacity                 # ids 0 .. capacity-1
    cdef list defs                    # id -> _ClassDef or None (built-ins, undefined names)
    cdef list pass1                   # _ClassDef with a test, not only-if-required,
    cdef list pass2                   # ... independent of / dependent on KNOWN/UNKNOWN
    cdef dict vendor                  # option 60 bytes -> id of VENDOR_CLASS_<bytes>
    cdef dict ids                     # name -> id
    cdef int drop                     # id of a defined class DROP, -1 if none
    cdef bint any_options             # some class has option-data
    cdef bint any_valid               # some class has valid-lifetime
    cdef tuple ha                     # per HA scope index: id of HA_<peer name>, or -1


@cython.final
cdef class _Caches:
    # Owned by the Engine; _apply resets them all at once (see _engine.pyx).
    cdef dict opt                     # filtered option lists (_options) by (source, PRL, lt)
    cdef dict sid                     # server id -> its option 54 (_sid_option)
    cdef uint32_t sid_last            # one-entry cache in front of sid
    cdef tuple sid_last_opt
    cdef uint32_t sel_giaddr          # one-entry cache of _select for relayed requests
    cdef _SubnetInfo sel_info         # (giaddr, no option 118, no link selection)
    cdef dict host                    # raw hosts record -> Reservation (bounded; ids stable
                                      # for opt, cleared with it)
    cdef dict merged                  # (reservation, pool, subnet, classes with options) ->
                                      # merged option dict (ids stable for opt, cleared with it)
    # One-entry cache of _reply_options with classes: the last reservation, pool, subnet,
    # lease time, PRL and class list, and the option list they gave.
    cdef list cls_out
    cdef object cls_res
    cdef object cls_pool
    cdef object cls_info
    cdef bytes cls_prl
    cdef int64_t cls_lt
    cdef list cls_order
    cdef dict fixed                   # id(reservation) -> (reservation, its _Fixed or None)

    cdef reset(self)


@cython.final
cdef class SubnetSelector:
    cdef tuple _by_prefix             # ((mask, {network: subnet}), ...) longest prefix first
    cdef dict _by_relay
    cdef dict _by_iface
    cdef dict _groups
    cdef dict _link_cache

    cpdef object containing(self, uint32_t ip)
    cpdef object select(self, uint32_t subnet_selection, uint32_t link_selection,
                        uint32_t giaddr, uint32_t ciaddr, str link_name, uint32_t link_address)



@cython.final
cdef class Exchange:
    # One request through the message steps (Kea's Dhcpv4Exchange): set by Engine.handle,
    # read and written by the steps and the parts they call (_engine_exchange.pxi).
    cdef Message msg
    cdef object link                  # Link it arrived on
    cdef double now
    cdef bytes key                    # the client key (option 61, else htype + chaddr)
    cdef bytes chaddr                 # None for a DISCOVER until a reservation needs it
    cdef object cid                   # option 61 bytes, or None
    cdef object claim_read            # the record _claim read for its address (or _UNREAD)
    cdef object offer_sub             # subscriber _may_offer found for this DISCOVER's offer
    cdef uint32_t res_api_ip          # address of the API reservation _reservation found
    cdef _SubnetInfo res_api_info     # and its subnet
    cdef bint rapid                   # a DISCOVER _bind answers with a rapid-commit ACK
    # Classification (_engine_classes.pxi), when the configuration has classes:
    cdef ClassSet classes             # the packet's classes (a bit per id)
    cdef list class_order             # their ids in the order assigned (Kea's "first class"
                                      # precedence walks this)
    cdef bytes iface                  # link name as bytes for pkt.iface (cached by name)
    cdef str iface_name
    cdef bint no_pool                 # _allocate found no pool the classes allow


@cython.final
cdef class Engine:
    cdef object _config
    cdef object _store
    cdef object _sget                 # bound store methods, looked up once
    cdef object _sget_by_client
    cdef object _sstage
    cdef Exchange _ex                 # the request being decided (one, reused per packet)
    cdef uint32_t _server_id
    cdef int _server_port
    cdef int _client_port
    cdef ReplyBuilder _builder        # its C entry, reply(), builds every reply
    cdef SubnetSelector _selector
    cdef dict _infos                  # subnet id -> _SubnetInfo
    cdef list _pool_bitmaps
    cdef list _pool_infos
    cdef list _pool_pinfos            # _PoolInfo, parallel to _pool_bitmaps
    cdef _Classes _cls                # client classes (_engine_classes.pxi)
    cdef list _pool_texts
    cdef dict _reserved               # ip -> (Reservation, _SubnetInfo)
    cdef dict _offers                 # client key -> _Offer
    cdef dict _offered                # ip -> client key
    cdef list _offer_heap             # _Offer, a binary heap on (at, seq)
    cdef int64_t _seq
    cdef _Caches _caches              # every configuration-dependent cache
    cdef dict _link_of                # subnet id -> link id (smallest subnet id on its link)
    # Defences (docs/configuration.md, "Defences"): subscriber lease limit, DECLINE limits.
    cdef bint _counting               # the subscriber limit or the pool decline cap is on
    cdef Py_ssize_t _sub_limit        # subscriber-lease-limit, 0 = none
    cdef int _sub_code                # option 82 sub-option naming a subscriber (1 or 2)
    cdef dict _sub_leases             # (link id, subscriber id) -> bound (DEFAULT) leases
    cdef dict _sub_offers             # (link id, subscriber id) -> offers held for others
    cdef Py_ssize_t _decline_limit    # decline-limit per decline-window, 0 = none
    cdef double _decline_window
    cdef double _decline_sweep_at
    cdef dict _decline_by_client      # client key -> [window start, declines]
    cdef dict _decline_by_sub         # (link id, subscriber id) -> [window start, declines]
    cdef double _decline_fraction     # decline-max-fraction, 1.0 = no cap
    cdef dict _pool_declined          # pool first address -> DECLINED leases in the pool
    cdef dict _counters               # subnet id -> SubnetCounters (ids ever configured)
    # HA allocation share (docs/high-availability.md): a new address only where
    # ip % _share_count == _share_index; _share_count 0 = the whole pool (no HA pair)
    cdef object _scope                # fastdhcp.slices.WorkerScope, or None (one process)
    cdef uint32_t _share_index
    cdef uint32_t _share_count
    cdef object _ddns                 # names.decide bound to [ddns], or None (_engine_fqdn)
    cdef bint _ddns_gen               # names are generated for requests without 81 / 12
    cdef bint _ddns_renew             # ddns-update-on-renew
    cdef dict _ddns_cache             # (opt 81, opt 12, address) -> decision (_engine_fqdn)
    cdef object _names                # names.decide, updates off: names without [ddns]
    cdef dict _res_names              # reservation hostname -> option 12 value (_engine_fqdn)
    cdef public dict ddns_pending     # address -> (lease, previous): DNS owed at its commit
    # Reservations added through the control channel (fastdhcp.hosts.HostTable): looked up in
    # the lease database per packet, only while the table holds hosts of the type asked.
    cdef object _hosts                # the HostTable, or None
    cdef object _hfind                # _hosts.find, bound once
    cdef object _hreserved            # _hosts.reserved, bound once
    cdef HostFilter _hfilter          # _hosts.filter: who may have a host (no B-tree search
                                      # for the others)
    cdef bint _hosts_any              # some host of a type the engine can match exists
    cdef bint _hn_hw                  # ... with a hw-address
    cdef bint _hn_cid                 # ... with a client-id
    cdef bint _hn_circuit             # ... with a circuit-id
    cdef dict _host_pending           # address -> hosts being added with it (claimed before
                                      # their commit; several when commands race for it)
    # Fixed fields (_engine_fields.pxi): what a reply's siaddr/sname/file need per packet.
    cdef tuple _fx_class              # class id -> _Fixed or None; None: no class sets any
    cdef bint _fx_res                 # a reservation may set one (config's, or a hosts table)
    cdef bint _fx_any                 # some level sets one (header fields not for overload)
    cdef _Fixed _fx_scratch           # the merged fields of the reply being built

    cdef list _apply(self, object config, dict keep)
    cdef SubnetCounters _counts_for(self, object subnet_id)
    cpdef Decision handle(self, Message msg, object link, double now)
