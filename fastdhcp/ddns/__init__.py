"""Client names and dynamic DNS (docs/ddns.md): option 81 / 12 handling with Kea's ``ddns-*``
rules, and RFC 2136 updates with RFC 4703 conflict resolution, sent off the packet path.

Modules, each one job, lower ones first: ``config`` (the ``[ddns]`` table), ``dhcid`` (RFC
4701 records), ``names`` (the name policy: options 81 and 12 in, the name, the answer and the
updates owed out; pure), ``updates`` (RFC 4703 transactions as update messages; sans-IO),
``transport`` (one exchange: UDP, TCP on truncation, TSIG), ``stats`` (Kea D2's counters and
their Prometheus families), ``worker`` (the bounded queue and its thread), ``feed`` (committed
leases -> name changes), ``runner`` (worker and feed as the service holds them).
"""
