"""Sample metrics: Parzen estimate and Frechet distance against plain numpy twins; coverage and neighbours."""

import numpy as np
import torch

from mlreads.generative import metrics
from mlreads.generative.reference import frechet_ref, parzen_ref


def test_parzen_matches_reference():
    rng = np.random.default_rng(0)
    c, x = rng.random((300, 20)), rng.random((40, 20))
    for sigma in (0.1, 0.3):
        ours = metrics.parzen_log_likelihood(torch.from_numpy(c), torch.from_numpy(x), sigma, batch_size=7).numpy()
        np.testing.assert_allclose(ours, parzen_ref(c, x, sigma), rtol=1e-10, atol=1e-8)


def test_parzen_bandwidth_is_chosen_on_validation():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(500, 3, generator=g) * 0.3
    sigma, scores = metrics.parzen_select_sigma(centres, torch.randn(200, 3, generator=g) * 0.3)
    assert sigma == max(scores, key=scores.get) and 0.1 < sigma < 1.0


def test_frechet_matches_reference_and_is_zero_on_equal_gaussians():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((500, 8)), rng.standard_normal((400, 8)) @ rng.standard_normal((8, 8)) * 0.5 + 1
    m1, c1 = a.mean(0), np.cov(a.T)
    m2, c2 = b.mean(0), np.cov(b.T)
    ours = metrics.frechet_distance(*(torch.from_numpy(v) for v in (m1, c1, m2, c2)))
    assert abs(ours - frechet_ref(m1, c1, m2, c2)) < 1e-8 * max(1, ours)
    assert abs(metrics.frechet_distance(*(torch.from_numpy(v) for v in (m1, c1, m1, c1)))) < 1e-9


def test_class_coverage_sees_collapse():
    probs = torch.zeros(100, 10)
    probs[:, 1] = 1.0
    cov = metrics.class_coverage(probs)
    assert cov["n_classes_covered"] == 1 and cov["class_entropy"] == 0 and cov["confidence"] == 1
    cov = metrics.class_coverage(torch.eye(10).repeat(10, 1))
    assert cov["n_classes_covered"] == 10 and abs(cov["class_entropy"] - np.log(10)) < 1e-12


def test_nearest_distances():
    ref = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    dist, idx = metrics.nearest_distances(torch.tensor([[3.0, 3.0], [0.0, 1.0]]), ref)
    torch.testing.assert_close(dist, torch.tensor([1.0, 1.0]))
    assert idx.tolist() == [1, 0]


def test_sliced_wasserstein_is_a_shift_for_translated_samples():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    assert metrics.sliced_wasserstein(a, a.clone(), 64, torch.Generator().manual_seed(1)) == 0
    shifted = metrics.sliced_wasserstein(a, a + torch.tensor([3.0, 0.0], dtype=torch.float64), 256,
                                         torch.Generator().manual_seed(1))  # fmt: skip
    assert abs(shifted - 3 * 2 / torch.pi) < 0.15  # E|cos theta| * 3 for uniform directions in 2-D
