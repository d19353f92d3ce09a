"""FactoredMatrix behaves as TransformerLens' does.

Each behaviour that TransformerLens' own unit tests (tests/unit/factored_matrix/) check is checked here on our
class: construction and `has_leading_dims`, broadcasting errors, indexing, products with factored matrices, matrices,
vectors, scalars and tensor-like objects (with TL's inner sizes `mdim`), and the properties (BA, T, svd, Vh, the
cache, eigenvalues, norm, get_corner, collapse_l/r), including bfloat16 factors. Our own tests, not a port.
"""

import gc
import warnings
import weakref

import pytest
import torch
from torch.testing import assert_close

from mlreads.circuits import FactoredMatrix
from mlreads.circuits.factored import FactoredMatrixShapeError


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ----- construction -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a_shape,b_shape,lead,has_lead", [
    ((5, 3), (3, 7), (), False),
    ((5, 3), (2, 4, 3, 7), (2, 4), True),
    ((4, 5, 3), (2, 4, 3, 7), (2, 4), True),
    ((1, 5, 3), (3, 7), (1,), True),
])
def test_construction_broadcasts_and_reports_leading_dims(a_shape, b_shape, lead, has_lead):
    A, B = rand(*a_shape), rand(*b_shape, seed=1)
    fm = FactoredMatrix(A, B)
    assert (fm.ldim, fm.mdim, fm.rdim) == (5, 3, 7)
    assert fm.has_leading_dims is has_lead
    assert fm.shape == (*lead, 5, 7) and fm.ndim == len(lead) + 2
    assert fm.A.shape == (*lead, 5, 3) and fm.B.shape == (*lead, 3, 7)
    assert_close(fm.A, A.broadcast_to(fm.A.shape), rtol=0, atol=0)
    assert fm.pair == (fm.A, fm.B)


def test_leading_dims_that_cannot_broadcast_raise_runtime_error():
    with pytest.raises(RuntimeError, match="[Mm]ismatch"):
        FactoredMatrix(torch.ones(9, 5, 3), torch.ones(2, 4, 3, 7))


@pytest.mark.parametrize("catch", [AssertionError, ValueError, FactoredMatrixShapeError])
def test_inner_dimension_mismatch_is_caught_by_tl_style_and_our_style_code(catch):
    with pytest.raises(catch, match="inner dimension"):
        FactoredMatrix(torch.ones(2, 3, 4), torch.ones(2, 3, 5))
    assert issubclass(FactoredMatrixShapeError, AssertionError) and issubclass(FactoredMatrixShapeError, ValueError)


# ----- indexing -----------------------------------------------------------------------------------------------------

@pytest.fixture
def fm5():
    return FactoredMatrix(rand(2, 2, 2, 2, 2), rand(2, 2, 2, 2, 2, seed=1))


@pytest.mark.parametrize("idx", [0, (0, 1), (slice(None), 1), (slice(None), slice(None), 1), (None, 1)])
def test_leading_indices_apply_to_both_factors(fm5, idx):
    out = fm5[idx]
    assert_close(out.A, fm5.A[idx], rtol=0, atol=0)
    assert_close(out.B, fm5.B[idx], rtol=0, atol=0)


