"""Drop-in compatibility of GPT with transformers' GPT-2 and nanoGPT's call shapes.

Read from transformers' tests/models/gpt2/test_modeling_gpt2.py for what it checks: the config variants
(n_inner, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn, activation functions), batched generation with
left padding, save_pretrained round trips. Every parity check is against a randomly initialised GPT2LMHeadModel with
max |logit difference| <= 1e-5 in float32.
"""

import pytest
import torch

from mlreads.core.nn.activations import ACTIVATIONS
from mlreads.gpt import GPT, GPTConfig
from mlreads.gpt.attention import attention_pattern

transformers = pytest.importorskip("transformers")

V = 53


def hf_gpt2(seed=0, attn_implementation=None, **overrides):
    kw = dict(vocab_size=V, n_positions=24, n_embd=32, n_layer=3, n_head=4, activation_function="gelu_new",
              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0, pad_token_id=0,
              # well above GPT-2's 0.02, so activations reach their nonlinear range and a wrong mapping shows
              initializer_range=0.2)
    kw.update(overrides)
    cfg = transformers.GPT2Config(**kw)
    if attn_implementation:
        cfg._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(cfg).eval()


def tokens(b, length, seed=1):
    return torch.randint(1, V, (b, length), generator=torch.Generator().manual_seed(seed))


def assert_parity(hf, ours, idx, **kw):
    with torch.no_grad():
        want = hf(idx, **kw).logits
        got = ours(idx)
    assert want.std() > 0.5  # logits large enough for a wrong mapping to show far above the tolerance
    assert float((got - want).abs().max()) <= 1e-5


