"""dropout/mc-vs-weight-scaling (Section 7.5, Fig 11): averaging the predictions of k sampled thinned nets
approaches the weight-scaled net's test error by about k = 50.

Several nets are trained in one run (each its own init, batches and dropout masks), because how far weight scaling
sits from the Monte-Carlo limit differs between trained nets: the run's difference is the mean over its nets, with
the standard error over nets, which holds the net-to-net, test-set and Monte-Carlo noise together."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from mlreads.core.fields import in_range, nonnegative, positive
from mlreads.core.stats import paired
from mlreads.core.train import TrainConfig
from mlreads.dropout.exp_common import Arm, error_pct, mnist_tensors, train_classifier
from mlreads.dropout.model import MLPConfig


@dataclass(frozen=True)
class MCConfig:
    n_train: int = positive(50_000)  # the paper's regime: the full training set (the rest of the 60k is unused)
    n_test: int = positive(10_000)
    d_hidden: tuple[int, ...] = positive((512, 512))
    p_keep_input: float = in_range(0.8, 0.0, 1.0, lo_open=True, hi_open=False)
    p_keep_hidden: float = in_range(0.5, 0.0, 1.0, lo_open=True, hi_open=False)
    max_norm: float = positive(3.0)
    epochs: int = positive(15)
    n_nets: int = positive(3)  # nets trained per run; the check reads their mean and its standard error
    batch_size: int = positive(128)
    ks: tuple[int, ...] = positive((1, 2, 5, 10, 20, 50, 100))
    repeats: int = positive(2)  # independent MC streams per k and net (error bars; the tolerance's s.d.)
    tol_floor: float = nonnegative(0.1)  # pp: the floor of the k=50 tolerance, max(tol_floor, 1 s.d.)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=0.1, schedule="cosine", optimizer="sgd", betas=(0.9, 0.999), grad_clip=None, log_every=50))  # fmt: skip


@torch.no_grad()
def mc_errors(model, x, y, ks, repeats: int, gen: torch.Generator) -> dict[int, list[float]]:
    """Test error (%) of the average of the first k sampled nets' softmax outputs, for each k, per repeat. Within a
    repeat the k-net averages are nested (the first k of one stream of max(ks) nets)."""
    errs: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(repeats):
        probs = torch.zeros(len(x), model.cfg.d_out)
        for i in range(1, max(ks) + 1):
            probs += torch.softmax(model(x, mode="mc", generator=gen), -1)
            if i in errs:
                errs[i].append(100.0 * float((probs.argmax(-1) != y).float().mean()))
    return errs


def run_mc(cfg: MCConfig, ctx) -> dict:
    """Train `n_nets` dropout nets, then compare weight scaling with Monte-Carlo model averaging on each.

    Metrics (percent): per net i, err_ws_<i> and diff_k50_<i> = err_mc_50 - err_ws (mean over repeats); over nets,
    err_ws and err_mc_<k> (means), sd_mc_<k> (the Monte-Carlo s.d. over repeats, pooled over nets), gap_k1 =
    err_mc_1 - err_ws and diff_k50 = err_mc_50 - err_ws (signed) with `_se` and `_ci` over nets, tol_k50 =
    max(tol_floor, sd_mc_50) and neg_tol_k50 = -tol_k50.
    """
    from mlreads.dropout import figures

    data = mnist_tensors(cfg.n_train, cfg.n_test)
    steps = cfg.epochs * cfg.n_train // cfg.batch_size
    xte, yte = data["test"]
    k50 = 50 if 50 in cfg.ks else max(cfg.ks)
    per_net: list[tuple[float, dict[int, list[float]]]] = []
    out: dict = {}
    for i in range(cfg.n_nets):
        arm = Arm(f"dropout-net{i}", MLPConfig(d_hidden=cfg.d_hidden, p_keep_input=cfg.p_keep_input,
                                               p_keep_hidden=cfg.p_keep_hidden, max_norm=cfg.max_norm))  # fmt: skip
        model, _ = train_classifier(arm, data, replace(cfg.train, steps=steps), cfg.batch_size, ctx, eval_n=2000,
                                    data_seed=ctx.seed_for(f"data/net{i}"))  # fmt: skip
        model.eval()
        ctx.save_model(arm.name, model)
        err_ws = error_pct(model, xte, yte)
        errs = mc_errors(model, xte, yte, cfg.ks, cfg.repeats, ctx.generator(f"mc/net{i}"))
        per_net.append((err_ws, errs))
        out[f"err_ws_{i}"] = err_ws
        out[f"diff_k50_{i}"] = float(np.mean(errs[k50])) - err_ws
    ws = np.array([w for w, _ in per_net])
    for k in cfg.ks:
        table = np.array([e[k] for _, e in per_net])  # (n_nets, repeats)
        out[f"err_mc_{k}"] = float(table.mean())
        out[f"sd_mc_{k}"] = float(np.sqrt(table.var(axis=1, ddof=1).mean())) if cfg.repeats > 1 else 0.0
    out["err_ws"] = float(ws.mean())
    mean_mc = {k: np.array([np.mean(e[k]) for _, e in per_net]) for k in (1, k50)}
    out |= paired("gap_k1", mean_mc[1], ws) if cfg.n_nets > 1 else {"gap_k1": float(mean_mc[1][0] - ws[0])}
    out |= paired("diff_k50", mean_mc[k50], ws) if cfg.n_nets > 1 else {"diff_k50": float(mean_mc[k50][0] - ws[0])}
    out["tol_k50"] = max(cfg.tol_floor, out[f"sd_mc_{k50}"])
    out["neg_tol_k50"] = -out["tol_k50"]
    ctx.savefig(figures.mc_vs_weight_scaling(per_net, k50, out["diff_k50"], out["tol_k50"]),
                "fig11_mc_vs_weight_scaling",
                caption=("Test error (full test set) of Monte-Carlo averaging over k sampled thinned networks against "
                         "k, "
                         f"one colour per trained net (mean and s.d. over {cfg.repeats} Monte-Carlo repeats), and "
                         "each net's weight-scaled error (dashed, same colour). The claim (Section 7.5) predicts the "
                         "Monte-Carlo curves fall onto their dashed lines by about k = 50, within one s.d."))
    return out
