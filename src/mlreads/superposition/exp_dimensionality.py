"""superposition/dimensionality: feature dimensionality and m/||W||_F^2 against sparsity, uniform importance
(Section 6, "The Geometry of Superposition", of Elhage et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mlreads.core.runner import RunContext
from mlreads.core.tables import markdown_table
from mlreads.superposition import figures
from mlreads.superposition.analysis import (
    dimensions_per_feature,
    feature_dimensionality,
    geometry_counts,
    shuffled_baseline,
    sticky_fraction_share,
)
from mlreads.superposition.exp_phase_diagram import logspace
from mlreads.superposition.model import ToyConfig, ToyModel
from mlreads.superposition.training import ToyTrain, train_grid


@dataclass(frozen=True)
class DimConfig:
    n_features: int = 200  # the paper: 400
    d_hidden: int = 20  # the paper: 30
    n_sparsities: int = 24
    inv_density_range: tuple[float, float] = (1.0, 100.0)  # 1 / (1 - S)
    restarts: int = 1
    plateau_tol: float = 0.02  # |m/||W||_F^2 - 1/2| within this counts as on the plateau
    plateau_points: int = 3  # consecutive sparsities on it
    train: ToyTrain = field(default_factory=lambda: ToyTrain(steps=10_000, batch=256))


def longest_run(flags: list[bool]) -> int:
    """The length of the longest run of consecutive True values."""
    run, longest = 0, 0
    for flag in flags:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return longest


def run_dimensionality(cfg: DimConfig, ctx: RunContext) -> dict:
    """Section 6: D_i and m/||W||_F^2 against 1/(1-S), uniform importance. Deviations: n=200, m=20 (the paper
    400/30); quick trains 10,000 steps at batch 256 (the paper's notebook: batch 1024)."""
    n, G, K = cfg.n_features, cfg.n_sparsities, cfg.restarts
    inv = logspace(*cfg.inv_density_range, G)  # (G,)
    model = ToyModel(ToyConfig(n, cfg.d_hidden, G * K, "relu"), ctx.generator("init/toy"))
    best, _ = train_grid(model, torch.ones(G, n), (1 / inv)[:, None].expand(G, n), K, cfg.train, ctx,
                         "dimensionality")  # fmt: skip
    Ws = model.W.detach()[best]  # (G, m, n)
    dims = feature_dimensionality(Ws)  # (G, n)
    dpf = dimensions_per_feature(Ws)  # (G,)
    on = ((dpf - 0.5).abs() <= cfg.plateau_tol).tolist()
    longest = longest_run(on)
    sticky = sticky_fraction_share(dims)
    shuffled = sticky_fraction_share(feature_dimensionality(shuffled_baseline(Ws, ctx.generator("shuffle"))))
    ctx.savefig(figures.dimensionality_figure(inv, dims, dpf, cfg.plateau_tol), "dimensionality")
    geo = [geometry_counts(W) for W in Ws]
    names = sorted({k for g in geo for k in g}, key=lambda k: -sum(g.get(k, 0) for g in geo))
    ctx.write_text("geometry", markdown_table(
        ["1/(1-S)", "m/||W||_F^2", "on the 1/2 band"] + names,
        [[float(x), float(d), "yes" if o else "", *(g.get(k, 0) for k in names)]
         for x, d, o, g in zip(inv, dpf, on, geo, strict=True)]))  # fmt: skip
    return {
        "inv_density": inv.tolist(), "dims_per_feature": dpf.tolist(), "plateau_half_points": longest,
        "plateau_at_half": longest >= cfg.plateau_points, "sticky_share": sticky, "sticky_share_shuffled": shuffled,
        "sticky_ratio": sticky / max(shuffled, 1e-9),
    }  # fmt: skip