@pytest.mark.parametrize("idx", [(0, 0, 0, 1), (0, 0, 0, -1), (0, 0, 0, 0, 1), (0, 0, 0, 0, -1), (0, 0, 0, -1, -1)])
def test_row_and_column_indices_pick_lines_and_elements(fm5, idx):
    assert_close(fm5[idx].AB.squeeze(), fm5.AB[idx], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows,cols", [([0, 1], [0]), ([0, 1], 0), (torch.tensor([0, 1]), torch.tensor([0]))])
def test_sequence_and_tensor_indices_on_rows_and_columns(fm5, rows, cols):
    out = fm5[:, :, :, rows, cols]
    assert_close(out.A, fm5.A[:, :, :, rows, :], rtol=0, atol=0)
    want_B = fm5.B[:, :, :, :, cols]
    assert_close(out.B, want_B[..., None] if isinstance(cols, int) else want_B, rtol=0, atol=0)  # ints keep the axis


def test_bad_indices_raise(fm5):
    with pytest.raises(IndexError):
        fm5[0, 1, 2]  # out of range on a leading dim
    with pytest.raises(Exception):
        fm5[1, 1, 1, 1, 1, 1]  # more indices than dims


# ----- products -----------------------------------------------------------------------------------------------------

FM_PAIRS = [  # (A's l, m, r), (B's l, m, r): every ordering of ldim, mdim and rdim that TL's tests list
    ((3, 3, 3), (3, 3, 3)), ((1, 1, 1), (1, 1, 1)), ((1, 2, 1), (1, 6, 1)), ((1, 1, 1), (1, 2, 5)),
    ((5, 2, 1), (1, 1, 1)), ((1, 2, 3), (3, 2, 4)), ((3, 2, 1), (1, 3, 2)), ((1, 2, 5), (5, 3, 1)),
    ((3, 4, 5), (5, 6, 7)), ((8, 6, 5), (5, 7, 3)), ((3, 4, 4), (4, 5, 5)), ((7, 6, 3), (3, 7, 8)),
]


@pytest.mark.parametrize("a_lead,b_lead", [((), ()), ((2,), ()), ((), (2,)), ((2, 9), (9,))])
@pytest.mark.parametrize("a,b", FM_PAIRS)
def test_factored_times_factored(a, b, a_lead, b_lead):
    (l1, m1, r1), (l2, m2, r2) = a, b
    x = FactoredMatrix(rand(*a_lead, l1, m1, seed=1), rand(*a_lead, m1, r1, seed=2))
    y = FactoredMatrix(rand(*b_lead, l2, m2, seed=3), rand(*b_lead, m2, r2, seed=4))
    out = x @ y
    assert_close(out.AB, x.AB @ y.AB, rtol=1e-4, atol=1e-5)
    assert (out.ldim, out.mdim, out.rdim) == (l1, min(m1, r1, l2, m2), r2)  # the smallest inner size is kept
    assert out.A.shape[:-2] == out.B.shape[:-2] == torch.broadcast_shapes(a_lead, b_lead)


@pytest.mark.parametrize("left,right,error", [
    (((2, 3, 4), (2, 4, 6)), ((4, 6, 7), (4, 7, 2)), RuntimeError),  # leading dims 2 vs 4
    (((2, 9, 3, 4), (2, 9, 4, 6)), ((2, 6, 7), (2, 7, 2)), RuntimeError),  # leading dims (2, 9) vs (2,)
    (((3, 4), (4, 6)), ((5, 6), (6, 7)), AssertionError),  # inner 6 vs 5
    (((3, 4), (4, 6)), ((2, 5, 6), (2, 6, 7)), AssertionError),
])
def test_factored_product_shape_errors(left, right, error):
    x = FactoredMatrix(rand(*left[0]), rand(*left[1]))
    y = FactoredMatrix(rand(*right[0]), rand(*right[1]))
    with pytest.raises(error):
        x @ y


@pytest.mark.parametrize("fm_lead,mat_lead", [((), ()), ((2,), ()), ((), (2, 12)), ((2,), (2,))])
@pytest.mark.parametrize("l,m,r", [(2, 3, 4), (2, 6, 4), (2, 4, 4), (6, 3, 4), (2, 2, 4)])
def test_factored_times_matrix_both_sides(l, m, r, fm_lead, mat_lead):
    fm = FactoredMatrix(rand(*fm_lead, l, m, seed=1), rand(*fm_lead, m, r, seed=2))
    right, left = rand(*mat_lead, r, 5, seed=3), rand(*mat_lead, 6, l, seed=4)
    lead = torch.broadcast_shapes(fm_lead, mat_lead)
    out = fm @ right
    assert_close(out.AB, fm.AB @ right, rtol=1e-4, atol=1e-5)
    assert (out.ldim, out.mdim, out.rdim) == (l, min(m, r), 5) and out.A.shape[:-2] == lead
    out = left @ fm
    assert_close(out.AB, left @ fm.AB, rtol=1e-4, atol=1e-5)
    assert (out.ldim, out.mdim, out.rdim) == (6, min(m, l), r) and out.B.shape[:-2] == lead


MATRIX_ERRORS = [  # (FactoredMatrix factors, the matrix on the right, the matrix on the left, error)
    (((2, 3, 4), (2, 4, 6)), (4, 6, 7), (4, 6, 3), RuntimeError),  # leading dims 2 vs 4
    (((2, 9, 3, 4), (2, 9, 4, 6)), (2, 6, 7), (2, 6, 3), RuntimeError),  # leading dims (2, 9) vs (2,)
    (((3, 4), (4, 6)), (5, 6), (5, 6), AssertionError),  # inner sizes differ
    (((3, 4), (4, 6)), (2, 5, 6), (2, 5, 6), AssertionError),
]


@pytest.mark.parametrize("factors,right,left,error", MATRIX_ERRORS)
def test_matrix_product_shape_errors(factors, right, left, error):
    fm = FactoredMatrix(rand(*factors[0]), rand(*factors[1]))
    with pytest.raises(error):
        fm @ rand(*right)
    with pytest.raises(error):
        rand(*left) @ fm


@pytest.mark.parametrize("lead", [(), (6,)])
def test_vectors_on_either_side_give_vectors(lead):
    a, b = rand(*lead, 2, 3, seed=1), rand(*lead, 3, 4, seed=2)
    fm = FactoredMatrix(a, b)
    v4, v2 = rand(4, seed=3), rand(2, seed=4)
    assert_close(fm @ v4, (a @ b) @ v4, rtol=1e-5, atol=1e-6)
    assert_close(v2 @ fm, v2 @ (a @ b), rtol=1e-5, atol=1e-6)
    with pytest.raises(AssertionError):
        v4 @ fm  # the vector's size must be ldim


@pytest.mark.parametrize("scalar", [torch.rand(1), 0.37, -3])
@pytest.mark.parametrize("lead", [(), (6,)])
def test_scalar_multiplication_scales_A(scalar, lead):
    a, b = rand(*lead, 2, 3, seed=1), rand(*lead, 3, 4, seed=2)
    fm = FactoredMatrix(a, b)
    for out in (fm * scalar, scalar * fm):
        assert_close(out.AB, (a @ b) * scalar, rtol=1e-5, atol=1e-6)
        assert_close(out.A, a * scalar, rtol=0, atol=0)


@pytest.mark.parametrize("scalar", [torch.rand(2, 2), torch.rand(2)])
def test_non_scalar_tensor_multiplication_is_refused(scalar):
    fm = FactoredMatrix(rand(2, 3), rand(3, 4))
    with pytest.raises(AssertionError):
        fm * scalar
    with pytest.raises(ValueError):
        scalar * fm


class Wrapped:
    """A tensor-like object that is not a torch.Tensor: ndim, shape, unsqueeze/squeeze, broadcast_to and @."""

    def __init__(self, t):
        self.t = t

    ndim = property(lambda self: self.t.ndim)
    shape = property(lambda self: self.t.shape)

    def unsqueeze(self, d):
        return Wrapped(self.t.unsqueeze(d))

    def squeeze(self, d):
        return Wrapped(self.t.squeeze(d))

    def broadcast_to(self, s):
        return Wrapped(self.t.broadcast_to(s))

    def __matmul__(self, other):
        if isinstance(other, FactoredMatrix):
            return NotImplemented
        return Wrapped(self.t @ (other.t if isinstance(other, Wrapped) else other))

    def __rmatmul__(self, other):
        return Wrapped((other.t if isinstance(other, Wrapped) else other) @ self.t)


def test_tensor_like_operands():
    a, b = rand(2, 3, seed=1), rand(3, 4, seed=2)
    fm = FactoredMatrix(a, b)
    out = fm @ Wrapped(rand(4, 5, seed=3))
    assert isinstance(out, FactoredMatrix) and isinstance(out.AB, Wrapped)
    assert_close(out.AB.t, (a @ b) @ rand(4, 5, seed=3), rtol=1e-5, atol=1e-6)
    out = Wrapped(rand(5, 2, seed=4)) @ fm
    assert isinstance(out, FactoredMatrix) and isinstance(out.AB, Wrapped)
    assert_close(out.AB.t, rand(5, 2, seed=4) @ (a @ b), rtol=1e-5, atol=1e-6)
    vec = fm @ Wrapped(rand(4, seed=5))
    assert isinstance(vec, Wrapped)
    assert_close(vec.t, (a @ b) @ rand(4, seed=5), rtol=1e-5, atol=1e-6)


# ----- properties ---------------------------------------------------------------------------------------------------

SQUARE_AND_NOT = [((3, 2), (2, 3)), ((4, 5), (5, 4)), ((6, 7), (7, 6)), ((6, 7), (7, 3)), ((1, 8, 9), (1, 9, 8))]


@pytest.mark.parametrize("a_shape,b_shape", SQUARE_AND_NOT)
def test_properties_match_the_dense_matrix(a_shape, b_shape):
    a, b = rand(*a_shape, seed=1), rand(*b_shape, seed=2)
    fm = FactoredMatrix(a, b)
    M = a @ b
    assert_close(fm.AB, M, rtol=0, atol=0)
    assert_close(fm.T.A, b.mT, rtol=0, atol=0) and assert_close(fm.T.B, a.mT, rtol=0, atol=0)
    U, S, V = fm.svd()
    assert_close(U @ torch.diag_embed(S) @ V.mT, M, rtol=1e-4, atol=1e-4)
    eye = torch.eye(U.shape[-1]).expand(*U.shape[:-2], -1, -1)
    assert_close(U.mT @ U, eye, rtol=1e-5, atol=1e-5) and assert_close(V.mT @ V, eye, rtol=1e-5, atol=1e-5)
    assert_close(fm.norm(), torch.linalg.matrix_norm(M), rtol=1e-5, atol=1e-5)
    assert_close(fm.U @ fm.collapse_l(), M, rtol=1e-4, atol=1e-4)
    assert_close(fm.collapse_r() @ fm.V.mT, M, rtol=1e-4, atol=1e-4)
    assert_close(fm.make_even().AB, M, rtol=1e-4, atol=1e-4)
    assert_close(fm.get_corner(3), M[tuple(slice(3) for _ in range(M.ndim))], rtol=1e-6, atol=1e-6)
    if fm.ldim == fm.rdim:
        assert_close(fm.BA, b @ a, rtol=0, atol=0)
        want = torch.linalg.eigvals(b @ a).abs().sort(-1).values
        assert_close(fm.eigenvalues.abs().sort(-1).values, want, rtol=1e-4, atol=1e-4)
    else:
        with pytest.raises(AssertionError):
            fm.BA
        with pytest.raises(ValueError):
            fm.eigenvalues


def test_vh_is_a_deprecated_alias_of_v():
    fm = FactoredMatrix(rand(4, 3), rand(3, 4, seed=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vh = fm.Vh
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert torch.equal(vh, fm.V)


def test_svd_is_cached_per_instance_and_frees_with_it():
    fm = FactoredMatrix(rand(4, 3), rand(3, 4, seed=1))
    first, second = fm.svd(), fm.svd()
    assert all(x is y for x, y in zip(first, second))
    ref = weakref.ref(fm)
    del fm, first, second
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("l,m", [(3, 2), (10, 4)])
def test_eigenvalues_and_svd_of_16_bit_factors(dtype, l, m):
    a, b = rand(l, m, seed=1).to(dtype), rand(m, l, seed=2).to(dtype)
    fm = FactoredMatrix(a, b)
    eig = fm.eigenvalues
    assert eig.dtype == torch.complex64
    want = torch.linalg.eigvals(fm.BA.float())
    assert_close(eig.abs().sort().values, want.abs().sort().values, rtol=1e-2, atol=1e-2)
    U, S, V = fm.svd()
    assert U.dtype == S.dtype == V.dtype == dtype
    M = (a.float() @ b.float())
    assert_close((U.float() * S.float()) @ V.float().mT, M, rtol=3e-2, atol=3e-2 * float(M.abs().max()))
    assert_close(S.float(), torch.linalg.svdvals(M)[:m], rtol=2e-2, atol=2e-2)


def test_parity_with_transformer_lens_on_bfloat16():
    tl = pytest.importorskip("transformer_lens")
    a, b = rand(10, 4, seed=1).bfloat16(), rand(4, 10, seed=2).bfloat16()
    ours, theirs = FactoredMatrix(a, b), tl.FactoredMatrix(a, b)
    assert ours.has_leading_dims == theirs.has_leading_dims
    assert_close(ours.eigenvalues.abs().sort().values, theirs.eigenvalues.abs().sort().values, rtol=1e-4, atol=1e-4)
    assert_close(ours.get_corner(3), theirs.get_corner(3), rtol=0, atol=0)
