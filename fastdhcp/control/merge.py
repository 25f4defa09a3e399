"""The answers of several workers made one, per :class:`~fastdhcp.control.fanout.Rule`
(docs/control-api.md, "Several workers"). Pure functions: worker answers in, one answer out;
whatever a worker sent back, a merge never raises.

Common to every rule: a worker that did not answer makes the answer result 1 naming it (and
why); answers that are all the same are that answer (so a bad argument gets the text a
single server gives); a rule's merge applies only when every worker succeeded (or found
nothing), otherwise the workers that failed are named.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastdhcp.control.cmd_leases import found, wipe_text
from fastdhcp.control.fanout import Rule
from fastdhcp.control.protocol import Answer, Result, empty, success

__all__ = ["FrontInfo", "WorkerAnswer", "merge", "named"]


@dataclass(frozen=True, slots=True)
class WorkerAnswer:
    """What one worker answered: ``answer``, or None and ``error`` (why it did not)."""

    worker: int
    answer: Answer | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FrontInfo:
    """What status-get says of the front itself, and the request being merged."""

    pid: int
    uptime: int
    control_sockets: list[dict[str, Any]]
    arguments: Any = None  #: the request's arguments (lease4-get-page's ``limit``)


_OK = (Result.SUCCESS, Result.EMPTY)


def named(bad: Sequence[WorkerAnswer]) -> str:
    """``worker k: why`` of each of ``bad``, joined with ``; ``."""
    parts = []
    for w in bad:
        if w.answer is None:
            parts.append(f"worker {w.worker}: {w.error}")
        else:
            parts.append(f"worker {w.worker}: {w.answer.text or f'result {w.answer.result}'}")
    return "; ".join(parts)


def _same(answers: Sequence[Answer]) -> bool:
    first = answers[0]
    return all(a == first for a in answers[1:])


def _disagree(got: Sequence[WorkerAnswer]) -> Answer:
    """Answers that differ and cannot be merged: result 1 naming the workers that failed,
    or every worker's when none did."""
    bad = [w for w in got if w.answer is not None and w.answer.result not in _OK]
    return Answer(Result.ERROR, "workers disagree: " + named(bad or got))


def merge(rule: Rule, got: Sequence[WorkerAnswer], front: FrontInfo) -> Answer:
    """One answer from the answers ``got`` (one per worker asked, in worker order)."""
    if not got:
        return Answer(Result.ERROR, "no worker to ask")
    down = [w for w in got if w.answer is None]
    if down and rule is not Rule.STATUS:
        return Answer(Result.ERROR, named(down))
    answers = [w.answer for w in got if w.answer is not None]
    if rule is Rule.STATUS:
        return _status(got, front)
    if _same(answers) and (rule not in _MERGES or answers[0].result not in _OK):
        return answers[0]  # (equal sums are still sums: merged below)
    if rule is Rule.FIRST_FOUND or rule is Rule.OWNER:
        return next((a for a in answers if a.result is Result.SUCCESS), None) \
            or _disagree(got)
    if not all(a.result in _OK for a in answers):
        return _disagree(got)
    fn = _MERGES.get(rule)
    if fn is None:
        return _disagree(got)
    try:
        out = fn(answers, front)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        out = None  # an answer not of the shape this rule merges
    return out if out is not None else _disagree(got)


# ------------------------------------------------------------------ statistics


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _sum_stats(answers: Sequence[Answer], front: FrontInfo) -> Answer | None:
    """``{name: [[value, timestamp], ...]}`` per worker (newest first) -> one sample per name:
    the sum of the newest values, at the newest of their timestamps."""
    totals: dict[str, list[Any]] = {}
    for a in answers:
        if not isinstance(a.arguments, dict):
            return None
        for name, samples in a.arguments.items():
            value, stamp = samples[0]
            if not _number(value) or not isinstance(stamp, str):
                return None
            have = totals.get(name)
            if have is None:
                totals[name] = [value, stamp]
            else:
                # Kea's "YYYY-MM-DD HH:MM:SS.ffffff" sorts as text in time order
                totals[name] = [have[0] + value, max(have[1], stamp)]
    return success(arguments={name: [totals[name]] for name in sorted(totals)})


