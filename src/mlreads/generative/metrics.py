"""Sample-quality metrics for generative models on MNIST, computed offline.

- The Parzen-window log-likelihood of GAN Table 1 (Breuleux et al. 2011's estimator, the protocol of
  goodfeli/adversarial `parzen_ll.py`): a Gaussian kernel density with centres at the generated samples, bandwidth
  sigma chosen on validation images from a log-spaced grid, mean log-likelihood of the test set with its standard
  error. Theis et al. 2016 showed the estimate is a poor proxy for likelihood; we report real data used as centres
  beside it.
- A Frechet distance in the 512-d penultimate space of a small MNIST classifier (`featnet.py`): the FID formula with
  our own features. No Inception weights are available offline, so our numbers are not comparable with published FIDs.
- Class coverage (the predicted-class histogram and its entropy) and mean confidence: mode collapse shows as
  missing classes.
- Nearest-training-neighbour distances: GAN Fig 2's check that samples are not copies of training images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def parzen_log_likelihood(centres: Tensor, x: Tensor, sigma: float, batch_size: int = 500) -> Tensor:
    """log p(x) = logsumexp_i(-||x - c_i||^2 / (2 sigma^2)) - log n - (d/2) log(2 pi sigma^2), per row of x."""
    centres = centres.double()
    n, d = centres.shape
    c2 = (centres**2).sum(1)  # (n,)
    out = []
    for xb in x.double().split(batch_size):
        sq = (xb**2).sum(1, keepdim=True) - 2 * xb @ centres.T + c2  # (b, n) squared distances
        out.append(torch.logsumexp(-sq.clamp_min(0) / (2 * sigma**2), dim=1))
    return torch.cat(out) - math.log(n) - 0.5 * d * math.log(2 * math.pi * sigma**2)


def parzen_select_sigma(centres: Tensor, val: Tensor, sigmas: np.ndarray | None = None) -> tuple[float, dict]:
    """The bandwidth of the grid (default logspace(-1, 0, 10), as parzen_ll.py) with the best mean validation LL."""
    sigmas = np.logspace(-1, 0, 10) if sigmas is None else sigmas
    scores = {float(s): float(parzen_log_likelihood(centres, val, float(s)).mean()) for s in sigmas}
    return max(scores, key=scores.get), scores


def parzen_estimate(centres: Tensor, val: Tensor, test: Tensor) -> dict[str, float]:
    """Table 1's protocol: sigma chosen on `val`, then the mean test LL and its standard error (std / sqrt(n))."""
    sigma, _ = parzen_select_sigma(centres, val)
    ll = parzen_log_likelihood(centres, test, sigma)
    return {"ll": float(ll.mean()), "se": float(ll.std() / math.sqrt(len(ll))), "sigma": sigma}


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1^1/2 S2 S1^1/2), with symmetric square roots via eigh."""
    mu1, cov1, mu2, cov2 = (t.double() for t in (mu1, cov1, mu2, cov2))
    w, v = torch.linalg.eigh(cov1)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T  # S1^1/2
    inner = root1 @ cov2 @ root1
    inner_eig = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0)
    return float(((mu1 - mu2) ** 2).sum() + cov1.trace() + cov2.trace() - 2 * inner_eig.sqrt().sum())


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    f = features.double()
    return f.mean(0), torch.cov(f.T)


def class_coverage(probs: Tensor, n_classes: int = 10) -> dict[str, float | list[float]]:
    """Predicted-class fractions, their entropy (nats; log 10 = 2.30 is uniform), the smallest fraction, and the
    mean max-softmax confidence."""
    frac = torch.bincount(probs.argmax(1), minlength=n_classes).double() / len(probs)
    nz = frac[frac > 0]
    return {"class_fractions": frac.tolist(), "class_entropy": float(-(nz * nz.log()).sum()),
            "min_class_fraction": float(frac.min()), "n_classes_covered": int((frac >= 0.03).sum()),
            "confidence": float(probs.max(1).values.mean())}  # fmt: skip


def nearest_distances(queries: Tensor, reference: Tensor, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Euclidean distance from each query to its nearest reference row, and that row's index (GAN Fig 2's
    memorisation check); computed in the inputs' dtype."""
    r2 = (reference**2).sum(1)
    dist, idx = [], []
    for q in queries.split(batch_size):
        sq = (q**2).sum(1, keepdim=True) - 2 * q @ reference.T + r2
        best = sq.min(1)
        dist.append(best.values.clamp_min(0).sqrt())
        idx.append(best.indices)
    return torch.cat(dist), torch.cat(idx)


def sliced_wasserstein(a: Tensor, b: Tensor, n_proj: int, gen: torch.Generator) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance between the projected samples (equal n)."""
    n = min(len(a), len(b))
    dirs = torch.randn(a.shape[1], n_proj, generator=gen, dtype=a.dtype)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa, pb = (a[:n] @ dirs).sort(0).values, (b[:n] @ dirs).sort(0).values  # (n, n_proj)
    return float((pa - pb).abs().mean())


def mmd_rbf(a: Tensor, b: Tensor, bandwidth: float) -> float:
    """Unbiased squared maximum mean discrepancy with the kernel exp(-||x - y||^2 / (2 bandwidth^2)) (Gretton et al.
    2012, Eq 3); near 0 when the samples come from one distribution. A small bandwidth sees fine structure (modes)."""
    def k(x, y):
        return torch.exp(-torch.cdist(x, y).pow(2) / (2 * bandwidth**2))

    n, m = len(a), len(b)
    kaa, kbb = k(a, a), k(b, b)
    return float((kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1)) + (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
                 - 2 * k(a, b).mean())  # fmt: skip
