"""Micro-benchmarks of fastdhcp._codec (pytest-benchmark).

Run: python3 -m pytest bench/bench_codec.py --benchmark-only
Results and comparisons: bench/RESULTS.md, section "Codec".

Targets: <= 1 us median for the relayed-REQUEST parse with every field the server reads, and
for the ten-option ACK build. scapy's decode of the same DISCOVER is timed for comparison.
"""

from __future__ import annotations

import struct

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import pytest

from fastdhcp._codec import ReplyBuilder, parse
from tests.vectors import vector

# One call takes well under a microsecond, below what one timer read resolves: each round
# loops ITERATIONS times inside the timed body and pytest-benchmark reports per-call figures.
ITERATIONS = 500
ROUNDS = 400

DISCOVER = vector("discover")
RELAYED_REQUEST = vector("relayed_request")      # 323 bytes: 82 (sub-options 1, 2, 5, 11), 118


def ip(a: int, b: int, c: int, d: int) -> bytes:
    return bytes([a, b, c, d])


# Ten options each, as the engine passes them (pre-encoded, per-lease ones appended).
OFFER_OPTIONS = [
    (54, ip(198, 18, 0, 1)),
    (51, struct.pack("!I", 3600)),
    (58, struct.pack("!I", 1800)),
    (59, struct.pack("!I", 3150)),
    (1, ip(255, 255, 255, 0)),
    (3, ip(198, 18, 0, 1)),
    (6, ip(198, 18, 0, 53) + ip(198, 18, 0, 54)),
    (15, b"example.net"),
    (28, ip(198, 18, 0, 255)),
    (42, ip(198, 18, 0, 123)),
]


def run(benchmark, fn, *args):
    """Time ``fn(*args)`` per call: ROUNDS rounds of ITERATIONS calls, after a warm-up."""
    return benchmark.pedantic(fn, args=args, rounds=ROUNDS, iterations=ITERATIONS,
                              warmup_rounds=5)


def test_parse_discover(benchmark) -> None:
    m = run(benchmark, parse, DISCOVER)
    assert m.message_type == 1


def _read_request(data: bytes) -> tuple:
    m = parse(data)
    return (
        m.message_type, m.requested_ip, m.server_id, m.client_id, m.prl, m.max_message_size,
        m.lease_time, m.hostname, m.relay_agent_info, m.circuit_id, m.remote_id,
        m.link_selection, m.subnet_selection, m.giaddr, m.ciaddr, m.chaddr,
    )


def test_parse_relayed_request_all_fields(benchmark) -> None:
    fields = run(benchmark, _read_request, RELAYED_REQUEST)
    assert fields[0] == 3 and fields[9] == b"eth0:100" and fields[11] != 0


@pytest.fixture(scope="module")
def relayed() -> object:
    return parse(RELAYED_REQUEST)


def test_build_offer(benchmark) -> None:
    req = parse(DISCOVER)
    builder = ReplyBuilder()
    out = run(benchmark, builder.build, req, 2, 0, 0xC6120064, 0xC6120001, OFFER_OPTIONS)
    assert parse(out).message_type == 2 and 300 <= len(out) <= 548


def test_build_ack_relayed(benchmark, relayed) -> None:
    # The ACK to the relayed REQUEST: nine options plus option 82 echoed (RFC 3046), ten.
    options = OFFER_OPTIONS[:9] + [(82, relayed.relay_agent_info)]
    builder = ReplyBuilder()
    out = run(benchmark, builder.build, relayed, 5, 0, 0xC6130A17, 0, options)
    m = parse(out)
    assert m.message_type == 5 and m.codes[-1] == 82


def test_scapy_decode_discover(benchmark) -> None:
    """The comparison point: scapy decoding the same DISCOVER (header + option list)."""
    from scapy.layers.dhcp import BOOTP, DHCP

    def decode(data: bytes) -> list:
        return BOOTP(data)[DHCP].options

    opts = benchmark.pedantic(decode, args=(DISCOVER,), rounds=300, iterations=5)
    assert opts[0] == ("message-type", 1)


def test_scapy_build_offer(benchmark) -> None:
    """The comparison point for builds: scapy encoding an OFFER with the same ten options."""
    from scapy.layers.dhcp import BOOTP, DHCP

    options = [("message-type", 2)] + [(c, v) for c, v in OFFER_OPTIONS] + ["end"]

    def build() -> bytes:
        return bytes(BOOTP(op=2, xid=0x3903F326, chaddr=DISCOVER[28:34], yiaddr="198.18.0.100")
                     / DHCP(options=options))

    out = benchmark.pedantic(build, rounds=200, iterations=5)
    assert BOOTP(out)[DHCP].options[0] == ("message-type", 2)
