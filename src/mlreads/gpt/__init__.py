"""The GPT decoder (Vaswani et al. 2017; Radford et al. 2019): attention functions, model, char-level LM experiment."""

from mlreads.core.run.saved import Loadable
from mlreads.gpt.attention import (
    attend,
    attention_pattern,
    attention_scores,
    causal_mask,
)
from mlreads.gpt.model import GPT, GPTConfig

__all__ = [
    "GPT",
    "GPTConfig",
    "attend",
    "attention_pattern",
    "attention_scores",
    "causal_mask",
]

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(GPT, GPTConfig),)
