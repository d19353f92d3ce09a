"""The selective-scan paths against the reference loop, gradients included, and against the oracles' scans."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlreads.mamba.reference import selective_scan_ref
from mlreads.mamba.scan import ChunkedScan, selective_scan
from mlreads.mamba.step import scan_step

TOL = dict(rtol=1e-9, atol=1e-10)


def _inputs(batch, d, n, length, seed, dtype=torch.float64, b_mode="shared", c_mode="shared", groups=1,
            complex_a=False):
    """Random scan inputs. B/C modes: "shared" (B, N, L), "grouped" (B, G, N, L), "const" (D, N); with complex A a
    time-varying B/C is real with (re, im) pairs along L (mamba-ssm's layout), a constant one complex."""
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=dtype)

    def bc(mode):
        n_l = 2 * length if complex_a else length
        if mode == "const":
            return torch.complex(r(d, n), r(d, n)) if complex_a else r(d, n)
        return r(batch, groups, n, n_l) if mode == "grouped" else r(batch, n, n_l)

    A = -torch.rand(d, n, generator=g, dtype=dtype) - 0.1
    state = r(batch, d, n)
    if complex_a:  # S4D-Lin-like: decay plus a rotation
        A, state = torch.complex(A, r(d, n) * 3), torch.complex(state, r(batch, d, n))
    return dict(
        u=r(batch, d, length), delta=r(batch, d, length) * 0.5, A=A, B=bc(b_mode), C=bc(c_mode), D=r(d),
        z=r(batch, d, length), delta_bias=r(d) * 0.3, initial_state=state,
    )


def _run(impl, inp, use, softplus, chunk):
    leaves = {k: v.clone().requires_grad_() for k, v in inp.items() if k in use}
    y, last = selective_scan(**leaves, delta_softplus=softplus, return_last_state=True, impl=impl, chunk_size=chunk)
    # a loss that weighs every output and the last state differently
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    ((y * w).sum() + (last.abs() ** 2).sum()).backward()
    return y.detach(), last.detach(), {k: v.grad for k, v in leaves.items()}


REQUIRED = ("u", "delta", "A", "B", "C")
OPTIONAL = ("D", "z", "delta_bias", "initial_state")


FAST_IMPLS = ["fused", "chunked", "loop"]
BC_MODES = st.sampled_from(["shared", "grouped", "const"])


@settings(max_examples=60, deadline=None)
@given(batch=st.integers(1, 2), groups=st.integers(1, 3), per_group=st.integers(1, 2), n=st.integers(1, 4),
       length=st.integers(1, 19), chunk=st.integers(1, 8), flags=st.lists(st.booleans(), min_size=4, max_size=4),
       softplus=st.booleans(), impl=st.sampled_from(FAST_IMPLS), b_mode=BC_MODES, c_mode=BC_MODES,
       complex_a=st.booleans(), seed=st.integers(0, 10_000))
def test_fast_paths_match_reference(batch, groups, per_group, n, length, chunk, flags, softplus, impl, b_mode,
                                    c_mode, complex_a, seed):
    """Every path, every B/C layout (shared, grouped with G | D, constant), real and complex A: values, last state and
    the gradient of every input against the reference loop, in float64."""
    d = groups * per_group
    inp = _inputs(batch, d, n, length, seed, b_mode=b_mode, c_mode=c_mode, groups=groups, complex_a=complex_a)
    use = REQUIRED + tuple(k for k, f in zip(OPTIONAL, flags) if f)
    y_r, last_r, g_r = _run("ref", inp, use, softplus, chunk)
    y, last, grads = _run(impl, inp, use, softplus, chunk)
    torch.testing.assert_close(y, y_r, **TOL)
    torch.testing.assert_close(last, last_r, **TOL)
    for k in use:
        torch.testing.assert_close(grads[k], g_r[k], **TOL, msg=lambda m, k=k: f"grad {k}: {m}")


