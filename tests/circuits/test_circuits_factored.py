"""FactoredMatrix against its own dense product (hypothesis over shapes) and against transformer_lens.FactoredMatrix."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlreads.circuits import FactoredMatrix

TOL = dict(rtol=1e-4, atol=1e-4)


def _factors(lead, l, m, r, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*lead, l, m, generator=g, dtype=dtype), torch.randn(*lead, m, r, generator=g, dtype=dtype)


shapes = st.tuples(
    st.lists(st.integers(1, 3), max_size=2), st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.integers(0, 99)
)


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_products_transpose_and_matmul_equal_dense(shape):
    lead, l, m, r, seed = shape
    A, B = _factors(lead, l, m, r, seed)
    M = A @ B
    fm = FactoredMatrix(A, B)
    assert fm.shape == M.shape and fm.ndim == M.ndim
    torch.testing.assert_close(fm.AB, M, rtol=0, atol=0)
    torch.testing.assert_close(fm.T.AB, M.transpose(-2, -1), **TOL)
    g = torch.Generator().manual_seed(seed + 1)
    right = torch.randn(r, 4, generator=g, dtype=A.dtype)
    left = torch.randn(3, l, generator=g, dtype=A.dtype)
    vec_r, vec_l = torch.randn(r, generator=g, dtype=A.dtype), torch.randn(l, generator=g, dtype=A.dtype)
    torch.testing.assert_close((fm @ right).AB, M @ right, **TOL)
    torch.testing.assert_close((left @ fm).AB, left @ M, **TOL)
    torch.testing.assert_close(fm @ vec_r, M @ vec_r, **TOL)
    torch.testing.assert_close(vec_l @ fm, vec_l @ M, **TOL)
    other = FactoredMatrix(*_factors((), r, 2, 5, seed + 2))
    torch.testing.assert_close((fm @ other).AB, M @ other.AB, **TOL)
    torch.testing.assert_close((fm * 2.5).AB, 2.5 * M, **TOL)
    torch.testing.assert_close((2.5 * fm).AB, 2.5 * M, **TOL)


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_svd_norm_eigenvalues_equal_dense(shape):
    lead, l, m, r, seed = shape
    A, B = _factors(lead, l, m, r, seed)
    M = A @ B
    fm = FactoredMatrix(A, B)
    U, S, V = fm.svd()
    k = min(l, m, r)
    assert U.shape[-1] == S.shape[-1] == V.shape[-1] == k
    torch.testing.assert_close(U @ torch.diag_embed(S) @ V.transpose(-2, -1), M, **TOL)
    torch.testing.assert_close(S, torch.linalg.svdvals(M)[..., :k], **TOL)
    eye = torch.eye(k, dtype=A.dtype).expand(*S.shape[:-1], k, k)
    torch.testing.assert_close(U.transpose(-2, -1) @ U, eye, **TOL)
    torch.testing.assert_close(V.transpose(-2, -1) @ V, eye, **TOL)
    torch.testing.assert_close(fm.norm(), torch.linalg.matrix_norm(M), **TOL)
    torch.testing.assert_close(fm.make_even().AB, M, **TOL)
    torch.testing.assert_close(fm.collapse_r() @ fm.collapse_l(), M @ V @ U.transpose(-2, -1) @ M, **TOL)
    if l == r:
        lam = fm.eigenvalues  # (..., m), complex
        assert lam.is_complex() and lam.shape[-1] == m
        # The nonzero spectra of AB and BA agree: compare the power sums trace((AB)^j) = sum(lambda^j).
        P = torch.eye(l, dtype=A.dtype).expand_as(M).clone()
        for j in range(1, m + 1):
            P = P @ M
            torch.testing.assert_close(
                (lam**j).sum(-1), torch.diagonal(P, dim1=-2, dim2=-1).sum(-1).to(lam.dtype), rtol=1e-6, atol=1e-6
            )
    else:
        with pytest.raises(ValueError):
            fm.BA


def test_broadcasting_unsqueeze_and_indexing():
    A, _ = _factors((3, 1), 5, 2, 4, 0)
    _, B = _factors((1, 4), 5, 2, 4, 1)
    fm = FactoredMatrix(A, B)
    M = A @ B
    assert fm.shape == (3, 4, 5, 4)
    torch.testing.assert_close(fm.AB, M)
    torch.testing.assert_close(fm.unsqueeze(1).AB, M.unsqueeze(1))
    torch.testing.assert_close(fm[1].AB, M[1])
    torch.testing.assert_close(fm[1, 2].AB, M[1, 2])
    torch.testing.assert_close(fm[:, 1:3].AB, M[:, 1:3])
    torch.testing.assert_close(fm[0, 0, 2].AB, M[0, 0, 2:3])  # an int row keeps its axis, as in TransformerLens
    torch.testing.assert_close(fm[0, 0, 1:4, -1].AB, M[0, 0, 1:4, -1:])
    torch.testing.assert_close(fm.get_corner(2), M[:2, :2, :2, :2])  # every dim cut at k, as TransformerLens
    torch.testing.assert_close(fm[..., 1:4, 2:].AB, M[..., 1:4, 2:])
    torch.testing.assert_close(fm[1, ...].AB, M[1])
    torch.testing.assert_close(fm[..., -1].AB, M[..., :, -1:])  # the int column keeps its axis
    torch.testing.assert_close(fm[0, ..., 3, :].AB, M[0, :, 3:4, :])
    torch.testing.assert_close(fm[...].AB, M)
    with pytest.raises(IndexError, match="single ellipsis"):
        fm[..., 0, ...]
    torch.testing.assert_close(fm[None].AB, M[None])  # None among leading indices only: a new axis (TL)
    with pytest.raises(IndexError, match="unsqueeze"):
        fm[0, None, 0, 1]
    with pytest.raises(ValueError):
        FactoredMatrix(torch.zeros(3, 2), torch.zeros(3, 2))


def test_dense_product_is_never_formed_for_svd_norm_eigenvalues():
    """A rank-2 factorisation of a 4000 x 4000 matrix: the dense product would be 128 MB in float64."""
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(4000, 2, generator=g, dtype=torch.float64), torch.randn(2, 4000, generator=g, dtype=torch.float64)
    fm = FactoredMatrix(A, B)
    U, S, V = fm.svd()
    assert U.shape == (4000, 2) and V.shape == (4000, 2)
    torch.testing.assert_close(fm.norm() ** 2, (S**2).sum(), rtol=1e-9, atol=0)
    torch.testing.assert_close(fm.eigenvalues.sum().real, torch.trace(B @ A), rtol=1e-9, atol=1e-9)


def _sorted_complex(x):
    return sorted(x.tolist(), key=lambda z: (round(z.real, 4), round(z.imag, 4)))


@pytest.mark.parametrize("lead,l,m,r", [((), 8, 3, 8), ((2, 3), 6, 4, 6), ((4,), 5, 5, 5), ((), 7, 2, 9), ((2,), 3, 6, 3)])
def test_parity_with_transformer_lens(lead, l, m, r):
    tl = pytest.importorskip("transformer_lens")
    A, B = _factors(lead, l, m, r, 7, dtype=torch.float32)
    ours, theirs = FactoredMatrix(A, B), tl.FactoredMatrix(A, B)
    torch.testing.assert_close(ours.AB, theirs.AB, rtol=0, atol=0)
    torch.testing.assert_close(ours.T.AB, theirs.T.AB, rtol=0, atol=0)
    torch.testing.assert_close(ours.norm(), theirs.norm(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.S, theirs.S, rtol=1e-4, atol=1e-4)
    # Singular vectors are unique up to sign; compare the reconstructions and |U^T U'| = I.
    U, S, V = ours.svd()
    Ut, St, Vt = theirs.svd()
    torch.testing.assert_close(U @ torch.diag_embed(S) @ V.transpose(-2, -1), theirs.AB, rtol=1e-4, atol=1e-4)
    k = S.shape[-1]
    torch.testing.assert_close(
        (U.transpose(-2, -1) @ Ut[..., :k]).abs().diagonal(dim1=-2, dim2=-1), torch.ones(S.shape), rtol=1e-3, atol=1e-3
    )
    x = torch.randn(r, 4)
    torch.testing.assert_close((ours @ x).AB, (theirs @ x).AB, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close((x.T @ ours.T).AB, (x.T @ theirs.T).AB, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close((ours @ ours.T).AB, (theirs @ theirs.T).AB, rtol=1e-4, atol=1e-4)
    if lead:
        torch.testing.assert_close(ours[0].AB, theirs[0].AB)
        torch.testing.assert_close(ours.unsqueeze(0).AB, theirs.unsqueeze(0).AB)
    if l == r:
        ours_eig, theirs_eig = ours.eigenvalues.reshape(-1, m), theirs.eigenvalues.reshape(-1, m)
        for a, b in zip(ours_eig, theirs_eig, strict=True):
            torch.testing.assert_close(
                torch.tensor(_sorted_complex(a)), torch.tensor(_sorted_complex(b)), rtol=1e-4, atol=1e-4
            )
