"""DHCID (RFC 4701 section 3.6's own examples), the [ddns] config's checks, the RFC 4703
transactions' messages, and the worker's queue, retries and counters with a scripted sender
(the real DNS server is tests/interop/test_ddns_knot.py's)."""

from __future__ import annotations

import base64
import socket
import struct
import threading
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from fastdhcp.config import loads
from fastdhcp.ddns.config import ConflictMode, DdnsConfig, DdnsDomain, DnsServer
from fastdhcp.ddns.dhcid import DhcidIdentifier, IdentifierType, dhcid_rdata
from fastdhcp.ddns.stats import DdnsCollector, DdnsStats
from fastdhcp.ddns.transport import Delivery, Sent, send
from fastdhcp.ddns.updates import Change, Direction, NameChange, Outcome, Transaction
from fastdhcp.ddns.worker import DdnsWorker, lease_ttl
from fastdhcp.errors import ConfigError

# -- RFC 4701 section 3.6 ---------------------------------------------------------------------


def test_3_6_1_duid_example():
    duid = bytes.fromhex("0001" "0006" "412df166" "010203040506")  # DUID-LLT of the RFC
    ident = DhcidIdentifier.from_client(b"\xff" + b"\x00\x00\x00\x01" + duid, 1, b"")
    assert ident == DhcidIdentifier(IdentifierType.DUID, duid)  # RFC 4361 client-id -> DUID
    got = dhcid_rdata(ident, dns.name.from_text("chi6.example.com."))
    assert base64.b64encode(got).decode() == "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="


def test_3_6_2_client_identifier_example():
    ident = DhcidIdentifier.from_client(bytes.fromhex("01070809" "0a0b0c"), 1, b"")
    assert ident.kind is IdentifierType.CLIENT_ID
    got = dhcid_rdata(ident, dns.name.from_text("chi.example.com."))
    assert base64.b64encode(got).decode() == "AAEBOSD+XR3Os/0LozeXVqcNc7FwCfQdWL3b/NaiUDlW2No="


def test_3_6_3_htype_chaddr_example():
    ident = DhcidIdentifier.from_client(None, 1, bytes.fromhex("010203040506"))
    assert ident.kind is IdentifierType.HTYPE_CHADDR
    got = dhcid_rdata(ident, dns.name.from_text("client.example.com."))
    assert base64.b64encode(got).decode() == "AAABxLmlskllE0MVjd57zHcWmEH3pCQ6VytcKD//7es/deY="


def test_dhcid_uses_the_canonical_lower_case_name():
    ident = DhcidIdentifier.from_client(None, 1, bytes.fromhex("010203040506"))
    assert (dhcid_rdata(ident, dns.name.from_text("Client.EXAMPLE.com."))
            == dhcid_rdata(ident, dns.name.from_text("client.example.com.")))


# -- [ddns] config ----------------------------------------------------------------------------

HEAD = '[server]\nlisten-addresses = ["127.0.0.1"]\n'


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        loads(HEAD + text)
    return ei.value.problems


def test_config_full_table(tmp_path: Path):
    secret = tmp_path / "key"
    secret.write_text(base64.b64encode(b"k" * 32).decode() + "\n")
    cfg = loads(HEAD + f"""
[ddns]
ddns-qualifying-suffix = "example.net."
ddns-replace-client-name = "when-not-present"
ddns-use-conflict-resolution = false
max-queue-size = 10
[[ddns.tsig-keys]]
name = "dhcp-key."
algorithm = "hmac-sha256"
secret-file = "{secret}"
[[ddns.forward-ddns.ddns-domains]]
name = "example.net."
key-name = "dhcp-key."
dns-servers = [{{ ip-address = "198.18.4.2" }}, {{ ip-address = "198.18.4.3", port = 5353 }}]
[[ddns.reverse-ddns.ddns-domains]]
name = "2.0.192.in-addr.arpa."
dns-servers = [{{ ip-address = "198.18.4.2" }}]
""").ddns
    assert cfg is not None
    assert cfg.qualifying_suffix == "example.net"
    assert cfg.conflict_mode is ConflictMode.NO_CHECK_WITH_DHCID
    assert cfg.max_queue_size == 10
    key = cfg.tsig_keys[0]
    assert key.algorithm == "HMAC-SHA256" and key.secret == b"k" * 32
    assert "secret=" not in repr(key)
    fwd = cfg.forward_domain(dns.name.from_text("host.sub.example.net."))
    assert fwd is not None and fwd.key is key
    assert fwd.servers == (DnsServer("198.18.4.2"), DnsServer("198.18.4.3", 5353))
    assert cfg.forward_domain(dns.name.from_text("host.example.org.")) is None
    rev = cfg.reverse_domain(dns.name.from_text("10.2.0.192.in-addr.arpa."))
    assert rev is not None and rev.key is None


