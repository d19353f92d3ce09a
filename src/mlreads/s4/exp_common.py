"""What the S4 MNIST experiments share: the data views, the accuracy, and one classifier trained with `fit`.

Training follows S4 App. D.2: AdamW, the state-space parameters (Δ, A, B) in a group of their own at
lr = min(lr, 1e-3) without weight decay (`SequenceClassifier.ssm_parameters`, grouped by `core.train.param_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mlreads.core.fields import positive
from mlreads.core.run.runner import RunContext
from mlreads.core.train import TrainConfig, TrainResult, fit, param_groups
from mlreads.s4.model import S4Config, SequenceClassifier

SSM_LR = 1e-3  # S4 App. D.2: A, B, Δ train at lr <= 1e-3, without weight decay
PERMUTATION_SEED = 0  # permuted MNIST: one fixed pixel permutation, part of the task's definition


@dataclass(frozen=True)
class DataConfig:
    # average-pool the image by this factor before flattening (1: the 784-pixel sequence)
    pool: int = positive(1, le=28)
    n_train: int = positive(50_000)  # training images used (of 50k)
    n_eval: int = positive(10_000)  # test images used for the final accuracy (of 10k)
    n_val: int = positive(2_000)  # validation images used for the accuracy during training

    @property
    def sequence_length(self) -> int:
        return (28 // self.pool) ** 2


Views = dict[str, tuple[torch.Tensor, torch.Tensor]]


def mnist_views(data: DataConfig, permute: bool) -> Views:
    """{"train", "val", "test"} -> (x (n, L, 1), y (n,)): pixel sequences, pooled and/or permuted."""
    from mlreads.core.data import load_mnist, permuted, pooled, sequential

    raw = load_mnist()
    sizes = {"train": data.n_train, "val": data.n_val, "test": data.n_eval}
    out = {}
    for split, n in sizes.items():
        x, y = raw[split]
        x, y = x[:n], torch.as_tensor(y[:n])
        seq = pooled(x, data.pool) if data.pool > 1 else sequential(x)  # (n, L, 1)
        out[split] = (permuted(seq, PERMUTATION_SEED) if permute else seq, y)
    return out


@torch.no_grad()
def accuracy(model: SequenceClassifier, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """Fraction of the sequences x (n, L, d_input) classified as y (n,)."""
    hits = sum((model(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum().item() for i in range(0, len(x), batch))
    return hits / len(x)


def train_classifier(model_cfg: S4Config, train: TrainConfig, batch_size: int, views: Views, ctx: RunContext,
                     desc: str) -> tuple[SequenceClassifier, TrainResult]:  # fmt: skip
    """Build a SequenceClassifier from the run's "init/s4" generator (every model of a run starts from the same
    stream) and train it with fit(); val accuracy at every eval. Returns (model in eval mode, fit's result)."""
    model = SequenceClassifier(model_cfg, ctx.generator("init/s4"))
    x_train, y_train = views["train"]

    def batch_fn(step: int, gen: torch.Generator):
        idx = torch.randint(0, len(x_train), (batch_size,), generator=gen)
        return x_train[idx], y_train[idx]

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x), y)

    def eval_fn(m):
        return {"val_acc": accuracy(m, *views["val"])}

    ssm = {id(p) for p in model.ssm_parameters()}
    groups = param_groups(model, train.weight_decay, own_lr=lambda name, p: id(p) in ssm, lr=min(train.lr, SSM_LR))
    result = fit(model, train, batch_fn, loss_fn, eval_fn=eval_fn, ctx=ctx, groups=groups, desc=desc)
    model.eval()
    return model, result


def time_to(history: list[dict], key: str, target: float) -> float | None:
    """Wall-clock seconds until `key` first reached `target` in a fit history (None: never)."""
    for row in history:
        if row.get(key, -1) >= target:
            return row.get("elapsed_s")
    return None
