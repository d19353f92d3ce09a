"""DDP under `torchrun`: the validated environment, joining the process group with a timeout, and each rank's slice
of the global batch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mlreads.core.errors import UserError
from mlreads.core.run.torchrun import distributed_env

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group that `torchrun` describes (gloo on CPU, nccl on GPU); a no-op for one process.

    Joining waits at most `MLREADS_DIST_TIMEOUT` seconds (default 120) for the other ranks, then fails with one line:
    a stale torchrun environment in a shell never hangs a run."""
    world, _rank = distributed_env()
    if world == 1:
        return Dist()
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        try:
            timeout = float(os.environ.get("MLREADS_DIST_TIMEOUT", "120"))
        except ValueError:
            timeout = 120.0
        try:
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                    timeout=datetime.timedelta(seconds=timeout))  # fmt: skip
        except Exception as e:  # DistStoreError, RuntimeError, OSError, ValueError from the rendezvous
            where = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
            raise UserError(f"could not join the process group of WORLD_SIZE={world} at {where} within {timeout:g} s "
                            f"({first}); a stale torchrun environment? unset WORLD_SIZE and RANK to run in one "
                            f"process") from None  # fmt: skip
    return Dist(dist.get_rank(), dist.get_world_size())


def shard(batch: Any, d: Dist) -> Any:
    """This rank's slice (along dim 0) of the global batch."""
    if d.world == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.shape[0] % d.world:
            raise ValueError(f"global batch {batch.shape[0]} is not divisible by world size {d.world}")
        return batch.tensor_split(d.world)[d.rank]
    if isinstance(batch, tuple | list):
        return type(batch)(shard(b, d) for b in batch)
    if isinstance(batch, dict):
        return {k: shard(v, d) for k, v in batch.items()}
    return batch


def _all_finite(loss: Tensor, d: Dist) -> bool:
    ok = torch.tensor(float(torch.isfinite(loss.detach()).all()))
    if d.world > 1:
        import torch.distributed as dist

        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())
