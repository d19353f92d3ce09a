"""A low-rank matrix kept as the product of its two factors, M = A B, never multiplied out unless asked.

Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits" (transformer-circuits.pub/2021/framework),
section "Virtual weights and the residual stream" and the appendix on low-rank matrices: W_QK = W_Q^T W_K and
W_OV = W_O W_V are d_model x d_model matrices of rank at most d_head, best studied in factored form.

Convention (TransformerLens's): row vectors multiply from the left, so a head's OV circuit is x @ W_V @ W_O and
`FactoredMatrix(W_V, W_O)` is the paper's W_OV transposed. Every method has TransformerLens semantics:
`AB`, `BA`, `T`, `@` with tensors and other factored matrices on either side, `svd() -> (U, S, V)` with
M = U diag(S) V^T, `eigenvalues` (complex, those of B A), `norm()` (Frobenius), leading batch dimensions that
broadcast (`has_leading_dims` says whether a factor had any), `unsqueeze`, `__getitem__` (with one `...`),
`get_corner`, `collapse_l/r`, `make_even`, `pair`, and the deprecated alias `Vh` (= V). Factors may be tensor-like
objects (with ndim, shape, broadcast_to and @) for the products.

Errors: an invalid shape (inner dimensions that differ, a product with the wrong size, BA/eigenvalues of a
non-square matrix, `*` by a non-scalar tensor) raises `FactoredMatrixShapeError`, a subclass of both ValueError and
AssertionError, so code written for TransformerLens (which asserts) and code catching ValueError both work. Leading
dimensions that cannot broadcast raise torch's RuntimeError ("Shape mismatch"), as in TransformerLens.

Precision: `svd()` and `eigenvalues` compute in float32 for float16/bfloat16 factors (torch's CPU linear algebra has
no 16-bit kernels), as TransformerLens does for eigenvalues: eigenvalues come back complex64, the SVD factors in the
factors' dtype.

Glossary (code name -> paper symbol):
    A (..., l, m), B (..., m, r)     the two factors, M = A B
    ldim, mdim, rdim                 l (rows), m (inner rank bound), r (columns)

Deviations from TransformerLens (results equal to float tolerance; tests hold them together):
    svd() orthogonalises each factor by QR instead of by SVD, then takes the SVD of the small m x m middle;
    norm() is sqrt(trace(A^T A B B^T)), which needs no SVD.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _t(x: Tensor) -> Tensor:
    return x.transpose(-2, -1)


def _upcast(x: Tensor) -> Tensor:
    """16-bit floats to float32 for linear algebra (torch has no 16-bit SVD, QR or eig on the CPU)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class FactoredMatrixShapeError(ValueError, AssertionError):
    """A FactoredMatrix operation got factors or operands of incompatible shapes (a ValueError here; an
    AssertionError in TransformerLens, so both `except` clauses catch it)."""


