"""superposition/sparsity-sweep: linear vs ReLU-output toy models over sparsity (Section 3 figure), n=20, m=5."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from mlreads.core.fields import in_range, positive
from mlreads.core.figures import curves
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
    (relu_steps) than the linear one.

    The measure is ||W||_F^2 = sum_i ||W_i||^2 (Section 6: m / ||W||_F^2 is the dimensions per feature), with no
    threshold on single features: the linear model's optimum is a rank-m projection (||W||_F^2 = m); beyond 2m, the
    most features a ReLU model holds without positive interference (+-e_k), the features share dimensions. Restarts
    of sparse instances are ranked by the noise-free loss (exp_common.rank_losses)."""
    n, G = cfg.n_features, len(cfg.densities)
    imp = geometric_importance(n, cfg.importance_decay).expand(G, n)
    dens = torch.tensor(cfg.densities)[:, None].expand(G, n)
    Ws, counts, frob, frob_sd = {}, {}, {}, {}
    for kind in ("linear", "relu"):
        K = cfg.restarts if kind == "relu" else cfg.linear_restarts
        t = replace(cfg.train, steps=cfg.relu_steps) if kind == "relu" and cfg.relu_steps else cfg.train
        model = ToyModel(ToyConfig(n, cfg.d_hidden, G * K, kind), ctx.generator(f"init/{kind}"))
        best, _ = train_grid(model, imp, dens, K, t, ctx, kind, noise_free=True)
        ctx.save_model(kind, model, best=best.tolist(), densities=list(cfg.densities))  # best: instance per density
        Ws[kind] = model.W.detach()[best]  # (G, m, n)
        counts[kind] = count_represented(Ws[kind]).tolist()
        frob[kind] = (Ws[kind] ** 2).sum((-2, -1)).tolist()  # (G,)
        every = (model.W.detach() ** 2).sum((-2, -1)).reshape(G, K)  # (G, k): each restart's ||W||_F^2
        # The spread over restarts is the noise of the one chosen: which of near-equal optima training lands in.
        frob_sd[kind] = every.std(1).tolist() if K > 1 else [0.0] * G
    relu, m = counts["relu"], cfg.d_hidden
    ctx.savefig(figures.sweep_figure(Ws, list(cfg.densities)), "sparsity_sweep",
                caption=("For each feature density 1-S (columns, sparser to the right), the linear model (top two "
                         "rows) and the ReLU-output model (bottom two): W^T W, and a bar per feature of ||W_i|| "
                         "coloured by how much it shares its direction. The claim predicts the linear model keeps "
                         f"exactly the {m} most important features everywhere, while the ReLU model represents more, "
                         f"in superposition, as sparsity rises; here the ReLU model's ||W||_F^2 is {frob['relu'][0]:.1f} "
                         f"at the densest and {frob['relu'][-1]:.1f} at the sparsest (m = {m})."))
    ctx.savefig(curves({"ReLU output": (list(cfg.densities), frob["relu"]),
                        "linear": (list(cfg.densities), frob["linear"])},
                       xlabel="feature density 1-S (sparser to the left)", ylabel="||W||_F^2", logx=True,
                       refs={"m": m, "2m": 2 * m}, title="Features stored: ||W||_F^2 against sparsity"),
                "frobenius",
                caption=(f"||W||_F^2 of the best restart per density. The linear model stays at m = {m} (the top m "
                         "features, one dimension each); the ReLU model rises as features get sparser, past 2m, the "
                         "most it can hold without positive interference: features share dimensions."))  # fmt: skip
    linear_dev = [abs(f / m - 1) for f in frob["linear"]]
    worst = max(range(G), key=lambda g: linear_dev[g])
    ranks = np.argsort(np.argsort(frob["relu"]))  # Spearman against rising sparsity (the densities fall)
    rho = float(np.corrcoef(ranks, np.arange(G))[0, 1]) if G > 1 else 0.0
    return {
        "count_linear": counts["linear"], "count_relu": relu, "densities": list(cfg.densities),
        "frob_linear": frob["linear"], "frob_relu": frob["relu"],
        "frob_sd_linear": frob_sd["linear"], "frob_sd_relu": frob_sd["relu"],
        "linear_exactly_m_everywhere": all(c == m for c in counts["linear"]),
        "linear_frob_max_rel_dev": linear_dev[worst], "linear_frob_max_rel_dev_se": frob_sd["linear"][worst] / m,
        "relu_count_dense": relu[0], "relu_count_sparsest": relu[-1],
        "relu_frob_dense": frob["relu"][0], "relu_frob_sparsest": frob["relu"][-1],
        "relu_frob_sparsest_se": frob_sd["relu"][-1], "two_m": 2 * m,
        "relu_frob_spearman": rho,
        "relu_soft_count": (Ws["relu"].norm(dim=-2) ** 2).clamp(max=1).sum(-1).tolist(),  # sum_i min(1, ||W_i||^2)
    }  # fmt: skip
