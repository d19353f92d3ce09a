"""s4/smnist: an S4D classifier on sequential MNIST: accuracy, wall-clock time and time to a target accuracy.

Papers: S4D (arXiv 2206.11893) Table 4 region; S4 (arXiv 2111.00396) Table 4 (sMNIST 99.63).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlreads.core.fields import in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.train import TrainConfig
from mlreads.s4 import figures
from mlreads.s4.exp_common import (
    DataConfig,
    accuracy,
    mnist_views,
    time_to,
    train_classifier,
)
from mlreads.s4.model import S4Config


@dataclass(frozen=True)
class SmnistConfig:
    model: S4Config = S4Config(d_model=64, d_state=64, n_layers=2, kernel="s4d", init="lin", disc="zoh", dropout=0.0)
    train: TrainConfig = TrainConfig(steps=1000, lr=3e-2, warmup=30, weight_decay=0.01, eval_every=100, log_every=20,
                                     time_limit_s=520.0)  # fmt: skip
    data: DataConfig = DataConfig(pool=2, n_train=50_000, n_eval=10_000, n_val=1_000)
    batch_size: int = positive(64)
    # the time to this val accuracy is reported
    target_acc: float = in_range(0.98, 0.0, 1.0, lo_open=True, hi_open=False)


def run_smnist(cfg: SmnistConfig, ctx: RunContext) -> dict:
    """Test accuracy (%), training time, time to target_acc (val) and the layer-0 kernels."""
    views = mnist_views(cfg.data, permute=False)
    model, result = train_classifier(cfg.model, cfg.train, cfg.batch_size, views, ctx, "s4d")
    acc = 100 * accuracy(model, *views["test"])
    ctx.save_model("s4d", model, sequence_length=cfg.data.sequence_length)
    t_target = time_to(result.history, "val_acc", cfg.target_acc)
    length = cfg.data.sequence_length
    with torch.no_grad():
        kernels = model.blocks[0].kernel(length)  # (H, L)
    ctx.savefig(figures.smnist_accuracy_figure(result.series("val_acc"), cfg.target_acc, length, acc), "accuracy",
                caption=("S4D's validation accuracy against training steps on sequential MNIST (the image read one "
                         f"pixel at a time, L = {length}), with the target accuracy and chance as dashed lines. The "
                         "claim holds if the curve climbs far above chance to the target; the test accuracy here is "
                         f"{acc:.2f}%."))
    ctx.savefig(figures.kernels_figure(kernels), "kernels",
                caption=("The convolution kernels K_l of a few channels of the first S4D layer after training, "
                         "against the lag l: how much each channel's output weighs the input l steps back. Kernels "
                         "that stay non-zero over many lags are the long memory a sequence model of pixels needs."))
    return {
        "test_acc": acc, "train_time_s": round(result.elapsed_s, 1), "steps": result.steps,
        "sequence_length": length, "time_to_target_s": t_target, "reached_target": t_target is not None,
        "n_params": sum(p.numel() for p in model.parameters()),
    }  # fmt: skip
