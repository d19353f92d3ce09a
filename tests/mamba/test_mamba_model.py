"""MambaLM: HF parity, step == forward, segmented == full, causality, hooks, the LTI variant."""

import pytest
import torch

from mlreads.mamba.model import MambaConfig, MambaLM, inverse_softplus

SMALL = MambaConfig(d_vocab=37, d_model=32, n_layers=2, d_state=8, chunk_size=5)


def _model(cfg=SMALL, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    m = MambaLM(cfg).to(dtype).eval()
    with torch.no_grad():  # move D, conv and dt weights off their init so the test exercises them
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m


def _tokens(b, length, vocab=37, seed=1):
    return torch.randint(0, vocab, (b, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("selective", [True, False])
def test_step_loop_equals_forward(selective):
    m = _model(MambaConfig(**{**SMALL.__dict__, "selective": selective}))
    idx = _tokens(2, 13)
    full = m(idx)
    state, outs = m.init_state(2), []
    for t in range(idx.shape[1]):
        logits, state = m.step(idx[:, t], state)
        outs.append(logits)
    torch.testing.assert_close(torch.stack(outs, 1), full, rtol=1e-9, atol=1e-10)
    _, last_state = m(idx, return_state=True)
    for (c1, s1), (c2, s2) in zip(state, last_state):
        torch.testing.assert_close(c1, c2, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(s1, s2, rtol=1e-9, atol=1e-10)


def test_segmented_evaluation_equals_full():
    m = _model()
    idx = _tokens(3, 29)
    torch.testing.assert_close(m.last_logits(idx, segment=6), m(idx)[:, -1], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(m.last_logits(idx, segment=1), m(idx)[:, -1], rtol=1e-9, atol=1e-10)


def test_causality():
    m = _model()
    idx = _tokens(1, 20)
    changed = idx.clone()
    changed[0, 11] = (changed[0, 11] + 1) % 37
    a, b = m(idx), m(changed)
    torch.testing.assert_close(a[:, :11], b[:, :11], rtol=0, atol=0)
    assert (a[:, 11:] - b[:, 11:]).abs().amax(-1).min() > 0


def test_official_init():
    cfg = MambaConfig(d_model=64, d_state=16, n_layers=3)
    m = MambaLM(cfg)
    mixer = m.blocks[0].mixer
    torch.testing.assert_close(-torch.exp(mixer.A_log[5]), -torch.arange(1.0, 17.0))
    dt = torch.nn.functional.softplus(mixer.dt_proj.bias.detach())
    assert float(dt.min()) >= 1e-3 * 0.999 and float(dt.max()) <= 1e-1 * 1.001
    assert float(dt.max()) / float(dt.min()) > 20  # spread log-uniformly over the range
    torch.testing.assert_close(torch.nn.functional.softplus(inverse_softplus(torch.tensor([1e-3, 0.1]))),
                               torch.tensor([1e-3, 0.1]))
    assert mixer.x_proj.out_features == cfg.rank + 2 * cfg.d_state and cfg.rank == 4
    # tied unembedding: the logits are the final normed residual times the embedding matrix, and nothing else
    idx = torch.arange(10)[None]  # (1, 10)
    logits, cache = m.run_with_cache(idx)
    torch.testing.assert_close(logits, m.norm_f(cache["blocks.2.hook_resid_post"]) @ m.embedding.weight.T,
                               rtol=0, atol=0)


def test_hooks_and_cache_names():
    m = _model()
    idx = _tokens(2, 9)
    logits, cache = m.run_with_cache(idx)
    torch.testing.assert_close(logits, m(idx), rtol=0, atol=0)
    E, N = SMALL.d_inner, SMALL.d_state
    assert cache["blocks.1.mixer.hook_delta"].shape == (2, 9, E)
    assert cache["blocks.0.mixer.hook_B"].shape == (2, 9, N) and cache["blocks.0.mixer.hook_C"].shape == (2, 9, N)
    assert cache["blocks.0.mixer.hook_ssm_state"].shape == (2, E, N)
    assert bool((cache["blocks.0.mixer.hook_delta"] > 0).all())
    torch.testing.assert_close(cache["blocks.1.hook_resid_pre"], cache["blocks.0.hook_resid_post"])
    # the selection mechanism: Δ depends on the input token; in the LTI variant it does not
    d = cache["blocks.0.mixer.hook_delta"][0]
    assert float((d[1:] - d[:-1]).abs().max()) > 1e-4
    lti = _model(MambaConfig(**{**SMALL.__dict__, "selective": False}))
    _, c2 = lti.run_with_cache(idx)
    d2 = c2["blocks.0.mixer.hook_delta"][0]
    torch.testing.assert_close(d2[1:], d2[:-1], rtol=0, atol=0)


def test_zero_ablation_through_hooks_gives_the_model_without_that_mixer():
    """Zeroing block 0's gated SSM output y leaves out_proj(0) (zero without biases): the residual stream after
    block 0 is the embedding itself, so the logits are those of block 1 alone on the embedding."""
    m = _model()
    idx = _tokens(1, 9)
    out = m.run_with_hooks(idx, fwd_hooks=[("blocks.0.mixer.hook_y", lambda a, h: torch.zeros_like(a))])
    with torch.no_grad():
        h, _ = m.blocks[1](m.embedding(idx))  # (1, 9, D): block 0 skipped
        want = torch.nn.functional.linear(m.norm_f(h), m.embedding.weight)  # (1, 9, V)
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(out, m(idx), rtol=1e-3, atol=1e-3)  # and block 0 does matter


def test_from_hf_parity():
    transformers = pytest.importorskip("transformers")
    import warnings

    torch.manual_seed(0)
    hf_cfg = transformers.MambaConfig(d_vocab=50, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2,
                                      conv_kernel=4, use_mambapy=False)
    hf = transformers.MambaForCausalLM(hf_cfg).eval()
    with torch.no_grad():  # perturb every parameter so no init symmetry hides a mismatch
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours = MambaLM.from_hf(hf).eval()
    idx = _tokens(2, 23, vocab=50)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = hf(idx).logits
        mine = ours(idx)
    assert float((mine - theirs).abs().max()) <= 1e-5, float((mine - theirs).abs().max())
    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def test_clean_noise_mask_leaves_out_the_conv_window_after_data():
    from mlreads.mamba.exp_common import clean_noise_mask

    data = torch.zeros(1, 10, dtype=torch.bool)
    data[0, 2] = True
    expected = torch.tensor([[1, 1, 0, 0, 0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    torch.testing.assert_close(clean_noise_mask(data, d_conv=4), expected, rtol=0, atol=0)
