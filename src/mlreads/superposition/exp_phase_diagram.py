"""superposition/phase-diagram: n=2, m=1 ReLU models over relative importance x density (Section 4 figure)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mlreads.core.fields import in_range, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.tables import markdown_table
from mlreads.superposition import figures
from mlreads.superposition.exp_common import ToyTrain, logspace, train_grid
from mlreads.superposition.measures import PHASES, classify_phase
from mlreads.superposition.model import ToyConfig, ToyModel

PHASE_MARKS = ("-", "D", "S")  # not represented, dedicated dimension, superposition (the text table's cells)


@dataclass(frozen=True)
class PhaseConfig:
    grid: int = positive(20)  # grid x grid points: relative importance x density
    restarts: int = positive(10)
    importance_range: tuple[float, float] = positive((0.1, 10.0))  # importance of the extra feature; the first has 1
    # 1 - S of both features
    density_range: tuple[float, float] = in_range((1.0, 0.01), 0.0, 1.0, lo_open=True, hi_open=False)
    corner_importance: tuple[float, float] = positive((0.5, 2.0))  # "comparable importance"
    corner_density: float = in_range(0.1, 0.0, 1.0, lo_open=True, hi_open=False)  # "sparse": 1 - S <= this
    # Deviation: the paper trains 10,000 steps at batch 1024; 4,000 instances at that size do not fit the quick
    # budget on a shared 2-core CPU, so quick trains 3,000 steps at batch 128 (and ranks restarts on 32k samples).
    train: ToyTrain = field(default_factory=lambda: ToyTrain(steps=3000, batch=128, eval_batch=32768))


def run_phase(cfg: PhaseConfig, ctx: RunContext) -> dict:
    """Section 4: n=2, m=1 ReLU models over relative importance x density, best of k restarts per cell."""
    G, K = cfg.grid, cfg.restarts
    rel = logspace(*cfg.importance_range, G)  # (G,) columns
    dens = logspace(*cfg.density_range, G)  # (G,) rows, dense first
    r_grid, d_grid = torch.meshgrid(rel, dens, indexing="xy")  # (G_d, G_r)
    imp = torch.stack([torch.ones(G * G), r_grid.flatten()], dim=1)  # (G*G, 2)
    den = d_grid.flatten()[:, None].expand(G * G, 2)
    model = ToyModel(ToyConfig(2, 1, G * G * K, "relu"), ctx.generator("init/toy"))
    best, _ = train_grid(model, imp, den, K, cfg.train, ctx, "phase diagram")
    ctx.save_model("toy", model, best=best.tolist())  # best: the instance of each (density, importance) cell
    phases = classify_phase(model.W.detach()[best]).reshape(G, G)  # (density, importance)
    sup = phases == 2
    in_corner = (d_grid <= cfg.corner_density) & (r_grid >= cfg.corner_importance[0]) & (
        r_grid <= cfg.corner_importance[1])  # fmt: skip
    corner_share = float(sup[in_corner].float().mean())
    outside_share = float(sup[~in_corner].float().mean())
    logd, logr = d_grid.log10(), r_grid.log10().abs()
    # Superposition sits in the sparse, comparable-importance corner: most corner cells are in superposition, more
    # than elsewhere; its cells are sparser on average than the rest; and the dense row has none.
    sparser = bool(sup.any() and logd[sup].mean() < logd[~sup].mean())
    closer = bool(sup.any() and logr[sup].mean() < logr[~sup].mean())
    dense_row_clear = not bool(sup[0].any())
    in_corner_ok = corner_share >= 0.5 and corner_share > outside_share and sparser and dense_row_clear
    ctx.savefig(figures.phase_figure(phases, rel, dens), "phase_diagram",
                caption=("The fate of the extra feature in an n=2, m=1 ReLU model (best of "
                         f"{K} restarts per cell) over its relative importance (x) and the feature density 1-S (y, "
                         "sparse at the bottom). The claim predicts superposition (green) in the sparse corner where "
                         f"the two importances are comparable, and none in the densest row; here {corner_share:.0%} "
                         f"of that corner's cells and {outside_share:.0%} of the other cells are in superposition."))
    legend = ", ".join(f"{m} = {name}" for m, name in zip(PHASE_MARKS, PHASES, strict=True))
    table = markdown_table(["1-S \\ r"] + [f"{float(r):.2g}" for r in rel],
                           [[f"{float(d):.2g}"] + [PHASE_MARKS[int(p)] for p in row] for d, row in zip(dens, phases)])
    ctx.write_text("phases", f"The extra feature's phase ({legend}); rows: density 1-S, columns: relative importance r "
                   f"of the extra feature.\n\n{table}")  # fmt: skip
    counts = {name: int((phases == k).sum()) for k, name in enumerate(PHASES)}
    return {
        "phase_counts": counts, "n_phases": sum(c > 0 for c in counts.values()),
        "corner_superposition_share": corner_share,
        "outside_superposition_share": outside_share, "superposition_in_sparse_comparable_corner": in_corner_ok,
        "superposition_cells_sparser": sparser, "superposition_cells_closer_to_equal_importance": closer,
        "dense_row_has_no_superposition": dense_row_clear,
        "n_instances": G * G * K,
    }  # fmt: skip
