"""Dropout (Srivastava et al. 2014): paper dropout with retention p and weight scaling, max-norm, MC averaging."""

from mlreads.core.run.saved import Loadable
from mlreads.dropout.model import (
                                   Autoencoder,
                                   AutoencoderConfig,
                                   DropoutMLP,
                                   MLPConfig,
                                   dropout_mask,
                                   max_norm_,
                                   mc_average,
                                   paper_dropout,  # fmt: skip
)

__all__ = ["Autoencoder", "AutoencoderConfig", "DropoutMLP", "MLPConfig", "dropout_mask", "max_norm_", "mc_average",
           "paper_dropout"]

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(DropoutMLP, MLPConfig), Loadable(Autoencoder, AutoencoderConfig, kwargs=True))
