"""Drop-in compatibility of the Mamba API with its peers.

- `MambaLM.from_hf` against transformers' `MambaForCausalLM` on the configs transformers' own tests use
  (tests/models/mamba/test_modeling_mamba.py: hidden 32 with intermediate_size 32), every config field it reads,
  its refusals, and loading from a `save_pretrained` folder;
- half precision: every public entry point of a float16 / bfloat16 model (forward, step, last_logits, init_state)
  against the float32 model, also when handed a float32 state (transformers' `test_dtype_mismatch_handled_in_cache`);
- `selective_state_update` with mamba-ssm's semantics (tests/ops/triton/test_selective_state_update.py: in place,
  dt bias + softplus, D, z, heads and groups, state_batch_indices) against the reference scan's last step.
"""

import copy
import warnings

import pytest
import torch

from mlreads.mamba import (
    MambaConfig,
    MambaLM,
    selective_scan_ref,
    selective_state_update,
)


def _tokens(b, length, vocab, seed=1):
    return torch.randint(0, vocab, (b, length), generator=torch.Generator().manual_seed(seed))


# ----- from_hf ------------------------------------------------------------------------------------------------------

def _hf(seed=0, **overrides):
    transformers = pytest.importorskip("transformers")
    # transformers' MambaModelTester config: vocab 99, hidden 32, intermediate_size 32 (not expand * hidden), 2 layers
    kw = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, intermediate_size=32, hidden_act="silu",
              tie_word_embeddings=True, use_mambapy=False)
    kw.update(overrides)
    torch.manual_seed(seed)
    hf = transformers.MambaForCausalLM(transformers.MambaConfig(**kw)).eval()
    with torch.no_grad():  # move every parameter off its init (D = 1, zero biases) so each mapping is exercised
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return hf


def _hf_logits(hf, idx):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf(idx).logits


VARIANTS = {
    "transformers-test-config": {},
    "untied": dict(tie_word_embeddings=False),
    "biases-no-conv-bias": dict(use_bias=True, use_conv_bias=False),
    "sizes": dict(intermediate_size=40, state_size=8, conv_kernel=3, time_step_rank=3, layer_norm_epsilon=1e-2),
    "no-residual-in-fp32": dict(residual_in_fp32=False, expand=3, intermediate_size=96),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_from_hf_matches_transformers_logits(variant):
    hf = _hf(**VARIANTS[variant])
    ours = MambaLM.from_hf(hf).eval()
    c = hf.config
    assert ours.cfg.d_inner == c.intermediate_size and ours.cfg.rank == c.time_step_rank
    assert ours.cfg.tie_embeddings == c.tie_word_embeddings and ours.cfg.norm_eps == c.layer_norm_epsilon
    idx = _tokens(3, 11, c.vocab_size)
    want = _hf_logits(hf, idx)
    with torch.no_grad():
        got = ours(idx)
    assert want.std() > 0.1  # the comparison is not between two near-constant tensors
    assert float((got - want).abs().max()) <= 1e-5
    # and the step path agrees with transformers too (it shares no code with forward above the scan)
    with torch.no_grad():
        state, steps = ours.init_state(3), []
        for t in range(idx.shape[1]):
            logits, state = ours.step(idx[:, t], state)
            steps.append(logits)
    assert float((torch.stack(steps, 1) - want).abs().max()) <= 1e-5


def test_from_hf_accepts_the_bare_backbone():
    hf = _hf()
    idx = _tokens(2, 7, 99)
    with torch.no_grad():
        got = MambaLM.from_hf(hf.backbone).eval()(idx)
    assert float((got - _hf_logits(hf, idx)).abs().max()) <= 1e-5


def test_from_hf_does_not_touch_the_global_rng():
    hf = _hf()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    MambaLM.from_hf(hf)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_from_hf_loads_a_save_pretrained_folder(tmp_path):
    hf = _hf(tie_word_embeddings=False)
    hf.save_pretrained(tmp_path)
    ours = MambaLM.from_hf(str(tmp_path)).eval()
    idx = _tokens(2, 9, 99)
    with torch.no_grad():
        assert float((ours(idx) - _hf_logits(hf, idx)).abs().max()) <= 1e-5
    ours_path = MambaLM.from_hf(tmp_path)  # a pathlib.Path works too
    assert torch.equal(ours_path.lm_head.weight, hf.lm_head.weight)


@pytest.mark.parametrize("source", ["state-spaces/mamba-130m-hf", "no/such/folder"])
def test_from_hf_refuses_hub_names_in_one_line(source):
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="never downloads") as e:
        MambaLM.from_hf(source)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("field,value,match", [("hidden_act", "gelu", "hidden_act"), ("hidden_act", "relu", "SiLU")])
def test_from_hf_refuses_what_it_cannot_represent(field, value, match):
    hf = _hf(**{field: value})
    with pytest.raises(ValueError, match=match) as e:
        MambaLM.from_hf(hf)
    assert "\n" not in str(e.value)