def test_config_defaults_are_kea_2_2s():
    cfg = loads(HEAD + "[ddns]\n").ddns
    assert cfg == DdnsConfig()
    assert (cfg.generated_prefix, cfg.qualifying_suffix, cfg.replace_client_name.value,
            cfg.send_updates, cfg.update_on_renew, cfg.conflict_mode.value,
            cfg.max_queue_size) == ("myhost", "", "never", True, False, "check-with-dhcid", 1024)
    assert loads(HEAD).ddns is None  # off unless configured


def test_config_errors_carry_key_path_and_value(tmp_path: Path):
    bad = tmp_path / "bad"
    bad.write_text("not base64!\n")
    lines = problems(f"""
[ddns]
ddns-replace-client-name = "sometimes"
ddns-send-update = true
ddns-generated-prefix = "no_underscores"
hostname-char-set = "[unclosed"
ddns-use-conflict-resolution = true
ddns-conflict-resolution-mode = "check-with-dhcid"
[[ddns.tsig-keys]]
name = "k1."
secret = "c2VjcmV0"
[[ddns.tsig-keys]]
name = "k2."
algorithm = "HMAC-SHA3"
secret-file = "{bad}"
[[ddns.tsig-keys]]
name = "k3."
secret-file = "{bad}"
[[ddns.forward-ddns.ddns-domains]]
name = "example.net."
key-name = "nokey"
dns-servers = [{{ ip-address = "198.18.4.x" }}, {{ ip-address = "198.18.4.2", port = 0 }}]
[[ddns.reverse-ddns.ddns-domains]]
name = "example.net."
dns-servers = []
""")
    text = "\n".join(lines)
    for expect in (
        "ddns.ddns-replace-client-name: value 'sometimes': must be one of never, always",
        "ddns.ddns-send-update: value true: unknown key; did you mean 'ddns-send-updates'?",
        "ddns.ddns-generated-prefix: value 'no_underscores'",
        "ddns.hostname-char-set: value '[unclosed': must be a regular expression",
        "ddns.ddns-use-conflict-resolution: value true: give ddns-conflict-resolution-mode",
        "ddns.tsig-keys[0].secret: value '(not shown)': a TSIG secret in clear",
        "ddns.tsig-keys[1].algorithm: value 'HMAC-SHA3': must be one of HMAC-MD5",
        f"ddns.tsig-keys[2].secret-file: value '{bad}': does not hold a base64 secret",
        "ddns.forward-ddns.ddns-domains[0].key-name: value 'nokey': no tsig-keys entry",
        "ddns.forward-ddns.ddns-domains[0].dns-servers[0].ip-address: value '198.18.4.x'",
        "ddns.forward-ddns.ddns-domains[0].dns-servers[1].port: value 0",
        "ddns.reverse-ddns.ddns-domains[0].name: value 'example.net.': a reverse zone",
        "ddns.reverse-ddns.ddns-domains[0].dns-servers: value []: must list",
    ):
        assert expect in text, f"missing {expect!r} in:\n{text}"
    assert "c2VjcmV0" not in text  # the clear secret is never echoed


# -- RFC 4703 transactions ------------------------------------------------------------------

FQDN = dns.name.from_text("host.example.net.")
ADDR = (198 << 24) | (18 << 16) | (4 << 8) | 10
IDENT = DhcidIdentifier.from_client(None, 1, bytes.fromhex("02fd00000001"))
FWD = DdnsDomain(dns.name.from_text("example.net."), (DnsServer("198.18.4.2"),))
REV = DdnsDomain(dns.name.from_text("4.18.198.in-addr.arpa."), (DnsServer("198.18.4.2"),))


