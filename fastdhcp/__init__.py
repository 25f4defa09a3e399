"""fastdhcp: a DHCPv4 server for ISP-scale lease serving.

The packet path is compiled (Cython, sources in ``ext/fastdhcp/``), the event loop is uvloop,
and every binding is committed to LMDB before its DHCPACK leaves (RFC 2131 3.1 step 4). The
modules, top to bottom (docs/internals.md has their contracts):

Command line
    ``cli`` (``fastdhcp`` and ``python -m fastdhcp``, via ``__main__``), ``ctl_cli``
    (``fastdhcp ctl``), ``leases_cli`` (``fastdhcp leases``), ``demo``, ``kea`` (import-kea
    and export-kea: Kea's config and memfile leases, both ways; compiled: ``_memfile``, the
    fast row rule of Kea's lease file).
Configuration
    ``config`` (TOML or JSON -> frozen, validated model), ``options`` (option names, codes
    and encoders), ``expression`` (client-class test expressions: Kea 2.2's language, parsed),
    ``bytecode`` (their compiler to the evaluator's byte-code), ``configdoc`` (the running
    configuration as a document).
Service (the only I/O)
    ``service`` (the server, a package of one module a job: lifecycle and the read loop, the
    sockets with read pacing and layer-2 unicast, the report drain, the stats line, systemd
    notify, ping-check's ICMP probes; with ``[server] workers`` > 1 the supervisor and its
    workers), ``slices`` (which worker owns an address and where a chaddr is steered),
    ``netio`` (Linux socket
    set-up), ``limits`` (relay trust and rate limits at the edge), ``metrics`` (counters,
    Prometheus), ``statistics`` (Kea's statistics over them), ``dhcp_state`` (dhcp-disable /
    -enable), ``buildinfo`` (version-get), ``pathreport`` (the events the packet path reports),
    ``pathtypes`` (what the packet path needs of the service, as protocols), ``sections`` (the
    contract of config sections parsed elsewhere: ha, ddns, leasequery);
    compiled: ``_packetpath`` (the per-datagram path),
    ``_sockio`` (recvmmsg/sendmmsg, the read-pace timer).
Control and HA
    ``control`` (Kea's command table and its Unix and HTTP transports), ``ha`` (Kea's HA
    protocol with a partner); compiled: ``_hascope`` (the load-balancing hash and the scope
    filter the packet path asks per query).
Leasequery
    ``leasequery`` (RFC 4388 over UDP, routed to it by the packet path; RFC 6926 messages and
    framing; the bulk listener is the service's fastdhcp.service.leasequery_tcp).
Names and DNS
    ``ddns`` (option 81/12 name policy, RFC 4701 DHCID, RFC 4703 updates and the update
    worker thread: fastdhcp.ddns.config, fastdhcp.ddns.names, fastdhcp.ddns.dhcid,
    fastdhcp.ddns.updates, fastdhcp.ddns.transport, fastdhcp.ddns.stats,
    fastdhcp.ddns.worker; fastdhcp.ddns.feed and fastdhcp.ddns.runner turn committed leases
    into name changes for the service).
Decisions (sans-IO)
    ``engine`` (RFC 2131 decisions, compiled as ``_engine``), ``_bitmap`` (free-address
    bitmaps), ``_codec`` (bytes <-> Message, the reply builder), ``consts`` (message types
    and outcomes, mirroring ``ext/fastdhcp/_consts.pxd``), ``_classify`` (the client-class
    expression evaluator).
Leases and hosts
    ``leases`` (the lease record and the store protocol), ``store`` (the LMDB lease table),
    ``commit`` (group commit), ``hosts`` (reservations added by the API); compiled:
    ``_lease`` (the lease record and the one codec of its LMDB record), ``_leaseindex`` (the
    in-memory client and expiry indexes), ``_hostfilter`` (a Bloom filter over the hosts'
    keys).
Load
    ``loadgen`` (the relay-mode DORA load driver, compiled core ``_loadgen``).
``errors`` holds the one error hierarchy.
"""

__version__ = "0.1.0"
