"""What the Mamba experiments share: the training recipe, parameter groups, the model builder, the length curriculum
and the accuracy-curve figure. Each experiment's run function lives in exp_copying.py, exp_induction.py, exp_lm.py.
"""

from __future__ import annotations

import torch

from mlreads.core.train import TrainConfig
from mlreads.core.train import param_groups as core_param_groups
from mlreads.mamba.model import MambaConfig, MambaLM

PAPER = "Gu & Dao 2023, Mamba (arXiv 2312.00752)"


def train_config(steps: int, lr: float, warmup: int = 50, eval_every: int = 0,
                 weight_decay: float = 0.1) -> TrainConfig:
    """AdamW (0.9, 0.98), clipping 1.0, warmup then cosine to lr/10; weight decay on matrices except A_log."""
    return TrainConfig(steps=steps, lr=lr, min_lr=lr / 10, warmup=warmup, schedule="cosine", weight_decay=weight_decay,
                       betas=(0.9, 0.98), grad_clip=1.0, eval_every=eval_every, log_every=10)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices except A_log (the official code exempts A_log and D: `_no_weight_decay`)."""
    return core_param_groups(model, weight_decay, no_decay=lambda name, p: name.endswith("A_log"))


def build_mamba(d_model: int, n_layers: int, d_state: int, vocab: int, selective: bool = True) -> MambaLM:
    return MambaLM(MambaConfig(d_vocab=vocab, d_model=d_model, n_layers=n_layers, d_state=d_state,
                               selective=selective, chunk_size=32))


def stage(step: int, steps: int, n_stages: int) -> int:
    """Which of `n_stages` equal parts of a `steps`-step run `step` falls in (a curriculum's current stage)."""
    return min(n_stages - 1, step * n_stages // max(1, steps))


def check_curriculum(lengths: tuple[int, ...], final: int, what: str) -> None:
    if lengths and lengths[-1] != final:
        raise ValueError(f"{what}: the curriculum must end at the task's length {final}, got {lengths}")


def curves_figure(curves: dict, title: str, chance: float):
    """Accuracy (%) against step for each model; `curves[name] = (steps, accuracies in [0, 1])`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, (steps, vals) in curves.items():
        ax.plot(steps, [100 * v for v in vals], "o-", ms=3, label=name)
    ax.axhline(100 * chance, color="gray", ls="--", lw=0.8, label="chance")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend()
    return fig
