"""Measures of a trained toy model's features: norms, superposition, feature dimensionality, geometry and phases.

Paper: Elhage et al. 2022, "Toy Models of Superposition" (arXiv 2209.10652): Section 3 (norms ||W_i|| and the
superposition measure sum_{j != i} (W^_i . W_j)^2 in the bar plots), Section 6 ("The Geometry of Superposition":
dimensions per feature m / ||W||_F^2 and feature dimensionality D_i) and Section 4 (the n=2, m=1 phase diagram).

All functions take W with shape (..., m, n): the columns W[..., :, i] are the features. W^_i = W_i / ||W_i||.

Glossary: norms -> ||W_i||; superposition -> sum_{j != i} (W^_i . W_j)^2; feature_dimensionality -> D_i;
dimensions_per_feature -> m / ||W||_F^2 (the paper's "D*" / dimensions per feature); dimensions_in_use -> the
participation ratio of W's singular values, the m that dimensions_per_feature_in_use divides by.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

STICKY_FRACTIONS = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)  # Section 6: tegum products of regular polytopes

# (features in the group, dimension of their span) -> name (Section 6, Figure "uniform superposition")
GEOMETRY_NAMES = {
    (1, 1): "dedicated",
    (2, 1): "digon",
    (3, 2): "triangle",
    (4, 3): "tetrahedron",
    (5, 2): "pentagon",
    (8, 3): "square antiprism",
}

PHASES = ("not represented", "dedicated dimension", "superposition")  # Section 4, the extra feature's fate


def feature_norms(W: Tensor) -> Tensor:
    """||W_i||: (..., m, n) -> (..., n)."""
    return W.norm(dim=-2)


def _overlaps(W: Tensor) -> Tensor:
    """(W^_i . W_j)^2 for all i, j: (..., m, n) -> (..., n, n); row i is zero for a zero-norm feature."""
    norms = feature_norms(W)  # (..., n)
    unit = W / torch.where(norms > 0, norms, 1.0).unsqueeze(-2)  # (..., m, n)
    return (unit.transpose(-1, -2) @ W) ** 2  # (..., n, n)


def superposition(W: Tensor) -> Tensor:
    """Section 3: sum_{j != i} (W^_i . W_j)^2, how much of feature i's direction other features share. (..., n)."""
    ov = _overlaps(W)
    return ov.sum(-1) - ov.diagonal(dim1=-2, dim2=-1)  # (..., n)


def feature_dimensionality(W: Tensor) -> Tensor:
    """Section 6: D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2, (..., m, n) -> (..., n); 0 for a zero-norm feature."""
    num = feature_norms(W) ** 2  # (..., n)
    den = _overlaps(W).sum(-1)  # (..., n), includes j = i, which is ||W_i||^2
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)


def dimensions_per_feature(W: Tensor) -> Tensor:
    """Section 6: m / ||W||_F^2, the number of embedding dimensions per represented feature. (..., m, n) -> (...)."""
    return W.shape[-2] / (W**2).sum(dim=(-2, -1))


def dimensions_in_use(W: Tensor) -> Tensor:
    """The effective number of hidden dimensions W's features occupy: the participation ratio (sum s_k^2)^2 /
    sum s_k^4 of its singular values s_k. k dimensions used equally count k; a dimension holding only small
    leftovers (an unused one) counts close to 0, with no threshold. (..., m, n) -> (...)."""
    gram = W @ W.transpose(-1, -2)  # (..., m, m): its eigenvalues are s_k^2
    return (gram.diagonal(dim1=-2, dim2=-1).sum(-1)) ** 2 / (gram**2).sum(dim=(-2, -1))


def dimensions_per_feature_in_use(W: Tensor) -> Tensor:
    """Section 6's m / ||W||_F^2 with m replaced by `dimensions_in_use`: dimensions per feature among the dimensions
    the features occupy. k antipodal pairs of unit norm give exactly 1/2 whether or not all m dimensions hold one.
    (..., m, n) -> (...)."""
    return dimensions_in_use(W) / (W**2).sum(dim=(-2, -1))


def count_represented(W: Tensor, threshold: float = 0.5) -> Tensor:
    """Number of features with ||W_i|| > threshold. (..., m, n) -> (...) int."""
    return (feature_norms(W) > threshold).sum(-1)


# --- geometry -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureGroup:
    features: tuple[int, ...]  # feature indices sharing one subspace
    rank: int  # dimension of the subspace they span
    name: str  # "pentagon", "digon", ..., or "k features in r dims"
    dimensionality: tuple[float, ...]  # D_i of each member


