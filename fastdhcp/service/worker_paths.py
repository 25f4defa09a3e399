"""Where the multi-worker server's private files live (docs/scaling.md).

In worker mode (``[server] workers`` > 1) each worker serves its control channel on a private
Unix socket, and the supervisor's control front (the ``control_front`` module) routes
the configured control sockets' commands to them. One function names that socket, so the
supervisor, the workers and the front cannot disagree.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastdhcp.config import Config

__all__ = ["worker_control_socket", "worker_ha_socket", "workers_directory"]


def workers_directory(config: Config) -> str:
    """``<lease database directory>/workers``: the workers' private sockets."""
    return os.path.join(config.lease_database.path, "workers")


def worker_control_socket(config: Config, k: int) -> str:
    """The private control socket of worker ``k``: ``<lease db directory>/workers/w<k>.sock``.

    The lease database directory is private to the server already (the lease table is in it),
    and a path there stays under the 108-byte limit of a Unix socket address for any
    reasonable database path."""
    if k < 0:
        raise ValueError(f"worker index must be >= 0, got {k}")
    return os.path.join(workers_directory(config), f"w{k}.sock")


def worker_ha_socket(config: Config) -> str:
    """The supervisor's private socket of the HA link (fastdhcp.ha.link), where the workers
    ask it which ACKs may leave: ``<lease db directory>/workers/ha.sock``."""
    return os.path.join(workers_directory(config), "ha.sock")
