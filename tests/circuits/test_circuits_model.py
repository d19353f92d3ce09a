"""AttnOnlyTransformer: the loop reference, causality, hook names, TL-convention weights, the path expansion."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlreads.circuits import AttnOnlyConfig, AttnOnlyTransformer, path_expansion
from mlreads.circuits.reference import attn_only_forward_ref


def _model(seed=0, **kw):
    cfg = AttnOnlyConfig(**{"d_model": 16, "n_heads": 3, "d_head": 4, "d_vocab": 11, "n_ctx": 12, **kw})
    model = AttnOnlyTransformer(cfg).double()
    model.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():  # a larger init, so the patterns are far from uniform and the tests have teeth
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_(20)
            else:
                p.add_(torch.rand(p.shape, generator=torch.Generator().manual_seed(seed), dtype=p.dtype))
    return model


@settings(max_examples=15, deadline=None)
@given(
    n_layers=st.integers(0, 3),
    positional=st.sampled_from(["residual", "shortformer", "none"]),
    layernorm=st.booleans(),
    L=st.integers(1, 12),
    seed=st.integers(0, 50),
)
def test_forward_equals_loop_reference(n_layers, positional, layernorm, L, seed):
    model = _model(seed, n_layers=n_layers, positional=positional, layernorm=layernorm)
    tokens = torch.randint(0, 11, (2, L), generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(model(tokens), attn_only_forward_ref(model, tokens), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("positional", ["residual", "shortformer"])
def test_causal_and_gradients_flow(positional):
    model = _model(1, n_layers=2, positional=positional, layernorm=True)
    tokens = torch.randint(0, 11, (2, 10), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 11
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-3
    a.logsumexp(-1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_shortformer_positions_reach_only_queries_and_keys():
    """With shortformer positions the values and the residual stream carry tokens only: a 0-layer model ignores
    W_pos, and each head's z is a mix of token-only values x W_V."""
    model = _model(2, n_layers=1, positional="shortformer")
    tokens = torch.randint(0, 11, (1, 9), generator=torch.Generator().manual_seed(1))
    _, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(cache["blocks.0.hook_resid_pre"], model.W_E[tokens].detach())
    torch.testing.assert_close(cache["blocks.0.attn.hook_v"], torch.einsum("bld,hdp->blhp", model.W_E[tokens], model.W_V[0]).detach())
    q = torch.einsum("bld,hdp->blhp", model.W_E[tokens] + model.W_pos[:9], model.W_Q[0]).detach()
    torch.testing.assert_close(cache["blocks.0.attn.hook_q"], q)


def test_hook_names_and_weight_layout_follow_transformer_lens():
    model = _model(3, n_layers=2, layernorm=True)
    tokens = torch.randint(0, 11, (2, 7), generator=torch.Generator().manual_seed(0))
    logits, cache = model.run_with_cache(tokens)
    for name, shape in {
        "hook_embed": (2, 7, 16),
        "hook_pos_embed": (2, 7, 16),
        "blocks.1.hook_resid_pre": (2, 7, 16),
        "blocks.1.attn.hook_q": (2, 7, 3, 4),
        "blocks.1.attn.hook_k": (2, 7, 3, 4),
        "blocks.1.attn.hook_v": (2, 7, 3, 4),
        "blocks.1.attn.hook_pattern": (2, 3, 7, 7),
        "blocks.1.attn.hook_z": (2, 7, 3, 4),
        "blocks.1.hook_attn_out": (2, 7, 16),
        "blocks.1.hook_resid_post": (2, 7, 16),
        "blocks.0.ln1.hook_scale": (2, 7, 1),
    }.items():
        assert cache[name].shape == shape, name
    torch.testing.assert_close(cache["pattern", 1].sum(-1), torch.ones(2, 3, 7, dtype=torch.float64))
    assert model.W_E.shape == (11, 16) and model.W_U.shape == (16, 11) and model.W_pos.shape == (12, 16)
    assert model.W_Q.shape == model.W_K.shape == model.W_V.shape == (2, 3, 16, 4)
    assert model.W_O.shape == (2, 3, 4, 16)
    assert model.QK.shape == model.OV.shape == (2, 3, 16, 16)
    # z @ W_O summed over heads is the attention output: the per-head layout is the one the model computes with.
    torch.testing.assert_close(
        torch.einsum("blhp,hpd->bld", cache["blocks.1.attn.hook_z"], model.W_O[1].detach()), cache["blocks.1.hook_attn_out"]
    )
    # The resid after the last block, through ln_final and W_U, gives the logits.
    x = cache["blocks.1.hook_resid_post"]
    x = x - x.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * model.ln_final.w.detach()
    torch.testing.assert_close(x @ model.W_U.detach(), logits.detach())


def test_zero_layer_model_is_a_bigram_table():
    tokens = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(0))
    model = _model(4, n_layers=0, positional="residual")
    assert model.W_Q.shape == (0, 3, 16, 4)
    torch.testing.assert_close(model(tokens), (model.W_E @ model.W_U)[tokens] + (model.W_pos[:8] @ model.W_U))
    model = _model(4, n_layers=0, positional="shortformer")
    torch.testing.assert_close(model(tokens), (model.W_E @ model.W_U)[tokens])


def test_hooks_can_ablate_a_head():
    model = _model(5, n_layers=1)
    tokens = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))

    def kill_head_0(z, hook):
        z = z.clone()
        z[:, :, 0] = 0
        return z

    ablated = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_z", kill_head_0)])
    terms = path_expansion(model, tokens)
    expected = sum(t for path, t in terms.items() if path != ((0, 0),))
    torch.testing.assert_close(ablated, expected)


@pytest.mark.parametrize("n_layers,positional", [(1, "shortformer"), (2, "shortformer"), (2, "residual"), (3, "none")])
def test_path_expansion_sums_to_the_logits(n_layers, positional):
    """Elhage et al. 2021, "Path expansion": direct + per-head + virtual-head terms are the whole model."""
    model = _model(6, n_layers=n_layers, positional=positional)
    tokens = torch.randint(0, 11, (2, 10), generator=torch.Generator().manual_seed(0))
    terms = path_expansion(model, tokens)
    assert len(terms) == (model.cfg.n_heads + 1) ** n_layers
    assert ((0, 1), (1, 2)) in terms or n_layers == 1
    torch.testing.assert_close(sum(terms.values()), model(tokens), rtol=1e-9, atol=1e-9)
    # With shortformer positions the direct term is the bigram table W_E W_U, read off the weights alone.
    if positional == "shortformer":
        torch.testing.assert_close(terms[()], (model.W_E @ model.W_U)[tokens].detach())
