"""Configuration commands (config-get, config-test, config-set, config-reload, config-write;
reference: kea-control-api.md C3) and JSON config files, checked by real DORAs (scapy relay
client), by loading what config-write wrote, and against a real ``fastdhcp serve``."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fastdhcp.config import from_document, load, loads, loads_json
from fastdhcp.configdoc import running_document, serialize, write_atomic
from fastdhcp.errors import ConfigError
from tests.control_helpers import control_config_text, control_server, unix_command
from tests.service_helpers import ROOT, RelayClient, ServeProcess, free_port, in_pool, mac

NEW_POOL = ("198.18.0.20", "198.18.0.29")
SANE = "Configuration seems sane. Control sockets were sanity checked, but not applied."


def same(a, b) -> bool:
    """Two configs equal but for where they came from."""
    return dataclasses.replace(a, source="x") == dataclasses.replace(b, source="x")


def dhcp4(sock: Path) -> dict:
    ans = unix_command(sock, "config-get")
    assert ans["result"] == 0 and "text" not in ans and list(ans["arguments"]) == ["Dhcp4"]
    return ans["arguments"]["Dhcp4"]


def with_pool(doc: dict, pool: tuple[str, str]) -> dict:
    doc = copy.deepcopy(doc)
    doc["subnet4"][0]["pools"] = [f"{pool[0]} - {pool[1]}"]
    return doc


# ------------------------------------------------------------------ documents and JSON files


@pytest.mark.parametrize("example", ["examples/isp.toml", "examples/small-office.toml", None])
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_written_document_loads_as_the_same_config(tmp_path, example, suffix):
    if example is None:
        text = control_config_text(tmp_path / "db", 6700, tmp_path / "c.sock")
        cfg = loads(text)
    else:
        cfg = load(ROOT / example)
    path = tmp_path / f"written{suffix}"
    write_atomic(path, serialize(running_document(cfg), path))
    if suffix == ".json":
        json.loads(path.read_text())  # really JSON
    again = load(path)
    assert same(again, cfg)
    # and once more: the document of the reloaded config is the one written
    assert running_document(again) == running_document(cfg)


_OPTIONAL = st.one_of(st.none(), st.integers(600, 7200))


@st.composite
def documents(draw):
    """Config documents that set a random part of the keys whose defaults interlock
    (lifetimes that follow valid-lifetime, subnet values that follow [global]/[server])."""
    glob: dict = {}
    for key in ("valid-lifetime", "min-valid-lifetime", "max-valid-lifetime",
                "offer-lifetime", "decline-probation-period"):
        v = draw(_OPTIONAL)
        if v is not None:
            glob[key] = v
    server: dict = {"listen-addresses": ["127.0.0.1"]}
    if draw(st.booleans()):
        server["authoritative"] = draw(st.booleans())
    if draw(st.booleans()):
        server["log-level"] = draw(st.sampled_from(["debug", "info", "warn", "error"]))
    subnets = []
    for i in range(draw(st.integers(0, 3))):
        sub: dict = {"id": i + 1, "subnet": f"198.18.{i}.0/24",
                     "pools": [f"198.18.{i}.10 - 198.18.{i}.20"]}
        for key in ("valid-lifetime", "min-valid-lifetime", "renew-timer"):
            v = draw(_OPTIONAL)
            if v is not None:
                sub[key] = v
        if draw(st.booleans()):
            sub["authoritative"] = draw(st.booleans())
        subnets.append(sub)
    return {"server": server, "global": glob, "subnet4": subnets}


@settings(max_examples=150, deadline=None)
@given(doc=documents())
def test_round_trip_property(doc):
    """Whatever a valid document leaves out, its filled-in document is the same config."""
    try:
        cfg = from_document(doc)
    except ConfigError:
        assume(False)
    filled = running_document(cfg)
    assert same(from_document(filled), cfg)
    assert same(loads(serialize(filled, "x.toml").decode()), cfg)
    assert same(loads_json(serialize(filled, "x.json").decode()), cfg)


def test_defaults_are_spelled_out_but_derived_ones_are_not(tmp_path):
    cfg = loads(control_config_text(tmp_path / "db", 6700, tmp_path / "c.sock"))
    doc = running_document(cfg)
    assert doc["server"]["log-level"] == "info" and doc["server"]["authoritative"] is False
    assert doc["lease-database"]["batch-size"] == 256
    assert doc["global"]["offer-lifetime"] == 60
    assert doc["control-sockets"][0]["idle-timeout"] == 10.0
    # these follow other keys: spelling them out would change what a later edit means
    assert "min-valid-lifetime" not in doc["global"]
    assert "authoritative" not in doc["subnet4"][0]
    assert "metrics" not in doc["server"]  # no value, and TOML has no null
    assert cfg.document == loads(control_config_text(tmp_path / "db", 6700,
                                                     tmp_path / "c.sock")).document


def test_json_config_same_as_toml(tmp_path):
    text = control_config_text(tmp_path / "db", 6700, tmp_path / "c.sock")
    cfg = loads(text)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.document))
    assert same(load(path), cfg)


def test_bad_json_says_where():
    with pytest.raises(ConfigError) as e:
        loads_json('{\n  "server": {"port": 67,}\n}', "f.json")
    assert e.value.problems == ["f.json: invalid JSON: Expecting property name enclosed in "
                                "double quotes at line 2 column 25"]
    with pytest.raises(ConfigError) as e:
        loads_json('{"server": {"port": 67, "port": 68}}', "f.json")
    assert e.value.problems == ["f.json: invalid JSON: key 'port' given twice in one object"]
    with pytest.raises(ConfigError) as e:
        loads_json('[1]', "f.json")
    assert "must be a map" in e.value.problems[0]
    with pytest.raises(ConfigError) as e:  # the same key paths and reasons as TOML
        loads_json('{"server": {"prot": 67}}', "f.json")
    assert e.value.problems[0].startswith("server.prot: value 67: unknown key; did you mean "
                                          "'port'?")


def test_check_config_takes_json(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(loads(control_config_text(tmp_path / "db", 6700,
                                                         tmp_path / "c.sock")).document))
    bad = tmp_path / "bad.json"
    bad.write_text('{"server": {"port": 70000}}')
    run = [sys.executable, "-m", "fastdhcp", "check-config", "--config"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert ok.returncode == 0 and ": OK: 1 subnets" in ok.stdout, ok.stderr
    no = subprocess.run([*run, str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert no.returncode == 1
    assert "server.port: value 70000: out of range: must be from 1 to 65535" in no.stderr


# ---------------------------------------------------------------------------------- commands


@pytest.mark.service
def test_config_get_shape(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        doc = dhcp4(sock)
    assert list(doc) == ["server", "lease-database", "global", "subnet4", "control-sockets"]
    assert doc["server"]["port"] == port
    assert doc["subnet4"][0]["pools"] == ["198.18.0.100 - 198.18.0.199"]  # as the file says
    assert doc["control-sockets"][0]["socket-name"] == str(sock)
    assert doc == json.loads(json.dumps(running_document(srv.server.config)))


@pytest.mark.service
def test_config_test_validates_without_applying(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        doc = dhcp4(sock)
        before = srv.server.config
        ans = unix_command(sock, "config-test", {"Dhcp4": with_pool(doc, NEW_POOL)})
        assert ans == {"result": 0, "text": SANE}
        assert srv.server.config is before
        with RelayClient(port) as c:
            assert in_pool(str(c.dora(mac(1), 0x100)[1].yiaddr))  # the old pool still
        bad = with_pool(doc, ("198.18.1.1", "198.18.1.9"))
        ans = unix_command(sock, "config-test", {"Dhcp4": bad})
        assert ans["result"] == 1
        assert ans["text"] == ("subnet4[0].pools[0]: value '198.18.1.1 - 198.18.1.9': pool is "
                               "outside its subnet 198.18.0.0/24")
        nothing = copy.deepcopy(doc)
        nothing["server"]["listen-addresses"] = []
        ans = unix_command(sock, "config-test", {"Dhcp4": nothing})
        assert ans["result"] == 1 and "nothing to listen on" in ans["text"]


@pytest.mark.service
def test_config_set_new_pool_serves_from_it(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        with RelayClient(port) as c:
            _o, old_ack = c.dora(mac(1), 0x200)
        ans = unix_command(sock, "config-set", {"Dhcp4": with_pool(dhcp4(sock), NEW_POOL)})
        assert ans == {"result": 0, "text": "Configuration successful."}
        with RelayClient(port) as c:
            _o, ack = c.dora(mac(2), 0x210)
        assert in_pool(str(ack.yiaddr), NEW_POOL)
        assert dhcp4(sock)["subnet4"][0]["pools"] == ["198.18.0.20 - 198.18.0.29"]
        assert srv.server.config.source == "<config-set>"
    assert in_pool(str(old_ack.yiaddr))  # (the old lease is kept, outside every pool now)


@pytest.mark.service
def test_bad_config_set_changes_nothing(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        doc = dhcp4(sock)
        before = srv.server.config
        bad = with_pool(doc, NEW_POOL)  # a good change ...
        bad["subnet4"][0]["valid-lifetme"] = 60  # ... and two problems
        bad["global"]["renew-timer"] = 10**6
        ans = unix_command(sock, "config-set", {"Dhcp4": bad})
        assert ans["result"] == 1
        lines = ans["text"].split("\n")
        assert len(lines) == 2, lines
        assert any(line.startswith("subnet4[0].valid-lifetme: value 60: unknown key; did you "
                                   "mean 'valid-lifetime'?") for line in lines)
        assert any(line.startswith("global.renew-timer: value 1000000:") for line in lines)
        assert srv.server.config is before
        assert dhcp4(sock) == doc
        with RelayClient(port) as c:
            assert in_pool(str(c.dora(mac(3), 0x300)[1].yiaddr))  # the old pool, still served


@pytest.mark.service
@pytest.mark.parametrize("command", ["config-set", "config-test"])
@pytest.mark.parametrize(("arguments", "text"), [
    (None, "Missing mandatory 'arguments' parameter."),
    ({"foo": {}}, "Missing mandatory 'Dhcp4' parameter."),
])
def test_config_set_and_test_envelope_errors_as_kea(tmp_path, command, arguments, text):
    with control_server(tmp_path) as (_srv, sock, _port):
        assert unix_command(sock, command, arguments) == {"result": 1, "text": text}


@pytest.mark.service
def test_config_set_other_argument_errors(tmp_path):
    with control_server(tmp_path) as (_srv, sock, _port):
        ans = unix_command(sock, "config-set", {"Dhcp4": []})
        assert ans["result"] == 1 and "'Dhcp4'" in ans["text"]
        ans = unix_command(sock, "config-set", {"Dhcp4": {}, "Logging": {}})
        assert ans["result"] == 1 and "'Logging'" in ans["text"]


@pytest.mark.service
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_config_write_round_trip(tmp_path, suffix):
    with control_server(tmp_path) as (srv, sock, _port):
        unix_command(sock, "config-set", {"Dhcp4": with_pool(dhcp4(sock), NEW_POOL)})
        target = tmp_path / f"out{suffix}"
        ans = unix_command(sock, "config-write", {"filename": str(target)})
        assert ans == {"result": 0, "text": f"Configuration written to {target} successful",
                       "arguments": {"filename": str(target), "size": target.stat().st_size}}
        assert same(load(target), srv.server.config)
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.service
def test_config_write_errors(tmp_path):
    with control_server(tmp_path) as (_srv, sock, _port):
        ans = unix_command(sock, "config-write", {"filename": 5})
        assert ans == {"result": 1, "text": "passed parameter 'filename' is not a string"}
        ans = unix_command(sock, "config-write", {"filename": "/nonexistent/dir/x.json"})
        assert ans["result"] == 1
        assert ans["text"].startswith("Error during write-config:Unable to open file "
                                      "/nonexistent/dir/x.json for writing")
        # an in-process server from a string has no startup file to write to
        ans = unix_command(sock, "config-write")
        assert ans["result"] == 1 and "'filename'" in ans["text"]


@pytest.mark.service
def test_config_set_moves_control_sockets(tmp_path):
    with control_server(tmp_path) as (srv, sock, _port):
        doc = dhcp4(sock)
        other = tmp_path / "ctl" / "second.sock"
        doc["control-sockets"].append({"socket-type": "unix", "socket-name": str(other)})
        assert unix_command(sock, "config-set", {"Dhcp4": doc})["result"] == 0
        srv.call(srv.server.control_settled())
        assert unix_command(other, "list-commands")["result"] == 0
        assert unix_command(sock, "list-commands")["result"] == 0  # kept, never closed
        # now drop the first socket, through the first socket: its answer still comes back
        doc["control-sockets"] = doc["control-sockets"][1:]
        assert unix_command(sock, "config-set", {"Dhcp4": doc}) == {
            "result": 0, "text": "Configuration successful."}
        srv.call(srv.server.control_settled())
        assert not sock.exists()
        st = unix_command(other, "status-get")["arguments"]
        assert st["control-sockets"] == [{"socket-type": "unix", "socket-name": str(other)}]


# ------------------------------------------------------ a real `fastdhcp serve` and its file


def _serve_config(tmp_path: Path, port: int, sock: Path, suffix: str, **kw) -> Path:
    text = control_config_text(tmp_path / "db", port, sock, **kw)
    path = tmp_path / f"fastdhcp{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(loads(text).document, indent=1))
    else:
        path.write_text(text)
    return path


@pytest.mark.service
def test_config_reload_rereads_the_startup_file(tmp_path):
    port = free_port()
    sock = tmp_path / "ctl.sock"
    cfg = _serve_config(tmp_path, port, sock, ".toml")
    with ServeProcess(cfg, tmp_path) as proc:
        assert proc.wait_notify(), proc.log()
        second = tmp_path / "second.sock"
        cfg.write_text(control_config_text(tmp_path / "db", port, sock, pools=NEW_POOL,
                                           extra_sockets=f'\n[[control-sockets]]\nsocket-type'
                                           f' = "unix"\nsocket-name = "{second}"\n'))
        ans = unix_command(sock, "config-reload")
        assert ans == {"result": 0, "text": "Configuration successful."}
        with RelayClient(port) as c:
            assert in_pool(str(c.dora(mac(1), 0x400)[1].yiaddr), NEW_POOL)
        deadline = time.monotonic() + 5
        while not second.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert unix_command(second, "list-commands")["result"] == 0  # sockets follow a reload
        # a file that does not load: every problem comes back, and the server keeps serving
        cfg.write_text(cfg.read_text().replace("valid-lifetime = 3600",
                                               "valid-lifetime = 0\nbogus = 1"))
        ans = unix_command(sock, "config-reload")
        assert ans["result"] == 1
        lines = ans["text"].split("\n")
        assert any(line.startswith("global.valid-lifetime: value 0: out of range")
                   for line in lines), lines
        assert any(line.startswith("global.bogus: value 1: unknown key") for line in lines)
        with RelayClient(port) as c:
            assert in_pool(str(c.dora(mac(2), 0x410)[1].yiaddr), NEW_POOL)
        proc.signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


@pytest.mark.service
def test_sighup_reconfigures_control_sockets(tmp_path):
    port = free_port()
    sock = tmp_path / "ctl.sock"
    cfg = _serve_config(tmp_path, port, sock, ".toml")
    with ServeProcess(cfg, tmp_path) as proc:
        assert proc.wait_notify(), proc.log()
        moved = tmp_path / "moved.sock"
        cfg.write_text(control_config_text(tmp_path / "db", port, moved))
        proc.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while (sock.exists() or not moved.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sock.exists(), proc.log()
        assert unix_command(moved, "list-commands")["result"] == 0


@pytest.mark.service
def test_json_config_served_and_written_back_as_json(tmp_path):
    port = free_port()
    sock = tmp_path / "ctl.sock"
    cfg = _serve_config(tmp_path, port, sock, ".json")
    with ServeProcess(cfg, tmp_path) as proc:
        assert proc.wait_notify(), proc.log()
        with RelayClient(port) as c:
            assert in_pool(str(c.dora(mac(1), 0x500)[1].yiaddr))
        doc = dhcp4(sock)
        assert unix_command(sock, "config-set", {"Dhcp4": with_pool(doc, NEW_POOL)})[
            "result"] == 0
        ans = unix_command(sock, "config-write")  # the startup file, in its own syntax
        assert ans["result"] == 0 and ans["arguments"]["filename"] == str(cfg)
        written = json.loads(cfg.read_text())
        assert written["subnet4"][0]["pools"] == ["198.18.0.20 - 198.18.0.29"]
        assert ans["arguments"]["size"] == os.path.getsize(cfg)
        assert unix_command(sock, "config-reload")["result"] == 0  # reads it back
        with RelayClient(port) as c:
            assert in_pool(str(c.dora(mac(2), 0x510)[1].yiaddr), NEW_POOL)
    # and a restart serves the written file
    with ServeProcess(cfg, tmp_path) as proc:
        assert proc.wait_notify(), proc.log()
        with RelayClient(port) as c:
            assert in_pool(str(c.dora(mac(3), 0x520)[1].yiaddr), NEW_POOL)
