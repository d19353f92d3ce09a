"""Analysis of toy models on hand-built geometries: D_i, superposition, geometry names, phases."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlreads.superposition import (
    classify_phase,
    detect_geometry,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    superposition,
)
from mlreads.superposition.measures import (
    angle_gaps_deg,
    features_per_neuron,
    sticky_fraction_share,
)
from mlreads.superposition.reference import (
    feature_dimensionality_ref,
    superposition_ref,
)

TOL = dict(atol=1e-5, rtol=1e-5)


def polygon(k: int, scale: float = 1.0, phase: float = 0.3) -> torch.Tensor:
    """k unit vectors evenly spaced on the circle: (2, k)."""
    a = phase + torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return scale * torch.stack([a.cos(), a.sin()])


def tetrahedron() -> torch.Tensor:
    v = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64).T
    return v / math.sqrt(3)  # (3, 4)


def square_antiprism() -> torch.Tensor:
    """8 unit vectors: two squares rotated 45 degrees against each other, at heights +-h (Section 6). h = 1/sqrt(3)
    makes it a tight frame (sum_j v_j v_j^T = 8/3 I), the configuration in which every D_i is 3/8."""
    h = 1 / math.sqrt(3)
    pts = []
    for k in range(4):
        for z, off in ((h, 0.0), (-h, math.pi / 4)):
            a = off + k * math.pi / 2
            r = math.sqrt(1 - z * z)
            pts.append([r * math.cos(a), r * math.sin(a), z])
    return torch.tensor(pts, dtype=torch.float64).T  # (3, 8)


def block_diag(*blocks: torch.Tensor) -> torch.Tensor:
    """Tegum product: each block in its own orthogonal subspace."""
    return torch.block_diag(*blocks)


@pytest.mark.parametrize(
    "W, expected",
    [
        (polygon(5, scale=1.3), 2 / 5),  # pentagon; D does not depend on the scale
        (polygon(3), 2 / 3),  # triangle
        (torch.tensor([[1.0, -1.0]], dtype=torch.float64), 1 / 2),  # antipodal pair
        (torch.eye(3, dtype=torch.float64) * 0.7, 1.0),  # orthogonal
        (tetrahedron(), 3 / 4),
        (square_antiprism(), 3 / 8),
    ],
    ids=["pentagon", "triangle", "antipodal", "orthogonal", "tetrahedron", "square-antiprism"],
)
def test_feature_dimensionality_hand_built(W, expected):
    torch.testing.assert_close(feature_dimensionality(W), torch.full((W.shape[1],), expected, dtype=W.dtype), **TOL)


def test_feature_dimensionality_dead_feature_is_zero_and_tegum_products_split():
    W = block_diag(polygon(5), torch.tensor([[1.0, -1.0]], dtype=torch.float64), torch.zeros(1, 1))  # (4, 8)
    d = feature_dimensionality(W)
    torch.testing.assert_close(d, torch.tensor([0.4] * 5 + [0.5, 0.5, 0.0], dtype=W.dtype), **TOL)
    assert not torch.isnan(d).any()
    # m / ||W||_F^2: 4 dims over 5 + 2 unit features
    torch.testing.assert_close(dimensions_per_feature(W), torch.tensor(4 / 7, dtype=W.dtype), **TOL)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 5), n=st.integers(1, 7), batch=st.integers(1, 3), seed=st.integers(0, 1000))
def test_fast_analysis_matches_loops(m, n, batch, seed):
    W = torch.randn(batch, m, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    W[..., 0] = 0.0  # always one dead feature
    dims, sup = feature_dimensionality(W), superposition(W)
    assert dims.shape == sup.shape == (batch, n)
    for b in range(batch):
        torch.testing.assert_close(dims[b], feature_dimensionality_ref(W[b]), **TOL)
        torch.testing.assert_close(sup[b], superposition_ref(W[b]), **TOL)
    assert (dims >= 0).all() and (dims <= 1 + 1e-9).all()


def test_superposition_measure_hand_case():
    # W_0 = (1, 0), W_1 = (0.6, 0.8), W_2 = (0, 2): sup_0 = 0.6^2 + 0 = 0.36, sup_1 = 0.6^2 + 1.6^2, sup_2 = 0.8^2 * 4...
    W = torch.tensor([[1.0, 0.6, 0.0], [0.0, 0.8, 2.0]], dtype=torch.float64)
    expected = torch.tensor([0.36, 0.36 + 1.6**2, 0.0 + 0.8**2], dtype=W.dtype)
    torch.testing.assert_close(superposition(W), expected, **TOL)
    torch.testing.assert_close(feature_norms(W), torch.tensor([1.0, 1.0, 2.0], dtype=W.dtype), **TOL)


def _rotate(W: torch.Tensor, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(W.shape[0], W.shape[0], generator=torch.Generator().manual_seed(seed),
                                       dtype=W.dtype))  # fmt: skip
    return q @ W


def test_geometry_detector_names_a_tegum_product():
    W = block_diag(polygon(5), polygon(3), tetrahedron(), torch.tensor([[1.0, -1.0]], dtype=torch.float64),
                   torch.ones(1, 1), square_antiprism())  # fmt: skip
    W = _rotate(W)[:, torch.randperm(W.shape[1], generator=torch.Generator().manual_seed(1))]  # any basis, any order
    names = sorted(g.name for g in detect_geometry(W))
    assert names == sorted(["pentagon", "triangle", "tetrahedron", "digon", "dedicated", "square antiprism"])
    sizes = {g.name: (len(g.features), g.rank) for g in detect_geometry(W)}
    assert sizes["pentagon"] == (5, 2) and sizes["square antiprism"] == (8, 3)


def test_geometry_detector_ignores_dead_features_and_reports_unknown_shapes():
    W = block_diag(polygon(4) * 0.1, polygon(7))  # a dead square (norm 0.1) and a heptagon
    groups = detect_geometry(W)
    assert [g.name for g in groups] == ["7 features in 2 dims"]
    # a square in 2D is two orthogonal digons (a tegum product), not one group
    assert sorted(g.name for g in detect_geometry(polygon(4, phase=0.0))) == ["digon", "digon"]


def test_classify_phase():
    W = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, -1.0]], [[0.1, 0.2]], [[0.9, 0.3]]])  # (5, 1, 2)
    assert classify_phase(W).tolist() == [0, 1, 2, 0, 0]


def test_pentagon_angles_and_neuron_counts():
    assert angle_gaps_deg(polygon(5).float()) == pytest.approx([72.0] * 5, abs=1e-3)
    W_in = torch.tensor([[1.0, 0.0, 0.4], [0.9, 0.8, 0.0], [0.01, 0.0, 0.0]])  # 3rd neuron dead
    torch.testing.assert_close(features_per_neuron(W_in), torch.tensor(1.5))
    assert sticky_fraction_share(torch.tensor([0.5, 0.4, 0.0, 0.9])) == pytest.approx(2 / 3)
