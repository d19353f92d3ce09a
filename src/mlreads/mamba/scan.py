"""The selective scan of Mamba (Gu & Dao 2023, arXiv 2312.00752), Section 3.2-3.3, Algorithm 2, on the CPU.

`selective_scan` has the signature, layout and semantics of mamba-ssm's `selective_scan_fn`, plus `initial_state`:

    u, delta, z: (B, D, L)    A: (D, N)    B, C: (B, N, L), grouped (B, G, N, L) or constant (D, N)
    D, delta_bias: (D,)    state: (B, D, N)

Glossary: u = x, delta = Δ, A = A (diagonal; the model passes A = -exp(A_log)), B = B, C = C, D = D, z = gate
input, h = hidden state; dA = Ā = exp(ΔA) (ZOH), dBu = B̄x = ΔBx (the official code's simplified B̄). The axis letters
B/D/L/N follow mamba-ssm here (D is the inner width E of `core/shapes.py`).

Four implementations, all equal to `reference.selective_scan_ref` (outputs, last state and gradients):

- ``"fused"`` (default): the C++ kernel in `mlreads/mamba/csrc` (see `FusedScan`), built on first use and cached;
  forward and backward each one pass over the (B, D) rows with the state in registers, the epilogue inside.
  Measured (benchmarks/selective_scan.py, one thread, runs on a busy machine, B=8, D=128, N=16): 7.5-8.5x faster
  than "chunked" at L = 4k and 5.6-6.3x at 16k (forward + backward from a given output gradient), about half its
  peak memory. Falls back to "chunked" (one warning line) where it cannot be built, and
  silently with MLREADS_NO_EXT=1.

- ``"loop"``: discretise the whole sequence at once into (L, B, D, N) tensors, then step through ``unbind(0)``
  with autograd recording each step. Measured (benchmarks/selective_scan.py, forward + backward, B=8, D=128, N=16):
  ~2x faster than mambapy's `pscan`, which does O(log L) passes over (B, D, L, N) tensors; indexing ``x[:, t]``
  in the loop instead of ``unbind`` would make the backward O(L²) (each index's backward writes a full-size zero
  tensor).
- ``"chunked"``: a custom `autograd.Function` in pure PyTorch that never holds a (B, L, D, N) tensor, ~5x faster
  than the loop and ~9-11x faster than `pscan` at L = 1k-4k in the same benchmark. See `ChunkedScan`.
- ``"ref"``: the reference loop.

The recurrent step used for generation (one token, state (B, D, N)) is `mlreads.mamba.step`: mamba-ssm's
`selective_state_update`, computed by this scan with L = 1.

Deviations:
- B̄ = ΔB (Euler for B), not ZOH's B̄ = (ΔA)^{-1}(exp(ΔA) - I) ΔB = (exp(ΔA) - 1)/A · B for diagonal A (Section 2,
  Eq. 4); Ā = exp(ΔA) stays ZOH. The official code does the same (mamba-ssm `selective_scan_ref`,
  ops/selective_scan_interface.py: `deltaB_u = einsum(delta, B, u)`); mamba-minimal explains it: A is the more
  important term, and the two agree to first order in Δ. One function, `discretize`, computes both for every fast
  path (the reference twin keeps its own copy on purpose).
- Complex A runs on the loop path only (autograd through complex tensors): it is mamba-ssm's semantics, kept for
  S4D-style models, but no Mamba model here uses it, so it gets no custom kernel.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

DEFAULT_CHUNK = 128


def discretize(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, out: tuple[Tensor, Tensor] | None = None
               ) -> tuple[Tensor, Tensor]:
    """Ā = exp(ΔA) (ZOH, Section 2 Eq. 4) and B̄x = ΔBx (Euler for B; see Deviations), the one discretisation of
    every fast path.

    u, delta: (..., D); A: (D, N); B: broadcastable to (..., D, N) (the caller puts B's channel axis in place).
    Returns Ā and B̄x, each (..., D, N); with `out`, written into those two tensors.
    """
    dA_out, dBu_out = (None, None) if out is None else out
    dA = torch.mul(delta[..., None], A, out=dA_out).exp_()  # (..., D, N)
    dBu = torch.mul((delta * u)[..., None], B, out=dBu_out)  # (..., D, N)
    return dA, dBu


def _scan_into(buf: Tensor, dA: Tensor) -> Tensor:
    """h_t = Ā_t h_{t-1} + B̄x_t (Eq. 2a) in place: buf[0] = h_0, buf[1:] = B̄x on entry, the states on exit."""
    for t, a_t in enumerate(dA.unbind(0)):
        buf[t + 1].addcmul_(a_t, buf[t])
    return buf  # (L + 1, B, D, N)


def _split(x: Tensor, groups: int, has_n: bool = True) -> Tensor:
    """(..., D, N) -> (..., G, D/G, N) when has_n, else (..., D) -> (..., G, D/G): channel d is in group d // (D/G)."""
    if has_n:
        return x.unflatten(-2, (groups, -1))
    return x.unflatten(-1, (groups, -1))


class _BC:
    """One of B, C inside `ChunkedScan`: time-varying (B, L, G, N) or constant (D, N), seen per chunk as a tensor
    that broadcasts against the state split into groups, (l, B, G, D/G, N)."""

    def __init__(self, X: Tensor, d_inner: int):
        self.X, self.const = X, X.dim() == 2
        self.groups = d_inner if self.const else X.shape[2]

    def chunk(self, s: int, e: int) -> Tensor:
        if self.const:
            return self.X[:, None, :]  # (D, 1, N) = (G = D, D/G = 1, N)
        return _time_major(self.X, s, e)[:, :, :, None, :]  # (l, B, G, 1, N)

    def reduce(self, prod: Tensor, weight: Tensor, tmp: Tensor) -> Tensor:
        """Σ over the channels of each group (and over batch and time when constant) of weight (l, B, D) * prod
        (l, B, D, N): the gradient of B (or C) in its own layout, (l, B, G, N) or (D, N)."""
        if self.const:
            return torch.mul(prod, weight[..., None], out=tmp).sum((0, 1))  # (D, N)
        w = _split(weight, self.groups, has_n=False)[..., None, :]  # (l, B, G, 1, D/G)
        return torch.matmul(w, _split(prod, self.groups))[..., 0, :]  # (l, B, G, N)


def _chunk_states(u, delta, A, Bx: _BC, s, e, h_in, ws_dA, ws_h):
    """Discretise steps s..e and scan them from `h_in`, inside the preallocated workspaces (no allocation per
    chunk): returns Ā (l, B, D, N) and [h_in, h_1..h_l] (l + 1, B, D, N), views of ws_dA and ws_h."""
    length, G = u.shape[0], Bx.groups
    buf = ws_h[: length + 1]
    buf[0].copy_(h_in)
    # B̄x is written straight into the state buffer, which the scan then turns into the states in place
    discretize(_split(u, G, False), _split(delta, G, False), _split(A, G), Bx.chunk(s, e),
               out=(_split(ws_dA[:length], G), _split(buf[1:], G)))  # (l, B, G, D/G, N)
    dA = ws_dA[:length]
    return dA, _scan_into(buf, dA)


def _time_major(x: Tensor, s: int, e: int) -> Tensor:
    """Steps s..e of a (B, L, ...) tensor as a contiguous (l, B, ...) block (a cheap copy of contiguous rows)."""
    return x[:, s:e].transpose(0, 1).contiguous()


def _contract(states: Tensor, Cx: _BC, s: int, e: int, out: Tensor) -> Tensor:
    """y_t = C_t h_t (Eq. 2b) for the states (l, B, D, N) of steps s..e: (l, B, D). A multiply-and-sum beats a
    batched (D, N) @ (N, 1) matmul here by ~1.7x."""
    return torch.mul(_split(states, Cx.groups), Cx.chunk(s, e), out=_split(out, Cx.groups)).sum(-1).flatten(-2)


class ChunkedScan(torch.autograd.Function):
    """h_t = Ā_t h_{t-1} + B̄_t x_t, y_t = C_t h_t, in chunks of `chunk` steps, recomputing inside chunks in backward.

    This is the CPU analogue of the paper's hardware-aware scan (Section 3.3.2). On a GPU the expanded state
    (B, L, D, N) is N times larger than the inputs and outputs; Mamba's kernel loads Δ, A, B, C (size O(BLD + DN))
    from slow HBM into fast SRAM, discretises and scans there, and writes back only y (B, D, L); in backward it
    recomputes the states instead of storing them. Here the slow memory is DRAM and the fast one the caches: each
    chunk's inputs are gathered into time-major blocks, its (chunk, B, D, N) working set is built, scanned and
    contracted with C while it is hot, and only the state entering each chunk (B, D, N) is kept for backward.
    Backward walks the chunks in reverse, recomputes the chunk's states from its saved entry state, runs the adjoint
    recurrence g_t = C_t dy_t + Ā_{t+1} g_{t+1} backwards, and reduces the chunk's gradients. Peak memory is
    O(BDL + (L/chunk) BDN + chunk BDN), never BLDN.

    Layout: the model's (B, L, D), so a chunk is a block of contiguous rows. Measured here (B=8, D=128, L=4096), a
    time-major working set beats a (B, D, chunk, N) one that would read mamba-ssm's (B, D, L) layout in place: the
    per-step slabs then have strides, and the scan's in-place updates run ~3x slower. Inputs: u, delta (B, L, D)
    contiguous, delta already biased and softplus-ed; A (D, N); B, C (B, L, G, N) contiguous (G groups of channels)
    or (D, N) constant; h0 (B, D, N) or None. Outputs: y (B, L, D) without the D skip and the gate, and the last
    state (B, D, N).
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, h0, chunk):
        batch, length, dim = u.shape
        Bx, Cx = _BC(B, dim), _BC(C, dim)
        h = u.new_zeros(batch, dim, A.shape[1]) if h0 is None else h0  # (B, D, N)
        y = torch.empty_like(u)  # (B, L, D)
        step = min(chunk, length)
        ws_dA, ws_h = u.new_empty(step, *h.shape), u.new_empty(step + 1, *h.shape)  # reused by every chunk
        entries = []
        for s in range(0, length, chunk):
            e = min(s + chunk, length)
            entries.append(h)
            dA, buf = _chunk_states(_time_major(u, s, e), _time_major(delta, s, e), A, Bx, s, e, h,
                                    ws_dA, ws_h)  # (l + 1, B, D, N)
            y[:, s:e] = _contract(buf[1:], Cx, s, e, out=dA).transpose(0, 1)
            h = buf[-1].clone()  # the workspaces are reused by the next chunk
        ctx.save_for_backward(u, delta, A, B, C, torch.stack(entries))
        ctx.chunk, ctx.has_h0 = chunk, h0 is not None
        return y, h

    @staticmethod
    def backward(ctx, dy, dh_last):
        u, delta, A, B, C, entries = ctx.saved_tensors
        chunk, length, dim = ctx.chunk, u.shape[1], u.shape[2]
        Bx, Cx = _BC(B, dim), _BC(C, dim)
        du, ddelta = torch.empty_like(u), torch.empty_like(delta)
        dA_param, dB, dC = torch.zeros_like(A), torch.zeros_like(B), torch.zeros_like(C)
        dy = torch.zeros_like(u) if dy is None else dy
        carry = u.new_zeros(entries.shape[1:]) if dh_last is None else dh_last  # dL/dh at the chunk's end
        starts = list(range(0, length, chunk))
        step = min(chunk, length)
        ws_dA, ws_h = u.new_empty(step, *carry.shape), u.new_empty(step + 1, *carry.shape)  # one set for all chunks
        ws_g, ws_tmp = u.new_empty(step, *carry.shape), u.new_empty(step, *carry.shape)
        for i in reversed(range(len(starts))):
            s = starts[i]
            e = min(s + chunk, length)
            u_c, delta_c, dy_c = (_time_major(t, s, e) for t in (u, delta, dy))  # (l, B, D)
            dA, buf = _chunk_states(u_c, delta_c, A, Bx, s, e, entries[i], ws_dA, ws_h)  # recomputed
            tmp = ws_tmp[: e - s]
            dC_c = Cx.reduce(buf[1:], dy_c, tmp)  # dC_t = Σ_d dy_t h_t
            # adjoint recurrence: g_t = dL/dh_t = C_t dy_t + Ā_{t+1} g_{t+1}
            g = ws_g[: e - s]
            torch.mul(_split(dy_c, Cx.groups, False)[..., None], Cx.chunk(s, e), out=_split(g, Cx.groups))
            g[-1] += carry
            for t in range(e - s - 2, -1, -1):
                g[t].addcmul_(dA[t + 1], g[t + 1])
            carry = dA[0] * g[0]
            # dL/d(ΔA)_t = g_t h_{t-1} Ā_t, written over h_{t-1} (the states are no longer needed)
            dx = buf[:-1].mul_(g).mul_(dA)  # (l, B, D, N)
            dA_param += torch.mul(dx, delta_c[..., None], out=tmp).sum((0, 1))
            ddelta_c = torch.mul(dx, A, out=tmp).sum(-1)  # (l, B, D)
            # B̄x_t = Δ_t u_t B_t, and its gradient is g_t
            gB = torch.mul(_split(g, Bx.groups), Bx.chunk(s, e), out=_split(tmp, Bx.groups)).sum(-1).flatten(-2)
            ddelta[:, s:e] = (ddelta_c + gB * u_c).transpose(0, 1)
            du[:, s:e] = (gB * delta_c).transpose(0, 1)
            dB_c = Bx.reduce(g, delta_c * u_c, tmp)
            if Bx.const:
                dB += dB_c
            else:
                dB[:, s:e] = dB_c.transpose(0, 1)
            if Cx.const:
                dC += dC_c
            else:
                dC[:, s:e] = dC_c.transpose(0, 1)
        dh0 = carry if ctx.has_h0 else None
        return du, ddelta, dA_param, dB, dC, dh0, None


class FusedScan(torch.autograd.Function):
    """The fused C++ kernel (`mlreads/mamba/csrc/selective_scan.cpp`): the whole scan, epilogue included
    (Δ bias and softplus, D skip, silu(z) gate), one pass over the (B, D) rows in forward and one in backward, the
    state (N values per row) kept in registers and L1, states recomputed from a checkpoint every `chunk` steps.

    Inputs as the kernel wants them: u, delta, z (B, D, L) contiguous in the scan's dtype; B, C (B, G, L, N)
    contiguous or (D, N) constant, in the scan's dtype; A (D, N), D, delta_bias (D,), h0 (B, D, N) in the
    accumulation dtype (float32, or float64), or None. Returns out (B, D, L) and the last state (B, D, N).
    """

    @staticmethod
    def forward(ctx, ext, u, delta, A, B, C, D, z, delta_bias, h0, softplus, chunk):
        none = u.new_empty(0)
        opt = [none if t is None else t for t in (D, z, delta_bias, h0)]
        out, last, ckpt = ext.fwd(u, delta, A, B, C, *opt, softplus, chunk, any(ctx.needs_input_grad))
        ctx.save_for_backward(u, delta, A, B, C, *opt[:3], ckpt)
        ctx.ext, ctx.softplus, ctx.chunk, ctx.has = ext, softplus, chunk, [t is not None for t in (D, z, delta_bias, h0)]
        return out, last

    @staticmethod
    def backward(ctx, dout, dlast):
        u, delta, A, B, C, D, z, delta_bias, ckpt = ctx.saved_tensors
        dout = torch.zeros_like(u) if dout is None else dout.contiguous()
        dlast = u.new_empty(0) if dlast is None else dlast.contiguous()
        du, ddelta, dA, dB, dC, dD, dbias, dz, dh0 = ctx.ext.bwd(u, delta, A, B, C, D, z, delta_bias, ckpt, dout,
                                                                 dlast, ctx.softplus, ctx.chunk, ctx.has[3])
        has_D, has_z, has_bias, has_h0 = ctx.has
        return (None, du, ddelta, dA, dB, dC, dD if has_D else None, dz if has_z else None,
                dbias if has_bias else None, dh0 if has_h0 else None, None, None)


def _fused(u, delta, A, B, C, D, z, delta_bias, delta_softplus, h0, chunk, ext):
    """Prepare the kernel's layouts and dtypes (differentiably) and run `FusedScan`: out (B, D, L) in the scan's
    dtype, last state (B, D, N) in the accumulation dtype. bfloat16/float16 inputs stay in their dtype and accumulate
    in float32; float32 and float64 run as themselves."""
    acc = torch.promote_types(u.dtype, torch.float32)
    sdt = u.dtype if u.dtype in (torch.float16, torch.bfloat16) else acc
    u, delta = u.to(sdt).contiguous(), delta.to(sdt).contiguous()
    z = None if z is None else z.to(sdt).contiguous()
    B, C = (X.to(sdt).contiguous() if X.dim() == 2 else rearrange(X.to(sdt), "b g n l -> b g l n").contiguous()
            for X in (B, C))
    A, D, delta_bias, h0 = (None if t is None else t.to(acc).contiguous() for t in (A, D, delta_bias, h0))
    return FusedScan.apply(ext, u, delta, A, B, C, D, z, delta_bias, h0, bool(delta_softplus), int(chunk))


def _scan_loop(u, delta, A, B, C, h0):
    """The unbind loop with autograd on time-major inputs: fast for moderate L, holds (L, B, D, N) tensors.
    B, C: broadcastable to (L, B, D, N); with complex A the states are complex and y = 2 Re(C h)."""
    dA, dBu = discretize(u, delta, A, B)  # (L, B, D, N)
    h = dBu.new_zeros(dBu.shape[1:]) if h0 is None else h0
    hs = []
    for a_t, b_t in zip(dA.unbind(0), dBu.unbind(0)):
        h = torch.addcmul(b_t, a_t, h)  # (B, D, N)
        hs.append(h)
    y = (torch.stack(hs) * C).sum(-1)  # (L, B, D)
    return (2 * y.real if y.is_complex() else y), h


Impl = Literal["fused", "chunked", "loop", "ref"]


def _bc_layout(X: Tensor, name: str, batch: int, d_inner: int, d_state: int, length: int, complex_a: bool) -> Tensor:
    """Check B or C against mamba-ssm's layouts and return it as (B, G, N, L) (time-varying) or (D, N) (constant);
    with complex A, as complex tensors (a real time-varying one stores (re, im) pairs along L)."""
    if X.dim() == 2:
        if tuple(X.shape) != (d_inner, d_state):
            raise ValueError(f"constant {name} must be (D, N) = ({d_inner}, {d_state}), got {tuple(X.shape)}")
        return X
    if X.dim() not in (3, 4):
        raise ValueError(f"{name} must be (B, N, L), (B, G, N, L) or (D, N), got {tuple(X.shape)}")
    X = X[:, None] if X.dim() == 3 else X  # (B, G, N, L')
    n_l = length * 2 if complex_a and not X.is_complex() else length
    if X.shape[0] != batch or X.shape[2] != d_state or X.shape[3] != n_l or d_inner % X.shape[1]:
        raise ValueError(f"{name} must be (B, G, N, L) = ({batch}, G, {d_state}, {n_l}) with G dividing "
                         f"D = {d_inner}, got {tuple(X.shape)}")
    if complex_a and not X.is_complex():
        X = torch.view_as_complex(X.unflatten(-1, (-1, 2)).contiguous())
    return X


def selective_scan(
    u: Tensor,  # (B, D, L)
    delta: Tensor,  # (B, D, L)
    A: Tensor,  # (D, N), real or complex
    B: Tensor,  # (B, N, L), grouped (B, G, N, L), or (D, N) constant
    C: Tensor,  # as B
    D: Tensor | None = None,  # (D,)
    z: Tensor | None = None,  # (B, D, L)
    delta_bias: Tensor | None = None,  # (D,)
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: Tensor | None = None,  # (B, D, N)
    impl: Impl = "fused",
    chunk_size: int = DEFAULT_CHUNK,
):
    """mamba-ssm's `selective_scan_fn` on the CPU: y = (C h + D u) * silu(z), h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t.

    Returns y (B, D, L) in u's dtype, and with `return_last_state` also the last state (B, D, N) in float32 (or
    float64; complex when A is). `initial_state` (B, D, N) is the state before the first step (mamba-ssm lacks it;
    issues #101, #175). Grouped B/C (B, G, N, L): channel d reads group d // (D / G). Complex A (mamba-ssm's layout:
    a real time-varying B/C holds (re, im) pairs along L, so its last axis is 2L; y = 2 Re(C h)) runs on the loop.
    `impl`: "fused" (default; the C++ kernel, or "chunked" with a one-line warning where it cannot be built, or
    silently with MLREADS_NO_EXT=1), "chunked", "loop" or "ref". `chunk_size`: steps per recomputation chunk.
    """
    if impl == "ref":
        from mlreads.mamba.reference import (
            selective_scan_ref,  # the test twin, only on request
        )

        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state,
                                  initial_state)
    if impl not in ("fused", "chunked", "loop"):
        raise ValueError(f"unknown impl {impl!r}; use 'fused', 'chunked', 'loop' or 'ref'")
    batch, d_inner, length = u.shape
    complex_a = A.is_complex()
    B, C = (_bc_layout(X, name, batch, d_inner, A.shape[1], length, complex_a) for X, name in ((B, "B"), (C, "C")))
    if impl == "fused" and not complex_a:
        from mlreads.mamba import csrc

        ext = csrc.load()
        if ext is not None:
            y, last = _fused(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, chunk_size, ext)
            return (y, last) if return_last_state else y
        impl = "chunked"
    dtype_in = u.dtype
    work = torch.promote_types(u.dtype, torch.float32)
    cwork = torch.promote_types(work, torch.complex64) if complex_a else work
    u, delta = u.to(work), delta.to(work)
    A, B, C = (t.to(torch.promote_types(t.dtype, cwork if t.is_complex() else work)) for t in (A, B, C))
    h0 = None if initial_state is None else initial_state.to(torch.promote_types(initial_state.dtype, cwork))
    if delta_bias is not None:
        delta = delta + delta_bias.to(work)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    if impl == "loop" or complex_a:
        u_t, delta_t = (rearrange(t, "b d l -> l b d").contiguous() for t in (u, delta))  # (L, B, D)
        # per channel: (D, N) constant, or (L, B, D|1, N) with each group repeated over its channels
        B_t, C_t = (X if X.dim() == 2 else rearrange(X, "b g n l -> l b g n").repeat_interleave(d_inner // X.shape[1],
                                                                                              dim=2)
                    for X in (B, C))
        y, last = _scan_loop(u_t, delta_t, A, B_t, C_t, h0)
        y, u = rearrange(y, "l b d -> b l d"), rearrange(u, "b d l -> b l d")
    else:
        # (B, L, .) views: free when the caller's tensors are (B, L, .) underneath, as the model's are
        u, delta = (rearrange(t, "b d l -> b l d").contiguous() for t in (u, delta))
        B, C = (X if X.dim() == 2 else rearrange(X, "b g n l -> b l g n").contiguous() for X in (B, C))
        y, last = ChunkedScan.apply(u, delta, A, B, C, h0, int(chunk_size))  # (B, L, D)
    if D is not None:
        y = y + u * D.to(work)  # the epilogue runs in (B, L, D), where y is contiguous
    if z is not None:
        y = y * F.silu(rearrange(z.to(work), "b d l -> b l d").contiguous())
    y = rearrange(y.to(dtype_in), "b l d -> b d l")
    return (y, last) if return_last_state else y
