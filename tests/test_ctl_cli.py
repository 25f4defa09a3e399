"""``fastdhcp ctl``: one command to the running server, printed; exit status by result code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastdhcp.cli import main
from tests.control_helpers import control_config_text, control_server
from tests.service_helpers import RelayClient, free_port, mac

ROOT = Path(__file__).resolve().parent.parent


def _ctl(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["ctl", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_success_prints_the_answer_and_exits_0(tmp_path, capsys):
    with control_server(tmp_path) as (_, sock, _port):
        status, out, _ = _ctl(capsys, "--socket", str(sock), "list-commands")
    answer = json.loads(out)
    assert status == 0
    assert answer["result"] == 0
    assert "list-commands" in answer["arguments"] and "status-get" in answer["arguments"]


def test_arguments_json_reach_the_command(tmp_path, capsys):
    with control_server(tmp_path) as (_, sock, port):
        RelayClient(port).dora(mac(1), 1)
        status, out, _ = _ctl(capsys, "--socket", str(sock), "statistic-get",
                              '{"name": "pkt4-ack-sent"}')
    answer = json.loads(out)
    assert status == 0
    [[value, stamp]] = answer["arguments"]["pkt4-ack-sent"]
    assert value == 1 and len(stamp) == len("2026-01-01 00:00:00.000000")


def test_unknown_command_exits_1(tmp_path, capsys):
    with control_server(tmp_path) as (_, sock, _port):
        status, out, _ = _ctl(capsys, "--socket", str(sock), "no-such-command")
    assert status == 1
    assert json.loads(out)["result"] == 2


def test_command_error_exits_1(tmp_path, capsys):
    with control_server(tmp_path) as (_, sock, _port):
        status, out, _ = _ctl(capsys, "--socket", str(sock), "statistic-get", '{"nam": "x"}')
    assert status == 1
    assert json.loads(out)["result"] == 1


def test_empty_answer_exits_0(tmp_path, capsys):
    """Result 3 (nothing found) is an answer, not a failure of the tool."""
    with control_server(tmp_path) as (_, sock, _port):
        status, out, _ = _ctl(capsys, "--socket", str(sock), "reservation-get-all",
                              '{"subnet-id": 1}')
    answer = json.loads(out)
    assert answer["result"] == 3, answer
    assert status == 0


def test_bad_arguments_json_is_refused_before_connecting(tmp_path, capsys):
    status, out, err = _ctl(capsys, "--socket", str(tmp_path / "none.sock"), "x", "{not json")
    assert status == 1 and out == ""
    assert "ARGUMENTS-JSON is not JSON" in err
    status, _, err = _ctl(capsys, "--socket", str(tmp_path / "none.sock"), "x", "[1]")
    assert status == 1 and "must be a JSON object, not list" in err


def test_no_server_is_one_clear_line(tmp_path, capsys):
    sock = tmp_path / "none.sock"
    status, out, err = _ctl(capsys, "--socket", str(sock), "list-commands")
    assert status == 1 and out == ""
    assert err.strip() == f"fastdhcp ctl: {sock}: no server listening (No such file or directory)"


def test_config_without_unix_socket_is_named(tmp_path, capsys):
    from tests.service_helpers import config_text

    cfg = tmp_path / "f.toml"
    cfg.write_text(config_text(tmp_path / "db", free_port()))
    status, _, err = _ctl(capsys, "--config", str(cfg), "list-commands")
    assert status == 1
    assert 'no [[control-sockets]] of socket-type "unix"' in err


def test_real_command_line_finds_the_socket_in_the_config(tmp_path):
    """The installed entry point, as an operator types it, against a running server."""
    with control_server(tmp_path) as (_, sock, port):
        cfg = tmp_path / "fastdhcp.toml"
        cfg.write_text(control_config_text(tmp_path / "db", port, sock))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "fastdhcp", "ctl", "--config", str(cfg), "status-get"],
            capture_output=True, text=True, timeout=60, env=env, input="")
        piped = subprocess.run(
            [sys.executable, "-m", "fastdhcp", "ctl", "-s", str(sock), "statistic-get", "-"],
            capture_output=True, text=True, timeout=60, env=env,
            input='{"name": "pkt4-received"}')
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["result"] == 0 and status["arguments"]["pid"] == os.getpid()
    assert piped.returncode == 0, piped.stderr
    assert "pkt4-received" in json.loads(piped.stdout)["arguments"]
