"""The encoder-decoder Transformer: parity with torch.nn.Transformer and HF MarianMT on the same weights,
incremental decoding, causality, padding, and the sinusoid's relative-position identity."""

import math

import pytest
import torch
from torch import nn

from mlreads.core.data.translation import BOS, PAD
from mlreads.transformer.model import (
    EncoderDecoder,
    TransformerConfig,
    noam_lr,
    sinusoids,
)

CFG = TransformerConfig(src_vocab=23, tgt_vocab=19, d_model=32, n_heads=4, d_mlp=64, n_layers=2, n_ctx=40,
                        dropout=0.0)


def make(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    return EncoderDecoder(cfg).eval()


def batch(B=3, S=9, T=7, seed=1, V_src=23, V_tgt=19):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V_src, (B, S), generator=g)
    tgt = torch.randint(4, V_tgt, (B, T), generator=g)
    src[0, 6:] = PAD  # a padded source
    tgt[:, 0] = BOS
    return src, tgt


def test_parity_with_torch_nn_transformer_post_ln_without_final_norms():
    model = make()
    layer_e = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    layer_d = nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    ref = nn.Transformer(32, 4, custom_encoder=nn.TransformerEncoder(layer_e, 2, norm=None, enable_nested_tensor=False),
                         custom_decoder=nn.TransformerDecoder(layer_d, 2, norm=None), batch_first=True).eval()

    def copy_attn(mha: nn.MultiheadAttention, ours):
        mha.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        mha.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        mha.out_proj.weight.copy_(ours.w_o.weight)
        mha.out_proj.bias.copy_(ours.w_o.bias)

    def copy_ln(ln, ours):
        ln.weight.copy_(ours.weight)
        ln.bias.copy_(ours.bias)

    with torch.no_grad():
        for theirs, ours in zip(ref.encoder.layers, model.encoder):
            copy_attn(theirs.self_attn, ours.self_attn)
            theirs.linear1.load_state_dict(ours.ffn.w_1.state_dict())
            theirs.linear2.load_state_dict(ours.ffn.w_2.state_dict())
            copy_ln(theirs.norm1, ours.ln_1)
            copy_ln(theirs.norm2, ours.ln_2)
        for theirs, ours in zip(ref.decoder.layers, model.decoder):
            copy_attn(theirs.self_attn, ours.self_attn)
            copy_attn(theirs.multihead_attn, ours.cross_attn)
            theirs.linear1.load_state_dict(ours.ffn.w_1.state_dict())
            theirs.linear2.load_state_dict(ours.ffn.w_2.state_dict())
            for a, b in ((theirs.norm1, ours.ln_1), (theirs.norm2, ours.ln_2), (theirs.norm3, ours.ln_3)):
                copy_ln(a, b)
    src, tgt = batch()
    with torch.no_grad():
        out = ref(model.embed(src, model.src_embed), model.embed(tgt, model.tgt_embed),
                  tgt_mask=nn.Transformer.generate_square_subsequent_mask(tgt.shape[1]),
                  src_key_padding_mask=src == PAD, memory_key_padding_mask=src == PAD)
        torch.testing.assert_close(model(src, tgt), model.logits(out), rtol=0, atol=2e-5)


def test_parity_with_marian_mt_random_init():
    transformers = pytest.importorskip("transformers")
    V = 29
    cfg = TransformerConfig(src_vocab=V, tgt_vocab=V, d_model=32, n_heads=4, d_mlp=64, n_layers=2, n_ctx=40,
                            dropout=0.0, share_embeddings=True)
    model = make(cfg)
    hf_cfg = transformers.MarianConfig(
        vocab_size=V, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=40,
        activation_function="relu", scale_embedding=True, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        pad_token_id=PAD, decoder_start_token_id=BOS, eos_token_id=2, decoder_vocab_size=V,
        share_encoder_decoder_embeddings=True, tie_word_embeddings=True)
    hf = transformers.MarianMTModel(hf_cfg).eval()
    with torch.no_grad():
        hf.model.shared.weight.copy_(model.tgt_embed.weight)
        hf.model.encoder.embed_tokens.weight = hf.model.shared.weight
        hf.model.decoder.embed_tokens.weight = hf.model.shared.weight
        hf.lm_head.weight = hf.model.shared.weight
        hf.final_logits_bias.zero_()
        for stack in (hf.model.encoder, hf.model.decoder):
            stack.embed_positions.weight.copy_(model.pos)  # our interleaved table (Marian's is sin | cos halves)

        def copy_attn(theirs, ours):
            for a, b in (("q_proj", "w_q"), ("k_proj", "w_k"), ("v_proj", "w_v"), ("out_proj", "w_o")):
                getattr(theirs, a).load_state_dict(getattr(ours, b).state_dict())

        for theirs, ours in zip(hf.model.encoder.layers, model.encoder):
            copy_attn(theirs.self_attn, ours.self_attn)
            theirs.self_attn_layer_norm.load_state_dict(ours.ln_1.state_dict())
            theirs.fc1.load_state_dict(ours.ffn.w_1.state_dict())
            theirs.fc2.load_state_dict(ours.ffn.w_2.state_dict())
            theirs.final_layer_norm.load_state_dict(ours.ln_2.state_dict())
        for theirs, ours in zip(hf.model.decoder.layers, model.decoder):
            copy_attn(theirs.self_attn, ours.self_attn)
            copy_attn(theirs.encoder_attn, ours.cross_attn)
            theirs.self_attn_layer_norm.load_state_dict(ours.ln_1.state_dict())
            theirs.encoder_attn_layer_norm.load_state_dict(ours.ln_2.state_dict())
            theirs.fc1.load_state_dict(ours.ffn.w_1.state_dict())
            theirs.fc2.load_state_dict(ours.ffn.w_2.state_dict())
            theirs.final_layer_norm.load_state_dict(ours.ln_3.state_dict())
    src, tgt = batch(V_src=V, V_tgt=V)
    with torch.no_grad():
        theirs = hf(input_ids=src, attention_mask=(src != PAD).long(), decoder_input_ids=tgt).logits
        torch.testing.assert_close(model(src, tgt), theirs, rtol=0, atol=3e-5)


