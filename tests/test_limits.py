"""fastdhcp.limits: token buckets against a plain token-bucket model (fake clock), the bounded
table under many keys, the rate + burst bound through evictions, relay trust, the option 82
rule for unrelayed requests (scapy as the packet oracle), the config keys, and the guard wired
into the running server (loopback)."""

from __future__ import annotations

import ast
import inspect
import random
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp import config as config_mod
from fastdhcp._codec import parse
from fastdhcp.config import LIMITS_KEYS, loads
from fastdhcp.errors import ConfigError
from fastdhcp.limits import (
    DROP_CLIENT_RATE,
    DROP_RELAY_RATE,
    DROP_UNTRUSTED_RELAY,
    EdgeGuard,
    RateLimiter,
    RelayTrust,
)
from tests.config_builder import load_config
from tests.service_helpers import (
    RELAY_IP,
    SERVER_IP,
    InProcessServer,
    RelayClient,
    dhcp_options,
    free_port,
    mac,
)


class TokenBucketModel:
    """The textbook token bucket: tokens refill at ``rate``/s up to ``burst``; a request takes
    one or is refused. Independent of the GCRA form the limiter stores."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last: float | None = None

    def allow(self, now: float) -> bool:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# Rates that are powers of two and times that are multiples of 1/64 keep every sum exact in
# binary floating point, so model and limiter can be compared decision for decision.
RATES = st.sampled_from([0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
STEPS = st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=300)


@settings(max_examples=400, deadline=None)
@given(rate=RATES, burst=st.integers(1, 8), steps=STEPS)
def test_bucket_refill_matches_token_model(rate: float, burst: int, steps: list[int]) -> None:
    lim = RateLimiter(rate, burst, capacity=16, seed=1)
    model = TokenBucketModel(rate, burst)
    now = 1000.0
    for step in steps:
        now += step / 64
        assert lim.allow(b"k", now) == model.allow(now)
        assert lim.tokens(b"k", now) == pytest.approx(model.tokens)


def test_bucket_numbers() -> None:
    lim = RateLimiter(10.0, 5, capacity=16, seed=1)
    assert [lim.allow("a", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert not lim.allow("a", 0.05)  # half a token
    assert lim.allow("a", 0.1)  # one token back
    assert not lim.allow("a", 0.1)
    assert lim.tokens("a", 10.0) == 5  # refilled, never more than the burst
    assert lim.allow("b", 0.1)  # keys are independent


def test_table_stays_bounded_under_a_storm_of_keys() -> None:
    # 10,000 new keys a second, below slots * rate = 4096 * 10: every fresh key gets through
    lim = RateLimiter(10.0, 20, capacity=256, seed=7)
    rng = random.Random(1)
    now = 0.0
    for _ in range(50_000):
        now += 1e-4
        assert lim.allow(rng.randbytes(7), now)
        assert len(lim) <= 256
    assert len(lim) == 256
    assert lim.evictions == 50_000 - 256
    assert len(lim._memory) == 16 * 256  # the eviction memory is a fixed array


def test_past_the_documented_threshold_keys_share_but_stay_bounded() -> None:
    # 100,000 new keys a second into 64 slots at rate 10 (threshold 640/s): slots run ahead and
    # fresh keys are refused -- the documented limit of finite memory, not a leak
    lim = RateLimiter(10.0, 2, capacity=16, slots=64, seed=7)
    rng = random.Random(1)
    now = 0.0
    refused = 0
    for _ in range(20_000):
        now += 1e-5
        refused += not lim.allow(rng.randbytes(7), now)
        assert len(lim) <= 16
    assert refused > 0


def _conforms(times: list[float], rate: float, burst: int) -> bool:
    """True if no window of allowed requests holds more than burst + rate * length."""
    for i in range(len(times)):
        for j in range(i, len(times)):
            if j - i + 1 > burst + rate * (times[j] - times[i]) + 1e-9:
                return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    rate=RATES,
    burst=st.integers(1, 6),
    capacity=st.integers(1, 6),
    seed=st.integers(0, 2**32),
    events=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 40)), min_size=1,
                    max_size=400),
)
def test_eviction_never_lets_a_key_exceed_rate_plus_burst(
    rate: float, burst: int, capacity: int, seed: int, events: list[tuple[int, int]]
) -> None:
    # Ten keys through a table of 1-6 entries: keys are evicted and come back all the time.
    lim = RateLimiter(rate, burst, capacity, seed=seed)
    allowed: dict[int, list[float]] = {}
    now = 0.0
    for key, step in events:
        now += step / 64
        if lim.allow(key, now):
            allowed.setdefault(key, []).append(now)
        assert len(lim) <= capacity
    for times in allowed.values():
        assert _conforms(times, rate, burst)


def test_flooding_key_stays_limited_while_others_churn_the_table() -> None:
    # The attack eviction invites: flood one key and push it out of the table between its
    # requests with fresh keys, hoping it comes back with a full bucket. It does not.
    lim = RateLimiter(4.0, 4, capacity=8, seed=3)
    rng = random.Random(2)
    now = 0.0
    got = []
    for _ in range(4000):
        now += 0.001
        if lim.allow(b"attacker", now):
            got.append(now)
        for _ in range(10):
            lim.allow(rng.randbytes(6), now)
    assert lim.evictions > 30_000
    assert _conforms(got, 4.0, 4)
    assert len(got) <= 4 + 4.0 * now + 1


@pytest.mark.parametrize("seed", range(5))
def test_random_mac_storm_does_not_starve_a_good_client(seed: int) -> None:
    # A good client at half its rate while a storm of single-use keys (200 a second, 200 per
    # good request) churns a small table: it is evicted every time and never refused. Load on
    # the eviction memory: 200 / (1024 slots * 2/s) = 0.1.
    lim = RateLimiter(2.0, 4, capacity=64, seed=seed)
    rng = random.Random(seed)
    now = 0.0
    for _ in range(300):
        assert lim.allow(b"good", now)
        for _ in range(200):
            now += 1 / 200
            lim.allow(rng.randbytes(6), now)
    assert lim.evictions > 50_000


def test_relay_trust_ranges() -> None:
    t = RelayTrust(((10, 10), (100, 199)))
    assert 10 in t and 100 in t and 150 in t and 199 in t
    assert 11 not in t and 99 not in t and 200 not in t and 0 not in t


def _msg(chaddr: bytes = b"\x02\x00\x00\x00\x00\x01", giaddr: str = "0.0.0.0",
         options: list[Any] | None = None) -> Any:
    opts = [("message-type", "discover"), *(options or []), "end"]
    pkt = BOOTP(op=1, htype=1, hlen=6, xid=1, giaddr=giaddr,
                chaddr=chaddr + b"\0" * (16 - len(chaddr))) / DHCP(options=opts)
    return parse(bytes(pkt))


def _server_cfg(text: str) -> Any:
    return loads(text).server


def test_client_key_is_client_id_else_htype_chaddr() -> None:
    assert _msg(b"\xaa" * 6).client_key() == b"\x01" + b"\xaa" * 6
    assert _msg(options=[("client_id", b"\x01abcdef")]).client_key() == b"\x01abcdef"
    # RFC 3396: a client-id split over two instances is one key
    split = _msg(options=[("client_id", b"\x00ab"), ("client_id", b"cd")])
    assert split.client_key() == b"\x00abcd"


@pytest.mark.parametrize("client_id", [None, b"\x00alpha", b"\x01\x02\x00\x00\x00\x00\x07"])
def test_guard_and_engine_key_a_client_alike(net: Any, client_id: bytes | None) -> None:
    # The guard's rate bucket is the one the engine's lease is held under: a client limited
    # by the guard is the client the engine binds, not a neighbour sharing part of its key.
    from dhcpsim import Client

    c = Client(net, mac(7), client_id=client_id)
    reply = c.dora()
    assert reply is not None
    lease = net.store.get(c.address)
    assert lease is not None
    request = _msg(mac(7), options=[("client_id", client_id)] if client_id else [])
    assert lease.client_key == request.client_key()


def test_guard_is_none_when_nothing_is_configured() -> None:
    assert EdgeGuard.from_config(_server_cfg("")) is None
    assert EdgeGuard.from_config(_server_cfg("[server.limits]\nclient-burst = 4\n")) is None


def test_guard_trust_matches_giaddr_and_source() -> None:
    g = EdgeGuard.from_config(_server_cfg(
        '[server]\ntrusted-relays = ["198.18.1.1", "198.18.2.0/24"]\n'))
    assert g is not None
    ip = config_mod.ipv4
    relayed = _msg(giaddr="198.18.1.1")
    assert g.check(relayed, ip("198.18.1.1"), 0.0) is None
    assert g.check(relayed, ip("198.18.2.77"), 0.0) is None  # second hop, trusted
    assert g.check(relayed, ip("198.18.3.1"), 0.0) == DROP_UNTRUSTED_RELAY  # source not
    other = _msg(giaddr="198.18.9.9")
    assert g.check(other, ip("198.18.1.1"), 0.0) == DROP_UNTRUSTED_RELAY  # giaddr not
    assert g.check(_msg(), ip("203.0.113.5"), 0.0) is None  # not relayed: not a relay matter


def test_guard_client_limit_runs_before_relay_limit() -> None:
    g = EdgeGuard.from_config(_server_cfg(
        "[server.limits]\nclient-rate = 1\nclient-burst = 2\nrelay-rate = 1\n"
        "relay-burst = 5\n"))
    assert g is not None
    src = config_mod.ipv4("198.18.1.1")
    flood = _msg(b"\x02\xff\xff\xff\xff\xff", giaddr="198.18.1.1")
    verdicts = [g.check(flood, src, 0.0) for _ in range(50)]
    assert verdicts[:2] == [None, None]
    assert set(verdicts[2:]) == {DROP_CLIENT_RATE}
    # the flooding client took 2 of the relay's 5 tokens, not 50: 3 more clients get through
    others = [g.check(_msg(mac(i), giaddr="198.18.1.1"), src, 0.0) for i in range(4)]
    assert others == [None, None, None, DROP_RELAY_RATE]
    # a second-hop source is a relay of its own
    hop2 = config_mod.ipv4("198.18.1.2")
    g2 = EdgeGuard.from_config(_server_cfg("[server.limits]\nrelay-rate = 1\n"))
    assert g2 is not None
    assert g2.check(_msg(mac(1), giaddr="198.18.1.1"), hop2, 0.0) is None
    assert g2.check(_msg(mac(2), giaddr="198.18.1.3"), hop2, 0.0) == DROP_RELAY_RATE


def test_reload_keeps_limiter_state_when_settings_do_not_change() -> None:
    cfg = _server_cfg("[server.limits]\nclient-rate = 1\n")
    g = EdgeGuard.from_config(cfg)
    assert g is not None and g.clients is not None
    assert EdgeGuard.from_config(cfg, g).clients is g.clients  # type: ignore[union-attr]
    g3 = EdgeGuard.from_config(_server_cfg("[server.limits]\nclient-rate = 2\n"), g)
    assert g3 is not None and g3.clients is not g.clients


# -- option 82 on a request that was not relayed ----------------------------------------------


def _rai(circuit: bytes) -> bytes:
    return b"\x01" + bytes([len(circuit)]) + circuit


def test_unrelayed_agent_info_hidden_everywhere_scapy_oracle() -> None:
    # 82 twice in the options field (RFC 3396 split) and once more in the overloaded file field
    file_opts = bytes([82, 4]) + _rai(b"ab") + bytes([15, 3]) + b"x.y" + b"\xff"
    pkt = BOOTP(op=1, htype=1, hlen=6, xid=7, chaddr=b"\x02" * 6 + b"\0" * 10,
                file=file_opts + b"\0" * (128 - len(file_opts))) / DHCP(options=[
                    ("message-type", "request"), ("relay_agent_information", _rai(b"port-1")),
                    ("hostname", b"h1"), ("relay_agent_information", _rai(b"port-2")),
                    ("dhcp-option-overload", 1), "end"])
    data = bytes(pkt)
    before = parse(data)
    assert before.relay_agent_info is not None and before.circuit_id is not None
    after = parse(data)
    assert after.ignore_unrelayed_agent_info()
    assert after.relay_agent_info is None and after.circuit_id is None
    assert after.get(82) is None and after.remote_id is None
    # every other option as scapy reads it, the file-field one included
    theirs = dhcp_options(BOOTP(data))
    assert after.hostname == theirs["hostname"] == b"h1" and after.get(15) == b"x.y"
    assert after.data == data  # a view: the bytes are the bytes received
    assert not after.ignore_unrelayed_agent_info()  # nothing left to hide



# option 82 as a relay writes it (the codec refuses malformed sub-options at parse, relayed
# or not), beside other options with any value
OPTION = st.one_of(
    st.tuples(st.sampled_from([12, 15, 60, 77, 224]), st.binary(min_size=1, max_size=40)),
    st.binary(min_size=1, max_size=30).map(lambda c: (82, _rai(c))),
)


@settings(max_examples=300, deadline=None)
@given(opts=st.lists(OPTION, max_size=12))
def test_unrelayed_agent_info_hidden_property(opts: list[tuple[int, bytes]]) -> None:
    # any layout of options with any number of 82s: after stripping, scapy sees exactly the
    # same options minus 82 (and pads), and the codec finds no 82
    pkt = BOOTP(op=1, htype=1, hlen=6, xid=9, chaddr=b"\x02" * 6 + b"\0" * 10) / DHCP(
        options=[("message-type", "request"), *opts, "end"])
    data = bytes(pkt)
    msg = parse(data)
    assert msg.ignore_unrelayed_agent_info() == any(code == 82 for code, _ in opts)
    assert msg.relay_agent_info is None and msg.get(82) is None
    # every other option reads as before, joined as RFC 3396 says (scapy: the instances)
    for code in {c for c, _ in opts if c != 82}:
        assert msg.get(code) == b"".join(v for c, v in opts if c == code)


def test_agent_info_of_relayed_requests_is_kept() -> None:
    data = bytes(BOOTP(op=1, xid=3, giaddr="198.18.0.1") / DHCP(options=[
        ("message-type", "discover"), ("relay_agent_information", _rai(b"port-9")), "end"]))
    msg = parse(data)
    assert not msg.ignore_unrelayed_agent_info()
    assert msg.circuit_id == b"port-9"


# -- config ---------------------------------------------------------------------------------


def test_config_keys_and_defaults() -> None:
    srv = loads(textwrap.dedent("""\
        [server]
        trusted-relays = ["198.18.0.9", "198.18.4.0/22"]
        [server.limits]
        client-rate = 2.5
        client-burst = 6
        relay-rate = 1000
        client-table-size = 1024
        """)).server
    assert srv.trusted_relays == ((config_mod.ipv4("198.18.0.9"),) * 2,
                                  (config_mod.ipv4("198.18.4.0"), config_mod.ipv4("198.18.7.255")))
    lim = srv.limits
    assert (lim.client_rate, lim.client_burst, lim.relay_rate, lim.relay_burst) == (
        2.5, 6, 1000.0, None)
    assert (lim.client_table_size, lim.relay_table_size) == (1024, 4096)
    g = EdgeGuard.from_config(srv)
    assert g is not None and g.relays is not None and g.relays.burst == 1000
    assert g.clients is not None and g.clients.burst == 6
    d = loads("").server
    assert d.trusted_relays == () and d.limits.client_rate == 0 and d.limits.relay_rate == 0


@pytest.mark.parametrize("text, line", [
    ('[server]\ntrusted-relays = "198.18.0.1"',
     "server.trusted-relays: value '198.18.0.1': must be an array of strings"),
    ('[server]\ntrusted-relays = ["198.18.0.1/24"]',
     "server.trusted-relays[0]: value '198.18.0.1/24': not an IPv4 address or prefix"),
    ('[server]\ntrusted-relays = ["nope"]',
     "server.trusted-relays[0]: value 'nope': not an IPv4 address"),
    ('[server]\ntrusted-relays = ["198.18.0.1", "198.18.0.1"]',
     "server.trusted-relays[1]: value '198.18.0.1': listed twice"),
    ("[server.limits]\nclient-rate = -1",
     "server.limits.client-rate: value -1: out of range"),
    ("[server.limits]\nrelay-burst = 0", "server.limits.relay-burst: value 0: out of range"),
    ('[server.limits]\nclient-rate = "10/s"', "server.limits.client-rate: value '10/s': must be"),
    ("[server.limits]\nclient-table-size = 4",
     "server.limits.client-table-size: value 4: out of range"),
    ("[server.limits]\nclient-rat = 1", "server.limits.client-rat: value 1: unknown key; "
     "did you mean 'client-rate'?"),
    ("[server]\nrelay-rate = 1", "server.relay-rate: value 1: unknown key; 'relay-rate' "
     "belongs in [server.limits], not in [server]"),
    ("[server]\nlimits = 3", "server.limits: value 3: must be a table"),
    ('[server]\ntrusted-relays = ["198.18.9.0/24"]\n[[subnet4]]\nid = 1\n'
     'subnet = "198.18.0.0/24"\nrelay = ["198.18.9.1", "198.18.8.1"]',
     "subnet4[0].relay[1]: value '198.18.8.1': not in server.trusted-relays"),
])
def test_config_problems(text: str, line: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert any(p.startswith(line) for p in info.value.problems), info.value.problems


def test_docs_and_docstrings() -> None:
    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "configuration.md").read_text()
    for key in (*LIMITS_KEYS, "trusted-relays", "limits"):
        assert f"`{key}`" in doc, key
    assert "`[server.limits]`" in doc
    ops = (root / "docs" / "operations.md").read_text()
    assert "RFC 3046 2.1" in ops and "RFC 3046 2.2" in ops
    tree = ast.parse(inspect.getsource(config_mod))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LimitsConfig")
    body = cls.body
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            nxt = body[i + 1]
            assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), node


# -- in the running server ------------------------------------------------------------------


def _config(tmp: Path, port: int, server_extra: str) -> Any:
    return load_config(
        {"listen-addresses": [SERVER_IP], "port": port, "client-port": port + 1,
         "stats-interval": 0},
        server_extra=server_extra,
        lease_database={"path": tmp / "db", "sync": False},
        subnets=[{"id": 1, "subnet": "198.18.0.0/24", "pools": ["198.18.0.100 - 198.18.0.199"],
                  "relay": [RELAY_IP]},
                 {"id": 2, "subnet": "198.18.5.0/24", "pools": ["198.18.5.100 - 198.18.5.199"]}],
        more="""
