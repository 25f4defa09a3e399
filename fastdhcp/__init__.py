"""fastdhcp: a DHCPv4 server for ISP-scale lease serving.

The packet path is compiled (Cython, sources in ``ext/fastdhcp/``), the event loop is uvloop,
and every binding is committed to LMDB before its DHCPACK leaves (RFC 2131 3.1 step 4). The
modules, top to bottom (docs/internals.md has their contracts):

Command line
    ``cli`` (``fastdhcp`` and ``python -m fastdhcp``, via ``__main__``), ``ctl_cli``
    (``fastdhcp ctl``), ``leases_cli`` (``fastdhcp leases``), ``demo``, ``kea`` (import-kea
    and export-kea: Kea's config and memfile leases, both ways).
Configuration
    ``config`` (TOML or JSON -> frozen, validated model), ``options`` (option names, codes
    and encoders), ``configdoc`` (the running configuration as a document).
Service (the only I/O)
    ``service`` (sockets, signals, timers, the group-commit pump), ``netio`` (Linux socket
    set-up), ``limits`` (relay trust and rate limits at the edge), ``metrics`` (counters,
    Prometheus), ``statistics`` (Kea's statistics over them), ``dhcp_state`` (dhcp-disable /
    -enable), ``buildinfo`` (version-get), ``pathreport`` (the events the packet path reports);
    compiled: ``_packetpath`` (the per-datagram path),
    ``_sockio`` (recvmmsg/sendmmsg, the read-pace timer).
Control and HA
    ``control`` (Kea's command table and its Unix and HTTP transports), ``ha`` (Kea's HA
    protocol with a partner).
Decisions (sans-IO)
    ``engine`` (RFC 2131 decisions, compiled as ``_engine``), ``_bitmap`` (free-address
    bitmaps), ``_codec`` (bytes <-> Message, the reply builder), ``consts`` (message types
    and outcomes, mirroring ``ext/fastdhcp/_consts.pxd``).
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
