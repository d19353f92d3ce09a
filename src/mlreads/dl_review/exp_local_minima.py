"""dl-review/local-minima (p. 438): with wider nets, runs from different initialisations end at losses of very
similar quality (Choromanska et al. 2015's concentration of the loss distribution)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from mlreads.core.fields import in_range, nonnegative, positive
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit
from mlreads.dl_review.model import ManyMLPs, per_seed_cross_entropy


@dataclass(frozen=True)
class LocalMinimaConfig:
    widths: tuple[int, ...] = positive((4, 16, 64, 256))
    n_seeds: int = positive(10)
    n_train: int = positive(5000)  # the first n_train MNIST training images
    n_test: int = positive(2000)
    epochs: int = positive(20)
    batch_size: int = positive(100)
    lr: float = positive(0.1)  # plain SGD on the mean loss of each net
    momentum: float = in_range(0.9, 0.0, 1.0)
    spread_width: int = positive(16)  # the narrow width whose spread the widest is compared with
    ckpt_every: int = nonnegative(0)  # a checkpoint every N steps of each fit (full runs: --resume continues them)


def run_local_minima(cfg: LocalMinimaConfig, ctx) -> dict:
    """Per width, train n_seeds MLPs from different inits on the same batches; measure the spread of final losses.

    Metrics: per width w, train_loss_w (list over seeds), train_std_w, test_std_w, and for the widest net the gap
    of its worst seed to its best (worst_gap_widest). All seeds of a width share the minibatch order.
    """
    from mlreads.core.data.mnist import load_mnist
    from mlreads.dl_review import figures

    data = load_mnist()
    xtr = torch.from_numpy(data["train"][0][: cfg.n_train]).float() / 255  # (N, 784)
    ytr = torch.from_numpy(data["train"][1][: cfg.n_train]).long()
    xte = torch.from_numpy(data["test"][0][: cfg.n_test]).float() / 255
    yte = torch.from_numpy(data["test"][1][: cfg.n_test]).long()
    steps_per_epoch = cfg.n_train // cfg.batch_size

    def batch_fn(step, gen):  # Deviation: minibatches drawn with replacement (an "epoch" is n_train samples)
        idx = torch.randint(cfg.n_train, (cfg.batch_size,), generator=gen)
        return xtr[idx], ytr[idx]

    train_cfg = TrainConfig(steps=cfg.epochs * steps_per_epoch, lr=cfg.lr, schedule="constant", optimizer="sgd",
                            betas=(cfg.momentum, 0.999), grad_clip=None, log_every=steps_per_epoch,
                            ckpt_every=cfg.ckpt_every)  # fmt: skip
    out: dict = {}
    losses = {}
    for w in cfg.widths:
        with init_rng(ctx.seed_for(f"init/w{w}")):
            nets = ManyMLPs(cfg.n_seeds, 784, w, 10)
        # the sum of the nets' mean losses: each net's parameters get exactly its own gradient
        fit(nets, train_cfg, batch_fn, lambda m, b: per_seed_cross_entropy(m(b[0]), b[1]).sum(), ctx=ctx,
            desc=f"width-{w}")  # fmt: skip
        with torch.no_grad():
            tr = per_seed_cross_entropy(nets(xtr), ytr)
            te = per_seed_cross_entropy(nets(xte), yte)
        losses[w] = (tr, te)
        ctx.save_model(f"width-{w}", nets)
        out[f"train_loss_{w}"] = tr.tolist()
        out[f"test_loss_{w}"] = te.tolist()
        out[f"train_std_{w}"] = float(tr.std())
        out[f"test_std_{w}"] = float(te.std())
    widest, narrow = max(cfg.widths), min(cfg.widths)
    out["std_narrow"] = out[f"train_std_{cfg.spread_width if cfg.spread_width in cfg.widths else narrow}"]
    out["std_widest"] = out[f"train_std_{widest}"]
    out["std_ratio"] = out["std_widest"] / max(out["std_narrow"], 1e-12)
    # the training loss itself falls towards 0 with width; the test-loss spread and the relative spread say the
    # concentration is not only that
    narrow_key = cfg.spread_width if cfg.spread_width in cfg.widths else narrow
    out["test_std_ratio"] = out[f"test_std_{widest}"] / max(out[f"test_std_{narrow_key}"], 1e-12)
    for w in cfg.widths:
        out[f"train_cv_{w}"] = out[f"train_std_{w}"] / max(float(losses[w][0].mean()), 1e-12)
    tr_w = losses[widest][0]
    out["worst_gap_widest"] = float(tr_w.max() - tr_w.min())
    stds = [out[f"train_std_{w}"] for w in cfg.widths]
    out["std_falls_with_width"] = all(a > b for a, b in itertools.pairwise(stds))
    ctx.savefig(figures.loss_distributions(losses), "loss_distributions",
                caption=("Final training (left) and test (right) loss of every initialisation, one row per hidden "
                         "width (log scale). The claim predicts the dots of the wide nets bunch together, runs from "
                         "different initialisations ending at losses of very similar quality; here the training-loss "
                         f"spread (std) of the {widest}-unit nets is {out['std_ratio']:.2f}x that of the "
                         f"{narrow_key}-unit nets."))
    return out
