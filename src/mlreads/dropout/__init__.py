"""Dropout (Srivastava et al. 2014): paper dropout with retention p and weight scaling, max-norm, MC averaging."""

from mlreads.dropout.model import (
                                   Autoencoder,
                                   DropoutMLP,
                                   MLPConfig,
                                   dropout_mask,
                                   max_norm_,
                                   mc_average,
                                   paper_dropout,  # fmt: skip
)

__all__ = ["Autoencoder", "DropoutMLP", "MLPConfig", "dropout_mask", "max_norm_", "mc_average", "paper_dropout"]
