"""Bahdanau attention (RNNsearch, RNNencdec with the paper's GRU) and attention as Nadaraya-Watson regression."""

from mlreads.attention.kernel_regression import (ParametricAttention, attention_pooling, loo_bandwidth,
                                                 nadaraya_watson)
from mlreads.attention.rnn import PaperGRUCell, RNNConfig, Seq2Seq, seq2seq_loss

__all__ = ["PaperGRUCell", "ParametricAttention", "RNNConfig", "Seq2Seq", "attention_pooling", "loo_bandwidth",
           "nadaraya_watson", "seq2seq_loss"]
