"""What the generative experiments share: MNIST as tensors, the feature-space metrics of a sample set."""

from __future__ import annotations

import torch
from torch import Tensor

PAPER_GAN = "Goodfellow et al. 2014, Generative Adversarial Nets (NIPS, arXiv 1406.2661)"
PAPER_DDPM = "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models (arXiv 2006.11239)"


def mnist_tensors() -> dict[str, tuple[Tensor, Tensor]]:
    """MNIST splits as (x float (n, 784) in [0, 1], y int64)."""
    from mlreads.core.data.mnist import load_mnist

    return {s: (torch.from_numpy(x).float() / 255, torch.from_numpy(y)) for s, (x, y) in load_mnist().items()}


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