def test_chunked_function_gradcheck():
    inp = _inputs(2, 3, 2, 7, seed=1)
    t = lambda x: x.transpose(1, 2).contiguous()  # noqa: E731  (B, X, L) -> (B, L, X)
    args = [t(inp["u"]), t(inp["delta"]).abs(), inp["A"], t(inp["B"])[:, :, None], t(inp["C"])[:, :, None],
            inp["initial_state"]]  # B, C as (B, L, G=1, N)
    args = [a.detach().clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda *a: ChunkedScan.apply(*a, 3), args)
    grouped = _inputs(1, 4, 2, 5, seed=2, b_mode="grouped", c_mode="const", groups=2)
    args = [t(grouped["u"]), t(grouped["delta"]).abs(), grouped["A"], grouped["B"].permute(0, 3, 1, 2).contiguous(),
            grouped["C"], None]
    args = [a if a is None else a.detach().clone().requires_grad_() for a in args]
    assert torch.autograd.gradcheck(lambda *a: ChunkedScan.apply(*a, 2), args)


def test_group_assignment_is_channel_over_group_size():
    """Channel d reads group d // (D / G): with B zero outside group 1, exactly the channels D/G..2D/G-1 respond."""
    inp = _inputs(1, 6, 2, 5, seed=8, b_mode="grouped", groups=3)
    inp["B"][:, [0, 2]] = 0
    inp.pop("initial_state")
    for impl in FAST_IMPLS + ["ref"]:
        y = selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["B"], impl=impl)
        assert (y[0, 2:4].abs() > 0).all() and (y[0, [0, 1, 4, 5]] == 0).all(), impl


def test_bad_groups_and_shapes_are_refused_in_one_line():
    inp = _inputs(1, 4, 2, 5, seed=9, b_mode="grouped", groups=3)  # 3 does not divide 4
    with pytest.raises(ValueError, match="G dividing D = 4"):
        selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["B"])
    with pytest.raises(ValueError, match=r"constant B must be \(D, N\)"):
        selective_scan(inp["u"], inp["delta"], inp["A"], inp["A"].T, inp["B"])


def test_float32_matches_reference_and_returns_input_dtype():
    inp = {k: v.float() for k, v in _inputs(2, 4, 3, 33, seed=2).items()}
    y = selective_scan(**inp, delta_softplus=True)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, selective_scan_ref(**inp, delta_softplus=True), rtol=1e-5, atol=1e-5)


def test_recurrent_step_matches_scan():
    """Eleven single steps (the generation path) equal the reference scan over the whole sequence."""
    inp = _inputs(2, 3, 4, 11, seed=3)
    y_full, last = selective_scan_ref(**inp, delta_softplus=True, return_last_state=True)
    state, ys = inp["initial_state"], []
    for t in range(11):
        y_t, state = scan_step(state, inp["u"][..., t], inp["delta"][..., t], inp["A"], inp["B"][..., t],
                                            inp["C"][..., t], inp["D"], inp["z"][..., t], inp["delta_bias"], True)
        ys.append(y_t)
    torch.testing.assert_close(torch.stack(ys, -1), y_full, **TOL)
    torch.testing.assert_close(state, last, **TOL)


def test_state_carries_over_a_split():
    """Scanning [0, L) equals scanning [0, k) then [k, L) from the returned state."""
    inp = _inputs(1, 2, 3, 10, seed=4)
    inp.pop("initial_state")
    y, last = selective_scan(**inp, return_last_state=True)
    first = {k: (v[..., :4] if v.dim() == 3 else v) for k, v in inp.items()}
    second = {k: (v[..., 4:] if v.dim() == 3 else v) for k, v in inp.items()}
    y1, h1 = selective_scan(**first, return_last_state=True)
    y2, h2 = selective_scan(**second, return_last_state=True, initial_state=h1)
    torch.testing.assert_close(torch.cat([y1, y2], -1), y, **TOL)
    torch.testing.assert_close(h2, last, **TOL)


