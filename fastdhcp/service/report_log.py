"""The packet path's report (:mod:`fastdhcp.pathreport`), drained after each read burst and
each commit delivery: counted in the compiled path, written to the log here, at a bounded rate
(a flood of malformed datagrams must not become a flood of log lines)."""

from __future__ import annotations

import logging
import os
import traceback

from fastdhcp import netio
from fastdhcp.metrics import type_name
from fastdhcp.pathreport import Event, PathEvent, PathReport
from fastdhcp.service.ratelog import RateLimitedLog

__all__ = ["ReportLog"]

log = logging.getLogger("fastdhcp")


class ReportLog:
    """Drains one :class:`PathReport` into the log."""

    def __init__(self, report: PathReport, ratelog: RateLimitedLog) -> None:
        self.report = report
        self._ratelog = ratelog
        self._ipstr_cache: dict[int, str] = {}

    def drain(self) -> None:
        """Write the log lines of the events the packet path reported since the last drain."""
        events, lost = self.report.take()
        for ev in events:
            self.log_event(ev)
        if lost:
            self._ratelog(logging.INFO, "report-lost", "%d more packet-path events since the "
                          "last drain (counted, not logged)", lost)

    def ipstr(self, ip: int) -> str:
        """Dotted text of ``ip``, cached (the same relays and clients recur)."""
        s = self._ipstr_cache.get(ip)
        if s is None:
            if len(self._ipstr_cache) > 65536:
                self._ipstr_cache.clear()
            s = self._ipstr_cache[ip] = netio.ip_to_str(ip)
        return s

    def log_event(self, ev: PathEvent) -> None:
        """One event's log line (DECISION only at debug level, the others rate-limited)."""
        src = f"{self.ipstr(ev.ip)}:{ev.port}"
        kind = ev.event
        if kind is Event.DECISION:
            log.debug("%s on %s from %s xid=%08x chaddr=%s -> %s", type_name(ev.message_type),
                      ev.where, src, ev.xid, ev.chaddr.hex(":"), ev.reason)
        elif kind is Event.MALFORMED:
            self._ratelog(logging.INFO, "malformed", "malformed datagram from %s on %s: %s",
                          src, ev.where, ev.reason)
        elif kind is Event.GUARD_DROP:
            self._ratelog(logging.INFO, ev.reason, "%s: dropped %s from %s on %s (giaddr %s, "
                          "chaddr %s)", ev.reason, type_name(ev.message_type), src, ev.where,
                          self.ipstr(ev.giaddr), ev.chaddr.hex(":"))
        elif kind is Event.ENGINE_DROP:
            self._ratelog(logging.INFO, "drop:" + ev.reason, "no reply to %s from %s on %s "
                          "chaddr %s: %s", type_name(ev.message_type), src, ev.where,
                          ev.chaddr.hex(":"), ev.reason)
        elif kind is Event.INTERNAL_ERROR:
            err = ev.error
            self._ratelog(logging.ERROR, "internal", "unexpected error handling a datagram from "
                          "%s on %s: %r\n%s", src, ev.where, err,
                          "".join(traceback.format_exception(err)).rstrip() if err else "")
        elif kind is Event.RECV_FAILED:
            self._ratelog(logging.WARNING, "recv", "receive error on %s: %s", ev.where, ev.error)
        elif kind is Event.SEND_FAILED:
            self._ratelog(logging.WARNING, "send", "sending to %s on %s failed: %s", src,
                          ev.where, os.strerror(ev.errno))
        elif kind is Event.GSO_OFF:
            log.info("UDP GSO off on %s (%s): replies leave one datagram a message",
                     ev.where, os.strerror(ev.errno))