VARIANTS = {
    "n_inner": dict(n_inner=40),
    "scale_attn_by_inverse_layer_idx": dict(scale_attn_by_inverse_layer_idx=True),
    "no_scale_attn_weights": dict(scale_attn_weights=False),
    "reorder_and_upcast_attn": dict(reorder_and_upcast_attn=True),
    "all_at_once": dict(n_inner=72, scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True,
                        activation_function="quick_gelu"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_config_variants_match_hf(variant):
    # eager attention: transformers applies reorder_and_upcast_attn on its eager path only
    hf = hf_gpt2(attn_implementation="eager", **VARIANTS[variant])
    ours = GPT.from_hf(hf).eval()
    c = hf.config
    assert ours.cfg.d_mlp == (c.n_inner or 4 * c.n_embd)
    assert ours.cfg.attn_scale_by_inverse_layer == c.scale_attn_by_inverse_layer_idx
    assert ours.cfg.upcast_attn == c.reorder_and_upcast_attn and ours.cfg.scale_attn == c.scale_attn_weights
    assert_parity(hf, ours, tokens(3, 24))


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_supported_activation_matches_hf(act):
    hf = hf_gpt2(activation_function=act)
    ours = GPT.from_hf(hf).eval()
    assert_parity(hf, ours, tokens(2, 16))


@pytest.mark.parametrize("act", ["prelu", "xielu", "no_such_activation"])
def test_refused_activations_say_so_in_one_line(act):
    hf = hf_gpt2()
    hf.config.activation_function = act
    with pytest.raises(ValueError, match="activation_function") as e:
        GPT.from_hf(hf)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("field,value,match", [
    ("add_cross_attention", True, "cross"), ("tie_word_embeddings", False, "tie_word_embeddings"),
    ("attn_pdrop", 0.1, "dropout"),
])
def test_from_hf_refuses_what_it_cannot_represent(field, value, match):
    hf = hf_gpt2()
    setattr(hf.config, field, value)
    with pytest.raises(ValueError, match=match) as e:
        GPT.from_hf(hf)
    assert "\n" not in str(e.value)


def test_upcast_attn_in_bfloat16_matches_hf():
    """A bfloat16 model with reorder_and_upcast_attn (HF's eager path) loads and matches HF within bfloat16 rounding
    (measured: max gap 1.0-1.3% of the largest logit over 3 seeds; the float32 model is as far from either)."""
    hf = hf_gpt2(attn_implementation="eager", reorder_and_upcast_attn=True).to(torch.bfloat16)
    ours = GPT.from_hf(hf).eval()
    assert ours.wte.weight.dtype == torch.bfloat16 and ours.cfg.upcast_attn
    idx = tokens(2, 24)
    with torch.no_grad():
        want, got = hf(idx).logits.float(), ours(idx).float()
    assert float((got - want).abs().max()) <= 0.02 * float(want.abs().max())


@pytest.mark.parametrize("upcast", [True, False])
def test_upcast_attn_takes_the_softmax_in_float32(upcast):
    """With upcast_attn the pattern of a bfloat16 model is the float32 softmax of its bfloat16 scores, rounded once;
    without it, the softmax runs in bfloat16 and differs (so this test can tell the two apart)."""
    cfg = GPTConfig(d_vocab=V, n_ctx=24, n_layers=1, n_heads=4, d_model=32, upcast_attn=upcast)
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    with torch.no_grad():  # sharp patterns, where bfloat16 and float32 softmaxes round differently
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(10.0)
    model = model.to(torch.bfloat16)
    _, cache = model.run_with_cache(tokens(2, 24))
    q, k = (cache[f"blocks.0.attn.hook_{n}"].transpose(1, 2) for n in "qk")  # (B, H, L, P), bfloat16
    fp32 = attention_pattern(q.float(), k.float(), scale=cfg.attn_scale(0)).to(torch.bfloat16)
    assert torch.equal(cache["blocks.0.attn.hook_pattern"], fp32) == upcast


def test_save_pretrained_folder_round_trip(tmp_path):
    hf = hf_gpt2(n_inner=48, activation_function="relu")
    hf.save_pretrained(tmp_path)
    ours = GPT.from_hf(str(tmp_path)).eval()
    assert ours.cfg.d_mlp == 48 and ours.cfg.act_fn == "relu"
    assert_parity(hf, ours, tokens(2, 20))
    GPT.from_hf(tmp_path)  # a pathlib.Path works too


@pytest.mark.parametrize("name", ["gpt2", "openai-community/gpt2", "missing/local/dir"])
def test_hub_names_are_refused_in_one_line(name):
    with pytest.raises(ValueError, match="never downloads") as e:
        GPT.from_hf(name)
    assert "\n" not in str(e.value)


def test_from_hf_does_not_touch_the_global_rng():
    hf = hf_gpt2()
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    GPT.from_hf(hf)
    assert torch.equal(torch.random.get_rng_state(), before)


# ----- attention mask: left-padded batches ----------------------------------------------------------------------------

PROMPTS = [[5, 9, 2, 7, 11, 3, 8], [4, 6], [12, 1, 10, 13]]


def left_pad(prompts, pad=0):
    L = max(map(len, prompts))
    idx = torch.tensor([[pad] * (L - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])
    return idx, mask


def test_masked_forward_matches_hf_and_the_unpadded_rows():
    hf = hf_gpt2()
    ours = GPT.from_hf(hf).eval()
    idx, mask = left_pad(PROMPTS)
    pos = (mask.cumsum(-1) - 1).clamp_min(0)  # transformers' generation rule, the one our forward applies
    with torch.no_grad():
        got = ours(idx, attention_mask=mask)
        want = hf(idx, attention_mask=mask, position_ids=pos).logits
        explicit = ours(idx, attention_mask=mask, position_ids=pos)
        real = mask.bool()
        assert float((got - want)[real].abs().max()) <= 1e-5
        torch.testing.assert_close(explicit, got, rtol=0, atol=0)
        for row, p in enumerate(PROMPTS):  # each row equals the same prompt run alone
            alone = ours(torch.tensor([p]))[0]
            assert float((got[row, -len(p):] - alone).abs().max()) <= 1e-5
        assert torch.isfinite(got).all()  # padding queries attend to themselves, so no row is all -inf
    # the explicit (hookable) attention path applies the same mask
    for block in ours.blocks:
        block.attn.explicit = True
    with torch.no_grad():
        torch.testing.assert_close(ours(idx, attention_mask=mask)[real], got[real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_cache", [True, False])
def test_batched_greedy_generation_equals_one_at_a_time(use_cache):
    ours = GPT.from_hf(hf_gpt2()).eval()
    idx, mask = left_pad(PROMPTS)
    n = 24 - idx.shape[1] + 3  # runs past n_ctx = 24, so the crop-and-rebuild path is exercised too
    batched = ours.generate(idx, max_new_tokens=n, temperature=0, attention_mask=mask, use_cache=use_cache)
    for row, p in enumerate(PROMPTS):
        alone = ours.generate(torch.tensor([p]), max_new_tokens=n, temperature=0, use_cache=use_cache)[0]
        assert batched[row, -n:].tolist() == alone[-n:].tolist()
    assert len({tuple(r) for r in batched[:, -n:].tolist()}) > 1  # the rows differ: the check is not vacuous


def test_greedy_generation_matches_hf_generate():
    hf = hf_gpt2()
    ours = GPT.from_hf(hf).eval()
    idx, mask = left_pad(PROMPTS)
    n = 6
    with torch.no_grad():
        want = hf.generate(idx, attention_mask=mask, max_new_tokens=n, do_sample=False, pad_token_id=0)
    got = ours.generate(idx, max_new_tokens=n, do_sample=False, attention_mask=mask)
    assert got.tolist() == want.tolist()


def test_generate_keyword_and_positional_forms_agree():
    model = GPT(GPTConfig(d_vocab=V, n_ctx=24, n_layers=2, n_heads=4, d_model=32)).eval()
    idx = tokens(2, 5)

    def g():
        return torch.Generator().manual_seed(3)

    a = model.generate(idx, 8, 0.9, 5, g())
    b = model.generate(idx, max_new_tokens=8, temperature=0.9, top_k=5, generator=g())
    assert torch.equal(a, b) and a.shape == (2, 13)
    greedy = model.generate(idx, max_new_tokens=8, temperature=0)
    assert torch.equal(model.generate(idx, max_new_tokens=8, do_sample=False), greedy)
    assert torch.equal(model.generate(idx, 8, temperature=1.0, top_k=1, generator=g()), greedy)


def test_attention_mask_of_the_wrong_shape_is_refused():
    model = GPT(GPTConfig(d_vocab=V, n_ctx=24, n_layers=1, n_heads=4, d_model=32))
    with pytest.raises(ValueError, match="attention_mask"):
        model(tokens(2, 5), attention_mask=torch.ones(2, 4))
