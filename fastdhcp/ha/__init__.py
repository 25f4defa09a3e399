"""High availability: Kea's HA protocol between two servers (docs/high-availability.md).

``config`` (the ``[high-availability]`` table), ``hash`` (the load-balancing hash), ``state``
(the sans-IO state machine), ``messages`` (the commands' bodies), ``peer`` (the HTTP client to
the partner), ``service`` (the loop that drives them for a running server), ``coalesce``
(batched updates merged while others are in flight), ``reconcile`` (how a synced lease merges
with the local table), ``table_host`` (the partner's leases through the lease commands).
"""
