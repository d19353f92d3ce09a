"""`EncoderDecoder.from_hf`: a transformers MarianMTModel (or the headless MarianModel) as our encoder-decoder.

Marian is the paper's post-LN encoder-decoder with no final layer norms, so every layer maps one to one. Every
MarianConfig field is read or refused (tests/transformer/test_transformer_compat.py checks each against
transformers, random init, logits <= 3e-5, gradients in train mode too):

    vocab_size / decoder_vocab_size -> src_vocab / tgt_vocab (the embedding tables' own sizes)
    share_encoder_decoder_embeddings -> share_embeddings (False: separate source table; the target one stays tied)
    d_model, encoder_attention_heads, encoder_ffn_dim, encoder_layers -> d_model, n_heads, d_mlp, n_layers
    max_position_embeddings -> n_ctx         activation_function -> act_fn (any name in ACTIVATIONS)
    scale_embedding -> scale_embedding       Marian's sinusoids (sin | cos halves) -> sinusoid_layout="halves"
    dropout, attention_dropout, activation_dropout -> dropout, attn_dropout, ffn_dropout (training mode only)
    final_logits_bias (a buffer of MarianMTModel) -> logits_bias=True and the same buffer
    pad_token_id, decoder_start_token_id, eos_token_id -> pad_id, bos_id, eos_id (greedy and beam start at bos_id
        and stop at eos_id; the source padding mask is `src != pad_id`, where transformers takes an attention_mask)
    layer norm eps: Marian has no field, its LayerNorms use 1e-5 -> layer_norm_eps=1e-5

Read and not needed for the logits: use_cache, init_std (init only), bos_token_id (Marian puts no BOS on the source),
forced_eos_token_id (a generation constraint that our greedy/beam do not apply), is_encoder_decoder, output_*,
return_dict, id2label/label2id, problem_type, chunk_size_feed_forward (Marian's layers do not chunk).

Refused, one line each (ValueError naming the field): encoder_X != decoder_X for layers, ffn_dim, attention_heads
(one value for both stacks here); encoder_layerdrop / decoder_layerdrop > 0 (LayerDrop is not implemented);
tie_word_embeddings=False or an lm_head that differs from the decoder embedding (the target embedding is always the
output projection here); an activation_function outside ACTIVATIONS ("prelu", "xielu"); eos_token_id with several
ids; a position table that is not Marian's sinusoid table; any model but MarianMTModel / MarianModel.
The result has the transformers model's dtype and mode (train or eval).
"""

from __future__ import annotations

from typing import Any

import torch

from mlreads.core.nn.activations import activation
from mlreads.core.nn.hf import hf_model as load_hf
from mlreads.transformer.model import EncoderDecoder, TransformerConfig, sinusoids

_CLASSES = ("MarianMTModel", "MarianModel")
_LAYER_NORMS = {"encoder": {"ln_1": "self_attn_layer_norm", "ln_2": "final_layer_norm"},
                "decoder": {"ln_1": "self_attn_layer_norm", "ln_2": "encoder_attn_layer_norm",
                            "ln_3": "final_layer_norm"}}  # fmt: skip
_ATTENTION = {"self_attn": "self_attn", "cross_attn": "encoder_attn"}
_PROJECTIONS = {"w_q": "q_proj", "w_k": "k_proj", "w_v": "v_proj", "w_o": "out_proj"}


def hf_name(name: str) -> str:
    """Our parameter name -> transformers' MarianModel name (encoder.0.ffn.w_1.weight -> encoder.layers.0.fc1.weight)."""
    if name in ("src_embed.weight", "tgt_embed.weight"):
        return ("encoder" if name.startswith("src") else "decoder") + ".embed_tokens.weight"
    stack, i, module, *rest = name.split(".")
    if module == "ffn":  # ffn.w_1.weight -> fc1.weight
        theirs = ["fc" + rest[0][-1], *rest[1:]]
    elif module in _LAYER_NORMS[stack]:
        theirs = [_LAYER_NORMS[stack][module], *rest]
    else:  # self_attn / cross_attn .w_q.weight -> self_attn / encoder_attn .q_proj.weight
        theirs = [_ATTENTION[module], _PROJECTIONS[rest[0]], *rest[1:]]
    return ".".join([stack, "layers", i, *theirs])


