"""``ReplyBuilder.build(..., flags=)``: the reply's flags replace the request's when given.

Read back with scapy (an independent BOOTP decoder), never with the codec's own parser.
"""

from __future__ import annotations

import pytest
from dhcpsim import DISCOVER, build_request, ip, mac
from scapy.layers.dhcp import BOOTP

from fastdhcp._codec import ReplyBuilder, parse


def request(flags: int) -> object:
    return parse(build_request(DISCOVER, xid=7, chaddr=mac(1), flags=flags,
                               giaddr=ip("198.18.10.1"), hops=1))


@pytest.mark.parametrize("req_flags", [0, 0x8000])
@pytest.mark.parametrize("flags", [-1, 0, 0x8000, 0x8001, 0xFFFF])
def test_flags_replace_or_copy(req_flags, flags):
    out = ReplyBuilder().build(request(req_flags), 6, 0, 0, 0, [(54, b"\xc6\x12\x00\x01")],
                               flags)
    bootp = BOOTP(out)
    assert bootp.flags == (req_flags if flags == -1 else flags)
    assert bootp.op == 2 and bootp.xid == 7 and bootp.giaddr == "198.18.10.1"


def test_default_copies_the_request_flags():
    out = ReplyBuilder().build(request(0x8000), 5, 0, 0, 0, [])
    assert BOOTP(out).flags == 0x8000


@pytest.mark.parametrize("flags", [-2, 0x10000])
def test_flags_out_of_range(flags):
    with pytest.raises(ValueError):
        ReplyBuilder().build(request(0), 5, 0, 0, 0, [], flags)
