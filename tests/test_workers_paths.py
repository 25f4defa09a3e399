"""The workers' private socket paths (fastdhcp.service.worker_paths)."""

from __future__ import annotations

import pytest

from fastdhcp.config import loads
from fastdhcp.service.worker_paths import worker_control_socket, workers_directory


def test_worker_control_socket_is_under_the_lease_database() -> None:
    config = loads('[lease-database]\npath = "/var/lib/fdh"\n')
    assert workers_directory(config) == "/var/lib/fdh/workers"
    assert worker_control_socket(config, 0) == "/var/lib/fdh/workers/w0.sock"
    assert worker_control_socket(config, 11) == "/var/lib/fdh/workers/w11.sock"
    with pytest.raises(ValueError, match="-1"):
        worker_control_socket(config, -1)
