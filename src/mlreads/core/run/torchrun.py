"""The `torchrun` environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT, LOCAL_RANK), validated without importing
torch: the run's plan checks it before anything starts, and `core.train.distributed` joins the process group it
describes."""

from __future__ import annotations

import os

from mlreads.core.errors import UserError


def distributed_env() -> tuple[int, int]:
    """(world size, rank) from the `torchrun` environment, validated; (1, 0) without one. A malformed or partial
    environment (WORLD_SIZE=abc, WORLD_SIZE=2 without RANK or MASTER_ADDR) is a UserError, one line."""
    raw = os.environ.get("WORLD_SIZE", "").strip()
    if not raw:
        return 1, 0
    fix = "launch with torchrun, or unset WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT to run in one process"
    if not raw.isdigit() or not 1 <= int(raw) <= 65536:
        raise UserError(f"WORLD_SIZE={raw[:20]!r} is not a process count (a stale torchrun environment?): {fix}")
    world = int(raw)
    if world == 1:
        return 1, 0
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k, "").strip()]
    if missing:
        raise UserError(f"WORLD_SIZE={world} but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: "
                        f"{fix}")  # fmt: skip
    rank, port = os.environ["RANK"].strip(), os.environ["MASTER_PORT"].strip()
    if not rank.isdigit() or int(rank) >= world:
        raise UserError(f"RANK={rank[:20]!r} is not a rank below WORLD_SIZE={world}: {fix}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(f"MASTER_PORT={port[:20]!r} is not a port number: {fix}")
    local = os.environ.get("LOCAL_RANK", "0").strip() or "0"
    if not local.isdigit():
        raise UserError(f"LOCAL_RANK={local[:20]!r} is not a rank: {fix}")
    return world, int(rank)