def feature_groups(W: Tensor, alive: float = 0.5, cos_tol: float = 0.1) -> list[list[int]]:
    """Group the represented features (||W_i|| > alive) of one model W (m, n) into connected components of
    the graph with an edge where |cos(W_i, W_j)| > cos_tol: features in different groups are (near) orthogonal."""
    if W.dim() != 2:
        raise ValueError(f"feature_groups takes one model W (m, n), got shape {tuple(W.shape)}")
    norms = feature_norms(W)
    idx = torch.nonzero(norms > alive).flatten().tolist()
    if not idx:
        return []
    unit = W[:, idx] / norms[idx]  # (m, k)
    adj = (unit.T @ unit).abs() > cos_tol  # (k, k)
    groups, seen = [], set()
    for start in range(len(idx)):
        if start in seen:
            continue
        stack, comp = [start], []
        seen.add(start)
        while stack:
            a = stack.pop()
            comp.append(a)
            for c in torch.nonzero(adj[a]).flatten().tolist():
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        groups.append(sorted(idx[a] for a in comp))
    return sorted(groups)


def subspace_rank(W: Tensor, rel_tol: float = 0.2) -> int:
    """Dimension spanned by the unit feature vectors W (m, k): singular values above rel_tol * the largest."""
    unit = W / W.norm(dim=0).clamp_min(1e-12)
    s = torch.linalg.svdvals(unit)
    return int((s > rel_tol * s[0]).sum())


def detect_geometry(W: Tensor, alive: float = 0.5, cos_tol: float = 0.1) -> list[FeatureGroup]:
    """Section 6: split one model's features into orthogonal groups and name each polytope by (size, rank)."""
    dims = feature_dimensionality(W)
    out = []
    for g in feature_groups(W, alive, cos_tol):
        r = subspace_rank(W[:, g])
        name = GEOMETRY_NAMES.get((len(g), r), f"{len(g)} features in {r} dims")
        out.append(FeatureGroup(tuple(g), r, name, tuple(round(float(dims[i]), 4) for i in g)))
    return out


def geometry_counts(W: Tensor, alive: float = 0.5, cos_tol: float = 0.1) -> dict[str, int]:
    """How many groups of each name one model W (m, n) has."""
    counts: dict[str, int] = {}
    for grp in detect_geometry(W, alive, cos_tol):
        counts[grp.name] = counts.get(grp.name, 0) + 1
    return counts


# --- the n=2, m=1 phase diagram ---------------------------------------------------------------------------------------


def classify_phase(W: Tensor, alive: float = 0.5) -> Tensor:
    """Section 4, n=2, m=1: the fate of the extra feature (index 1). W (..., 1, 2) -> (...) int in {0, 1, 2}:
    0 not represented (||W_1|| <= alive), 1 dedicated dimension (only feature 1 represented),
    2 superposition (both represented; they are then antipodal, since m = 1)."""
    if W.shape[-2:] != (1, 2):
        raise ValueError(f"classify_phase takes W (..., 1, 2), got {tuple(W.shape)}")
    norms = feature_norms(W)  # (..., 2)
    first, extra = norms[..., 0] > alive, norms[..., 1] > alive
    phase = torch.zeros(W.shape[:-2], dtype=torch.long)
    phase[extra & ~first] = 1
    phase[extra & first] = 2
    return phase


# --- summaries the experiments check ---------------------------------------------------------------------------------


def angle_gaps_deg(W: Tensor, alive: float = 0.5) -> list[float]:
    """Angles (degrees) between circularly consecutive represented features of one 2D model W (2, n)."""
    if W.shape[0] != 2:
        raise ValueError(f"angle_gaps_deg takes W (2, n), got {tuple(W.shape)}")
    keep = feature_norms(W) > alive
    angles = torch.sort(torch.atan2(W[1, keep], W[0, keep]).double().rad2deg()).values
    if len(angles) < 2:
        return []
    gaps = torch.diff(torch.cat([angles, angles[:1] + 360]))
    return [round(float(g), 3) for g in gaps]


def features_per_neuron(W_in: Tensor, rel: float = 0.5, alive: float = 0.1) -> Tensor:
    """Section 8: for each neuron (row of W_1 (..., H, F)), the number of features whose |weight| exceeds rel x the
    neuron's largest |weight|; the mean over neurons whose largest |weight| > alive. (..., H, F) -> (...)."""
    a = W_in.abs()
    top = a.max(dim=-1, keepdim=True).values  # (..., H, 1)
    count = (a > rel * top).sum(-1).float()  # (..., H)
    live = (top.squeeze(-1) > alive).float()
    return (count * live).sum(-1) / live.sum(-1).clamp_min(1)


def sticky_fraction_share(dims: Tensor, tol: float = 0.03) -> float:
    """Share of live features (D_i > 0.05) whose D_i lies within tol of a sticky fraction (Section 6)."""
    d = dims.flatten()
    d = d[d > 0.05]
    if d.numel() == 0:
        return 0.0
    fr = torch.tensor(STICKY_FRACTIONS, dtype=d.dtype)
    return float(((d[:, None] - fr).abs() <= tol).any(-1).float().mean())


def shuffled_baseline(W: Tensor, gen: torch.Generator) -> Tensor:
    """W (..., m, n) with each hidden row's entries permuted across features: the same numbers, no geometry."""
    flat = W.reshape(-1, W.shape[-1])  # (rows, n)
    perm = torch.argsort(torch.rand(flat.shape, generator=gen), dim=-1)
    return flat.gather(-1, perm).reshape(W.shape)
