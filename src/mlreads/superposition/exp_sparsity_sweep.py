"""superposition/sparsity-sweep: linear vs ReLU-output toy models over sparsity (Section 3 figure), n=20, m=5."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from mlreads.core.fields import in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.superposition import figures
from mlreads.superposition.exp_common import ToyTrain, train_grid
from mlreads.superposition.measures import count_represented
from mlreads.superposition.model import ToyConfig, ToyModel, geometric_importance


@dataclass(frozen=True)
class SweepConfig:
    n_features: int = positive(20)
    d_hidden: int = positive(5)
    importance_decay: float = positive(0.7)
    # falling: S rises
    densities: tuple[float, ...] = in_range((1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001), 0.0, 1.0, lo_open=True,
                                            hi_open=False)  # fmt: skip
    restarts: int = positive(4)  # ReLU model
    linear_restarts: int = positive(2)  # the linear model's optimum is unique up to rotation; restarts matter little
    train: ToyTrain = field(default_factory=lambda: ToyTrain(steps=10_000))
    relu_steps: int | None = positive(20_000)  # the weakest features at 1-S = 0.001 are still growing at 10,000 steps


def run_sweep(cfg: SweepConfig, ctx: RunContext) -> dict:
    """Section 3 figure: linear vs ReLU-output model over sparsity. Deviation: the ReLU model may train longer
    (relu_steps) than the linear one."""
    n, G = cfg.n_features, len(cfg.densities)
    imp = geometric_importance(n, cfg.importance_decay).expand(G, n)
    dens = torch.tensor(cfg.densities)[:, None].expand(G, n)
    Ws, counts = {}, {}
    for kind in ("linear", "relu"):
        K = cfg.restarts if kind == "relu" else cfg.linear_restarts
        t = replace(cfg.train, steps=cfg.relu_steps) if kind == "relu" and cfg.relu_steps else cfg.train
        model = ToyModel(ToyConfig(n, cfg.d_hidden, G * K, kind), ctx.generator(f"init/{kind}"))
        best, _ = train_grid(model, imp, dens, K, t, ctx, kind)
        ctx.save_model(kind, model, best=best.tolist(), densities=list(cfg.densities))  # best: instance per density
        Ws[kind] = model.W.detach()[best]  # (G, m, n)
        counts[kind] = count_represented(Ws[kind]).tolist()
    relu = counts["relu"]
    ctx.savefig(figures.sweep_figure(Ws, list(cfg.densities)), "sparsity_sweep",
                caption=("For each feature density 1-S (columns, sparser to the right), the linear model (top two "
                         "rows) and the ReLU-output model (bottom two): W^T W, and a bar per feature of ||W_i|| "
                         "coloured by how much it shares its direction. The claim predicts the linear model keeps "
                         f"exactly the {cfg.d_hidden} most important features everywhere, while the ReLU model "
                         f"represents more, in superposition, as sparsity rises; here the ReLU model represents "
                         f"{relu[0]} features at the densest and {relu[-1]} at the sparsest."))
    return {
        "count_linear": counts["linear"], "count_relu": relu, "densities": list(cfg.densities),
        "linear_exactly_m_everywhere": all(c == cfg.d_hidden for c in counts["linear"]),
        "relu_count_dense": relu[0], "relu_count_sparsest": relu[-1],
        "relu_never_falls_by_more_than_1": all(b >= a - 1 for a, b in zip(relu, relu[1:])),
    }  # fmt: skip
