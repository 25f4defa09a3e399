"""Leasequery: RFC 4388 over UDP (:mod:`.udp`), RFC 6926 bulk leasequery over TCP (the service's
:mod:`fastdhcp.service.leasequery_tcp`), under the names of Kea's lease_query hook
(:mod:`.config`); the messages themselves in :mod:`.wire`, the lease lookups in :mod:`.lookup`.
docs/leasequery.md is the operator's page."""
