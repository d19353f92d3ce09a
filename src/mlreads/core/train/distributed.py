"""DDP in `fit`: each rank's slice of the global batch and the ranks' agreement on a finite loss. Joining the process
group (`init_distributed`, with its short rendezvous timeout) lives in core/run/torchrun.py, which the runner uses
before training; it is re-exported here."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from mlreads.core.errors import ConfigError
from mlreads.core.run.torchrun import (  # noqa: F401  (re-exported)
    JOIN_TIMEOUT_S,
    Dist,
    agree,
    distributed_env,
    init_distributed,
    join_timeout,
    leave,
)


def shard(batch: Any, d: Dist) -> Any:
    """This rank's slice (along dim 0) of the global batch."""
    if d.world == 1:
        return batch
    if isinstance(batch, Tensor):
        if batch.shape[0] % d.world:  # bad input, not a bug: one line (ConfigError is a ValueError too)
            raise ConfigError(f"the global batch of {batch.shape[0]} does not split over {d.world} ranks: launch a "
                              "number of processes that divides it, or --set the batch size")  # fmt: skip
        return batch.tensor_split(d.world)[d.rank]
    if isinstance(batch, tuple | list):
        return type(batch)(shard(b, d) for b in batch)
    if isinstance(batch, dict):
        return {k: shard(v, d) for k, v in batch.items()}
    return batch


def global_loss(loss: Tensor, d: Dist) -> float:
    """The loss of the global batch: the mean of the ranks' losses (each rank's slice is the same size, so this is the
    loss one process computes on the whole batch, up to float rounding). NaN or Inf on any rank makes it non-finite on
    every rank, so all ranks stop together."""
    if d.world == 1:
        return loss.item()
    import torch.distributed as dist

    value = loss.detach().reshape(()).clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return (value / d.world).item()