def _refuse_unsupported(hf: Any, kind: str) -> None:
    c = hf.config
    if getattr(c, "model_type", None) != "marian" or kind not in _CLASSES:
        raise ValueError(f"EncoderDecoder.from_hf takes MarianMTModel or MarianModel, got {kind}")
    for field in ("layers", "ffn_dim", "attention_heads"):
        enc, dec = getattr(c, f"encoder_{field}"), getattr(c, f"decoder_{field}")
        if enc != dec:
            raise ValueError(f"encoder_{field}={enc} != decoder_{field}={dec}: EncoderDecoder has one value for both")
    for field in ("encoder_layerdrop", "decoder_layerdrop"):
        if getattr(c, field):
            raise ValueError(f"{field}={getattr(c, field)}: LayerDrop is not implemented here (set it to 0)")
    activation(c.activation_function, "activation_function")
    if not getattr(c, "tie_word_embeddings", True):
        raise ValueError("tie_word_embeddings=False is not supported: the target embedding is the output projection")
    if kind == "MarianMTModel" and not torch.equal(hf.lm_head.weight, hf.model.decoder.embed_tokens.weight):
        raise ValueError("lm_head differs from the decoder embedding (tie_word_embeddings): EncoderDecoder ties them")
    if c.pad_token_id is None:
        raise ValueError("pad_token_id=None: EncoderDecoder needs a padding id (its source mask is src != pad_id)")


def _eos(c: Any) -> int:
    eos = c.eos_token_id
    if isinstance(eos, list | tuple):
        if len(eos) != 1:
            raise ValueError(f"eos_token_id={eos}: EncoderDecoder stops on one id")
        eos = eos[0]
    return int(eos)


def encoder_decoder_from_hf(source: Any) -> EncoderDecoder:
    """`EncoderDecoder.from_hf`: our model with the config and weights of `source` (a model or a local folder)."""
    hf = load_hf(source, _CLASSES)
    kind = type(hf).__name__
    _refuse_unsupported(hf, kind)
    c = hf.config
    base = hf.model if kind == "MarianMTModel" else hf
    src_w, tgt_w = base.encoder.embed_tokens.weight, base.decoder.embed_tokens.weight
    cfg = TransformerConfig(
        src_vocab=src_w.shape[0], tgt_vocab=tgt_w.shape[0], d_model=c.d_model, n_heads=c.encoder_attention_heads,
        d_mlp=c.encoder_ffn_dim, n_layers=c.encoder_layers, n_ctx=c.max_position_embeddings, dropout=c.dropout,
        positional="sinusoidal", share_embeddings=bool(c.share_encoder_decoder_embeddings), layer_norm_eps=1e-5,
        act_fn=c.activation_function, scale_embedding=bool(c.scale_embedding), sinusoid_layout="halves",
        attn_dropout=c.attention_dropout, ffn_dropout=c.activation_dropout, logits_bias=kind == "MarianMTModel",
        pad_id=c.pad_token_id, bos_id=c.decoder_start_token_id, eos_id=_eos(c))  # fmt: skip
    table = sinusoids(cfg.n_ctx, cfg.d_model, "halves")
    for stack in (base.encoder, base.decoder):
        if not torch.allclose(stack.embed_positions.weight.float(), table, rtol=0, atol=1e-6):
            raise ValueError("embed_positions is not Marian's sinusoid table: EncoderDecoder computes its own")
    with torch.device("meta"):  # no init work and no draw from the global RNG: every tensor is loaded below
        model = EncoderDecoder(cfg)
    sd = base.state_dict()
    ours = {name: sd[hf_name(name)] for name in model.state_dict() if name != "final_logits_bias"}
    if cfg.logits_bias:
        ours["final_logits_bias"] = hf.final_logits_bias
    ours = {k: v.detach().clone(memory_format=torch.contiguous_format) for k, v in ours.items()}
    model.load_state_dict(ours, strict=True, assign=True)  # shared: src_embed is tgt_embed, one module
    model.pos = table.to(device=src_w.device, dtype=src_w.dtype)  # the buffer is not in the state dict
    return model.train(hf.training)