[[subnet4.reservations]]
circuit-id = "'port-7'"
ip-address = "198.18.5.7"

[[subnet4]]
id = 3
subnet = "127.0.110.0/24"
pools = ["127.0.110.100 - 127.0.110.199"]
""")


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def _unrelayed_discover(xid: int, chaddr: bytes, rai: bytes | None) -> bytes:
    opts: list[Any] = [("message-type", "discover")]
    if rai is not None:
        opts.append(("relay_agent_information", rai))
    opts.append("end")
    return bytes(BOOTP(op=1, htype=1, hlen=6, xid=xid, chaddr=chaddr + b"\0" * 10)
                 / DHCP(options=opts))


def test_server_ignores_option_82_when_not_relayed(tmp_path: Path) -> None:
    # RFC 3046 2.1/2.2: option 82 + giaddr 0 is treated as not relayed. 82.5 (link selection)
    # would select subnet 2 and circuit 'port-7' would match its reservation, were the option
    # believed; the request arrives on a listen-address socket in no subnet, so ignored means
    # no subnet: no answer. The same option through a relay (giaddr set) is believed.
    port = free_port()
    cfg = _config(tmp_path, port, "")
    rai = _rai(b"port-7") + b"\x05\x04" + socket.inet_aton("198.18.5.1")
    with InProcessServer(cfg) as srv, RelayClient(port, timeout=2.0) as relay:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.bind((SERVER_IP, 0))
            c.settimeout(0.5)
            c.sendto(_unrelayed_discover(0x82, mac(7), rai), (SERVER_IP, port))
            c.sendto(_unrelayed_discover(0x83, mac(8), None), (SERVER_IP, port))
            with pytest.raises(TimeoutError):
                c.recvfrom(2048)
        # the server read both and decided: no subnet for either
        m = srv.server.metrics
        for _ in range(100):
            if m.dropped.get("no-subnet", 0) >= 2:
                break
            srv.call_soon(lambda: None)
        assert m.dropped.get("no-subnet", 0) == 2
        assert m.agent_info_ignored == 1
        relay.send_raw(relay.build("discover", mac(7), 0x84, circuit=b"port-7", options=[
            ("relay_agent_information", b"\x05\x04" + socket.inet_aton("198.18.5.1"))]))
        offer = relay.recv(0x84)
        assert offer.yiaddr == "198.18.5.7"  # believed when relayed: reservation by circuit
        assert "relay_agent_information" in dhcp_options(offer)
        assert m.agent_info_ignored == 1


def test_unicast_renew_with_option_82_is_acked_as_not_relayed(tmp_path: Path) -> None:
    # RFC 3046 2.2: a relay agent may add option 82 to a client's unicast RENEW (giaddr 0).
    # Served as not relayed: the subnet comes from ciaddr, the ACK goes to ciaddr, and option
    # 82 is not echoed. Believed, its link selection (82.5 -> 198.18.5.0/24) would put the
    # client on the wrong network. Subnet 3 is on 127/8 so that the unicast ACK stays on lo.
    port = free_port()
    while not _port_free("0.0.0.0", port + 1):  # the client port is bound here too
        port = free_port()
    cfg = _config(tmp_path, port, "")
    sel3 = b"\x05\x04" + socket.inet_aton("127.0.110.1")
    with InProcessServer(cfg) as srv, RelayClient(port, timeout=2.0) as relay, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.bind(("0.0.0.0", port + 1))
        c.settimeout(2.0)
        offer = relay.exchange("discover", mac(9), 0x90, circuit=b"port-9", options=[
            ("relay_agent_information", sel3)])
        addr = offer.yiaddr
        assert addr.startswith("127.0.110.")
        ack = relay.exchange("request", mac(9), 0x91, circuit=b"port-9", options=[
            ("server_id", dhcp_options(offer)["server_id"]), ("requested_addr", addr),
            ("relay_agent_information", sel3)])
        assert dhcp_options(ack)["message-type"] == 5
        rai = _rai(b"port-7") + b"\x05\x04" + socket.inet_aton("198.18.5.1")
        renew = bytes(BOOTP(op=1, htype=1, hlen=6, xid=0x92, ciaddr=addr,
                            chaddr=mac(9) + b"\0" * 10)
                      / DHCP(options=[("message-type", "request"),
                                      ("relay_agent_information", rai), "end"]))
        c.sendto(renew, (SERVER_IP, port))
        while True:
            data, _ = c.recvfrom(4096)
            reply = BOOTP(data)
            if reply.xid == 0x92:
                break
        opts = dhcp_options(reply)
        assert opts["message-type"] == 5 and reply.yiaddr == addr and reply.ciaddr == addr
        assert "relay_agent_information" not in opts
        assert srv.server.metrics.agent_info_ignored == 1


def test_server_drops_untrusted_relays_and_counts(tmp_path: Path) -> None:
    port = free_port()
    cfg = _config(tmp_path, port, f'trusted-relays = ["{RELAY_IP}"]\n')
    with InProcessServer(cfg) as srv, RelayClient(port, timeout=0.5) as relay:
        m = srv.server.metrics
        # trusted giaddr, but sent from an untrusted address (a host spoofing the relay)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoof:
            spoof.bind(("127.0.0.3", 0))
            spoof.sendto(relay.build("discover", mac(1), 0x10), (SERVER_IP, port))
        with pytest.raises(TimeoutError):
            relay.recv(0x10)
        assert m.dropped.get(DROP_UNTRUSTED_RELAY) == 1
        # from the trusted relay, with a giaddr nobody trusts
        data = bytearray(relay.build("discover", mac(1), 0x11))
        data[24:28] = socket.inet_aton("127.0.0.9")
        relay.send_raw(bytes(data))
        with pytest.raises(TimeoutError):
            relay.recv(0x11)
        assert m.dropped.get(DROP_UNTRUSTED_RELAY) == 2
        # both trusted: served
        offer = relay.exchange("discover", mac(1), 0x12)
        assert offer.yiaddr.startswith("198.18.0.")
        assert m.dropped.get(DROP_UNTRUSTED_RELAY) == 2
        # reload with the list emptied: every relay trusted again, the spoofer is served
        srv.call_soon(srv.server.reload, _config(tmp_path, port, ""))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoof:
            spoof.bind(("127.0.0.3", 0))
            spoof.sendto(relay.build("discover", mac(2), 0x13), (SERVER_IP, port))
        assert relay.recv(0x13).yiaddr.startswith("198.18.0.")  # answered to giaddr
        assert m.dropped.get(DROP_UNTRUSTED_RELAY) == 2


def test_server_rate_limits_one_client(tmp_path: Path) -> None:
    port = free_port()
    cfg = _config(tmp_path, port, "[server.limits]\nclient-rate = 0.01\nclient-burst = 3\n")
    with InProcessServer(cfg) as srv, RelayClient(port, timeout=0.5) as relay:
        for xid in range(3):
            assert relay.exchange("discover", mac(1), 0x20 + xid).yiaddr
        with pytest.raises(TimeoutError):
            relay.exchange("discover", mac(1), 0x30)
        assert relay.exchange("discover", mac(2), 0x31).yiaddr  # another client is fine
        assert srv.server.metrics.dropped.get(DROP_CLIENT_RATE) == 1
