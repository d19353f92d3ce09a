"""superposition/dimensionality: feature dimensionality and m/||W||_F^2 against sparsity, uniform importance
(Section 6, "The Geometry of Superposition", of Elhage et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mlreads.core.fields import in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.tables import markdown_table
from mlreads.superposition import figures
from mlreads.superposition.exp_common import ToyTrain, logspace, train_grid
from mlreads.superposition.measures import (
    dimensions_per_feature,
    feature_dimensionality,
    geometry_counts,
    shuffled_baseline,
    sticky_fraction_share,
)
from mlreads.superposition.model import ToyConfig, ToyModel


@dataclass(frozen=True)
class DimConfig:
    n_features: int = positive(200)  # the paper: 400
    d_hidden: int = positive(20)  # the paper: 30
    # 40 sparsities 1.066x apart in 1/(1-S): fine enough to measure how far the 1/2 plateau extends (on a 1.22x grid
    # the plateau, a factor 1.6 wide, held 2 or 3 grid points depending on where the grid happened to fall)
    n_sparsities: int = positive(40)
    inv_density_range: tuple[float, float] = in_range((1.0, 12.0), 1.0, 1e6, hi_open=False)  # 1 / (1 - S)
    restarts: int = positive(1)
    plateau_tol: float = positive(0.02)  # |m/||W||_F^2 - 1/2| within this counts as on the plateau
    train: ToyTrain = field(default_factory=lambda: ToyTrain(steps=10_000, batch=256))


def longest_run(flags: list[bool]) -> tuple[int, int]:
    """(start, length) of the longest run of consecutive True values; (0, 0) when there is none."""
    best, start = (0, 0), 0
    for i, flag in enumerate(flags):
        if not flag:
            start = i + 1
        elif i + 1 - start > best[1]:
            best = (start, i + 1 - start)
    return best


def run_dimensionality(cfg: DimConfig, ctx: RunContext) -> dict:
    """Section 6: D_i and m/||W||_F^2 against 1/(1-S), uniform importance. Deviations: n=200, m=20 (the paper
    400/30); quick trains 10,000 steps at batch 256 (the paper's notebook: batch 1024)."""
    n, G, K = cfg.n_features, cfg.n_sparsities, cfg.restarts
    inv = logspace(*cfg.inv_density_range, G)  # (G,)
    model = ToyModel(ToyConfig(n, cfg.d_hidden, G * K, "relu"), ctx.generator("init/toy"))
    best, _ = train_grid(model, torch.ones(G, n), (1 / inv)[:, None].expand(G, n), K, cfg.train, ctx,
                         "dimensionality")  # fmt: skip
    ctx.save_model("toy", model, best=best.tolist(), inv_density=inv.tolist())  # best: the instance per sparsity
    Ws = model.W.detach()[best]  # (G, m, n)
    dims = feature_dimensionality(Ws)  # (G, n)
    dpf = dimensions_per_feature(Ws)  # (G,)
    on = ((dpf - 0.5).abs() <= cfg.plateau_tol).tolist()
    start, length = longest_run(on)
    # how far the plateau extends: the factor in 1/(1-S) from its first to its last point (0 when no point is on it)
    span = float(inv[start + length - 1] / inv[start]) if length else 0.0
    sticky = sticky_fraction_share(dims)
    shuffled = sticky_fraction_share(feature_dimensionality(shuffled_baseline(Ws, ctx.generator("shuffle"))))
    ctx.savefig(figures.dimensionality_figure(inv, dims, dpf, cfg.plateau_tol), "dimensionality",
                caption=("Each feature's dimensionality D_i (blue dots) and m / ||W||_F^2 (black line) against "
                         f"1/(1-S), for n={n}, m={cfg.d_hidden} ReLU models with equal importance; grey lines mark "
                         "the sticky fractions, the orange band the check's 1/2 +- tolerance. The claim predicts the "
                         "dots gather on the grey lines and the black line stays inside the band over a range of "
                         f"sparsities; here it stays there for {length} consecutive points (a factor {span:.1f} "
                         "in 1/(1-S))."))
    geo = [", ".join(f"{c} x {name}" for name, c in sorted(geometry_counts(W).items(), key=lambda kv: -kv[1]))
           for W in Ws]  # fmt: skip
    ctx.write_text("geometry", markdown_table(
        ["1/(1-S)", "m / ‖W‖_F²", "within 1/2 ± tol", "groups of represented features (‖W_i‖ > 0.5)"],
        [[float(x), float(d), "yes" if o else "", g or "none"] for x, d, o, g in zip(inv, dpf, on, geo, strict=True)]))
    return {
        "inv_density": inv.tolist(), "dims_per_feature": dpf.tolist(), "plateau_half_points": length,
        "plateau_half_span": span, "plateau_half_from": float(inv[start]) if length else None,
        "plateau_half_to": float(inv[start + length - 1]) if length else None,
        "sticky_share": sticky, "sticky_share_shuffled": shuffled,
        "sticky_ratio": sticky / max(shuffled, 1e-9),
    }  # fmt: skip