def test_matches_transformers_fallback_scan():
    mm = pytest.importorskip("transformers.models.mamba.modeling_mamba")
    # the fallback casts B̄x to float32 (`.float()`), so compare in float32
    inp = {k: v.float() for k, v in _inputs(2, 4, 3, 17, seed=5).items()}
    inp.pop("initial_state")
    ours, ours_last = selective_scan(**inp, delta_softplus=True, return_last_state=True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, theirs_last = mm.mamba_selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], D=inp["D"],
                                                      z=inp["z"], delta_bias=inp["delta_bias"], delta_softplus=True,
                                                      return_last_state=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_last, theirs_last, rtol=1e-5, atol=1e-6)


def test_matches_mambapy_pscan():
    pscan = pytest.importorskip("mambapy.pscan").pscan
    inp = _inputs(2, 4, 3, 16, seed=6)
    delta = torch.nn.functional.softplus(inp["delta"])
    ours = selective_scan(inp["u"], delta, inp["A"], inp["B"], inp["C"], D=inp["D"])
    # mambapy's layout is (B, L, D); it scans Ā, B̄x of shape (B, L, D, N)
    x, dt = inp["u"].transpose(1, 2), delta.transpose(1, 2)
    dA = torch.exp(dt[..., None] * inp["A"])
    bx = dt[..., None] * inp["B"].transpose(1, 2)[:, :, None, :] * x[..., None]
    hs = pscan(dA, bx)
    theirs = (hs @ inp["C"].transpose(1, 2)[..., None])[..., 0] + inp["D"] * x
    torch.testing.assert_close(ours, theirs.transpose(1, 2), rtol=1e-8, atol=1e-9)


def test_chunked_path_saves_no_expanded_state():
    """For backward, the chunked scan keeps inputs and one (B, D, N) state per chunk, never a (B, L, D, N) tensor;
    the unbind loop (autograd) does keep O(L) states of size (B, D, N), and the test tells the two apart."""
    batch, d, n, length, chunk = 2, 8, 32, 64, 16
    inp = {k: v.float() for k, v in _inputs(batch, d, n, length, seed=7).items()}

    def saved_numel(impl):
        sizes = []

        def pack(t):
            sizes.append(t.numel())
            return t

        leaves = {k: v.clone().requires_grad_() for k, v in inp.items()}
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            selective_scan(**leaves, delta_softplus=True, impl=impl, chunk_size=chunk)
        return sizes

    expanded = batch * length * d * n
    chunked = saved_numel("chunked")
    assert max(chunked) <= batch * max(d, n) * length and sum(chunked) < expanded  # inputs-sized at most
    assert sum(saved_numel("loop")) >= 2 * expanded


@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_chunked_path_takes_strided_inputs(chunk):
    """The model passes (B, D, L) views of (B, L, D) tensors; results, gradients and the output layout follow."""
    inp = _inputs(2, 5, 3, 11, seed=3)
    strided = {k: v.transpose(1, 2).contiguous().transpose(1, 2) if v.dim() == 3 and k != "initial_state" else v
               for k, v in inp.items()}
    assert not strided["u"].is_contiguous()
    y, last, grads = _run("chunked", strided, REQUIRED + OPTIONAL, True, chunk)
    y_r, last_r, g_r = _run("ref", inp, REQUIRED + OPTIONAL, True, chunk)
    torch.testing.assert_close(y, y_r, **TOL)
    torch.testing.assert_close(last, last_r, **TOL)
    for k in g_r:
        torch.testing.assert_close(grads[k], g_r[k], **TOL, msg=lambda m, k=k: f"grad {k}: {m}")
    y = selective_scan(strided["u"], strided["delta"], inp["A"], strided["B"], strided["C"], impl="chunked",
                       chunk_size=chunk)
    assert y.stride() == strided["u"].stride()  # (B, L, D) underneath: the model's rearrange back is free
