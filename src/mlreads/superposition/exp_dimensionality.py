"""superposition/dimensionality: feature dimensionality and m/||W||_F^2 against sparsity, uniform importance
(Section 6, "The Geometry of Superposition", of Elhage et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from mlreads.core.fields import in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.stats import bootstrap
from mlreads.core.tables import markdown_table
from mlreads.superposition import figures
from mlreads.superposition.exp_common import ToyTrain, logspace, train_grid
from mlreads.superposition.measures import (
    dimensions_in_use,
    dimensions_per_feature,
    dimensions_per_feature_in_use,
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


def plateau(dpf: Tensor, inv: Tensor, tol: float) -> dict:
    """The longest run of grid points with |dpf - 1/2| <= tol: its points, its span (the factor in 1/(1-S) from its
    first to its last point; 0 when no point is on it) and its ends."""
    start, length = longest_run(((dpf - 0.5).abs() <= tol).tolist())
    return {"points": length, "span": float(inv[start + length - 1] / inv[start]) if length else 0.0,
            "from": float(inv[start]) if length else None, "to": float(inv[start + length - 1]) if length else None}


def sticky_excess(dims: Tensor, shuffled: Tensor, gen_seed: int) -> dict:
    """The share of live features on a sticky fraction minus that of the shuffled W, with a bootstrap interval over
    grid points (features of one model are not independent; whole models are resampled). dims, shuffled (G, n)."""

    def excess(idx: np.ndarray) -> float:
        return sticky_fraction_share(dims[idx]) - sticky_fraction_share(shuffled[idx])

    return bootstrap("sticky_excess", np.arange(dims.shape[0]), excess, seed=gen_seed)


def run_dimensionality(cfg: DimConfig, ctx: RunContext) -> dict:
    """Section 6: D_i and m/||W||_F^2 against 1/(1-S), uniform importance. Deviations: n=200, m=20 (the paper
    400/30); quick trains 10,000 steps at batch 256 (the paper's notebook: batch 1024). The plateau is measured on
    dimensions per feature among the dimensions in use (measures.dimensions_per_feature_in_use); the paper's
    m/||W||_F^2 is reported beside it."""
    n, G, K = cfg.n_features, cfg.n_sparsities, cfg.restarts
    inv = logspace(*cfg.inv_density_range, G)  # (G,)
    model = ToyModel(ToyConfig(n, cfg.d_hidden, G * K, "relu"), ctx.generator("init/toy"))
    best, _ = train_grid(model, torch.ones(G, n), (1 / inv)[:, None].expand(G, n), K, cfg.train, ctx,
                         "dimensionality")  # fmt: skip
    ctx.save_model("toy", model, best=best.tolist(), inv_density=inv.tolist())  # best: the instance per sparsity
    Ws = model.W.detach()[best]  # (G, m, n)
    dims = feature_dimensionality(Ws)  # (G, n)
    dpf, dpf_used, m_used = dimensions_per_feature(Ws), dimensions_per_feature_in_use(Ws), dimensions_in_use(Ws)
    raw, used = plateau(dpf, inv, cfg.plateau_tol), plateau(dpf_used, inv, cfg.plateau_tol)
    sticky = sticky_fraction_share(dims)
    shuffled_dims = feature_dimensionality(shuffled_baseline(Ws, ctx.generator("shuffle")))
    shuffled = sticky_fraction_share(shuffled_dims)
    ctx.savefig(figures.dimensionality_figure(inv, dims, dpf, cfg.plateau_tol, dpf_used), "dimensionality",
                caption=("Each feature's dimensionality D_i (blue dots), m / ||W||_F^2 (black) and the same over the "
                         f"dimensions in use (orange) against 1/(1-S), for n={n}, m={cfg.d_hidden} ReLU models with "
                         "equal importance; grey lines mark the sticky fractions, the orange band the check's 1/2 +- "
                         "tolerance. The claim predicts the dots gather on the grey lines and the curve stays inside "
                         f"the band over a range of sparsities; here the orange curve stays there for {used['points']} "
                         f"consecutive points (a factor {used['span']:.2f} in 1/(1-S)), the black one for "
                         f"{raw['points']} (a factor {raw['span']:.2f})."))  # fmt: skip
    geo = [", ".join(f"{c} x {name}" for name, c in sorted(geometry_counts(W).items(), key=lambda kv: -kv[1]))
           for W in Ws]  # fmt: skip
    ctx.write_text("geometry", markdown_table(
        ["1/(1-S)", "m / ‖W‖_F²", "dimensions in use", "in use / ‖W‖_F²", "groups of represented features (‖W_i‖ > 0.5)"],
        [[float(x), float(d), float(u), float(du), g or "none"]
         for x, d, u, du, g in zip(inv, dpf, m_used, dpf_used, geo, strict=True)]))  # fmt: skip
    return {
        "inv_density": inv.tolist(), "dims_per_feature": dpf.tolist(), "dims_per_feature_in_use": dpf_used.tolist(),
        "dims_in_use": m_used.tolist(),
        "plateau_used_points": used["points"], "plateau_used_span": used["span"],
        "plateau_used_from": used["from"], "plateau_used_to": used["to"],
        # the plateau's extent is measured only when the grid brackets it: above the band first, below it last
        "plateau_bracketed": bool(dpf_used[0] > 0.5 + cfg.plateau_tol and dpf_used[-1] < 0.5 - cfg.plateau_tol),
        "plateau_half_points": raw["points"], "plateau_half_span": raw["span"],
        "plateau_half_from": raw["from"], "plateau_half_to": raw["to"],
        "sticky_share": sticky, "sticky_share_shuffled": shuffled, "sticky_ratio": sticky / max(shuffled, 1e-9),
        **sticky_excess(dims, shuffled_dims, ctx.seed_for("bootstrap")),
    }  # fmt: skip
