"""Kea's management API, answered by the running server (docs/control-api.md).

One command table (:mod:`fastdhcp.control.table`) maps Kea's command names to handlers that
take the request's arguments and return an :class:`~fastdhcp.control.protocol.Answer`; the
transports (a Unix stream socket, HTTP(S)) only move JSON in and out. Handlers reach the server
through :class:`~fastdhcp.control.target.ControlTarget`, the few things the service offers
them; every mutation goes through the engine and the group commit, and answers only once it
is durable.

Modules, one job each:

- ``protocol``: result codes, the request and answer envelopes, Kea's envelope errors;
- ``args``: typed readers of a command's ``arguments`` map, with Kea's error texts;
- ``table``: the command table and its dispatch (logging of mutating commands);
- ``commands``: builds the table from the command groups (``cmd_*`` modules);
- ``target``: what the handlers may ask of the running server;
- ``unix``, ``http``: the transports; ``channel``: starts and stops them from the config;
- ``fanout``, ``merge``, ``upstream``: for a multi-worker server, which workers a command goes
  to (one rule per command), how their answers become one, and asking one worker
  (:mod:`fastdhcp.service.control_front` serves them).
"""
