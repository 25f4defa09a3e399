"""The HTTP(S) control socket, against what kea-ctrl-agent 2.2 does (reference:
kea-control-api.md 2.2, 2.3, C1, C14): the answer list, Kea's 400/401 bodies, the size limit,
keep-alive, the idle timeout and the connection limit, checked with raw sockets and
http.client; then the real clients, kea-shell (python3-kea-connector) and curl, with no
authentication, basic authentication and TLS with client certificates made by the openssl CLI.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fastdhcp.buildinfo import version
from fastdhcp.control.common import MAX_REQUEST
from tests.control_helpers import free_tcp_port, http_server, http_socket_text, unix_command
from tests.service_helpers import RelayClient, mac

pytestmark = pytest.mark.service

BAD_REQUEST = b'{ "result": 400, "text": "Bad Request" }'
UNAUTHORIZED = b'{ "result": 401, "text": "Unauthorized" }'
KEA_SHELL = shutil.which("kea-shell") or "/usr/sbin/kea-shell"
needs_kea_shell = pytest.mark.skipif(not os.path.exists(KEA_SHELL),
                                     reason="kea-shell (python3-kea-connector) not installed")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


# ---------------------------------------------------------------- clients


def post(port: int, body: bytes | dict[str, Any], *, path: str = "/", method: str = "POST",
         headers: dict[str, str] | None = None,
         context: ssl.SSLContext | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a new connection: (status, headers, body)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    hdrs = {"Content-Type": "application/json"} if headers is None else headers
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=data if method != "GET" else None, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def command(port: int, name: str, arguments: Any = None, **kw: Any) -> list[dict[str, Any]]:
    """A command as kea-shell sends it (``service: ["dhcp4"]``); the decoded answer list."""
    body: dict[str, Any] = {"command": name, "service": ["dhcp4"]}
    if arguments is not None:
        body["arguments"] = arguments
    status, _h, data = post(port, body, **kw)
    assert status == 200, data
    out = json.loads(data)
    assert isinstance(out, list)
    return out


def raw_request(body: bytes, *, length: int | None = None, extra: str = "") -> bytes:
    n = len(body) if length is None else length
    return (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {n}\r\n{extra}\r\n").encode() + body


def read_response(s: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP response from a raw socket (Content-Length framed): (status line, headers with
    lower-case names, body). Reads exactly that response: a pipelined next one stays queued."""
    seen = b""
    while b"\r\n\r\n" not in seen:  # peek until the head is in, then take just this one
        peek = s.recv(65536, socket.MSG_PEEK)
        assert peek, f"connection closed before a response: {seen!r}"
        if peek == seen:
            time.sleep(0.01)
        seen = peek
    head = seen[:seen.index(b"\r\n\r\n")]
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:])}
    want = len(head) + 4 + int(headers["content-length"])
    data = b""
    while len(data) < want:
        chunk = s.recv(want - len(data))
        assert chunk, "connection closed inside a response"
        data += chunk
    return lines[0], headers, data[len(head) + 4:]


def closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closes ``s`` (reads nothing else), or None if it stays open."""
    t0 = time.monotonic()
    s.settimeout(seconds)
    try:
        data = s.recv(65536)
    except TimeoutError:
        return None
    except ConnectionResetError:
        data = b""
    assert data == b"", data
    return time.monotonic() - t0


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def version_get(s: socket.socket) -> list[dict[str, Any]]:
    s.sendall(raw_request(b'{"command": "version-get", "service": ["dhcp4"]}'))
    status, _h, body = read_response(s)
    assert status == "HTTP/1.1 200 OK"
    out = json.loads(body)
    assert isinstance(out, list)
    return out


def kea_shell(port: int, cmd: str, stdin: str = "", *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real kea-shell 2.2; ``stdin`` is the body of the arguments map, without braces
    (kea-shell pastes it inside ``"arguments": { ... }``)."""
    return subprocess.run(
        [KEA_SHELL, "--host", "127.0.0.1", "--port", str(port), "--service", "dhcp4",
         "--timeout", "10", *args, cmd],
        input=stdin, capture_output=True, text=True, timeout=30)


