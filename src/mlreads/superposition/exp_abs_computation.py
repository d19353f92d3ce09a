"""superposition/abs-computation: computing |x| in superposition (Section 8 of Elhage et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mlreads.core.fields import in_range, nonnegative, positive
from mlreads.core.run.runner import RunContext
from mlreads.superposition import figures
from mlreads.superposition.exp_common import ToyTrain, train_grid
from mlreads.superposition.measures import features_per_neuron
from mlreads.superposition.model import AbsConfig, AbsModel, geometric_importance


@dataclass(frozen=True)
class AbsExpConfig:
    n_features: int = positive(20)
    d_hidden: int = positive(10)  # dense |x| needs 2 neurons per feature: 5 features monosemantically
    importance_decay: float = positive(0.9)  # our choice; the claim does not depend on it
    densities: tuple[float, ...] = in_range((1.0, 0.3, 0.1, 0.03, 0.01), 0.0, 1.0, lo_open=True, hi_open=False)
    restarts: int = positive(3)
    min_rise: float = nonnegative(0.5)  # features per neuron: sparsest - densest
    train: ToyTrain = field(default_factory=lambda: ToyTrain(steps=6000, batch=1024))


def run_abs(cfg: AbsExpConfig, ctx: RunContext) -> dict:
    """Section 8: y = |x| through h = ReLU(W_1 x), y' = ReLU(W_2 h + b). Deviation: a 20-feature, 10-neuron
    model with importance 0.9^i, 6,000 steps at quick."""
    n, G, K = cfg.n_features, len(cfg.densities), cfg.restarts
    model = AbsModel(AbsConfig(n, cfg.d_hidden, G * K), ctx.generator("init/abs"))
    imp = geometric_importance(n, cfg.importance_decay).expand(G, n)
    dens = torch.tensor(cfg.densities)[:, None].expand(G, n)
    best, _ = train_grid(model, imp, dens, K, cfg.train, ctx, "abs")
    ctx.save_model("abs", model, best=best.tolist(), densities=list(cfg.densities))  # best: the instance per density
    W_in = model.W_in.detach()[best]  # (G, H, F)
    fpn = features_per_neuron(W_in).tolist()
    ranks = np.argsort(np.argsort(fpn))  # Spearman against rising sparsity (densities fall)
    rho = float(np.corrcoef(ranks, np.arange(G))[0, 1]) if G > 1 else 0.0
    ctx.savefig(figures.abs_figure(W_in, list(cfg.densities), fpn), "abs_neurons",
                caption=("First-layer weights W_1 (neurons x input features, neurons sorted by their strongest "
                         "feature) of the model computing |x|, one panel per feature density 1-S, sparser to the "
                         "right. The claim predicts one strong weight per neuron (monosemantic) in the dense panels "
                         f"and several (polysemantic) in the sparse ones; here {fpn[0]:.2f} features per neuron at "
                         f"the densest and {fpn[-1]:.2f} at the sparsest."))
    return {"features_per_neuron": fpn, "fpn_dense": fpn[0], "fpn_sparsest": fpn[-1], "spearman_fpn_sparsity": rho,
            "fpn_rises": fpn[-1] >= fpn[0] + cfg.min_rise and rho > 0.5}  # fmt: skip
