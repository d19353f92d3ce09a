"""The `torchrun` environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT, LOCAL_RANK), validated without importing
torch: the run's plan checks it before anything starts. Joining the process group it describes, and the ranks'
agreement that a run may start, are here too (torch is imported when they are called): the runner needs them before
training, and `core.train.distributed` (fit's DDP) re-exports them.

Joining waits at most `MLREADS_DIST_TIMEOUT` seconds (default `JOIN_TIMEOUT_S`) for the other ranks: a stale torchrun
environment in a shell, or a rank that failed before it joined, is one line well under a minute, never a hang. The
timeout covers only the rendezvous; collectives during training keep torch's own timeout (30 min for gloo), so a rank
that waits while rank 0 writes a large checkpoint is never cut off.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

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


def other_rank() -> int | None:
    """This process's rank when it is a rank other than 0 under torchrun (it prints no results: rank 0 does), else
    None. Never raises: an environment that does not validate is refused by the plan, in one line."""
    try:
        world, rank = distributed_env()
    except UserError:
        return None
    return rank if world > 1 and rank != 0 else None


JOIN_TIMEOUT_S = 15.0  # torchrun starts every rank at once: 15 s covers a slow import on a busy machine, and a
# stale environment still ends in about 15 s on rank 0 and 30 s on the others (the store client retries once)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def join_timeout() -> float:
    """`MLREADS_DIST_TIMEOUT` (seconds) when it is a positive number, else `JOIN_TIMEOUT_S`."""
    try:
        value = float(os.environ.get("MLREADS_DIST_TIMEOUT", JOIN_TIMEOUT_S))
    except ValueError:
        return JOIN_TIMEOUT_S
    return value if value > 0 else JOIN_TIMEOUT_S


def init_distributed() -> Dist:
    """Join the process group that `torchrun` describes (gloo for CPU tensors, and nccl for CUDA ones where there is a
    GPU); a no-op for one process, and for a process that has joined already. A peer that never comes is one
    UserError after `join_timeout()` seconds."""
    world, _rank = distributed_env()
    if world == 1:
        return Dist()
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        timeout = join_timeout()
        try:
            # The rendezvous (the store every rank meets at) waits `timeout`; the group's collectives keep their
            # default timeout. env:// reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun's agent store too).
            store, rank, size = next(dist.rendezvous("env://", timeout=datetime.timedelta(seconds=timeout)))
            # gloo for CPU tensors (mlreads trains on CPU), nccl as well for CUDA tensors where a GPU exists
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend, store=store, rank=rank, world_size=size)
        except Exception as e:  # DistStoreError, RuntimeError, OSError, ValueError from the rendezvous
            raise _join_failed(world, timeout, e) from None
    return Dist(dist.get_rank(), dist.get_world_size())


def _join_failed(world: int, timeout: float, err: Exception) -> UserError:
    where = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
    if os.environ.get("TORCHELASTIC_RUN_ID"):  # launched by torchrun: a peer failed or is stuck before joining
        why = "another rank stopped before it joined (its error says why) or is still starting"
        fix = f"see the other ranks' errors; MLREADS_DIST_TIMEOUT=S waits longer than {timeout:g} s"
    else:
        why = "a stale torchrun environment?"
        fix = "unset WORLD_SIZE and RANK to run in one process, or launch with torchrun"
    return UserError(f"could not join the process group of WORLD_SIZE={world} at {where} within {timeout:g} s "
                     f"({first}); {why} {fix}")  # fmt: skip


def agree(ok: bool) -> bool:
    """True when every rank says `ok` (one process: `ok` itself). Joins the process group first under torchrun."""
    d = init_distributed()
    if d.world == 1:
        return ok
    import torch
    import torch.distributed as dist

    flag = torch.tensor(1.0 if ok else 0.0)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def leave() -> None:
    """Leave the process group this process joined (a no-op without one)."""
    import sys

    if "torch" not in sys.modules:  # torch never imported: no group was joined
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
