"""The training configuration (`TrainConfig`), alternating update phases (`Phase`) and what `fit` returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor, nn

from mlreads.core.fields import in_range, nonnegative, positive

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class TrainConfig:
    steps: int = positive(1000)
    lr: float = positive(1e-3)  # peak learning rate of groups that do not set their own
    min_lr: float = nonnegative(0.0)  # cosine floor, as a fraction of each group's lr is min_lr / lr
    warmup: int = nonnegative(0)  # steps of linear warmup
    schedule: Literal["cosine", "constant", "rsqrt"] = "cosine"  # rsqrt: warmup, then lr * sqrt(warmup / step);
    # without warmup lr / sqrt(t) (Adam Section 6.1), with it Vaswani et al.'s Eq. 3
    weight_decay: float = nonnegative(0.0)
    betas: tuple[float, float] = in_range((0.9, 0.999), 0.0, 1.0)
    eps: float = positive(1e-8)
    grad_clip: float | None = positive(1.0)  # max global grad norm; None turns clipping off
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    eval_every: int = nonnegative(0, what="0 means off")  # 0: evaluate only at the end
    ckpt_every: int = nonnegative(0, what="0 means off")  # 0: no checkpoints
    log_every: int = positive(10)
    time_limit_s: float | None = positive(None)  # stop early after this many seconds (breaks bit-exact resume)
    clock: Literal["wall", "cpu"] = "wall"  # what time_limit_s and the logged elapsed_s measure; "cpu": this
    # process's CPU time, the fair clock for equal-time comparisons on a shared machine (one torch thread)


@dataclass(frozen=True)
class Phase:
    """One update inside a training step: `loss_fn(model, batch)` on a fresh batch, `repeats` times, moving only
    `params(model)` (all parameters when None). The optimiser is shared: parameters outside the phase get no
    gradient, so their optimiser state does not advance (Adam/SGD skip parameters whose grad is None)."""

    name: str
    loss_fn: Callable[[nn.Module, Any], Tensor]
    params: Callable[[nn.Module], Iterable[nn.Parameter]] | None = None
    repeats: int = 1


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    steps: int = 0
    elapsed_s: float = 0.0
    stopped_early: bool = False

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one logged quantity, e.g. result.series("val_loss")."""
        rows = [r for r in self.history if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]
