"""The Unix control socket: Kea's envelope, one command per connection, limits, and the file
itself (reference: kea-control-api.md, C1 and 2.1)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdhcp.config import loads
from tests.control_helpers import control_config_text, control_server, unix_command, unix_raw
from tests.service_helpers import InProcessServer, free_port

pytestmark = pytest.mark.service


def test_list_commands_shape(tmp_path):
    with control_server(tmp_path) as (_srv, sock, _port):
        ans = unix_command(sock, "list-commands")
    assert ans["result"] == 0
    assert "text" not in ans
    names = ans["arguments"]
    assert "list-commands" in names
    assert names == sorted(names)


#: Kea's answers to a bad envelope (also what the multi-worker front must answer:
#: tests/test_control_front.py).
ENVELOPE_ERRORS = [
    (b"hello", 1, "invalid first character h"),
    (b"{}", 1, "Error during command processing: Invalid answer specified, does not contain "
               "mandatory 'command'"),
    (b'{"command": 1}', 1, "Error during command processing: 'command' element in command "
                           "message is not a string"),
    (b'{"command": "foo-bar"}', 2, "'foo-bar' command not supported."),
    (b'{"command": "list-commands", "foo": 1}', 1, "Error during command processing: Received "
     "command contains unsupported parameter 'foo'"),
]


@pytest.mark.parametrize(("body", "result", "text"), ENVELOPE_ERRORS)
def test_envelope_errors_as_kea(tmp_path, body, result, text):
    with control_server(tmp_path) as (_srv, sock, _port):
        ans = json.loads(unix_raw(sock, body))
    assert ans == {"result": result, "text": text}


def test_one_command_per_connection_then_close(tmp_path):
    with control_server(tmp_path) as (_srv, sock, _port):
        out = unix_raw(sock, b'{"command":"list-commands"}{"command":"foo"}')
    ans = json.loads(out)  # exactly one JSON value, then EOF
    assert ans["result"] == 0


def test_command_split_across_writes(tmp_path):
    with control_server(tmp_path) as (_srv, sock, _port):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(sock))
            s.sendall(b'{"command": "list-')
            time.sleep(0.2)
            s.sendall(b'commands"}')
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    assert json.loads(data)["result"] == 0


@pytest.mark.parametrize("cut", ["tr", "fals", "nul", "1.", "-", '"a\\'])
def test_command_split_inside_a_literal(tmp_path, cut):
    """A read that ends inside ``true``, ``false``, ``null``, a number or a string's escape
    is more to come, not an error (a 2,000-lease HA link batch was answered half-read)."""
    # "command" last: only a request read whole names it
    body = {"arguments": {"x": [True, False, None, 1.5, -2, "a\\b"]}, "command": "list-commands"}
    raw = json.dumps(body).encode()
    at = raw.index({"tr": b"true", "fals": b"false", "nul": b"null", "1.": b"1.5",
                    "-": b"-2", '"a\\': b'"a\\'}[cut]) + len(cut)
    with control_server(tmp_path) as (_srv, sock, _port):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(sock))
            s.sendall(raw[:at])
            time.sleep(0.2)
            s.sendall(raw[at:])
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    ans = json.loads(data)
    assert ans["result"] == 0 and "status-get" in ans["arguments"], ans


def test_oversized_command_refused(tmp_path):
    with control_server(tmp_path) as (_srv, sock, _port):
        big = b'{"command": "list-commands", "arguments": {"x": "' + b"a" * (2 << 20) + b'"}}'
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(sock))
            try:
                s.sendall(big)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading: what it answered is still to be read
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except ConnectionResetError:
                pass
    ans = json.loads(data)
    assert ans["result"] == 1 and "too large" in ans["text"]


def test_idle_connection_closed(tmp_path):
    port = free_port()
    sock = tmp_path / "idle.sock"
    text = control_config_text(tmp_path / "db", port, sock) + "idle-timeout = 0.5\n"
    with InProcessServer(loads(text)):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(sock))
            s.sendall(b'{"command": ')
            t0 = time.monotonic()
            assert s.recv(100) == b""  # closed without an answer
            assert time.monotonic() - t0 < 5


def test_socket_mode_0600_and_removed_on_exit(tmp_path):
    with control_server(tmp_path) as (srv, sock, _port):
        mode = stat.S_IMODE(os.stat(sock).st_mode)
        assert mode == 0o600
        srv.stop()
        assert not sock.exists()


def test_stale_socket_file_replaced(tmp_path):
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    sock.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # the file stays, nobody listens: a server killed with -9 leaves this
    with control_server(tmp_path) as (_srv, sock2, _port):
        assert sock2 == sock
        assert unix_command(sock, "list-commands")["result"] == 0


@pytest.mark.skipif(shutil.which("socat") is None and not os.environ.get("CI"),
                    reason="socat not installed (Debian package socat)")
def test_socat_as_kea_documents(tmp_path):
    """The shell usage Kea documents: ``echo '{...}' | socat - UNIX-CONNECT:sock``."""
    with control_server(tmp_path) as (_srv, sock, _port):
        out = subprocess.run(["socat", "-", f"UNIX-CONNECT:{sock}"],
                             input=b'{"command": "list-commands"}', capture_output=True,
                             timeout=20, check=True).stdout
    assert json.loads(out)["result"] == 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet='ab"\\{}[] \u00e9', max_size=6),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(alphabet='k"\\]', max_size=3), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=3), _JSON, max_size=4) | st.lists(_JSON, max_size=4))
def test_a_request_is_whole_only_when_it_all_arrived(value):
    """Every proper prefix of an object or array is more to come; the whole is complete."""
    from fastdhcp.control.unix import complete

    raw = json.dumps(value).encode()
    assert complete(raw)
    assert not any(complete(raw[:i]) for i in range(1, len(raw)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_complete_never_raises_on_any_bytes(raw):
    """Whatever a peer sends, the reader decides (an exception here would drop the
    connection without Kea's error answer)."""
    from fastdhcp.control.unix import complete

    complete(raw)
