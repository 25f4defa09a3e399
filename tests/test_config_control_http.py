"""fastdhcp.config for HTTP(S) control sockets: addresses and ports, TLS files loaded at
check-config, basic-auth password files read, and the refusals (clear-text passwords, an open
http socket beyond loopback), each naming the key and the value at fault."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastdhcp.config import BasicAuthClient, ControlSocket, SocketType, loads
from fastdhcp.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

BASE = """
[[subnet4]]
id = 1
subnet = "192.0.2.0/24"
pools = ["192.0.2.10 - 192.0.2.20"]

[[control-sockets]]
"""


def sockets(text: str) -> tuple[ControlSocket, ...]:
    return loads(BASE + textwrap.dedent(text)).control_sockets


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        loads(BASE + textwrap.dedent(text))
    return ei.value.problems


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """CA, server certificate and key, and a key that is not the server's (openssl CLI)."""
    d = tmp_path_factory.mktemp("tls")

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=ca")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2")
    ossl("genrsa", "-out", "other.key", "2048")
    (d / "garbage.pem").write_text("not a certificate\n")
    return d


def tls(certs: Path, **override: str) -> str:
    files = {"trust-anchor": str(certs / "ca.pem"), "cert-file": str(certs / "server.pem"),
             "key-file": str(certs / "server.key"), **override}
    return "".join(f'{k} = "{v}"\n' for k, v in files.items())


def test_http_defaults():
    (sock,) = sockets('socket-type = "http"\n')
    assert sock == ControlSocket(SocketType.HTTP)
    assert (sock.socket_address, sock.socket_port, sock.idle_timeout, sock.max_connections) == \
        ("127.0.0.1", 8000, 10.0, 64)
    assert sock.auth_clients == ()


def test_http_address_port_and_limits():
    (sock,) = sockets("""\
        socket-type = "http"
        socket-address = "::1"
        socket-port = 8004
        max-connections = 3
        idle-timeout = 2.5
        """)
    assert (sock.socket_address, sock.socket_port, sock.max_connections, sock.idle_timeout) == \
        ("::1", 8004, 3, 2.5)


@pytest.mark.parametrize(("lines", "expect"), [
    ('socket-address = "localhost"\n',
     "control-sockets[0].socket-address: value 'localhost': not an IPv4 or IPv6 address"),
    ("socket-address = 1\n", "control-sockets[0].socket-address: value 1: must be an IP "
                             "address as a string"),
    ("socket-port = 0\n", "control-sockets[0].socket-port: value 0: out of range"),
    ("socket-port = 70000\n", "control-sockets[0].socket-port: value 70000: out of range"),
    ('socket-name = "/tmp/x.sock"\n', "control-sockets[0].socket-name: only for socket-type "
                                      "unix"),
    ('cert-file = "/tmp/x.pem"\n', 'control-sockets[0].cert-file: TLS keys need socket-type = '
                                   '"https"'),
    ("cert-required = false\n", "control-sockets[0].cert-required: TLS keys need"),
])
def test_http_bad_keys_named(lines, expect):
    found = problems('socket-type = "http"\n' + lines)
    assert any(p.startswith(expect) for p in found), found


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.1", "::", "2001:db8::1"])
def test_open_http_beyond_loopback_refused(address):
    found = problems(f'socket-type = "http"\nsocket-address = "{address}"\n')
    assert len(found) == 1
    assert found[0].startswith(f"control-sockets[0].socket-address: value '{address}': an "
                               "http control socket beyond loopback needs authentication or "
                               "TLS")


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1"])
def test_open_http_on_loopback_accepted(address):
    (sock,) = sockets(f'socket-type = "http"\nsocket-address = "{address}"\n')
    assert sock.socket_address == address


