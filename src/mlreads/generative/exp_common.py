"""What the generative experiments share: MNIST as tensors, the feature net (trained once and cached) and the
feature-space metrics of a sample set."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor

from mlreads.generative.featnet import (
    FEATNET_SEED,
    FeatNet,
    FeatNetConfig,
    cache_path,
    pool_up,
)


def mnist_tensors() -> dict[str, tuple[Tensor, Tensor]]:
    """MNIST splits as (x float (n, 784) in [0, 1], y int64)."""
    from mlreads.core.data.mnist import load_mnist

    return {s: (torch.from_numpy(x).float() / 255, torch.from_numpy(y)) for s, (x, y) in load_mnist().items()}


def load_or_train(cfg: FeatNetConfig, mnist: dict) -> tuple[FeatNet, dict]:
    """The cached feature net, or train it (about 1 min on one thread) and cache it. Returns (net, info).

    `mnist`: {"train", "test"} -> (x float (n, 784) in [0, 1], y int64), as `mnist_tensors()`.
    """
    from safetensors.torch import load_model, save_model

    from mlreads.core.run.seeding import init_rng
    from mlreads.core.train import evaluate, fit, recipe

    path = cache_path(cfg)
    with init_rng(FEATNET_SEED):
        net = FeatNet(cfg)
    mnist = {k: (pool_up(x, cfg.pool), y) for k, (x, y) in mnist.items()}  # cfg.pool 1: the images as they are
    x_te, y_te = mnist["test"]
    eval_fn = lambda m: {"test_acc": (m(x_te).argmax(1) == y_te).float().mean()}
    if path.is_file():
        load_model(net, str(path))
    else:
        x, y = mnist["train"]

        def batch_fn(step, gen):
            idx = torch.randint(0, len(x), (cfg.batch_size,), generator=gen)
            return x[idx], y[idx]

        fit(net, recipe(cfg.steps, cfg.lr, grad_clip=None), batch_fn, lambda m, b: F.cross_entropy(m(b[0]), b[1]),
            data_seed=FEATNET_SEED, desc="featnet")  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_model(net, str(tmp))
        tmp.replace(path)
    net.eval()
    info = evaluate(net, eval_fn)
    info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return net, info


@torch.no_grad()
def sample_quality(samples01: Tensor, featnet, data: dict[str, tuple[Tensor, Tensor]], gen: torch.Generator,
                   n_ref: int = 5000) -> dict:  # fmt: skip
    """Class coverage, confidence and the Frechet distance in the feature net's space, with a floor (MNIST train vs
    test) and a ceiling (images drawn from a Gaussian fitted to the training pixels, clipped to [0, 1])."""
    from mlreads.generative.metrics import (
        class_coverage,
        frechet_distance,
        gaussian_stats,
    )

    x_tr, x_te = data["train"][0][:n_ref], data["test"][0][:n_ref]
    out = class_coverage(torch.softmax(featnet(samples01), 1))
    stats = lambda x: gaussian_stats(featnet.features(x))
    s_samples, s_test, s_train = stats(samples01), stats(x_te), stats(x_tr)
    mean, cov = x_tr.double().mean(0), torch.cov(x_tr.double().T)
    w, v = torch.linalg.eigh(cov)
    z = torch.randn(len(x_te), 784, generator=gen, dtype=torch.float64)
    gauss = (mean + (z * w.clamp_min(0).sqrt()) @ v.T).clamp(0, 1).float()
    out["fid_feat"] = frechet_distance(*s_samples, *s_test)
    out["fid_feat_floor_train_vs_test"] = frechet_distance(*s_train, *s_test)
    out["fid_feat_ceiling_gaussian"] = frechet_distance(*stats(gauss), *s_test)
    return out