class FactoredMatrix:
    """M = A @ B with A (..., l, m) and B (..., m, r); leading dimensions broadcast. See the module docstring."""

    def __init__(self, A: Tensor, B: Tensor):
        if A.ndim < 2 or B.ndim < 2:
            raise FactoredMatrixShapeError(f"factors need at least 2 dims, got {tuple(A.shape)} and {tuple(B.shape)}")
        if A.shape[-1] != B.shape[-2]:
            raise FactoredMatrixShapeError(f"inner dimensions differ: A {tuple(A.shape)}, B {tuple(B.shape)}")
        self.has_leading_dims = A.ndim > 2 or B.ndim > 2  # as given, before broadcasting (TransformerLens)
        lead = torch.broadcast_shapes(A.shape[:-2], B.shape[:-2])  # RuntimeError "Shape mismatch" if they cannot
        self.ldim, self.mdim, self.rdim = A.shape[-2], A.shape[-1], B.shape[-1]
        self.A = A.broadcast_to(lead + (self.ldim, self.mdim))  # (..., l, m)
        self.B = B.broadcast_to(lead + (self.mdim, self.rdim))  # (..., m, r)
        self.shape = torch.Size(lead + (self.ldim, self.rdim))
        self._svd: tuple[Tensor, Tensor, Tensor] | None = None

    # ----- products -------------------------------------------------------------------------------------------
    @property
    def AB(self) -> Tensor:
        """The dense product (..., l, r): the one place the full matrix is formed."""
        return self.A @ self.B

    @property
    def BA(self) -> Tensor:
        """The reverse product (..., m, m); it shares its nonzero eigenvalues with AB. Needs l == r."""
        if self.ldim != self.rdim:
            raise FactoredMatrixShapeError(f"BA needs a square matrix (ldim == rdim), shape is {tuple(self.shape)}")
        return self.B @ self.A

    @property
    def T(self) -> FactoredMatrix:
        """The transpose, (A B)^T = B^T A^T."""
        return FactoredMatrix(_t(self.B), _t(self.A))

    def __matmul__(self, other: Tensor | FactoredMatrix) -> Tensor | FactoredMatrix:
        if isinstance(other, FactoredMatrix):
            return (self @ other.A) @ other.B
        if other.shape[-2 if other.ndim > 1 else -1] != self.rdim:
            raise FactoredMatrixShapeError(f"cannot multiply {tuple(self.shape)} by {tuple(other.shape)}")
        if other.ndim == 1:  # a vector: the result is a vector, computed right to left
            return (self.A @ (self.B @ other.unsqueeze(-1))).squeeze(-1)
        # Keep the smaller inner dimension: fold `other` into B, or fold B into A when m >= r.
        if self.rdim > self.mdim:
            return FactoredMatrix(self.A, self.B @ other)
        return FactoredMatrix(self.AB, other)

    def __rmatmul__(self, other: Tensor) -> Tensor | FactoredMatrix:
        if other.shape[-1] != self.ldim:
            raise FactoredMatrixShapeError(f"cannot multiply {tuple(other.shape)} by {tuple(self.shape)}")
        if other.ndim == 1:
            return ((other.unsqueeze(-2) @ self.A) @ self.B).squeeze(-2)
        if self.ldim > self.mdim:
            return FactoredMatrix(other @ self.A, self.B)
        return FactoredMatrix(other, self.AB)

    def __mul__(self, scalar: float | Tensor) -> FactoredMatrix:
        if isinstance(scalar, Tensor) and scalar.numel() != 1:
            raise FactoredMatrixShapeError(f"* takes a scalar, got shape {tuple(scalar.shape)}; use @ for products")
        return FactoredMatrix(self.A * scalar, self.B)

    __rmul__ = __mul__

    # ----- spectra ---------------------------------------------------------------------------------------------
    def svd(self) -> tuple[Tensor, Tensor, Tensor]:
        """(U, S, V) with A B = U diag(S) V^T; U (..., l, k), S (..., k), V (..., r, k), k = min(l, m, r)."""
        if self._svd is None:
            A, B = _upcast(self.A), _upcast(self.B)
            Qa, Ra = torch.linalg.qr(A)  # A = Qa Ra, Qa (..., l, ka) orthonormal columns
            Qb, Rb = torch.linalg.qr(_t(B))  # B^T = Qb Rb, Qb (..., r, kb)
            Um, S, Vmh = torch.linalg.svd(Ra @ _t(Rb), full_matrices=False)  # the small (ka, kb) middle
            self._svd = tuple(t.to(self.A.dtype) for t in (Qa @ Um, S, Qb @ _t(Vmh)))
        return self._svd

    @property
    def U(self) -> Tensor:
        return self.svd()[0]

    @property
    def S(self) -> Tensor:
        return self.svd()[1]

    @property
    def V(self) -> Tensor:
        return self.svd()[2]

    @property
    def Vh(self) -> Tensor:
        """Deprecated alias of V (TransformerLens kept it under this misleading name); use V."""
        import warnings

        warnings.warn("FactoredMatrix.Vh returns V, not V^H; use .V", DeprecationWarning, stacklevel=2)
        return self.V

    @property
    def eigenvalues(self) -> Tensor:
        """The m eigenvalues of B A (complex; complex64 for 16-bit factors), the nonzero eigenvalues of A B plus
        zeros."""
        return torch.linalg.eigvals(_upcast(self.BA))

    def norm(self) -> Tensor:
        """Frobenius norm, (...,): ||A B||_F^2 = trace(A^T A B B^T), computed at size m x m."""
        # Deviation (precision): the m x m Gram matrices are formed in float64, since the trace cancels when
        # ||A B|| is much smaller than ||A|| ||B||.
        A, B = self.A.double(), self.B.double()
        gram = (_t(A) @ A) * (B @ _t(B))  # trace(X Y) = sum(X * Y^T), and B B^T is symmetric
        return gram.sum((-2, -1)).clamp_min(0).sqrt().to(self.A.dtype)

    def collapse_l(self) -> Tensor:
        """diag(S) V^T (..., k, r): M with its left orthogonal factor U removed (so ||X M|| = ||X U S V^T||)."""
        U, S, V = self.svd()
        return S[..., :, None] * _t(V)

    def collapse_r(self) -> Tensor:
        """U diag(S) (..., l, k): M with its right orthogonal factor removed."""
        U, S, V = self.svd()
        return U * S[..., None, :]

    def make_even(self) -> FactoredMatrix:
        """The same matrix as (U sqrt(S)) (sqrt(S) V^T): both factors carry half of each singular value."""
        U, S, V = self.svd()
        root = S.sqrt()
        return FactoredMatrix(U * root[..., None, :], root[..., :, None] * _t(V))

    # ----- shape -----------------------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def pair(self) -> tuple[Tensor, Tensor]:
        return self.A, self.B

    def unsqueeze(self, dim: int) -> FactoredMatrix:
        """Insert a leading axis at `dim` (counted among the leading dims, as TransformerLens does)."""
        return FactoredMatrix(self.A.unsqueeze(dim), self.B.unsqueeze(dim))

    def __getitem__(self, idx) -> FactoredMatrix:
        """Index leading dims, then rows (applied to A) and columns (applied to B). An int row or column index keeps
        its axis (as a length-1 slice), so the result is always a FactoredMatrix. One `...` stands for the dims not
        named; None (a new axis) is not supported: use `unsqueeze`."""
        idx = idx if isinstance(idx, tuple) else (idx,)
        n_lead = self.ndim - 2
        leading_only = not any(i is Ellipsis for i in idx) and sum(i is not None for i in idx) <= n_lead
        if leading_only:  # TransformerLens: indices (None allowed) on the leading dims apply to both factors
            return FactoredMatrix(self.A[idx], self.B[idx])
        if any(i is None for i in idx):
            raise IndexError("FactoredMatrix indexing takes ints, slices, index tensors and one ...; for None use "
                             "unsqueeze")
        dots = [k for k, i in enumerate(idx) if i is Ellipsis]
        if len(dots) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if dots:
            k = dots[0]
            idx = idx[:k] + (slice(None),) * max(0, self.ndim - (len(idx) - 1)) + idx[k + 1 :]
        if len(idx) > self.ndim:
            raise IndexError(f"{len(idx)} indices for a FactoredMatrix with {self.ndim} dims")
        lead, rows, cols = idx[:n_lead], idx[n_lead : n_lead + 1], idx[n_lead + 1 :]

        def keep(i):
            return slice(i, (i + 1) or None) if isinstance(i, int) else i

        A = self.A[lead + tuple(keep(i) for i in rows)]
        B = self.B[lead + (slice(None),) + tuple(keep(i) for i in cols)]
        return FactoredMatrix(A, B)

    def get_corner(self, k: int = 3) -> Tensor:
        """The first k entries along every dim of the product (TransformerLens), without forming all of it."""
        lead = (slice(None, k),) * (self.ndim - 2)
        return self.A[lead][..., :k, :] @ self.B[lead][..., :, :k]

    def __repr__(self) -> str:
        return f"FactoredMatrix(shape={tuple(self.shape)}, mdim={self.mdim})"