def test_incremental_decoding_equals_full_decoding_and_is_causal():
    model = make()
    src, tgt = batch()
    memory, allowed = model.encode(src)
    full = model.decode(tgt, memory, allowed)[0]
    cache, steps = None, []
    for t in range(tgt.shape[1]):
        logits, cache, _ = model.decode(tgt[:, t : t + 1], memory, allowed, cache, start=t)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-5)
    changed = tgt.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 19
    out = model(src, changed)
    torch.testing.assert_close(out[:, :4], full[:, :4], rtol=0, atol=0)
    assert not torch.allclose(out[:, 4:], full[:, 4:])
    assert torch.equal(model.greedy(src, 12, use_cache=True), model.greedy(src, 12, use_cache=False))


def test_padding_does_not_leak_into_the_output():
    model = make()
    src, tgt = batch()
    longer = torch.cat([src, torch.full((3, 4), PAD)], dim=1)
    torch.testing.assert_close(model(longer, tgt), model(src, tgt), rtol=0, atol=1e-5)


def test_sinusoid_relative_position_identity_and_noam_schedule():
    d = 16
    pe = sinusoids(60, d).double()
    k = 7
    inv_freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    M = torch.zeros(d, d, dtype=torch.float64)  # PE(pos + k) = M_k PE(pos): a rotation per frequency
    for i, w in enumerate(inv_freq):
        c, s = math.cos(k * w), math.sin(k * w)
        M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    torch.testing.assert_close(pe[k:] , pe[:-k] @ M.T, rtol=0, atol=1e-5)
    # Eq. 3: linear warmup to the peak at step = warmup, then step^-0.5
    w = 400
    assert noam_lr(w, 512, w) == pytest.approx(512**-0.5 * w**-0.5)
    assert noam_lr(w // 2, 512, w) == pytest.approx(noam_lr(w, 512, w) / 2)
    assert noam_lr(4 * w, 512, w) == pytest.approx(noam_lr(w, 512, w) / 2)
    for step in (1, 7, 399, 400, 401, 5000):  # the literal Eq. 3
        assert noam_lr(step, 512, w) == pytest.approx(512**-0.5 * min(step**-0.5, step * w**-1.5), rel=1e-12)
    from mlreads.core.train import TrainConfig, lr_factor

    cfg = TrainConfig(steps=10_000, lr=noam_lr(w, 512, w), warmup=w, schedule="rsqrt")
    assert all(cfg.lr * lr_factor(s, cfg) == pytest.approx(noam_lr(s + 1, 512, w), rel=1e-12) for s in range(0, 3000, 37))


def test_learned_positions_start_at_the_token_scale_as_in_tensor2tensor():
    """Row E's learned positions: a table N(0, d^-0.5) used times √d (tensor2tensor), so at initialisation they are
    unit-scale like the √d-scaled token embeddings, not a small perturbation of them."""
    torch.manual_seed(0)
    cfg = TransformerConfig(src_vocab=50, tgt_vocab=50, d_model=64, n_heads=4, d_mlp=64, n_layers=1, n_ctx=40,
                            dropout=0.0, positional="learned")  # fmt: skip
    model = EncoderDecoder(cfg)
    ids = torch.randint(4, 50, (8, 30))
    _, cache = model.run_with_cache(ids, ids)
    pos, tok = cache["encoder.hook_pos_embed"], cache["encoder.hook_embed"]
    assert torch.allclose(pos[0], model.pos[:30] * 8.0)
    assert 0.8 < float(pos.std()) < 1.2 and 0.8 < float(pos.std() / tok.std()) < 1.25