def test_from_hf_refuses_a_tied_config_whose_head_is_not_tied():
    hf = _hf()
    hf.lm_head.weight = torch.nn.Parameter(hf.lm_head.weight.detach() + 1.0)  # untie by hand, config still says tied
    with pytest.raises(ValueError, match="tie_word_embeddings"):
        MambaLM.from_hf(hf)


# ----- half precision -----------------------------------------------------------------------------------------------

SMALL = MambaConfig(d_vocab=37, d_model=32, n_layers=2, d_state=8, chunk_size=5)
# max |logit difference| against float32 allowed per dtype; logits here are O(1) (max ~1.6). Measured: float16 1.3e-3,
# bfloat16 1.3e-2 (8 and 7 mantissa bits lose ~1e-3 and ~8e-3 relative per op).
HALF_TOL = {torch.float16: 5e-3, torch.bfloat16: 4e-2}


def _model32():
    torch.manual_seed(0)
    m = MambaLM(SMALL).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_entry_points_match_float32(dtype):
    m32 = _model32()
    half = copy.deepcopy(m32).to(dtype)
    idx = _tokens(2, 13, 37)
    tol = HALF_TOL[dtype]
    with torch.no_grad():
        ref, ref_state = m32(idx, return_state=True)
        out = half(idx)
        assert out.dtype == dtype
        assert float((out.float() - ref).abs().max()) <= tol
        # init_state: conv state in the model's dtype, SSM state in float32 (the scan's precision)
        state = half.init_state(2)
        assert [(c.dtype, s.dtype) for c, s in state] == [(dtype, torch.float32)] * SMALL.n_layers
        for given in (state, m32.init_state(2)):  # the model's own state, and a float32 one (transformers' test)
            s, steps = given, []
            for t in range(idx.shape[1]):
                logits, s = half.step(idx[:, t], s)
                steps.append(logits)
            assert float((torch.stack(steps, 1).float() - ref).abs().max()) <= tol
            for (c, h), (c32, h32) in zip(s, ref_state):
                assert c.dtype == dtype and h.dtype == torch.float32
                assert float((h - h32).abs().max()) <= tol * float(h32.abs().max())
        assert float((half.last_logits(idx, segment=4).float() - ref[:, -1]).abs().max()) <= tol
        # forward continuing from a float32 state (segmented evaluation) used to crash in conv1d
        first, s = half(idx[:, :6], state=m32.init_state(2), return_state=True)
        rest = half(idx[:, 6:], state=[(c.float(), h) for c, h in s])
        assert float((torch.cat([first, rest], 1).float() - ref).abs().max()) <= tol


def test_half_precision_matches_transformers_on_a_float32_cache():
    """transformers runs a float16 model on a float32 cache; ours gives the same logits within float16 tolerance."""
    hf = _hf()
    ours = MambaLM.from_hf(hf).eval().to(torch.float16)
    idx = _tokens(2, 8, 99)
    want = _hf_logits(hf, idx)  # float32 oracle
    with torch.no_grad():
        s = MambaLM.from_hf(hf).init_state(2)  # float32 state
        steps = []
        for t in range(idx.shape[1]):
            logits, s = ours.step(idx[:, t], s)
            steps.append(logits)
    assert float((torch.stack(steps, 1).float() - want).abs().max()) <= 3e-2 * float(want.abs().max())


# ----- selective_state_update ---------------------------------------------------------------------------------------

def _ssm_inputs(batch, d, n, length, seed, dtype):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g)

    # the distributions of mamba-ssm's test: dt_bias in [-4, -3), A in (-2, -1]
    raw = dict(u=r(batch, d, length), delta=r(batch, d, length), A=-torch.rand(d, n, generator=g) - 1.0,
               B=r(batch, n, length), C=r(batch, n, length), D=r(d), z=r(batch, d, length),
               delta_bias=torch.rand(d, generator=g) - 4.0)
    return {k: (v.to(dtype) if k in ("u", "delta", "z") else v) for k, v in raw.items()}


STEP_TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=2e-3, atol=2e-3),
            torch.bfloat16: dict(rtol=1.6e-2, atol=1.6e-2)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("has_z", [False, True])
def test_state_update_equals_the_scans_last_step(dtype, has_z):
    inp = _ssm_inputs(2, 24, 6, 9, seed=3, dtype=dtype)
    if not has_z:
        inp.pop("z")
    up32 = {k: v.float() for k, v in inp.items()}  # the same (rounded) numbers in float32: the oracle's inputs
    y_ref, last_ref = selective_scan_ref(**up32, delta_softplus=True, return_last_state=True)
    _, h_prev = selective_scan_ref(**{k: (v[..., :-1] if v.dim() == 3 else v) for k, v in up32.items()},
                                   delta_softplus=True, return_last_state=True)
    state = h_prev.clone()  # float32 state, half inputs: the state stays float32
    out = selective_state_update(state, inp["u"][..., -1], inp["delta"][..., -1], inp["A"], inp["B"][..., -1],
                                 inp["C"][..., -1], D=inp["D"], z=inp["z"][..., -1] if has_z else None,
                                 dt_bias=inp["delta_bias"], dt_softplus=True)
    assert out.dtype == dtype and state.dtype == torch.float32
    torch.testing.assert_close(state, last_ref, rtol=1e-5, atol=1e-5)  # computed in float32 throughout
    torch.testing.assert_close(out.float(), y_ref[..., -1], **STEP_TOL[dtype])
    # a state in the inputs' dtype is updated in place in that dtype (mamba-ssm's test keeps state in itype)
    state_lo = h_prev.to(dtype)
    selective_state_update(state_lo, inp["u"][..., -1], inp["delta"][..., -1], inp["A"], inp["B"][..., -1],
                           inp["C"][..., -1], D=inp["D"], dt_bias=inp["delta_bias"], dt_softplus=True)
    assert state_lo.dtype == dtype
    torch.testing.assert_close(state_lo.float(), last_ref, **STEP_TOL[dtype])


