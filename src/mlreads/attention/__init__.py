"""Bahdanau attention (RNNsearch, RNNencdec with the paper's GRU) and attention as Nadaraya-Watson regression.

`RNNSearchConfig`, the config of the attention/rnnsearch-vs-rnnencdec experiment, is public too: transformer/seq2seq
trains the same RNNsearch as its baseline. It is imported on first use (PEP 562), so that importing the models does
not import the experiment's training machinery.
"""

from mlreads.attention.kernel_regression import (
    ParametricAttention,
    ParametricAttentionConfig,
    attention_pooling,
    loo_bandwidth,
    nadaraya_watson,
)
from mlreads.attention.rnn import PaperGRUCell, RNNConfig, Seq2Seq, seq2seq_loss
from mlreads.core.run.saved import Loadable

__all__ = ["PaperGRUCell", "ParametricAttention", "ParametricAttentionConfig", "RNNConfig", "Seq2Seq",
           "attention_pooling", "loo_bandwidth", "nadaraya_watson", "seq2seq_loss", "RNNSearchConfig"]


def __getattr__(name: str):
    if name == "RNNSearchConfig":
        from mlreads.attention.exp_rnnsearch_vs_rnnencdec import RNNSearchConfig

        return RNNSearchConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(Seq2Seq, RNNConfig), Loadable(ParametricAttention, ParametricAttentionConfig, kwargs=True))