def ncr(change: Change = Change.ADD) -> NameChange:
    return NameChange(change, FQDN, ADDR, IDENT, True, True, ttl=1200)


def sections(txn: Transaction) -> tuple[list[tuple], list[tuple]]:
    """(prerequisites, updates) as (name, class, type, rdata texts) rows."""
    msg = txn.message()

    def rows(rrsets):
        # dnspython keeps the class a record is sent with (ANY, NONE) in ``deleting``
        return [(r.name.relativize(txn.domain.name).to_text(),
                 dns.rdataclass.to_text(r.deleting if r.deleting is not None else r.rdclass),
                 dns.rdatatype.to_text(r.rdtype),
                 sorted(x.to_text().replace(" ", "") for x in r)) for r in rrsets]
    return rows(msg.prerequisite), rows(msg.update)


def dhcid_text() -> str:
    return base64.b64encode(dhcid_rdata(IDENT, FQDN)).decode()


def test_5_3_1_forward_add_requires_the_name_unused():
    txn = Transaction(ncr(), Direction.FORWARD, FWD, ConflictMode.CHECK_WITH_DHCID)
    pre, upd = sections(txn)
    assert pre == [("host", "NONE", "ANY", [])]  # RFC 2136 2.4.5: name is not in use
    assert ("host", "IN", "A", ["198.18.4.10"]) in upd
    assert ("host", "IN", "DHCID", [dhcid_text()]) in upd
    assert txn.message().update[0].ttl == 1200
    assert txn.answer(dns.rcode.NOERROR) is Outcome.SUCCESS


def test_5_3_2_yxdomain_then_replace_only_with_our_dhcid():
    txn = Transaction(ncr(), Direction.FORWARD, FWD, ConflictMode.CHECK_WITH_DHCID)
    assert txn.answer(dns.rcode.YXDOMAIN) is Outcome.CONTINUE
    pre, upd = sections(txn)
    assert pre == [("host", "IN", "DHCID", [dhcid_text()])]  # RRset exists, value dependent
    assert upd == [("host", "ANY", "A", []), ("host", "IN", "A", ["198.18.4.10"])]
    assert txn.answer(dns.rcode.NXRRSET) is Outcome.CONFLICT  # another client's name


def test_check_exists_mode_accepts_any_dhcid():
    txn = Transaction(ncr(), Direction.FORWARD, FWD, ConflictMode.CHECK_EXISTS_WITH_DHCID)
    txn.answer(dns.rcode.YXDOMAIN)
    pre, _ = sections(txn)
    assert pre == [("host", "ANY", "DHCID", [])]  # RRset exists, value independent


@pytest.mark.parametrize(("mode", "with_dhcid"), [(ConflictMode.NO_CHECK_WITH_DHCID, True),
                                                  (ConflictMode.NO_CHECK_WITHOUT_DHCID, False)])
def test_no_check_modes_overwrite(mode, with_dhcid):
    txn = Transaction(ncr(), Direction.FORWARD, FWD, mode)
    pre, upd = sections(txn)
    assert pre == []
    assert ("host", "IN", "A", ["198.18.4.10"]) in upd
    assert any(row[2] == "DHCID" for row in upd) is with_dhcid


def test_5_5_forward_remove_a_then_dhcid():
    txn = Transaction(ncr(Change.REMOVE), Direction.FORWARD, FWD, ConflictMode.CHECK_WITH_DHCID)
    pre, upd = sections(txn)
    assert pre == [("host", "IN", "DHCID", [dhcid_text()])]
    assert upd == [("host", "NONE", "A", ["198.18.4.10"])]  # this address only
    assert txn.answer(dns.rcode.NOERROR) is Outcome.CONTINUE
    pre, upd = sections(txn)
    assert ("host", "NONE", "A", []) in pre and ("host", "NONE", "AAAA", []) in pre
    assert upd == [("host", "ANY", "DHCID", [])]
    assert txn.answer(dns.rcode.YXRRSET) is Outcome.SUCCESS  # other addresses keep the DHCID
    other = Transaction(ncr(Change.REMOVE), Direction.FORWARD, FWD,
                        ConflictMode.CHECK_WITH_DHCID)
    assert other.answer(dns.rcode.NXRRSET) is Outcome.CONFLICT  # not ours: untouched


