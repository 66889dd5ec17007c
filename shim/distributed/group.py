"""Whether this process was started by `mlx.launch` as part of a group, and where its rank 0 is.

A plain `mlx-shim serve` never initialises MLX's distributed engine: without the launcher's environment it
runs exactly as it always has."""

from __future__ import annotations

import json
import os

import mlx.core as mx

Group = mx.distributed.Group


def launched_group() -> Group | None:
    """The group `mlx.launch` set this process up for (it exports MLX_RANK), or None outside one, or in a
    group of one."""
    if "MLX_RANK" not in os.environ:
        return None
    group = mx.distributed.init(strict=True)
    return group if group.size() > 1 else None


def leader_host() -> str:
    """The address the other ranks reach rank 0 at, from the launcher's environment: the ring backend's
    hostfile (rank 0's first address) or JACCL's coordinator; loopback when neither says."""
    coordinator = os.environ.get("MLX_JACCL_COORDINATOR", "")
    if coordinator:
        return coordinator.rsplit(":", 1)[0]
    path = os.environ.get("MLX_HOSTFILE", "")
    if path and os.path.isfile(path):
        with open(path) as f:
            hosts = json.load(f)
        if hosts and hosts[0]:
            return str(hosts[0][0]).rsplit(":", 1)[0]
    return "127.0.0.1"