def kea_shell_answer(port: int, cmd: str, stdin: str = "", *args: str) -> dict[str, Any]:
    run = kea_shell(port, cmd, stdin, *args)
    assert run.returncode == 0, run.stderr + run.stdout
    out = json.loads(run.stdout)
    assert isinstance(out, list) and len(out) == 1, out
    assert isinstance(out[0], dict)
    return out[0]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def plain(tmp_path):
    """A server with an HTTP socket without authentication: (server, http port, DHCP port)."""
    hport = free_tcp_port()
    with http_server(tmp_path, http_socket_text(hport)) as (srv, _sock, port):
        yield srv, hport, port


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def with_auth(tmp_path):
    """A server whose HTTP socket wants basic auth: admin / s3cret (password file), ops (user
    and password files): (server, http port)."""
    d = tmp_path / "auth"
    d.mkdir()
    _write(d / "admin.pw", "s3cret\n")  # one trailing newline: stripped
    _write(d / "ops.user", "ops\n")
    _write(d / "ops.pw", "0ps pass")
    extra = (f'authentication = {{ type = "basic", realm = "fastdhcp-test", directory = "{d}", '
             'clients = [ { user = "admin", password-file = "admin.pw" }, '
             '{ user-file = "ops.user", password-file = "ops.pw" } ] }\n')
    hport = free_tcp_port()
    with http_server(tmp_path, http_socket_text(hport, extra=extra)) as (srv, _sock, _port):
        yield srv, hport


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A test CA, a server certificate for IP 127.0.0.1 and a client certificate (CN
    ops-client) made with the openssl CLI, plus a client certificate from another CA."""
    d = tmp_path_factory.mktemp("tls")

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    for ca in ("ca", "other-ca"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
             "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=fastdhcp {ca}")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ca, cn, ext in (("server", "ca", "127.0.0.1", True),
                              ("client", "ca", "ops-client", False),
                              ("stranger", "other-ca", "stranger", False)):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN={cn}")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
             *(["-extfile", "san.ext"] if ext else []))
    return d


def tls_extra(certs: Path) -> str:
    return (f'trust-anchor = "{certs / "ca.pem"}"\ncert-file = "{certs / "server.pem"}"\n'
            f'key-file = "{certs / "server.key"}"\ncert-required = true\n')


@pytest.fixture
def tls(tmp_path, certs):
    """A server with an HTTPS socket requiring client certificates: (server, https port)."""
    hport = free_tcp_port()
    text = http_socket_text(hport, socket_type="https", extra=tls_extra(certs))
    with http_server(tmp_path, text) as (srv, _sock, _port):
        yield srv, hport


def client_context(certs: Path, cert: str | None = "client") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if cert is not None:
        ctx.load_cert_chain(str(certs / f"{cert}.pem"), str(certs / f"{cert}.key"))
    return ctx


# ---------------------------------------------------------------- the envelope over HTTP


def test_post_any_path_answers_a_one_element_list(plain):
    _srv, hport, _port = plain
    for path in ("/", "/foo/bar"):
        status, headers, body = post(hport, {"command": "version-get", "service": ["dhcp4"]},
                                     path=path)
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert int(headers["Content-Length"]) == len(body)
        answer = json.loads(body)
        assert isinstance(answer, list) and len(answer) == 1
        assert answer[0]["result"] == 0 and answer[0]["text"] == version()
    # without "service" the server answers itself, still as a list (Kea 3's servers do)
    assert command(hport, "list-commands")[0]["arguments"] == \
        json.loads(post(hport, {"command": "list-commands"})[2])[0]["arguments"]


def test_same_answer_as_the_unix_socket(tmp_path):
    hport = free_tcp_port()
    with http_server(tmp_path, http_socket_text(hport)) as (_srv, sock, _port):
        for name, args in (("list-commands", None), ("statistic-get", {"name": "pkt4-received"}),
                           ("foo-bar", None), ("dhcp-disable", {"max-period": -1})):
            over_http = command(hport, name, args)
            assert over_http == [unix_command(sock, name, args)]
    assert over_http[0]["result"] == 1  # (the last one was refused, in both)


def test_service_entries_as_the_agent(plain):
    _srv, hport, _port = plain
    two = json.loads(post(hport, {"command": "list-commands", "service": ["dhcp4", "dhcp6"]})[2])
    assert len(two) == 2
    assert two[0]["result"] == 0 and "list-commands" in two[0]["arguments"]
    assert two[1] == {"result": 1, "text": "forwarding socket is not configured for the "
                                           "server type dhcp6"}
    assert json.loads(post(hport, {"command": "version-get", "service": "dhcp4"})[2]) == \
        [{"result": 1, "text": "service value must be a list"}]
    assert json.loads(post(hport, {"command": "version-get", "service": []})[2])[0]["result"] == 0
    # envelope errors are answered in the list, with HTTP 200 (as the agent)
    status, _h, body = post(hport, {"service": ["dhcp4"]})
    assert status == 200
    assert json.loads(body) == [{"result": 1, "text": "Error during command processing: Invalid "
                                 "answer specified, does not contain mandatory 'command'"}]
    assert command(hport, "foo-bar") == [{"result": 2,
                                          "text": "'foo-bar' command not supported."}]


#: Requests kea-ctrl-agent answers with its 400 body (also the multi-worker front:
#: tests/test_control_front.py).
BAD_HTTP = [
    ("GET", {}, b""),
    ("PUT", {"Content-Type": "application/json"}, b'{"command": "version-get"}'),
    ("POST", {"Content-Type": "text/plain"}, b'{"command": "version-get"}'),
    ("POST", {}, b'{"command": "version-get"}'),  # no Content-Type at all
    ("POST", {"Content-Type": "application/json"}, b'{"command": "list-commands"'),
    ("POST", {"Content-Type": "application/json"}, b"hello"),
    ("POST", {"Content-Type": "application/json"}, b"\xff\xfe{}"),
]


@pytest.mark.parametrize(("method", "headers", "body"), BAD_HTTP)
def test_bad_http_requests_get_kea_400(plain, method, headers, body):
    _srv, hport, _port = plain
    status, hdrs, data = post(hport, body, method=method, headers=headers)
    assert status == 400
    assert data == BAD_REQUEST  # a bare object, Kea's bytes
    assert hdrs["Content-Type"] == "application/json"


def test_unparsable_http_gets_kea_400_and_close(plain):
    _srv, hport, _port = plain
    for junk in (b"GARBAGE\r\n\r\n", b"POST / HTTP/1.1\r\nBad Header Line\r\n\r\n"):
        with connect(hport) as s:
            s.sendall(junk)
            status, headers, body = read_response(s)
            assert " 400 Bad Request" in status
            assert body == BAD_REQUEST and headers["content-type"] == "application/json"
            assert "aiohttp" not in headers.get("server", "")
            assert closed_within(s, 5) is not None


def test_compressed_body_not_inflated(plain):
    import gzip

    _srv, hport, _port = plain
    status, _h, body = post(hport, gzip.compress(b'{"command": "version-get"}'),
                            headers={"Content-Type": "application/json",
                                     "Content-Encoding": "gzip"})
    assert status == 400 and body == BAD_REQUEST


def test_pipelined_requests_answered_in_order(plain):
    _srv, hport, _port = plain
    with connect(hport) as s:
        s.sendall(raw_request(b'{"command": "version-get"}')
                  + raw_request(b'{"command": "foo-bar"}'))
        first, second = read_response(s), read_response(s)
    assert json.loads(first[2])[0]["result"] == 0
    assert json.loads(second[2])[0]["result"] == 2


def test_content_type_parameters_accepted(plain):
    _srv, hport, _port = plain
    status, _h, body = post(hport, b'{"command": "list-commands"}',
                            headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 200 and json.loads(body)[0]["result"] == 0


# ---------------------------------------------------------------- connections


def test_keep_alive_two_requests_on_one_connection(plain):
    _srv, hport, _port = plain
    with connect(hport) as s:
        first = version_get(s)
        second = version_get(s)  # the same socket: had the server closed, this would fail
        assert first == second and first[0]["result"] == 0
        s.sendall(raw_request(b'{"command": "status-get"}'))
        assert json.loads(read_response(s)[2])[0]["arguments"]["pid"] == os.getpid()


def test_http_1_0_answered_in_kind(plain):
    _srv, hport, _port = plain
    with connect(hport) as s:
        body = b'{"command": "version-get"}'
        s.sendall(b"POST / HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        status, _h, data = read_response(s)
        assert status == "HTTP/1.0 200 OK"
        assert json.loads(data)[0]["result"] == 0
        assert closed_within(s, 5) is not None  # no keep-alive asked: closed


def test_body_over_limit_refused_by_content_length_without_reading(plain):
    _srv, hport, _port = plain
    with connect(hport) as s:
        # only the headers are sent: the answer must come without the body
        s.sendall(raw_request(b"", length=MAX_REQUEST + 1))
        status, headers, body = read_response(s)
        assert status.startswith("HTTP/1.1 413")
        assert json.loads(body) == {"result": 413, "text": "Request Entity Too Large"}
        assert headers.get("connection", "").lower() == "close"
        assert closed_within(s, 5) is not None


def test_chunked_body_over_limit_refused(plain):
    _srv, hport, _port = plain
    with connect(hport) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 65536
        try:
            for _ in range(MAX_REQUEST // len(chunk) + 2):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        status, _h, body = read_response(s)
        assert status.startswith("HTTP/1.1 413")
        assert json.loads(body)["result"] == 413


def test_body_at_the_limit_accepted(plain):
    _srv, hport, _port = plain
    cmd = b'{"command": "version-get"}'
    body = cmd + b" " * (MAX_REQUEST - len(cmd))
    assert len(body) == MAX_REQUEST
    status, _h, data = post(hport, body)
    assert status == 200 and json.loads(data)[0]["result"] == 0


def test_idle_connection_closed(tmp_path):
    hport = free_tcp_port()
    text = http_socket_text(hport, extra="idle-timeout = 1.0\n")
    with http_server(tmp_path, text):
        with connect(hport) as s:  # connected, sends nothing
            took = closed_within(s, 6)
        assert took is not None and 0.7 < took < 4, took
        with connect(hport) as s:  # idle after an answer, on a keep-alive connection
            version_get(s)
            took = closed_within(s, 6)
        assert took is not None and 0.7 < took < 4, took
        with connect(hport) as s:  # headers, then a body that never comes
            s.sendall(raw_request(b'{"comm', length=40))
            t0 = time.monotonic()
            status, _h, body = read_response(s)
            assert status.startswith("HTTP/1.1 408")
            assert 0.7 < time.monotonic() - t0 < 4
            assert json.loads(body)["result"] == 408


def test_default_idle_timeout_is_kea_s_ten_seconds(tmp_path):
    from fastdhcp.config import ControlSocket, SocketType, loads
    from tests.control_helpers import control_config_text

    cfg = loads(control_config_text(tmp_path / "db", 6767, tmp_path / "s",
                                    extra_sockets=http_socket_text(8004)))
    http_sock = [c for c in cfg.control_sockets if c.socket_type is SocketType.HTTP]
    assert http_sock == [ControlSocket(SocketType.HTTP, socket_port=8004)]
    assert http_sock[0].idle_timeout == 10.0


def test_max_connections_the_next_waits_its_turn(tmp_path):
    hport = free_tcp_port()
    text = http_socket_text(hport, extra="max-connections = 2\n")
    with http_server(tmp_path, text):
        a, b, c = connect(hport), connect(hport), connect(hport)
        try:
            version_get(a)
            version_get(b)
            c.sendall(raw_request(b'{"command": "version-get"}'))
            c.settimeout(0.7)
            with pytest.raises(TimeoutError):
                c.recv(1)  # two served already: the third is not answered
            a.close()  # a slot frees: the third is served now
            c.settimeout(5)
            status, _h, body = read_response(c)
            assert status == "HTTP/1.1 200 OK" and json.loads(body)[0]["result"] == 0
            version_get(b)  # and b is still served
        finally:
            for s in (a, b, c):
                s.close()


# ---------------------------------------------------------------- basic authentication


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Content-Type": "application/json", "Authorization": f"Basic {token}"}


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json"},
    _basic("admin", "wrong"),
    _basic("admin", "s3cret\n"),  # the file's newline is not part of the password
    _basic("admin", ""),
    _basic("nobody", "s3cret"),
    {"Content-Type": "application/json", "Authorization": "Basic !!!not-base64"},
    {"Content-Type": "application/json", "Authorization": "Bearer abc"},
])
def test_missing_or_wrong_credentials_get_kea_401(with_auth, headers):
    _srv, hport = with_auth
    status, hdrs, body = post(hport, {"command": "version-get", "service": ["dhcp4"]},
                              headers=headers)
    assert status == 401
    assert hdrs["WWW-Authenticate"] == 'Basic realm="fastdhcp-test"'
    assert body == UNAUTHORIZED


def test_401_comes_before_400(with_auth):
    _srv, hport = with_auth  # an unauthenticated client learns nothing, even of its errors
    status, _h, body = post(hport, b"", method="GET", headers={})
    assert status == 401 and body == UNAUTHORIZED


def test_right_credentials_answered_and_audited(with_auth, caplog):
    _srv, hport = with_auth
    caplog.set_level(logging.INFO, logger="fastdhcp.control")
    assert command(hport, "version-get", headers=_basic("admin", "s3cret"))[0]["result"] == 0
    ans = command(hport, "dhcp-disable", {"max-period": 60}, headers=_basic("ops", "0ps pass"))
    assert ans[0]["result"] == 0
    command(hport, "dhcp-enable", headers=_basic("ops", "0ps pass"))
    audit = [r.getMessage() for r in caplog.records if "dhcp-disable from" in r.getMessage()]
    assert len(audit) == 1
    assert "ops@http:127.0.0.1:" in audit[0]


# ---------------------------------------------------------------- TLS


def test_tls_with_client_certificate(tls, certs, caplog):
    _srv, hport = tls
    caplog.set_level(logging.INFO, logger="fastdhcp.control")
    ctx = client_context(certs)
    assert command(hport, "version-get", context=ctx)[0]["result"] == 0
    assert command(hport, "dhcp-disable", context=ctx)[0]["result"] == 0
    command(hport, "dhcp-enable", context=ctx)
    audit = [r.getMessage() for r in caplog.records if "dhcp-disable from" in r.getMessage()]
    assert len(audit) == 1 and "ops-client@https:127.0.0.1:" in audit[0]


@pytest.mark.parametrize("cert", [None, "stranger"])
def test_tls_without_a_trusted_client_certificate_is_cut(tls, certs, cert):
    _srv, hport = tls
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        command(hport, "version-get", context=client_context(certs, cert))


def test_plain_http_to_the_tls_port_gets_no_answer(tls):
    _srv, hport = tls
    with connect(hport) as s:
        s.sendall(raw_request(b'{"command": "version-get"}'))
        s.settimeout(5)
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"HTTP/")  # closed, or a TLS alert: never an HTTP answer


# ---------------------------------------------------------------- kea-shell, the real client


@needs_kea_shell
def test_kea_shell_commands(plain):
    srv, hport, port = plain
    with RelayClient(port) as c:
        _offer, ack = c.dora(mac(7), 0x7000)
    names = kea_shell_answer(hport, "list-commands")
    assert names["result"] == 0 and "text" not in names
    assert {"list-commands", "version-get", "status-get", "config-get",
            "statistic-get-all", "reservation-get-all"} <= set(names["arguments"])
    assert names["arguments"] == sorted(names["arguments"])

    version = kea_shell_answer(hport, "version-get")
    assert version["result"] == 0 and isinstance(version["text"], str)
    assert version["arguments"]["extended"].startswith(version["text"])

    status = kea_shell_answer(hport, "status-get")
    assert status["result"] == 0 and "text" not in status
    assert status["arguments"]["pid"] == os.getpid()  # this very process answers
    assert {"pid", "uptime", "reload", "sockets", "multi-threading-enabled"} <= \
        set(status["arguments"])

    stats = kea_shell_answer(hport, "statistic-get-all")
    assert stats["result"] == 0 and "text" not in stats
    received = stats["arguments"]["pkt4-received"]
    assert received[0][0] >= 2  # the DISCOVER and the REQUEST of the DORA above
    time.strptime(received[0][1].split(".")[0], "%Y-%m-%d %H:%M:%S")
    assert stats["arguments"]["pkt4-ack-sent"][0][0] >= 1

    conf = kea_shell_answer(hport, "config-get")
    assert conf["result"] == 0
    assert conf["arguments"]["Dhcp4"]["subnet4"][0]["id"] == 1
    assert {"socket-type": "http", "socket-port": hport} .items() <= \
        conf["arguments"]["Dhcp4"]["control-sockets"][1].items()

    assert kea_shell_answer(hport, "reservation-get-all", '"subnet-id": 1') == \
        {"arguments": {"hosts": []}, "result": 3, "text": "0 IPv4 host(s) found."}
    added = kea_shell_answer(hport, "reservation-add", '"reservation": {"subnet-id": 1, '
                             '"hw-address": "02:00:00:00:00:99", "ip-address": "198.18.0.150"}')
    assert added == {"result": 0, "text": "Host added."}
    hosts = kea_shell_answer(hport, "reservation-get-all", '"subnet-id": 1')
    assert hosts["result"] == 0 and hosts["text"] == "1 IPv4 host(s) found."
    assert hosts["arguments"]["hosts"][0]["ip-address"] == "198.18.0.150"
    with RelayClient(port) as c:  # the independent oracle: the next client is offered it
        offer, _ack = c.dora(mac(0x99), 0x9900)
    assert str(offer.yiaddr) == "198.18.0.150"

    lease = kea_shell_answer(hport, "lease4-get", f'"ip-address": "{ack.yiaddr}"')
    if lease["result"] != 2:  # lease commands are another group's: checked once they exist
        assert lease["result"] == 0 and lease["arguments"]["hw-address"] == "02:00:00:00:00:07"

    assert kea_shell_answer(hport, "foo-bar") == \
        {"result": 2, "text": "'foo-bar' command not supported."}
    bad = kea_shell_answer(hport, "dhcp-disable", '"max-period": "x"')
    assert bad["result"] == 1 and "max-period" in bad["text"]


@needs_kea_shell
def test_kea_shell_full_object_on_stdin_is_a_400(plain):
    _srv, hport, _port = plain  # the reference's pitfall: kea-shell wraps stdin in braces
    run = kea_shell(hport, "status-get", '{"x": 1}')
    assert run.returncode == 1
    assert "HTTP Error 400: Bad Request" in run.stdout + run.stderr


@needs_kea_shell
def test_kea_shell_basic_auth(with_auth):
    _srv, hport = with_auth
    right = kea_shell_answer(hport, "version-get", "", "--auth-user", "admin",
                             "--auth-password", "s3cret")
    assert right["result"] == 0
    ops = kea_shell_answer(hport, "status-get", "", "--auth-user", "ops",
                           "--auth-password", "0ps pass")
    assert ops["result"] == 0
    for args in (("--auth-user", "admin", "--auth-password", "wrong"),
                 ("--auth-user", "admin"),  # no password
                 ()):  # no credentials
        run = kea_shell(hport, "version-get", "", *args)
        assert run.returncode == 1, args
        assert "HTTP Error 401: Unauthorized" in run.stdout + run.stderr, args


@needs_kea_shell
def test_kea_shell_tls_with_client_certificate(tls, certs):
    _srv, hport = tls
    ans = kea_shell_answer(hport, "status-get", "", "--ca", str(certs / "ca.pem"),
                           "--cert", str(certs / "client.pem"), "--key",
                           str(certs / "client.key"))
    assert ans["result"] == 0 and ans["arguments"]["pid"] == os.getpid()
    # kea-shell with --ca only sends no client certificate: cut in the handshake
    run = kea_shell(hport, "status-get", "", "--ca", str(certs / "ca.pem"))
    assert run.returncode == 1 and "Failed to run" in run.stdout + run.stderr
    # and a CA that did not sign the server's certificate: kea-shell refuses the server
    run = kea_shell(hport, "status-get", "", "--ca", str(certs / "other-ca.pem"),
                    "--cert", str(certs / "client.pem"), "--key", str(certs / "client.key"))
    assert run.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in run.stdout + run.stderr


# ---------------------------------------------------------------- curl


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          text=True, timeout=30)


@needs_curl
def test_curl_plain_and_auth_and_tls(tmp_path, certs):
    d = tmp_path / "pw"
    d.mkdir()
    _write(d / "admin.pw", "1234\n")
    plain_port, auth_port, tls_port = free_tcp_port(), free_tcp_port(), free_tcp_port()
    text = (http_socket_text(plain_port)
            + http_socket_text(auth_port, extra=(
                'authentication = { type = "basic", realm = "r", clients = [ '
                f'{{ user = "admin", password-file = "{d / "admin.pw"}" }} ] }}\n'))
            + http_socket_text(tls_port, socket_type="https", extra=tls_extra(certs)))
    body = '{"command": "status-get", "service": ["dhcp4"]}'
    with http_server(tmp_path, text):
        run = curl("-X", "POST", "-H", "Content-Type: application/json", "-d", body,
                   f"http://127.0.0.1:{plain_port}/")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)[0]["arguments"]["pid"] == os.getpid()

        run = curl("-u", "admin:1234", "-H", "Content-Type: application/json", "-d", body,
                   f"http://127.0.0.1:{auth_port}/")
        assert json.loads(run.stdout)[0]["result"] == 0
        run = curl("-i", "-u", "admin:12345", "-H", "Content-Type: application/json", "-d",
                   body, f"http://127.0.0.1:{auth_port}/")
        assert run.stdout.startswith("HTTP/1.1 401 Unauthorized")
        assert 'WWW-Authenticate: Basic realm="r"' in run.stdout
        assert run.stdout.endswith(UNAUTHORIZED.decode())

        tls_args = ("--cacert", str(certs / "ca.pem"), "-H", "Content-Type: application/json",
                    "-d", body, f"https://127.0.0.1:{tls_port}/")
        run = curl("--cert", str(certs / "client.pem"), "--key", str(certs / "client.key"),
                   *tls_args)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)[0]["result"] == 0
        run = curl(*tls_args)  # no client certificate
        assert run.returncode != 0 and run.stdout == ""


# ---------------------------------------------------------------- reconfigure and stop


def test_config_set_over_http_rereads_password_files(with_auth, tmp_path):
    srv, hport = with_auth
    old, new = _basic("admin", "s3cret"), _basic("admin", "n3w")
    doc = command(hport, "config-get", headers=old)[0]["arguments"]
    _write(tmp_path / "auth" / "admin.pw", "n3w\n")
    # the socket this very command came in on changes: its answer still arrives
    ans = command(hport, "config-set", doc, headers=old)
    assert ans == [{"result": 0, "text": "Configuration successful."}]
    srv.call(srv.server.control_settled())
    assert post(hport, {"command": "version-get"}, headers=old)[0] == 401
    assert command(hport, "version-get", headers=new)[0]["result"] == 0


def test_stop_closes_keep_alive_connections_and_the_port(plain):
    srv, hport, _port = plain
    with connect(hport) as s:
        version_get(s)
        srv.stop()
        assert closed_within(s, 5) is not None
    with pytest.raises(ConnectionRefusedError):
        connect(hport).close()