def test_reverse_add_and_remove():
    txn = Transaction(ncr(), Direction.REVERSE, REV, ConflictMode.CHECK_WITH_DHCID)
    pre, upd = sections(txn)
    assert pre == []
    assert ("10", "IN", "PTR", ["host.example.net."]) in upd
    assert ("10", "ANY", "PTR", []) in upd and ("10", "IN", "DHCID", [dhcid_text()]) in upd
    rm = Transaction(ncr(Change.REMOVE), Direction.REVERSE, REV, ConflictMode.CHECK_WITH_DHCID)
    pre, upd = sections(rm)
    assert pre == [("10", "IN", "DHCID", [dhcid_text()])]
    assert upd == [("10", "ANY", "ANY", [])]


def test_refused_and_notauth_are_refusals():
    for rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
        txn = Transaction(ncr(), Direction.FORWARD, FWD, ConflictMode.CHECK_WITH_DHCID)
        assert txn.answer(rcode) is Outcome.REFUSED
    txn = Transaction(ncr(), Direction.FORWARD, FWD, ConflictMode.CHECK_WITH_DHCID)
    assert txn.answer(dns.rcode.SERVFAIL) is Outcome.ERROR


def test_lease_ttl_is_a_third():
    assert lease_ttl(3600) == 1200 and lease_ttl(2) == 1


# -- the worker, with a scripted sender ----------------------------------------------------------

TWO = DdnsDomain(dns.name.from_text("example.net."),
                 (DnsServer("198.18.4.2"), DnsServer("198.18.4.3")))


class Script:
    """A sender answering from a list (the last one repeats); records (server, message)."""

    def __init__(self, *answers: Sent, gate: threading.Event | None = None) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, object]] = []
        self.gate = gate

    def __call__(self, msg, server, timeout):
        if self.gate is not None:
            assert self.gate.wait(10)
        self.calls.append((server.ip_address, msg))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def worker(script: Script, **kw) -> DdnsWorker:
    cfg = DdnsConfig(forward_domains=(TWO,), reverse_domains=(REV,), retry_backoff=1, **kw)
    w = DdnsWorker(cfg, sender=script)
    w.start()
    return w


OK = Sent(Delivery.ANSWERED, dns.rcode.NOERROR)


def test_worker_adds_forward_then_reverse():
    s = Script(OK)
    w = worker(s)
    try:
        assert w.submit_add(FQDN, ADDR, IDENT, ttl=60)
        assert w.wait_idle(5)
    finally:
        w.stop()
    assert [m.zone[0].name.to_text() for _, m in s.calls] == ["example.net.",
                                                              "4.18.198.in-addr.arpa."]
    v = w.stats.values()
    assert v["ncr-received"] == 1 and v["ncr-success"] == 1
    assert v["update-sent"] == v["update-success"] == v["update-unsigned"] == 2


def test_worker_forward_conflict_skips_reverse():
    s = Script(Sent(Delivery.ANSWERED, dns.rcode.YXDOMAIN),
               Sent(Delivery.ANSWERED, dns.rcode.NXRRSET), OK)
    w = worker(s)
    try:
        w.submit_add(FQDN, ADDR, IDENT)
        assert w.wait_idle(5)
    finally:
        w.stop()
    assert len(s.calls) == 2  # no PTR for a name that is not ours (RFC 4703 5.3)
    assert w.stats.values()["ncr-conflict"] == 1 and w.stats.values()["ncr-success"] == 0


def test_worker_retries_timeouts_on_the_next_server_then_gives_up():
    s = Script(Sent(Delivery.TIMEOUT))
    w = worker(s, max_retries=2)
    try:
        w.submit_add(FQDN, ADDR, IDENT, reverse=False)
        assert w.wait_idle(5)
    finally:
        w.stop()
    assert [ip for ip, _ in s.calls] == ["198.18.4.2", "198.18.4.3", "198.18.4.2"]
    v = w.stats.values()
    assert v["update-timeout"] == 3 and v["ncr-failed"] == 1 and v["ncr-success"] == 0


