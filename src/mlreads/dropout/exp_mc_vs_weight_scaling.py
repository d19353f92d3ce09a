"""dropout/mc-vs-weight-scaling (Section 7.5, Fig 11): averaging the predictions of k sampled thinned nets
approaches the weight-scaled net's test error by about k = 50."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from mlreads.core.fields import in_range, nonnegative, positive
from mlreads.core.train import TrainConfig
from mlreads.dropout.exp_common import Arm, error_pct, mnist_tensors, train_classifier
from mlreads.dropout.model import MLPConfig


@dataclass(frozen=True)
class MCConfig:
    n_train: int = positive(10_000)
    n_test: int = positive(10_000)
    d_hidden: tuple[int, ...] = positive((512, 512))
    p_keep_input: float = in_range(0.8, 0.0, 1.0, lo_open=True, hi_open=False)
    p_keep_hidden: float = in_range(0.5, 0.0, 1.0, lo_open=True, hi_open=False)
    max_norm: float = positive(3.0)
    epochs: int = positive(30)
    batch_size: int = positive(128)
    ks: tuple[int, ...] = positive((1, 2, 5, 10, 20, 50, 100))
    repeats: int = positive(4)  # independent MC runs per k (error bars)
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
    """Train one dropout net, then compare weight scaling with Monte-Carlo model averaging.

    Metrics (percent): err_ws (weight scaling), err_mc_<k> and sd_mc_<k> (mean and s.d. over repeats), gap_k1 =
    err_mc_1 - err_ws, gap_k50 = |err_mc_50 - err_ws|, tol_k50 = max(tol_floor, sd_mc_50).
    """
    from mlreads.dropout import figures

    data = mnist_tensors(cfg.n_train, cfg.n_test)
    arm = Arm("dropout", MLPConfig(d_hidden=cfg.d_hidden, p_keep_input=cfg.p_keep_input,
                                   p_keep_hidden=cfg.p_keep_hidden, max_norm=cfg.max_norm))  # fmt: skip
    steps = cfg.epochs * cfg.n_train // cfg.batch_size
    model, _ = train_classifier(arm, data, replace(cfg.train, steps=steps), cfg.batch_size, ctx, eval_n=2000)
    model.eval()
    ctx.save_model("dropout", model)
    xte, yte = data["test"]
    err_ws = error_pct(model, xte, yte)
    errs = mc_errors(model, xte, yte, cfg.ks, cfg.repeats, ctx.generator("mc"))
    out: dict = {"err_ws": err_ws}
    for k, v in errs.items():
        t = torch.tensor(v)
        out[f"err_mc_{k}"] = float(t.mean())
        out[f"sd_mc_{k}"] = float(t.std()) if len(v) > 1 else 0.0
    out["gap_k1"] = out["err_mc_1"] - err_ws
    k50 = 50 if 50 in errs else max(errs)
    out["gap_k50"] = abs(out[f"err_mc_{k50}"] - err_ws)
    out["tol_k50"] = max(cfg.tol_floor, out[f"sd_mc_{k50}"])
    ctx.savefig(figures.mc_vs_weight_scaling(errs, err_ws), "fig11_mc_vs_weight_scaling",
                caption=("Test error of Monte-Carlo averaging over k sampled thinned networks (mean and sd over "
                         f"{cfg.repeats} repeats) against k, and the weight-scaled network's error (dashed). The "
                         "claim predicts the Monte-Carlo curve falls onto the dashed line by about k = 50; here at "
                         f"k = {k50} it sits {out['gap_k50']:.2f} points from it."))
    return out
