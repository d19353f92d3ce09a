"""The GPT decoder (Vaswani et al. 2017; Radford et al. 2019): attention functions, model, char-level LM experiment."""

from mlreads.gpt.attention import (
    attend,
    attention_pattern,
    attention_scores,
    causal_mask,
    merge_heads,
    split_heads,
)

__all__ = ["attend", "attention_pattern", "attention_scores", "causal_mask", "merge_heads", "split_heads"]
