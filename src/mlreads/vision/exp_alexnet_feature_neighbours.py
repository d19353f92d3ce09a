"""alexnet/feature-neighbours: AlexNet Section 6.1 / Fig 4, "if two images produce feature activation vectors with a
small Euclidean separation, we can say that the higher levels of the neural network consider them to be similar".

Data, model, fit, measure, figures: a width-scaled AlexNet (LRN with the paper's constants, overlapping pooling,
dropout, groups=2) trained on standardised inputs with SGD + momentum + weight decay (Section 5). Metric: the
fraction of each test query's k nearest training images (Euclidean) that share its class, in fc7 space and in pixel
space, with the standard error of the per-query difference; the same in the fc7 space of the untrained net shows
what training added.

The claim is about a *trained* net's features, so the run first checks that the net learned something a linear
model does not: its test accuracy against a softmax regression fitted on the same training images' pixels, on the
same test images (`acc_gain_over_logreg`, paired per image). The experiment declares that as a precondition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from mlreads.core.fields import choices, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.stats import paired
from mlreads.core.train import TrainConfig, evaluate, fit, recipe
from mlreads.vision.alexnet import AlexNet, AlexNetConfig
from mlreads.vision.exp_common import (
    DATASETS,
    batches,
    cross_entropy,
    error_rate,
    load_images,
    standardise,
    subset,
)
from mlreads.vision.figures import neighbours_figure


@dataclass(frozen=True)
class NeighboursConfig:
    dataset: str = choices("fashion", DATASETS)
    scale: int = positive(16)  # widths / scale: (6, 16, 24, 24, 16)
    d_fc: int = positive(256)
    k: int = positive(5)
    n_database: int = positive(10_000)  # training images searched
    n_queries: int = positive(5000)  # test images
    batch_size: int = positive(64)
    logreg_iters: int = positive(200)  # L-BFGS iterations of the softmax regression on pixels (the precondition)
    # 6000 steps = 7.7 epochs of the 50k split; a warmup, cosine decay, and clipping at 1 against the first steps'
    # large gradients
    train: TrainConfig = field(default_factory=lambda: recipe(6000, 0.03, warmup=200, schedule="cosine",
                                                              optimizer="sgd", betas=(0.9, 0.999), weight_decay=5e-4,
                                                              grad_clip=1.0, eval_every=1000))  # fmt: skip


@torch.no_grad()
def knn_agreement(db: torch.Tensor, db_y: torch.Tensor, q: torch.Tensor, q_y: torch.Tensor, k: int,
                  per_query: bool = False, chunk: int = 1000):  # fmt: skip
    """Mean fraction of each query's k nearest database rows (Euclidean) that share its label (with `per_query`,
    the (Q,) fractions themselves); also the indices (Q, k). Queries go in chunks of `chunk`."""
    db_sq = (db**2).sum(1)
    idx = torch.cat([((qc**2).sum(1, keepdim=True) - 2 * qc @ db.T + db_sq).topk(k, dim=1, largest=False).indices
                     for qc in q.split(chunk)])  # fmt: skip
    frac = (db_y[idx] == q_y[:, None]).float().mean(1)  # (Q,)
    return (frac if per_query else float(frac.mean())), idx


def softmax_regression_wrong(x: torch.Tensor, y: torch.Tensor, x_te: torch.Tensor, y_te: torch.Tensor,
                             iters: int) -> np.ndarray:  # fmt: skip
    """Per-image test errors (bool) of a softmax regression on pixels fitted to (x, y) by full-batch L-BFGS."""
    flat = x.flatten(1)
    lin = nn.Linear(flat.shape[1], 10)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(lin(flat), y)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (lin(x_te.flatten(1)).argmax(1) != y_te).numpy()


@torch.no_grad()
def wrong(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.cat([model(xb).argmax(1) != yb for xb, yb in zip(x.split(1000), y.split(1000))]).numpy()


@torch.no_grad()
def fc7(model: AlexNet, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model.features(xb) for xb in x.split(500)])


def run_feature_neighbours(cfg: NeighboursConfig, ctx: RunContext) -> dict:
    data = load_images(cfg.dataset)
    (x_tr, y_tr), (x_te, y_te) = data["train"], data["test"]
    x_tr, x_te = standardise(x_tr, x_te)  # a mean image and one scale: pixel distances keep their order
    x_db, y_db = subset(x_tr, y_tr, cfg.n_database, ctx.generator("database"))
    x_q, y_q = subset(x_te, y_te, cfg.n_queries, ctx.generator("queries"))
    mcfg = AlexNetConfig.mnist(scale=cfg.scale, d_fc=cfg.d_fc, init="kaiming")
    with init_rng(ctx.seed_for("init/alexnet")):
        model = AlexNet(mcfg)
    metrics: dict = {"dataset": cfg.dataset}
    metrics["agree_feat_init"], _ = knn_agreement(fc7(model, x_db), y_db, fc7(model, x_q), y_q, cfg.k)
    eval_fn = lambda m: {"test_err": error_rate(m, x_q, y_q)}
    fit(model, cfg.train, batches(x_tr, y_tr, cfg.batch_size), cross_entropy, eval_fn, ctx=ctx, desc="alexnet")
    ctx.save_model("alexnet", model, dataset=cfg.dataset, image_side=28)
    # the precondition: the trained net classifies the whole test set better than a linear model on its pixels
    net_wrong = wrong(model, x_te, y_te)
    lin_wrong = softmax_regression_wrong(x_tr, y_tr, x_te, y_te, cfg.logreg_iters)
    metrics["test_acc"] = 1 - float(net_wrong.mean())
    metrics["logreg_test_acc"] = 1 - float(lin_wrong.mean())
    metrics |= paired("acc_gain_over_logreg", 100.0 * lin_wrong, 100.0 * net_wrong)  # pp, + when the net is better
    metrics["train_err_db"] = evaluate(model, lambda m: {"e": error_rate(m, x_db, y_db)})["e"]
    feat, idx_f = knn_agreement(fc7(model, x_db), y_db, fc7(model, x_q), y_q, cfg.k, per_query=True)
    pix, idx_p = knn_agreement(x_db.flatten(1), y_db, x_q.flatten(1), y_q, cfg.k, per_query=True)
    metrics["agree_feat"], metrics["agree_pix"] = float(feat.mean()), float(pix.mean())
    metrics |= paired("feat_minus_pix_pp", 100.0 * feat.numpy(), 100.0 * pix.numpy())  # the same queries
    metrics["n_params"] = sum(p.numel() for p in model.parameters())
    show = slice(0, 6)
    title = (f"fc7 neighbours share the query's class {metrics['agree_feat']:.1%} of the time, pixel neighbours "
             f"{metrics['agree_pix']:.1%} ({metrics['feat_minus_pix_pp']:+.1f} pp); net test accuracy "
             f"{metrics['test_acc']:.1%} vs {metrics['logreg_test_acc']:.1%} for logistic regression")
    fig = neighbours_figure(x_q[show].flatten(1).numpy(), x_db[idx_f[show]].flatten(2).numpy(),
                            x_db[idx_p[show]].flatten(2).numpy(), 28, title)  # fmt: skip
    ctx.savefig(fig, "fig4_neighbours",
                caption=(f"Each row: a test image (left), its {cfg.k} nearest training images in the trained "
                         f"network's fc7 feature space (middle) and its {cfg.k} nearest in pixel space (right). The "
                         "claim predicts the fc7 neighbours share the query's class more often; over "
                         f"{cfg.n_queries} queries, {metrics['agree_feat']:.0%} of fc7 neighbours and "
                         f"{metrics['agree_pix']:.0%} of pixel neighbours have the query's class."))
    return metrics