def test_http_beyond_loopback_with_auth_accepted(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    (sock,) = sockets(f"""\
        socket-type = "http"
        socket-address = "0.0.0.0"
        authentication = {{ type = "basic", realm = "ops", clients = [
            {{ user = "admin", password-file = "{pw}" }} ] }}
        """)
    assert sock.auth_realm == "ops"
    assert sock.auth_clients == (BasicAuthClient("admin", str(pw), "secret"),)
    assert "secret" not in repr(sock)  # never shown


def test_https_beyond_loopback_without_auth_accepted(certs):
    (sock,) = sockets('socket-type = "https"\nsocket-address = "0.0.0.0"\n' + tls(certs))
    assert sock.socket_type is SocketType.HTTPS
    assert (sock.trust_anchor, sock.cert_file, sock.key_file, sock.cert_required) == \
        (str(certs / "ca.pem"), str(certs / "server.pem"), str(certs / "server.key"), True)


def test_https_cert_required_false_and_trust_anchor_directory(certs):
    (sock,) = sockets('socket-type = "https"\ncert-required = false\n'
                      + tls(certs, **{"trust-anchor": str(certs)}))
    assert sock.cert_required is False and sock.trust_anchor == str(certs)


def test_https_needs_all_three_files():
    found = problems('socket-type = "https"\n')
    assert {p.split(":")[0] for p in found} == {
        "control-sockets[0].trust-anchor", "control-sockets[0].cert-file",
        "control-sockets[0].key-file"}
    assert all("required for socket-type https" in p for p in found)


@pytest.mark.parametrize(("override", "key"), [
    ({"trust-anchor": "/nonexistent/ca.pem"}, "trust-anchor"),
    ({"cert-file": "/nonexistent/server.pem"}, "cert-file"),
    ({"cert-file": "GARBAGE"}, "cert-file"),
    ({"key-file": "/nonexistent/server.key"}, "key-file"),
    ({"key-file": "OTHER"}, "key-file"),  # a key, but not the certificate's
])
def test_tls_files_that_do_not_load_name_the_key(certs, override, key):
    files = {k: {"GARBAGE": str(certs / "garbage.pem"), "OTHER": str(certs / "other.key")}
             .get(v, v) for k, v in override.items()}
    found = problems('socket-type = "https"\n' + tls(certs, **files))
    assert len(found) == 1, found
    assert found[0].startswith(f"control-sockets[0].{key}: value '{files[key]}': does not "
                               "load: "), found


def test_clear_text_password_refused_and_not_echoed():
    found = problems("""\
        socket-type = "http"
        authentication = { type = "basic", clients = [ { user = "admin", password = "hunter2" } ] }
        """)
    assert "control-sockets[0].authentication.clients[0].password: a password in clear text " \
           "in the config is refused: write it to a file only the server can read and give " \
           "password-file" in found
    assert not any("hunter2" in p for p in found)


def test_unknown_client_key_not_echoed():
    found = problems("""\
        socket-type = "http"
        authentication = { type = "basic", clients = [ { user = "a", passwd = "hunter2" } ] }
        """)
    assert any(p.startswith("control-sockets[0].authentication.clients[0].passwd: unknown key")
               for p in found), found
    assert not any("hunter2" in p for p in found)


@pytest.mark.parametrize(("content", "password"), [
    ("pw\n", "pw"), ("pw\r\n", "pw"), ("pw", "pw"), (" spaced pw \n", " spaced pw "),
])
def test_password_file_one_trailing_newline_stripped(tmp_path, content, password):
    (tmp_path / "pw").write_bytes(content.encode())
    (sock,) = sockets(f"""\
        socket-type = "http"
        authentication = {{ type = "basic", directory = "{tmp_path}", clients = [
            {{ user = "admin", password-file = "pw" }} ] }}
        """)
    assert sock.auth_clients[0].password == password
    assert sock.auth_clients[0].password_file == str(tmp_path / "pw")


def test_user_file(tmp_path):
    (tmp_path / "u").write_text("ops\n")
    (tmp_path / "p").write_text("x\n")
    (sock,) = sockets(f"""\
        socket-type = "http"
        authentication = {{ type = "basic", directory = "{tmp_path}", clients = [
            {{ user-file = "u", password-file = "p" }} ] }}
        """)
    assert sock.auth_clients == (BasicAuthClient("ops", str(tmp_path / "p"), "x",
                                                 str(tmp_path / "u")),)


@pytest.mark.parametrize(("setup", "client", "expect"), [
    ({}, 'user = "a", password-file = "/nonexistent/pw"',
     "clients[0].password-file: value '/nonexistent/pw': cannot be read: No such file"),
    ({"pw": ""}, 'user = "a", password-file = "DIR/pw"', "clients[0].password-file: value "
     "'DIR/pw': is empty"),
    ({"pw": "a\nb\n"}, 'user = "a", password-file = "DIR/pw"', "holds more than one line"),
    ({"pw": "x"}, 'user = "a:b", password-file = "DIR/pw"',
     "clients[0].user: a basic-auth user may not contain ':'"),
    ({"pw": "x"}, 'password-file = "DIR/pw"', "clients[0]: give exactly one of user and "
     "user-file"),
    ({"pw": "x", "u": "a"}, 'user = "a", user-file = "DIR/u", password-file = "DIR/pw"',
     "clients[0]: give exactly one of user and user-file"),
    ({}, 'user = "a"', "clients[0].password-file: required"),
])
def test_bad_clients_named(tmp_path, setup, client, expect):
    for name, text in setup.items():
        (tmp_path / name).write_text(text)
    client = client.replace("DIR", str(tmp_path))
    expect = expect.replace("DIR", str(tmp_path))
    found = problems(f'socket-type = "http"\nauthentication = {{ type = "basic", clients = '
                     f"[ {{ {client} }} ] }}\n")
    assert any(expect in p for p in found), found


def test_unreadable_password_file_named(tmp_path):
    pw = tmp_path / "pw"
    pw.mkdir()  # exists, and cannot be read as a file, even by root (CI runs as root)
    found = problems(f'socket-type = "http"\nauthentication = {{ type = "basic", clients = '
                     f'[ {{ user = "a", password-file = "{pw}" }} ] }}\n')
    assert any(p.startswith(f"control-sockets[0].authentication.clients[0].password-file: "
                            f"value '{pw}': cannot be read: Is a directory") for p in found), found


def test_duplicate_user_and_auth_shape(tmp_path):
    (tmp_path / "pw").write_text("x")
    pw = tmp_path / "pw"
    found = problems(f"""\
        socket-type = "http"
        authentication = {{ type = "digest", realm = "a\\"b", clients = [
            {{ user = "a", password-file = "{pw}" }}, {{ user = "a", password-file = "{pw}" }} ] }}
        """)
    assert any(p.startswith("control-sockets[0].authentication.type: value 'digest': must be "
                            '"basic"') for p in found), found
    assert any(p.startswith("control-sockets[0].authentication.realm:") and "quote" in p
               for p in found), found
    assert "control-sockets[0].authentication.clients[1].user: user 'a' is already " \
           "control-sockets[0].authentication.clients[0]" in found
    assert any(p.startswith("control-sockets[0].authentication.clients: value []: must be a "
                            "non-empty array")
               for p in problems('socket-type = "http"\nauthentication = { type = "basic", '
                                 "clients = [] }\n"))


def test_check_config_cli_refuses_open_http(tmp_path):
    cfg = tmp_path / "f.toml"
    cfg.write_text(BASE + 'socket-type = "http"\nsocket-address = "0.0.0.0"\n')
    res = subprocess.run([sys.executable, "-m", "fastdhcp", "check-config", "--config",
                          str(cfg)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 1
    assert res.stderr.startswith("control-sockets[0].socket-address: value '0.0.0.0': an http "
                                 "control socket beyond loopback needs authentication")
    assert "Traceback" not in res.stderr
