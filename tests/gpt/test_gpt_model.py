"""Properties of the GPT decoder: causality, KV cache, dropout, hook paths, cache names."""

import pytest
import torch
from torch.testing import assert_close

from mlreads.gpt import GPT, GPTConfig

CFG = GPTConfig(d_vocab=31, n_ctx=16, n_layers=2, n_heads=4, d_model=32, dropout=0.0)


def make(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    model = GPT(cfg).eval()
    # GPT-2's init (std 0.02) gives near-uniform logits; scale weights up so every check below is sensitive.
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.mul_(8.0)
    return model


def tokens(B, L, seed=0, V=CFG.d_vocab):
    return torch.randint(0, V, (B, L), generator=torch.Generator().manual_seed(seed))


def test_config_rejects_bad_heads_and_gives_sizes():
    with pytest.raises(ValueError):
        GPTConfig(d_model=30, n_heads=4)
    assert CFG.d_head == 8 and CFG.d_mlp == 128


def test_logits_for_every_position():
    model = make()
    out = model(tokens(2, 16))
    assert out.shape == (2, 16, CFG.d_vocab)
    # the last position's logits equal those of a forward on the prefix alone: nothing is dropped or shifted
    assert_close(model(tokens(2, 16)[:, :5])[:, -1], out[:, 4], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t", [0, 5, 15])
def test_causality(t):
    model = make()
    idx = tokens(2, 16)
    changed = idx.clone()
    changed[:, t] = (changed[:, t] + 1) % CFG.d_vocab
    a, b = model(idx), model(changed)
    assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-6)
    assert (a[:, t] - b[:, t]).abs().max() > 1e-3  # the changed position itself does move


def test_too_long_input_raises():
    with pytest.raises(ValueError, match="n_ctx"):
        make()(tokens(1, 17))


@pytest.mark.parametrize("n", [6, 30])  # 30 new tokens overflow n_ctx=16: the cache must be rebuilt
def test_cached_generate_equals_greedy_loop_over_forward(n):
    """The KV cache through the public API: greedy `generate(use_cache=True)` picks, at every step, the argmax of the
    full forward pass over the (cropped) context, i.e. a cached step's logits rank tokens as the full forward does."""
    model = make()
    prompt = tokens(3, 4)
    idx = prompt
    for _ in range(n):
        logits = model(idx[:, -model.cfg.n_ctx :])[:, -1]  # (B, V), no cache
        idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(model.generate(prompt, n, temperature=0, use_cache=True), idx)


@pytest.mark.parametrize("n", [6, 30])  # 30 new tokens overflow n_ctx=16: the cache must be rebuilt
def test_generate_with_cache_equals_without_greedy(n):
    model = make()
    prompt = tokens(3, 4)
    a = model.generate(prompt, n, temperature=0, use_cache=True)
    b = model.generate(prompt, n, temperature=0, use_cache=False)
    assert a.shape == (3, 4 + n)
    assert torch.equal(a[:, :4], prompt)
    assert torch.equal(a, b)


@pytest.mark.parametrize("top_k", [None, 5])
def test_generate_with_cache_equals_without_sampling(top_k):
    model = make()
    prompt = tokens(3, 4)
    a = model.generate(prompt, 25, temperature=0.8, top_k=top_k, generator=torch.Generator().manual_seed(7))
    b = model.generate(
        prompt, 25, temperature=0.8, top_k=top_k, generator=torch.Generator().manual_seed(7), use_cache=False
    )
    assert torch.equal(a, b)
    c = model.generate(prompt, 25, temperature=0.8, top_k=top_k, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(a, c)  # the generator, not the global RNG, drives sampling


def test_top_k_one_is_greedy():
    model = make()
    prompt = tokens(2, 3)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(model.generate(prompt, 10, top_k=1, generator=g), model.generate(prompt, 10, temperature=0))


def test_dropout_identity_in_eval_and_active_in_train():
    model = make(GPTConfig(d_vocab=31, n_ctx=16, n_layers=2, n_heads=4, d_model=32, dropout=0.3))
    idx = tokens(2, 16)
    model.eval()
    assert torch.equal(model(idx), model(idx))
    no_dropout = make()  # same seed, same weights, dropout 0
    no_dropout.load_state_dict(model.state_dict())
    assert_close(model(idx), no_dropout(idx), rtol=0, atol=0)
    model.train()
    a, b = model(idx), model(idx)
    assert (a - b).abs().max() > 1e-3
    for block in model.blocks:  # the explicit pattern path applies dropout too
        block.attn.explicit = True
    assert (model(idx) - model(idx)).abs().max() > 1e-3


def test_pattern_hook_path_equals_sdpa_path_with_grads():
    model = make()
    idx = tokens(2, 16)
    fast = model(idx)
    fast.square().mean().backward()
    fast_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    seen = []
    slow = model.run_with_hooks(idx, fwd_hooks=[("blocks.1.attn.hook_pattern", lambda a, h: seen.append(a))])
    assert len(seen) == 1 and seen[0].shape == (2, 4, 16, 16)
    assert_close(slow, fast, rtol=1e-5, atol=1e-5)
    model.zero_grad()
    for block in model.blocks:
        block.attn.explicit = True
    explicit = model(idx)
    assert_close(explicit, fast, rtol=1e-5, atol=1e-5)
    explicit.square().mean().backward()
    for n, p in model.named_parameters():
        assert_close(p.grad, fast_grads[n], rtol=1e-4, atol=1e-5)


def test_pattern_hook_can_edit_the_pattern():
    model = make()
    idx = tokens(1, 10)
    uniform = torch.tril(torch.ones(10, 10))
    uniform = uniform / uniform.sum(-1, keepdim=True)
    _, cache = model.run_with_cache(
        idx, names_filter=lambda n: n.endswith("hook_pattern") or n.endswith("hook_z")
    )
    patched = model.run_with_hooks(
        idx, fwd_hooks=[("blocks.0.attn.hook_pattern", lambda a, h: uniform.expand_as(a))]
    )
    assert (patched - model(idx)).abs().max() > 1e-3
    # a causal pattern: rows sum to 1 and nothing above the diagonal
    pat = cache["blocks.0.attn.hook_pattern"]
    assert_close(pat.sum(-1), torch.ones(1, 4, 10), rtol=0, atol=1e-5)
    assert pat.triu(1).abs().max() == 0


def test_run_with_cache_names_and_shapes():
    model = make()
    B, L, D, H, P, V = 2, 16, 32, 4, 8, CFG.d_vocab
    logits, cache = model.run_with_cache(tokens(B, L))
    assert_close(logits, model(tokens(B, L)), rtol=1e-5, atol=1e-5)
    expected = {"hook_embed": (B, L, D), "hook_pos_embed": (B, L, D), "ln_final.hook_normalized": (B, L, D)}
    for l in range(CFG.n_layers):
        for name in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out"):
            expected[f"blocks.{l}.{name}"] = (B, L, D)
        for name in ("hook_q", "hook_k", "hook_v", "hook_z"):
            expected[f"blocks.{l}.attn.{name}"] = (B, L, H, P)
        expected[f"blocks.{l}.attn.hook_pattern"] = (B, H, L, L)
        expected[f"blocks.{l}.mlp.hook_pre"] = (B, L, 4 * D)
        expected[f"blocks.{l}.mlp.hook_post"] = (B, L, 4 * D)
    for name, shape in expected.items():
        assert tuple(cache[name].shape) == shape, name
    # values, not just shapes: the residual stream adds up, and the final norm feeds the unembedding
    assert_close(
        cache["blocks.0.hook_resid_pre"], cache["hook_embed"] + cache["hook_pos_embed"], rtol=0, atol=1e-6
    )
    assert_close(
        cache["blocks.1.hook_resid_post"],
        cache["blocks.1.hook_resid_mid"] + cache["blocks.1.hook_mlp_out"],
        rtol=0,
        atol=1e-5,
    )
    assert_close(cache["ln_final.hook_normalized"] @ model.W_U, logits, rtol=1e-5, atol=1e-5)
    assert_close(cache["pattern", 1], cache["blocks.1.attn.hook_pattern"], rtol=0, atol=0)


def test_no_bias_variant_has_no_biases():
    cfg = GPTConfig(d_vocab=31, n_ctx=16, n_layers=1, n_heads=2, d_model=16, bias=False)
    model = GPT(cfg)
    assert not any(n.endswith("bias") for n, _ in model.named_parameters())
    assert model.num_params() == 31 * 16 + 16 * 16 + (3 * 16 * 16 + 16 * 16 + 2 * 16 * 64) + 3 * 16
    assert model.num_params(non_embedding=True) == model.num_params() - 31 * 16 - 16 * 16
