"""`EncoderDecoder.from_hf` reads or refuses every MarianConfig field.

Every parity check is against a randomly initialised transformers MarianMTModel with Marian's own special ids (pad =
decoder start = the last id, eos = 0, unlike mlreads' translation data), a random final_logits_bias, padded sources,
and max |logit difference| <= 3e-5 in float32; training mode compares gradients too.
"""

import pytest
import torch

from mlreads.core.nn.activations import ACTIVATIONS
from mlreads.transformer import EncoderDecoder, sinusoids
from mlreads.transformer.hf import hf_name

transformers = pytest.importorskip("transformers")

V, PAD_HF = 29, 28


def hf_marian(cls="MarianMTModel", seed=0, attn_implementation=None, **overrides):
    kw = {"vocab_size": V, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 4,
          "decoder_attention_heads": 4, "encoder_ffn_dim": 48, "decoder_ffn_dim": 48, "max_position_embeddings": 40,
          "activation_function": "swish", "scale_embedding": True, "dropout": 0.1, "attention_dropout": 0.0,
          "activation_dropout": 0.0, "pad_token_id": PAD_HF, "decoder_start_token_id": PAD_HF, "eos_token_id": 0,
          "forced_eos_token_id": 0, "init_std": 0.1}  # fmt: skip
    cfg = transformers.MarianConfig(**{**kw, **overrides})
    if attn_implementation:
        cfg._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    model = getattr(transformers, cls)(cfg).eval()
    if cls == "MarianMTModel":  # transformers initialises it at zero; real checkpoints carry one
        model.final_logits_bias.copy_(torch.randn(model.final_logits_bias.shape) * 0.5)
    return model


def batch(c, B=3, S=9, T=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(1, c.vocab_size - 1, (B, S), generator=g)
    tgt = torch.randint(1, c.decoder_vocab_size - 1, (B, T), generator=g)
    src[0, 6:] = c.pad_token_id  # a padded source
    src[:, -1:][src[:, -1:] != c.pad_token_id] = _eos(c)
    tgt[:, 0] = c.decoder_start_token_id
    return src, tgt


def _eos(c):
    return c.eos_token_id[0] if isinstance(c.eos_token_id, list) else c.eos_token_id


def hf_logits(hf, src, tgt):
    out = hf(input_ids=src, attention_mask=(src != hf.config.pad_token_id).long(), decoder_input_ids=tgt)
    if hasattr(out, "logits"):
        return out.logits
    return out.last_hidden_state @ hf.decoder.embed_tokens.weight.T  # MarianModel: the tied projection, no bias


def assert_parity(hf, ours, atol=3e-5):
    src, tgt = batch(hf.config)
    with torch.no_grad():
        want, got = hf_logits(hf, src, tgt), ours(src, tgt)
    assert want.std() > 0.3  # logits large enough for a wrong mapping to show far above the tolerance
    assert float((got - want).abs().max()) <= atol


def assert_gradients_match(hf, ours):
    hf.train(), ours.train()
    src, tgt = batch(hf.config, seed=3)
    want = hf_logits(hf, src, tgt)
    got = ours(src, tgt)
    assert float((got - want).detach().abs().max()) <= 3e-5
    w = torch.randn(want.shape, generator=torch.Generator().manual_seed(4))
    (want * w).sum().backward()
    (got * w).sum().backward()
    base = hf.model if hasattr(hf, "model") else hf
    theirs = dict(base.named_parameters(remove_duplicate=False))
    for name, p in ours.named_parameters():
        g = theirs[hf_name(name)].grad
        assert float((p.grad - g).abs().max()) <= 1e-4 * max(1.0, float(g.abs().max())), name


VARIANTS = {
    "opus_mt_like": {},
    "no_scale_embedding": {"scale_embedding": False},
    "separate_vocabularies": {"share_encoder_decoder_embeddings": False, "decoder_vocab_size": 31},
    "mlreads_ids": {"pad_token_id": 0, "decoder_start_token_id": 1, "eos_token_id": 2},
    "eos_as_a_list": {"eos_token_id": [0]},
    "dims": {"d_model": 48, "encoder_attention_heads": 6, "decoder_attention_heads": 6, "encoder_ffn_dim": 20,
             "decoder_ffn_dim": 20, "encoder_layers": 3, "decoder_layers": 3, "max_position_embeddings": 16},
}  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_config_variants_match_hf(variant):
    hf = hf_marian(**VARIANTS[variant])
    ours = EncoderDecoder.from_hf(hf).eval()
    c = hf.config
    assert (ours.cfg.pad_id, ours.cfg.bos_id, ours.cfg.eos_id) == (c.pad_token_id, c.decoder_start_token_id, _eos(c))
    assert ours.cfg.share_embeddings == c.share_encoder_decoder_embeddings
    assert ours.cfg.tgt_vocab == (c.vocab_size if c.share_encoder_decoder_embeddings else c.decoder_vocab_size)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf.parameters() if p.requires_grad)
    assert_parity(hf, ours)
    hf = hf_marian(**{**VARIANTS[variant], "dropout": 0.0})  # training mode without dropout: deterministic
    assert_gradients_match(hf, EncoderDecoder.from_hf(hf))


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_every_supported_activation_function_matches_hf(act):
    hf = hf_marian(activation_function=act)
    assert_parity(hf, EncoderDecoder.from_hf(hf).eval())