def _sum_rows(answers: Sequence[Answer], front: FrontInfo) -> Answer | None:
    """stat-lease4-get's ``result-set`` rows summed column by column per subnet-id."""
    first = answers[0]
    sets = [a.arguments["result-set"] for a in answers]
    rows: dict[Any, list[Any]] = {}
    for rs in sets:
        for row in rs["rows"]:
            if not all(_number(x) for x in row):
                return None
            have = rows.get(row[0])
            rows[row[0]] = list(row) if have is None else \
                [have[0], *(x + y for x, y in zip(have[1:], row[1:], strict=True))]
    result_set = {**sets[0], "rows": [rows[k] for k in sorted(rows)],
                  "timestamp": max(str(rs["timestamp"]) for rs in sets)}
    return Answer(first.result, first.text, {**first.arguments, "result-set": result_set})


# ------------------------------------------------------------------ leases

_WIPED = re.compile(r"Deleted (\d+) IPv4 lease\(s\) from subnet\(s\) ?([\d ]*)")


def _sum_wipe(answers: Sequence[Answer], front: FrontInfo) -> Answer | None:
    total = 0
    ids: list[int] | None = None
    for a in answers:
        m = _WIPED.fullmatch(a.text or "")
        if m is None:
            return None
        total += int(m.group(1))
        ids = [int(x) for x in m.group(2).split()] if ids is None else ids
    text = wipe_text(total, ids or [])
    return success(text) if total else empty(text)


def _address(lease: Any) -> int:
    return int(ipaddress.IPv4Address(lease["ip-address"]))


def _leases(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """Every worker's leases in address order, each address once (workers that read one
    shared lease table all list the same lease: the first worker's copy is kept)."""
    out: dict[int, dict[str, Any]] = {}
    for a in answers:
        for lease in a.arguments["leases"]:
            out.setdefault(_address(lease), lease)
    return [out[ip] for ip in sorted(out)]


def _merge_leases(answers: Sequence[Answer], front: FrontInfo) -> Answer | None:
    return found(_leases(answers))


def _merge_page(answers: Sequence[Answer], front: FrontInfo) -> Answer | None:
    """Each worker gave its ``limit`` lowest leases above ``from``: the lowest ``limit`` of
    all of them are the page a single table would give."""
    limit = front.arguments["limit"]
    if not isinstance(limit, int) or limit <= 0:
        return None
    return found(_leases(answers)[:limit], count=True)


# ------------------------------------------------------------------ server


def _union(answers: Sequence[Answer], front: FrontInfo) -> Answer | None:
    names: set[str] = set()
    for a in answers:
        names.update(str(x) for x in a.arguments)
    return success(arguments=sorted(names))


def _status(got: Sequence[WorkerAnswer], front: FrontInfo) -> Answer:
    """Kea's keys as one server's (pid and uptime the front's, reload the most recent
    worker's), fastdhcp's from worker 0, and ``workers``: each worker's own status."""
    workers: list[dict[str, Any]] = []
    base: dict[str, Any] | None = None
    reloads: list[int] = []
    bad: list[WorkerAnswer] = []
    for w in got:
        a = w.answer
        if a is None or a.result is not Result.SUCCESS or not isinstance(a.arguments, dict):
            bad.append(w)
            workers.append({"worker": w.worker,
                            "error": w.error if a is None else (a.text or str(a.result))})
            continue
        mine = {k: v for k, v in a.arguments.items() if k != "control-sockets"}
        workers.append({"worker": w.worker, **mine})
        if base is None:
            base = dict(a.arguments)
        if _number(a.arguments.get("reload")):
            reloads.append(a.arguments["reload"])
    out = dict(base or {"multi-threading-enabled": False, "sockets": {"status": "ready"}})
    out["pid"] = front.pid
    out["uptime"] = front.uptime
    out["reload"] = min(reloads) if reloads else front.uptime
    out["control-sockets"] = front.control_sockets
    out["workers"] = workers
    ordered = {k: out[k] for k in sorted(out)}
    if bad:
        return Answer(Result.ERROR, named(bad), ordered)
    return success(arguments=ordered)


_MERGES: dict[Rule, Callable[[Sequence[Answer], FrontInfo], Answer | None]] = {
    Rule.SUM_STATS: _sum_stats,
    Rule.SUM_ROWS: _sum_rows,
    Rule.SUM_WIPE: _sum_wipe,
    Rule.MERGE_LEASES: _merge_leases,
    Rule.MERGE_PAGE: _merge_page,
    Rule.UNION: _union,
}
