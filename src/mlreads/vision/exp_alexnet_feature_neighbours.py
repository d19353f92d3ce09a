"""alexnet/feature-neighbours: AlexNet Section 6.1 / Fig 4, "if two images produce feature activation vectors with a
small Euclidean separation, we can say that the higher levels of the neural network consider them to be similar".

Data, model, fit, measure, figures: a width-scaled AlexNet (LRN with the paper's constants, overlapping pooling,
dropout, groups=2) trained with SGD + momentum + weight decay (Section 5). Metric: the fraction of each test
query's k nearest training images (Euclidean) that share its class, in fc7 space and in pixel space; the same in the
fc7 space of the untrained net shows what training added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mlreads.core.fields import choices, positive
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, evaluate, fit, recipe
from mlreads.vision.alexnet import AlexNet, AlexNetConfig
from mlreads.vision.exp_common import (
    DATASETS,
    batches,
    cross_entropy,
    error_rate,
    load_images,
    subset,
)
from mlreads.vision.figures import neighbours_figure


@dataclass(frozen=True)
class NeighboursConfig:
    dataset: str = choices("fashion", DATASETS)
    scale: int = positive(16)  # widths / scale: (6, 16, 24, 24, 16)
    d_fc: int = positive(256)
    k: int = positive(5)
    n_database: int = positive(5000)  # training images searched
    n_queries: int = positive(1000)  # test images
    batch_size: int = positive(64)
    train: TrainConfig = field(default_factory=lambda: recipe(1500, 0.01, warmup=50, schedule="constant",
                                                              optimizer="sgd", betas=(0.9, 0.999), weight_decay=5e-4,
                                                              grad_clip=1.0, eval_every=250))  # fmt: skip


@torch.no_grad()
def knn_agreement(db: torch.Tensor, db_y: torch.Tensor, q: torch.Tensor, q_y: torch.Tensor, k: int):
    """Mean fraction of each query's k nearest database rows (Euclidean) that share its label; also the indices."""
    d2 = (q**2).sum(1, keepdim=True) - 2 * q @ db.T + (db**2).sum(1)  # (Q, N)
    idx = d2.topk(k, dim=1, largest=False).indices  # (Q, k)
    return float((db_y[idx] == q_y[:, None]).float().mean()), idx


@torch.no_grad()
def fc7(model: AlexNet, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model.features(xb) for xb in x.split(500)])


def run_feature_neighbours(cfg: NeighboursConfig, ctx: RunContext) -> dict:
    data = load_images(cfg.dataset)
    x_tr, y_tr = data["train"]
    x_db, y_db = subset(x_tr, y_tr, cfg.n_database, ctx.generator("database"))
    x_q, y_q = subset(*data["test"], cfg.n_queries, ctx.generator("queries"))
    mcfg = AlexNetConfig.mnist(scale=cfg.scale, d_fc=cfg.d_fc, init="kaiming")
    with init_rng(ctx.seed_for("init/alexnet")):
        model = AlexNet(mcfg)
    metrics: dict = {"dataset": cfg.dataset}
    metrics["agree_feat_init"], _ = knn_agreement(fc7(model, x_db), y_db, fc7(model, x_q), y_q, cfg.k)
    eval_fn = lambda m: {"test_err": error_rate(m, x_q, y_q)}
    res = fit(model, cfg.train, batches(x_tr, y_tr, cfg.batch_size), cross_entropy, eval_fn, ctx=ctx, desc="alexnet")
    metrics["test_acc"] = 1 - res.final["test_err"]
    ctx.save_model("alexnet", model, dataset=cfg.dataset, image_side=28)
    metrics["train_err_db"] = evaluate(model, lambda m: {"e": error_rate(m, x_db, y_db)})["e"]
    metrics["agree_feat"], idx_f = knn_agreement(fc7(model, x_db), y_db, fc7(model, x_q), y_q, cfg.k)
    metrics["agree_pix"], idx_p = knn_agreement(x_db.flatten(1), y_db, x_q.flatten(1), y_q, cfg.k)
    metrics["feat_minus_pix_pp"] = 100 * (metrics["agree_feat"] - metrics["agree_pix"])
    metrics["n_params"] = sum(p.numel() for p in model.parameters())
    show = slice(0, 6)
    fig = neighbours_figure(x_q[show].flatten(1).numpy(), x_db[idx_f[show]].flatten(2).numpy(),
                            x_db[idx_p[show]].flatten(2).numpy(), 28)  # fmt: skip
    ctx.savefig(fig, "fig4_neighbours",
                caption=(f"Each row: a test image (left), its {cfg.k} nearest training images in the trained "
                         f"network's fc7 feature space (middle) and its {cfg.k} nearest in pixel space (right). The "
                         "claim predicts the fc7 neighbours share the query's class more often; over "
                         f"{cfg.n_queries} queries, {metrics['agree_feat']:.0%} of fc7 neighbours and "
                         f"{metrics['agree_pix']:.0%} of pixel neighbours have the query's class."))
    return metrics
