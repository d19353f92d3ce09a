"""Loading GPT-2 checkpoints from transformers into `mlreads.gpt.model.GPT`: the config and weight mapping.

`GPT.from_hf` is the public entry point and delegates here. Kept apart from the model so that `model.py` holds the
architecture only; this module knows transformers' names (`GPT2Config` fields, `transformer.h.{l}` weights, `Conv1D`
layout, `ACT2FN` activation names, through core/nn/activations.py), the model knows none of them.
"""

from __future__ import annotations

from typing import Any

import torch

from mlreads.core.nn.activations import ACTIVATIONS
from mlreads.core.nn.hf import hf_model as load_hf
from mlreads.gpt.model import GPT, GPTConfig


def from_hf(cls: type[GPT], hf_model: Any) -> GPT:
    """A GPT with the config and weights of a transformers `GPT2LMHeadModel` (or bare `GPT2Model`), or of the
    folder such a model was saved to with `save_pretrained` (read offline; hub names are refused).

    HF stores its projections as `Conv1D` with weight (in, out), so they are transposed into our `nn.Linear`
    (out, in). Config fields read: vocab_size, n_positions, n_layer, n_head, n_embd, n_inner (-> d_ff),
    activation_function ("gelu_new"/"gelu_pytorch_tanh" -> gelu="tanh", "gelu" -> gelu="exact", any other
    parameter-free ACT2FN name -> act_fn), layer_norm_epsilon, the three dropouts (which must be equal),
    scale_attn_weights, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn (-> upcast_attn). Refused
    (ValueError, one line): other model types, cross-attention, untied embeddings, "prelu"/"xielu" (learned
    activation parameters), unequal dropouts. The result has the HF model's dtype.
    """
    hf = load_hf(hf_model, "GPT2LMHeadModel")
    c = hf.config
    if getattr(c, "model_type", "gpt2") != "gpt2":
        raise ValueError(f"GPT.from_hf loads GPT-2 models (model_type 'gpt2'), got {c.model_type!r}")
    act = c.activation_function
    gelu, act_fn = {"gelu_new": ("tanh", None), "gelu_pytorch_tanh": ("tanh", None), "gelu": ("exact", None)}.get(
        act, ("tanh", act))
    if act_fn is not None and act_fn not in ACTIVATIONS:
        raise ValueError(f"unsupported activation_function {act!r}: GPT supports the parameter-free ones "
                         f"{sorted(ACTIVATIONS)}")
    if getattr(c, "add_cross_attention", False):
        raise ValueError("add_cross_attention=True (encoder-decoder GPT-2) is not supported: GPT is decoder-only")
    if not getattr(c, "tie_word_embeddings", True):
        raise ValueError("tie_word_embeddings=False is not supported: GPT ties its unembedding to wte")
    if not c.resid_pdrop == c.embd_pdrop == c.attn_pdrop:
        raise ValueError(f"GPT has one dropout rate; got resid_pdrop={c.resid_pdrop}, embd_pdrop={c.embd_pdrop}, "
                         f"attn_pdrop={c.attn_pdrop} (set them equal, e.g. 0.0 for inference)")
    cfg = GPTConfig(
        d_vocab=c.vocab_size,
        n_ctx=c.n_positions,
        n_layers=c.n_layer,
        n_heads=c.n_head,
        d_model=c.n_embd,
        dropout=c.resid_pdrop,
        bias=True,
        gelu=gelu,
        layer_norm_eps=c.layer_norm_epsilon,
        d_ff=c.n_inner or 0,
        act_fn=act_fn,
        scale_attn=c.scale_attn_weights,
        attn_scale_by_inverse_layer=c.scale_attn_by_inverse_layer_idx,
        upcast_attn=c.reorder_and_upcast_attn,
    )
    with torch.device("meta"):  # no init work and no draw from the global RNG: every tensor is loaded below
        model = cls(cfg)
    sd = hf.state_dict()
    prefix = "transformer." if any(k.startswith("transformer.") for k in sd) else ""
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    ours = {}
    for name in model.state_dict():
        hf_name = prefix + name.replace("blocks.", "h.").replace("ln_final.", "ln_f.")
        w = sd[hf_name]
        ours[name] = (w.t() if name.endswith(conv1d) else w).detach().clone(memory_format=torch.contiguous_format)
    model.load_state_dict(ours, strict=True, assign=True)
    return model
