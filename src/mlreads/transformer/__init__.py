"""The encoder-decoder Transformer of Vaswani et al. 2017 (post-LN, sinusoidal positions, label smoothing, Eq. 3)."""

from mlreads.core.run.saved import Loadable
from mlreads.transformer.model import (
    EncoderDecoder,
    TransformerConfig,
    noam_lr,
    noam_peak_lr,
    sinusoids,
)

__all__ = ["EncoderDecoder", "TransformerConfig", "noam_lr", "noam_peak_lr", "sinusoids"]

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(EncoderDecoder, TransformerConfig),)
