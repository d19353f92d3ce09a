"""The encoder-decoder Transformer of Vaswani et al. 2017 (post-LN, sinusoidal positions, label smoothing, Eq. 3)."""

from mlreads.transformer.model import (
    EncoderDecoder,
    TransformerConfig,
    noam_lr,
    noam_peak_lr,
    sinusoids,
)

__all__ = ["EncoderDecoder", "TransformerConfig", "noam_lr", "noam_peak_lr", "sinusoids"]