def test_headless_marian_model_gives_the_tied_projection():
    hf = hf_marian("MarianModel", dropout=0.0)
    ours = EncoderDecoder.from_hf(hf).eval()
    assert not ours.cfg.logits_bias
    assert_parity(hf, ours)
    assert_gradients_match(hf, ours)


@pytest.mark.parametrize("field", ["dropout", "attention_dropout", "activation_dropout"])
def test_each_dropout_rate_lands_where_marian_applies_it(field):
    """Training mode with one rate at 1 (the others 0): dropout is deterministic there (all zeros), so the
    logits agree only if the rate drops what Marian's drops (embeddings and residual branches, the attention
    pattern, the FFN hidden layer)."""
    rates = {"dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, field: 1.0}
    hf = hf_marian(attn_implementation="eager", **rates)
    ours = EncoderDecoder.from_hf(hf)
    hf.train(), ours.train()
    src, tgt = batch(hf.config)
    with torch.no_grad():
        want, got = hf_logits(hf, src, tgt), ours(src, tgt)
        assert float((got - want).abs().max()) <= 3e-5
        hf.eval()
        assert float((want - hf_logits(hf, src, tgt)).abs().max()) > 1e-2  # the rate changed the function


def test_greedy_decoding_matches_hf_generate():
    """Marian's ids: decoding starts at decoder_start (= pad), stops at eos, pads finished rows with pad."""
    hf = hf_marian(seed=2, eos_token_id=19, forced_eos_token_id=None, init_std=0.3)
    hf.final_logits_bias.zero_()  # with this seed: one row ends at once, one after two tokens, one runs on
    ours = EncoderDecoder.from_hf(hf).eval()
    src, _ = batch(hf.config, seed=2)
    with torch.no_grad():
        theirs = hf.generate(input_ids=src, attention_mask=(src != PAD_HF).long(), max_new_tokens=12,
                             do_sample=False, num_beams=1)  # fmt: skip
    mine = ours.greedy(src, 12)
    assert torch.equal(theirs[:, 1:], mine)  # transformers returns the start token first
    assert (mine == 19).any(dim=1).tolist() == [True, True, False] and (mine == PAD_HF).sum() > 10


def test_save_pretrained_folder_round_trip(tmp_path):
    hf = hf_marian()
    hf.save_pretrained(tmp_path)
    assert_parity(hf, EncoderDecoder.from_hf(str(tmp_path)).eval())


def test_float64_model_gives_a_float64_encoder_decoder():
    hf = hf_marian().double()
    ours = EncoderDecoder.from_hf(hf).eval()
    assert ours.tgt_embed.weight.dtype == ours.pos.dtype == torch.float64
    src, tgt = batch(hf.config)
    with torch.no_grad():  # Marian's table is float32 (built so), ours too: they agree to float32 rounding only
        assert float((ours(src, tgt) - hf_logits(hf, src, tgt)).abs().max()) <= 1e-5


@pytest.mark.parametrize("d", [32, 31])
def test_halves_layout_is_marians_table_and_the_interleaved_one_reordered(d):
    theirs = transformers.models.marian.modeling_marian.MarianSinusoidalPositionalEmbedding(40, d).create_weight()
    halves = sinusoids(40, d, "halves")
    torch.testing.assert_close(halves, theirs, rtol=0, atol=1e-6)
    inter = sinusoids(40, d)
    h = (d + 1) // 2
    torch.testing.assert_close(halves[:, :h], inter[:, 0::2], rtol=0, atol=0)
    torch.testing.assert_close(halves[:, h:], inter[:, 1::2], rtol=0, atol=0)
    with pytest.raises(ValueError, match="sinusoid_layout"):
        sinusoids(4, d, "interleave")


REFUSED = [  # (the field the message names, config overrides, fields set on the built model's config)
    ("decoder_layers", {"decoder_layers": 1}, {}),
    ("decoder_ffn_dim", {"decoder_ffn_dim": 32}, {}),
    ("decoder_attention_heads", {"decoder_attention_heads": 2}, {}),
    ("encoder_layerdrop", {"encoder_layerdrop": 0.1}, {}),
    ("decoder_layerdrop", {"decoder_layerdrop": 0.1}, {}),
    ("tie_word_embeddings", {"tie_word_embeddings": False}, {}),
    ("eos_token_id", {"eos_token_id": [0, 3]}, {}),
    ("pad_token_id", {}, {"pad_token_id": None}),
    *(("activation_function", {}, {"activation_function": a}) for a in ("prelu", "xielu", "no_such_activation")),
]


@pytest.mark.parametrize("field,overrides,after", REFUSED)
def test_refused_fields_say_so_in_one_line(field, overrides, after):
    hf = hf_marian(**overrides)
    for name, value in after.items():
        setattr(hf.config, name, value)
    with pytest.raises(ValueError, match=field) as e:
        EncoderDecoder.from_hf(hf)
    assert "\n" not in str(e.value)


def test_other_models_and_hub_names_are_refused():
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=11))
    with pytest.raises(ValueError, match="MarianMTModel or MarianModel, got GPT2LMHeadModel"):
        EncoderDecoder.from_hf(gpt2)
    with pytest.raises(ValueError, match="never downloads"):
        EncoderDecoder.from_hf("Helsinki-NLP/opus-mt-en-de")
