"""What the control front parses that a single server does not: the workers' answers
(``upstream``), the routing of arbitrary arguments (``fanout``) and the merges (``merge``),
fuzzed with hypothesis; and the page and sum merges checked against a model (one table)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fastdhcp.config import loads
from fastdhcp.control.fanout import ROUTES, Owners, Rule, workers_for
from fastdhcp.control.merge import FrontInfo, WorkerAnswer, merge
from fastdhcp.control.protocol import Answer, Result
from fastdhcp.control.upstream import WorkerUnavailable, _answer_of
from tests.service_helpers import config_text

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20)
KEYS = st.sampled_from(["ip-address", "leases", "limit", "from", "result-set", "rows",
                        "pkt4-received", "Dhcp4", "reload", "timestamp"])
ARGS = JSON | st.dictionaries(KEYS, JSON, max_size=4)
CONFIG = loads(config_text("/nonexistent/db", 6767))
FRONT = FrontInfo(1, 2, [])


def _answer() -> st.SearchStrategy[Answer | None]:
    return st.none() | st.builds(Answer, st.sampled_from(list(Result)),
                                 st.none() | st.text(max_size=40), ARGS)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(Rule)), st.lists(_answer(), min_size=1, max_size=4), ARGS)
def test_merge_never_raises(rule: Rule, answers: list[Answer | None], request_args: Any
                            ) -> None:
    got = [WorkerAnswer(k, a, None if a is not None else "down") for k, a in enumerate(answers)]
    out = merge(rule, got, FrontInfo(1, 2, [], request_args))
    assert isinstance(out, Answer) and isinstance(out.result, Result)
    json.dumps(out.to_json())  # an answer the transports can send
    if any(a is None for a in answers):
        assert out.result is Result.ERROR and "worker" in (out.text or "")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(ROUTES)), ARGS, st.integers(1, 8))
def test_routing_of_any_arguments(command: str, arguments: Any, n: int) -> None:
    rule = ROUTES[command]
    asked = workers_for(rule, arguments, Owners(CONFIG, n))
    assert asked == sorted(set(asked)) and all(0 <= k < n for k in asked)
    assert (asked == []) == (rule in (Rule.FRONT, Rule.PRIVATE))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_worker_answers_parse_or_are_refused(body: bytes) -> None:
    try:
        out = _answer_of(body)
    except WorkerUnavailable as exc:
        assert str(exc)
    else:
        assert isinstance(out, Answer)


def _lease(ip: int) -> dict[str, Any]:
    return {"ip-address": str(ipaddress.IPv4Address(ip)), "subnet-id": 1}


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 255), max_size=40), st.integers(1, 4), st.integers(1, 10),
       st.integers(-1, 255), st.randoms())
def test_page_merge_is_one_table_s_page(ips: set[int], n: int, limit: int, after: int,
                                        rnd: Any) -> None:
    """Each worker holds some of the leases and answers its own page above ``after``: the
    merge is the page the whole table would give."""
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    held: list[list[int]] = [[] for _ in range(n)]
    for ip in ips:
        held[rnd.randrange(n)].append(base + ip)
    got = []
    for k in range(n):
        page = sorted(ip for ip in held[k] if ip - base > after)[:limit]
        leases = [_lease(ip) for ip in page]
        got.append(WorkerAnswer(k, Answer(Result.SUCCESS if leases else Result.EMPTY,
                                          f"{len(leases)} IPv4 lease(s) found.",
                                          {"count": len(leases), "leases": leases})))
    out = merge(Rule.MERGE_PAGE, got, FrontInfo(1, 2, [], {"from": "x", "limit": limit}))
    want = [_lease(base + ip) for ip in sorted(ips) if ip > after][:limit]
    assert out.arguments == {"count": len(want), "leases": want}
    assert out.result is (Result.SUCCESS if want else Result.EMPTY)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(0, 10**9),
                                max_size=3), min_size=1, max_size=4))
def test_statistics_sum_as_a_model(per: list[dict[str, int]]) -> None:
    got = [WorkerAnswer(k, Answer(Result.SUCCESS, None, {
        name: [[v, f"2026-12-07 15:00:0{k}.000000"], [0, "2026-12-07 14:00:00.000000"]]
        for name, v in vals.items()})) for k, vals in enumerate(per)]
    out = merge(Rule.SUM_STATS, got, FRONT)
    names = sorted(set().union(*per))
    assert out.arguments == {
        name: [[sum(v.get(name, 0) for v in per),
                max(f"2026-12-07 15:00:0{k}.000000" for k, v in enumerate(per) if name in v)]]
        for name in names}
