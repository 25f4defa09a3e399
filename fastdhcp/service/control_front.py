"""The control front of a multi-worker server: the configured control sockets and metrics
endpoint, served by the supervisor, in front of the workers' private control sockets, so that
N workers answer as one server (docs/control-api.md, "Several workers").

The transports are the single server's (:mod:`fastdhcp.control.unix`, ``http``, TLS, basic
auth, the connection gate, the size limit, Kea's envelope errors), so a request the front
refuses gets the answer a single server gives. A parsed command is routed by
:data:`fastdhcp.control.fanout.ROUTES` to the worker(s) it concerns, each asked on its own
socket with a timeout (:func:`fastdhcp.control.upstream.ask`), and their answers merged
(:func:`fastdhcp.control.merge.merge`). A worker that does not answer makes the answer
result 1 naming it, within the timeout: the front never waits longer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client.registry import Collector

from fastdhcp.config import Config, from_document
from fastdhcp.configdoc import json_value, running_document
from fastdhcp.control import commands
from fastdhcp.control.channel import ControlChannel
from fastdhcp.control.cmd_hosts import HOSTS_WRITTEN
from fastdhcp.control.cmd_server import SHUTTING_DOWN, exit_value_of, socket_json
from fastdhcp.control.fanout import (
    ROUTES,
    Owners,
    Rule,
    host_key,
    public_document,
    workers_for,
)
from fastdhcp.control.merge import FrontInfo, WorkerAnswer, merge, named
from fastdhcp.control.protocol import Answer, Caller, CommandError, Request, Result, success
from fastdhcp.control.table import not_supported
from fastdhcp.control.upstream import WorkerUnavailable, ask
from fastdhcp.errors import ConfigError
from fastdhcp.metrics import HACollector, HAGauges, MetricsServer, registry_of
from fastdhcp.service.front_ha import FrontHA
from fastdhcp.service.front_metrics import WorkerExposition, WorkersCollector

__all__ = ["WORKER_TIMEOUT", "ControlFront"]

log = logging.getLogger("fastdhcp.control")

#: Seconds the front waits for a worker's answer. A worker answers a command between two
#: packet bursts; the slow ones (lease4-get-all, lease4-wipe, config-set of a large config)
#: page over the table and yield to the packet path: 30 s covers a few million leases.
WORKER_TIMEOUT = 30.0
#: Commands after which the workers run a new configuration (and so new pool slices).
_RECONFIGURE = ("config-set", "config-reload")
#: Seconds a metrics scrape waits for the workers' pages (Prometheus' default scrape
#: timeout is 10 s).
SCRAPE_TIMEOUT = 5.0


class ControlFront:
    """Serves ``config``'s control sockets (and ``[server] metrics``) for the workers whose
    private control sockets are ``worker_sockets`` (worker k at index k).

    ``on_shutdown(exit_value)`` is the supervisor's: the ``shutdown`` command calls it once
    its answer is on its way. Without it, ``shutdown`` goes to every worker.
    """

    def __init__(self, config: Config, worker_sockets: Sequence[str], *,
                 on_shutdown: Callable[[int], None] | None = None,
                 timeout: float = WORKER_TIMEOUT) -> None:
        if not worker_sockets:
            raise ValueError("a control front needs at least one worker")
        self.config = config
        self.worker_sockets = list(worker_sockets)
        self._owners = Owners(config, len(worker_sockets))
        table = commands.build()
        #: the commands a server logs at INFO with who sent them (the table's mark)
        self._mutating = {n for n in table.names() if (c := table.get(n)) and c.mutating}
        self._on_shutdown = on_shutdown
        self._timeout = timeout
        self._channel = ControlChannel(self.dispatch)
        self._metrics: MetricsServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at = time.monotonic()
        #: the server's HA relationship, when configured: run here, not in the workers
        self.ha = (FrontHA(config, self._owners, self._ask)
                   if config.high_availability is not None else None)
        doc = json_value(running_document(config))
        #: what config-get shows of the front's own sockets instead of a worker's private one
        self._public: dict[str, Any] = {"control-sockets": doc.get("control-sockets", []),
                                        "server": {"metrics": config.server.metrics}}

    @property
    def sockets(self) -> list[Any]:
        """The control sockets being served."""
        return self._channel.sockets

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where the metrics endpoint listens (None when not configured)."""
        return self._metrics.address if self._metrics is not None else None

    async def start(self) -> None:
        """Open every configured control socket and the metrics endpoint, or none (OSError,
        ValueError for a bad metrics address)."""
        self._loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        if self.ha is not None:
            await self.ha.open()
        try:
            await self._channel.start(self.config.control_sockets)
            if self.config.server.metrics:
                collectors: list[Collector] = [WorkersCollector(self._scrape)]
                if self.ha is not None:
                    collectors.append(HACollector(self._ha_gauges))
                self._metrics = MetricsServer(registry_of(*collectors),
                                              self.config.server.metrics)
        except BaseException:
            await self._channel.close()
            if self.ha is not None:
                await self.ha.close()
            raise

    async def workers_ready(self) -> None:
        """Every worker has started (the supervisor's READY=1): the HA service starts, so
        that its start-up sync can store the partner's leases through them."""
        if self.ha is not None:
            await self.ha.start()

    async def close(self) -> None:
        """Close the HA service, the sockets and the metrics endpoint."""
        if self.ha is not None:
            await self.ha.close()
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        await self._channel.close()

    # ------------------------------------------------------------------ routing

    async def dispatch(self, request: Request, caller: Caller) -> Answer:
        """Answer one parsed command from the workers (never raises)."""
        rule = ROUTES.get(request.command)
        if rule is None or rule is Rule.PRIVATE:
            return not_supported(request.command)
        try:
            if rule is Rule.FRONT:
                answer = await self._front(request)
            elif rule is Rule.HA:
                answer = (await self.ha.command(request) if self.ha is not None
                          else await self._fan_out(Rule.ALL_SAME, request))
            elif rule is Rule.HOSTS_WRITE:
                answer = await self._hosts_write(request)
            else:
                answer = await self._fan_out(rule, request)
        except CommandError as exc:
            return exc.answer()
        except Exception as exc:  # a bug must not take the channel down; say what it was
            log.exception("control front: %s from %s failed", request.command, caller)
            return Answer(Result.ERROR, f"internal error: {type(exc).__name__}: {exc}")
        if request.command == "list-commands" and isinstance(answer.arguments, list):
            answer = Answer(answer.result, answer.text,
                            [c for c in answer.arguments if ROUTES.get(c) is not Rule.PRIVATE])
        if (request.command == "status-get" and self.ha is not None
                and isinstance(answer.arguments, dict)):
            answer = Answer(answer.result, answer.text,
                            {**answer.arguments, "high-availability": self.ha.status()})
        if request.command == "config-get" and answer.result is Result.SUCCESS:
            answer = Answer(answer.result, answer.text,
                            public_document(answer.arguments, self._public))
        if request.command in _RECONFIGURE and answer.result is Result.SUCCESS:
            await self.follow_workers()
        if request.command in self._mutating:  # the workers see the front, not who asked
            log.info("control: %s from %s: result %d%s", request.command, caller,
                     answer.result, f", {answer.text}" if answer.text else "")
        else:
            log.debug("control: %s from %s: result %d", request.command, caller,
                      answer.result)
        return answer

    def follow(self, config: Config) -> None:
        """The workers run ``config`` now (a reload): route by its pools' slices."""
        self._owners.update(config)

    async def follow_workers(self) -> None:
        """Route by the configuration worker 0 runs (after a config-set or config-reload
        that every worker applied); unchanged if it cannot be read (logged)."""
        got = await self._ask(0, "config-get", None)
        a = got.answer
        try:
            if a is None or a.result is not Result.SUCCESS:
                raise ConfigError([got.error or (a.text if a else "") or "no answer"])
            self.follow(from_document(a.arguments["Dhcp4"], "worker 0's config-get"))
        except (ConfigError, KeyError, TypeError) as exc:
            log.warning("control front: routing stays on the previous pools: worker 0's "
                        "configuration not read: %s", exc)

    async def _ask(self, k: int, command: str, arguments: Any) -> WorkerAnswer:
        path = self.worker_sockets[k]
        try:
            return WorkerAnswer(k, await ask(path, command, arguments, self._timeout))
        except WorkerUnavailable as exc:
            log.warning("control front: worker %d (%s): %s", k, path, exc)
            return WorkerAnswer(k, None, f"{exc} (socket {path})")

    async def _fan_out(self, rule: Rule, request: Request) -> Answer:
        asked = workers_for(rule, request.arguments, self._owners)
        got = await asyncio.gather(*(self._ask(k, request.command, request.arguments)
                                     for k in asked))
        return merge(rule, got, self._info(request.arguments))

    def _info(self, arguments: Any) -> FrontInfo:
        return FrontInfo(os.getpid(), int(time.monotonic() - self._started_at),
                         [socket_json(c) for c in self._channel.sockets], arguments)

    async def _hosts_write(self, request: Request) -> Answer:
        """reservation-add / -del: worker 0 writes the shared hosts table, then every other
        worker re-reads what it wrote (its filter and bitmaps follow)."""
        args = request.arguments
        if request.command == "reservation-del":
            # which host it is (identifier and address), before it is gone
            found = await self._ask(0, "reservation-get", args)
            a = found.answer
            learn = host_key(a.arguments) if a is not None and a.result is Result.SUCCESS \
                else None
        else:
            learn = host_key(args.get("reservation") if isinstance(args, dict) else None)
        first = await self._ask(0, request.command, args)
        if first.answer is None:
            return merge(Rule.ONE, [first], self._info(args))
        if first.answer.result is not Result.SUCCESS or learn is None:
            return first.answer
        told = await asyncio.gather(*(self._ask(k, HOSTS_WRITTEN, learn)
                                      for k in range(1, len(self.worker_sockets))))
        missed = [w for w in told if w.answer is None or w.answer.result is not Result.SUCCESS]
        if missed:
            return Answer(Result.ERROR, f"{first.answer.text} (worker 0), but the other "
                          f"workers did not all re-read it: {named(missed)}")
        return first.answer

    async def _front(self, request: Request) -> Answer:
        if request.command == "shutdown":
            exit_value = exit_value_of(request.arguments)
            if self._on_shutdown is None:
                return await self._fan_out(Rule.ALL_SAME, request)
            # after this answer has been written (the transports write it in this same turn)
            asyncio.get_running_loop().call_soon(self._on_shutdown, exit_value)
            return success(SHUTTING_DOWN)
        if request.command == "metrics-get":
            pages = await self._pages()
            from prometheus_client import generate_latest

            collectors: list[Collector] = [WorkersCollector(lambda: pages)]
            if self.ha is not None:
                g = self.ha.gauges()
                collectors.append(HACollector(lambda: g))
            registry = registry_of(*collectors)
            return success(arguments={"exposition": generate_latest(registry).decode()})
        return not_supported(request.command)  # a FRONT rule with no handler: a bug

    # ------------------------------------------------------------------ metrics

    async def _pages(self) -> list[WorkerExposition]:
        async def one(k: int) -> WorkerExposition:
            try:
                a = await ask(self.worker_sockets[k], "metrics-get", None,
                              min(self._timeout, SCRAPE_TIMEOUT))
            except WorkerUnavailable:
                return WorkerExposition(k, None)
            text = a.arguments.get("exposition") if isinstance(a.arguments, dict) else None
            return WorkerExposition(k, text if isinstance(text, str) else None)
        return list(await asyncio.gather(*(one(k) for k in range(len(self.worker_sockets)))))

    def _ha_gauges(self) -> HAGauges | None:
        """The HA gauges, read on the loop from the metrics endpoint's thread."""
        loop, ha = self._loop, self.ha
        if loop is None or loop.is_closed() or ha is None:
            return None

        async def read() -> HAGauges | None:
            return ha.gauges()
        try:
            return asyncio.run_coroutine_threadsafe(read(), loop).result(SCRAPE_TIMEOUT)
        except Exception:
            return None

    def _scrape(self) -> list[WorkerExposition]:
        """The workers' pages, from the metrics endpoint's thread (through the loop)."""
        loop = self._loop
        down = [WorkerExposition(k, None) for k in range(len(self.worker_sockets))]
        if loop is None or loop.is_closed():
            return down
        try:
            return asyncio.run_coroutine_threadsafe(self._pages(), loop) \
                .result(SCRAPE_TIMEOUT + 1)
        except Exception:
            return down

