"""superposition/intro: n=5 features, m=2 dimensions, importance 0.9^i (Section 1 figure of Elhage et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mlreads.core.fields import in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.tables import markdown_table
from mlreads.superposition import figures
from mlreads.superposition.exp_common import ToyTrain, train_grid
from mlreads.superposition.measures import (
    angle_gaps_deg,
    count_represented,
    detect_geometry,
)
from mlreads.superposition.model import ToyConfig, ToyModel, geometric_importance


@dataclass(frozen=True)
class IntroConfig:
    n_features: int = positive(5)
    d_hidden: int = positive(2)
    importance_decay: float = positive(0.9)
    # 1 - S; the first must be 1 (dense)
    densities: tuple[float, ...] = in_range((1.0, 0.3, 0.1, 0.05), 0.0, 1.0, lo_open=True, hi_open=False)
    pentagon_density: float = in_range(0.05, 0.0, 1.0, lo_open=True, hi_open=False)
    restarts: int = positive(8)
    train: ToyTrain = field(default_factory=lambda: ToyTrain(steps=10_000))


def run_intro(cfg: IntroConfig, ctx: RunContext) -> dict:
    """Section 1 figure: how many features a ReLU toy model represents, and their geometry, at each density.
    Deviation: none beyond model.py's."""
    n, G, K = cfg.n_features, len(cfg.densities), cfg.restarts
    model = ToyModel(ToyConfig(n, cfg.d_hidden, G * K, "relu"), ctx.generator("init/toy"))
    imp = geometric_importance(n, cfg.importance_decay).expand(G, n)
    dens = torch.tensor(cfg.densities)[:, None].expand(G, n)
    best, loss = train_grid(model, imp, dens, K, cfg.train, ctx, "intro")
    ctx.save_model("toy", model, best=best.tolist(), densities=list(cfg.densities))  # best: the instance per density
    Ws = model.W.detach()[best]  # (G, 2, n)
    counts = count_represented(Ws).tolist()
    p = cfg.densities.index(cfg.pentagon_density)
    gaps = angle_gaps_deg(Ws[p])
    err = max(abs(g - 72.0) for g in gaps) if len(gaps) == 5 else 180.0
    geoms = [", ".join(g.name for g in detect_geometry(W)) or "none" for W in Ws]
    ctx.write_text("geometry", markdown_table(
        ["1-S", "features with ‖W_i‖ > 0.5", "geometry", "angle gaps (degrees)"],
        [[d, c, g, ", ".join(f"{a:.1f}" for a in angle_gaps_deg(W)) or "-"]
         for d, c, g, W in zip(cfg.densities, counts, geoms, Ws, strict=True)]))  # fmt: skip
    ctx.savefig(figures.intro_figure(Ws, list(cfg.densities), cfg.importance_decay), "intro",
                caption=(f"Top: the Gram matrix W^T W of the {n}-feature, 2-dimension ReLU model at each feature "
                         "density 1-S (densest left); bottom: each feature's 2-D vector W_i, coloured by importance. "
                         "The claim predicts the densest column keeps 2 orthogonal features and the sparse one "
                         f"(1-S = {cfg.pentagon_density:g}) places all {n} as a regular pentagon (72 degrees apart); "
                         f"here {counts[0]} and {counts[p]} features are represented."))
    return {"n_represented": counts, "n_represented_dense": counts[0], "n_represented_sparse": counts[p],
            "angle_gaps_deg": gaps, "pentagon_angle_err_deg": err, "geometry": geoms, "loss": loss.tolist()}  # fmt: skip
