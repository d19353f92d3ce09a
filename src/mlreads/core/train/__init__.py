"""Training: `fit()`, the one loop every paper uses (loop.py), with its configuration (config.py), learning-rate
schedules and `recipe()` (schedule.py), parameter groups and optimisers (optim.py), DDP under torchrun
(distributed.py) and atomic, validated checkpoints (checkpoint.py; their state.json's checks in ckpt_state.py). Import from here: `from mlreads.core.train import
fit, recipe, TrainConfig`."""

from mlreads.core.train.checkpoint import (
    CKPT_NAME,
    SAFE_CHANGES,
    config_diff,
    data_fingerprint,
    latest_checkpoint,
    load_checkpoint,
    read_safetensors_header,
    save_checkpoint,
)
from mlreads.core.train.config import Phase, TrainConfig, TrainResult
from mlreads.core.train.distributed import (
    Dist,
    distributed_env,
    init_distributed,
    shard,
)
from mlreads.core.train.loop import evaluate, fit
from mlreads.core.train.optim import OptimizerFactory, make_optimizer, param_groups
from mlreads.core.train.schedule import lr_factor, recipe, rsqrt_factor

__all__ = [
    "CKPT_NAME", "SAFE_CHANGES", "Dist", "OptimizerFactory", "Phase", "TrainConfig", "TrainResult", "config_diff",
    "data_fingerprint", "distributed_env", "evaluate", "fit", "init_distributed", "latest_checkpoint",
    "load_checkpoint", "lr_factor", "make_optimizer", "param_groups", "read_safetensors_header", "recipe",
    "rsqrt_factor", "save_checkpoint", "shard",
]  # fmt: skip