def test_worker_recovers_after_a_timeout():
    s = Script(Sent(Delivery.UNREACHABLE), OK)
    w = worker(s)
    try:
        w.submit_add(FQDN, ADDR, IDENT, reverse=False)
        assert w.wait_idle(5)
    finally:
        w.stop()
    v = w.stats.values()
    assert v["update-error"] == 1 and v["ncr-success"] == 1 and len(s.calls) == 2


def test_full_queue_drops_and_counts_without_blocking():
    gate = threading.Event()
    s = Script(OK, gate=gate)
    w = worker(s, max_queue_size=3)
    try:
        t0 = time.monotonic()
        results = [w.submit_add(FQDN, ADDR + i, IDENT, reverse=False) for i in range(10)]
        took = time.monotonic() - t0
        # one change is in the (stuck) sender's hands, three wait: the other six are dropped
        assert results.count(True) in (3, 4) and results[:3] == [True] * 3
        v = w.stats.values()
        assert v["queue-mgr-queue-full"] == results.count(False)
        assert took < 1.0, took  # not a speed claim: a blocked submit would wait for the gate
    finally:
        gate.set()
        assert w.wait_idle(5)
        w.stop()
    assert w.stats.values()["ncr-success"] == results.count(True)


def test_no_zone_is_counted_not_sent():
    s = Script(OK)
    w = worker(s)
    try:
        w.submit_add(dns.name.from_text("host.example.org."), ADDR, IDENT, reverse=False)
        assert w.wait_idle(5)
    finally:
        w.stop()
    assert not s.calls and w.stats.values()["ncr-no-zone"] == 1


def test_collector_exposes_kea_names_per_key():
    stats = DdnsStats(["dhcp-key."])
    stats.bump("update-sent", "dhcp-key.")
    stats.bump("queue-mgr-queue-full")
    fams = {f.name: f for f in DdnsCollector(lambda: stats).collect()}
    glob = {s.labels["name"]: s.value for s in fams["fastdhcp_ddns_statistic"].samples
            if s.name.endswith("_total")}
    assert glob["update-sent"] == 1 and glob["queue-mgr-queue-full"] == 1
    keyed = {(s.labels["key"], s.labels["name"]): s.value
             for s in fams["fastdhcp_ddns_key_statistic"].samples if s.name.endswith("_total")}
    assert keyed[("dhcp-key.", "update-sent")] == 1
    assert stats.values()["key[dhcp-key.].update-sent"] == 1


# -- transport: TCP when the UDP answer is truncated (RFC 1035 4.2.1) --------------------------


def test_truncated_udp_answer_is_retried_over_tcp():
    """A loopback stand-in server: over UDP it answers TC=1, over TCP NOERROR."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", port))
    tcp.listen(1)
    seen: list[str] = []

    def serve() -> None:
        data, peer = udp.recvfrom(4096)
        reply = dns.message.make_response(dns.message.from_wire(data))
        reply.flags |= dns.flags.TC
        seen.append("udp")
        udp.sendto(reply.to_wire(), peer)
        conn, _ = tcp.accept()
        with conn:
            (length,) = struct.unpack("!H", conn.recv(2))
            wire = b""
            while len(wire) < length:
                wire += conn.recv(length - len(wire))
            reply = dns.message.make_response(dns.message.from_wire(wire))
            seen.append("tcp")
            out = reply.to_wire()
            conn.sendall(struct.pack("!H", len(out)) + out)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        txn = Transaction(ncr(), Direction.FORWARD, FWD, ConflictMode.CHECK_WITH_DHCID)
        sent = send(txn.message(), DnsServer("127.0.0.1", port), 5.0)
    finally:
        t.join(5)
        udp.close()
        tcp.close()
    assert seen == ["udp", "tcp"]
    assert sent == Sent(Delivery.ANSWERED, dns.rcode.NOERROR, tcp=True)