def test_state_update_without_bias_or_softplus_or_D():
    inp = _ssm_inputs(3, 8, 4, 5, seed=4, dtype=torch.float64)
    inp["delta"] = inp["delta"].abs()  # a valid Δ without softplus
    del inp["delta_bias"], inp["D"], inp["z"]
    y, last = selective_scan_ref(**inp, return_last_state=True)
    state = torch.zeros(3, 8, 4, dtype=torch.float64)
    ys = [selective_state_update(state, inp["u"][..., t], inp["delta"][..., t], inp["A"], inp["B"][..., t],
                                 inp["C"][..., t]) for t in range(5)]
    torch.testing.assert_close(torch.stack(ys, -1), y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state, last, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_groups", [1, 2, 4])
@pytest.mark.parametrize("tie_hdim", [False, True])
def test_state_update_with_heads_and_groups(n_groups, tie_hdim):
    """Mamba-2's layout (B, H, P, N) with G groups of B/C equals H separate Mamba-1 updates, head h reading group
    h // (H / G); `tie_hdim` gives dt, dt_bias, A, D one value per head (stride-0 views, as mamba-ssm's test)."""
    g = torch.Generator().manual_seed(5)
    batch, H, P, N = 2, 4, 3, 5

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    x, z, state = r(batch, H, P), r(batch, H, P), r(batch, H, P, N)
    if tie_hdim:
        dt, dt_bias = r(batch, H)[..., None].expand(batch, H, P), r(H)[:, None].expand(H, P) - 4
        A, D = (-r(H).abs() - 1)[:, None, None].expand(H, P, N), r(H)[:, None].expand(H, P)
    else:
        dt, dt_bias, A, D = r(batch, H, P), r(H, P) - 4, -r(H, P, N).abs() - 1, r(H, P)
    B, C = r(batch, n_groups, N), r(batch, n_groups, N)
    want_state, want = state.clone(), []
    for h in range(H):
        s = want_state[:, h].clone()
        grp = h // (H // n_groups)
        want.append(selective_state_update(s, x[:, h], dt[:, h], A[h], B[:, grp], C[:, grp], D[h], z[:, h],
                                           dt_bias[h], True))
        want_state[:, h] = s
    out = selective_state_update(state, x, dt, A, B, C, D=D, z=z, dt_bias=dt_bias, dt_softplus=True)
    torch.testing.assert_close(out, torch.stack(want, 1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state, want_state, rtol=1e-12, atol=1e-12)


def test_state_update_with_batch_indices():
    """state_batch_indices: row i reads and writes state[idx[i]]; every other entry of the state is left alone."""
    inp = _ssm_inputs(4, 6, 3, 1, seed=6, dtype=torch.float32)
    g = torch.Generator().manual_seed(7)
    pool = torch.randn(10, 6, 3, generator=g)
    idx = torch.tensor([7, 2, 9, 0], dtype=torch.int32)
    args = (inp["u"][..., 0], inp["delta"][..., 0], inp["A"], inp["B"][..., 0], inp["C"][..., 0])
    kw = dict(D=inp["D"], z=inp["z"][..., 0], dt_bias=inp["delta_bias"], dt_softplus=True)
    gathered = pool[idx.long()].clone()
    want = selective_state_update(gathered, *args, **kw)
    before = pool.clone()
    out = selective_state_update(pool, *args, **kw, state_batch_indices=idx)
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    torch.testing.assert_close(pool[idx.long()], gathered, rtol=0, atol=0)
    untouched = torch.ones(10, dtype=torch.bool)
    untouched[idx.long()] = False
    assert torch.equal(pool[untouched], before[untouched]) and not torch.equal(pool, before)


def test_state_update_rejects_mismatched_shapes():
    x = torch.zeros(2, 6)
    with pytest.raises(ValueError, match="state"):
        selective_state_update(torch.zeros(2, 5, 3), x, x, torch.zeros(6, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="groups"):
        selective_state_update(torch.zeros(2, 4, 1, 3), torch.zeros(2, 4, 1), torch.zeros(2, 4, 1),
                               torch.zeros(4, 1, 3), torch.zeros(2, 3, 3), torch.zeros(2, 3, 3))
