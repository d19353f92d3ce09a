"""Hook points of the encoder-decoder: the cache equals forward, holds the documented TransformerLens-style names
(encoder.blocks.{l}..., decoder.blocks.{l}.cross_attn...) with their shapes, its values are the quantities they name,
zeroing a hook changes the logits, and the state_dict keys are those of the checkpoints (no hook renames them)."""

import math
import sys
from pathlib import Path

import torch

from mlreads.core.data.translation import BOS, PAD
from mlreads.transformer.model import EncoderDecoder, TransformerConfig

sys.path.insert(0, str(Path(__file__).parents[1]))
from hook_checks import (
    assert_ablation_changes_output,
    assert_names_and_shapes,
    cache_matching_forward,
)

CFG = TransformerConfig(src_vocab=23, tgt_vocab=19, d_model=32, n_heads=4, d_mlp=64, n_layers=2, n_ctx=40,
                        dropout=0.0)
B, S, T, D, H, P = 3, 9, 7, 32, 4, 8


def _model_and_batch():
    torch.manual_seed(0)
    model = EncoderDecoder(CFG).eval()
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(4, 23, (B, S), generator=g), torch.randint(4, 19, (B, T), generator=g)
    src[0, 6:] = PAD
    tgt[:, 0] = BOS
    return model, src, tgt


def _expected() -> dict[str, tuple[int, ...]]:
    sides = (("encoder", S), ("decoder", T))
    out = {f"{side}.hook_{h}": (B, L, D) for side, L in sides for h in ("embed", "pos_embed")}
    for side, L, resid in (("encoder", S, ["pre", "mid", "post"]), ("decoder", T, ["pre", "mid", "mid_cross", "post"])):
        for layer in range(CFG.n_layers):
            blk = f"{side}.blocks.{layer}"
            out |= {f"{blk}.hook_resid_{r}": (B, L, D) for r in resid}
            outs = ["attn_out", "mlp_out"] + (["cross_attn_out"] if side == "decoder" else [])
            out |= {f"{blk}.hook_{o}": (B, L, D) for o in outs}
            out |= {f"{blk}.attn.hook_{h}": (B, L, H, P) for h in "qkvz"}
            out[f"{blk}.attn.hook_pattern"] = (B, H, L, L)
            out |= {f"{blk}.mlp.hook_{h}": (B, L, CFG.d_mlp) for h in ("pre", "post")}
            if side == "decoder":
                out |= {f"{blk}.cross_attn.hook_{h}": (B, T, H, P) for h in "qz"}
                out |= {f"{blk}.cross_attn.hook_{h}": (B, S, H, P) for h in "kv"}
                out[f"{blk}.cross_attn.hook_pattern"] = (B, H, T, S)
    return out


def test_encoder_decoder_cache():
    model, src, tgt = _model_and_batch()
    cache = cache_matching_forward(model, src, tgt)
    assert_names_and_shapes(cache, _expected())
    torch.testing.assert_close(cache["decoder.hook_embed"], model.tgt_embed(tgt).detach() * math.sqrt(D))
    torch.testing.assert_close(cache["encoder.blocks.0.hook_resid_pre"],
                               cache["encoder.hook_embed"] + cache["encoder.hook_pos_embed"], rtol=0, atol=0)
    torch.testing.assert_close(cache["encoder.blocks.1.hook_resid_pre"], cache["encoder.blocks.0.hook_resid_post"])
    cross = cache["decoder.blocks.1.cross_attn.hook_pattern"]  # (B, H, T, S)
    torch.testing.assert_close(cross.sum(-1), torch.ones(B, H, T))
    assert (cross[0, :, :, 6:] == 0).all()  # padded source positions get no attention
    self_pattern = cache["decoder.blocks.0.attn.hook_pattern"]
    assert (self_pattern.triu(1) == 0).all()  # causal
    with torch.no_grad():
        memory, allowed = model.encode(src)
        patterns = model.decode(tgt, memory, allowed)[2]
    torch.testing.assert_close(patterns[1], cross, rtol=0, atol=0)


def test_encoder_decoder_ablation_and_state_dict():
    model, src, tgt = _model_and_batch()
    assert_ablation_changes_output(model, "decoder.blocks.0.cross_attn.hook_z", src, tgt)
    assert_ablation_changes_output(model, "encoder.blocks.1.hook_resid_post", src, tgt)
    keys = set(model.state_dict())
    assert "encoder.0.self_attn.w_q.weight" in keys and "decoder.1.cross_attn.w_o.bias" in keys
    assert not any("hook" in k or "blocks" in k for k in keys)
