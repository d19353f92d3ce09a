"""Optimisers from the classics: Adam / AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019) and Sophia-G (Liu et al.
2023), each bit-identical to its oracle (torch.optim.Adam/AdamW; the official sophia.py as `sophia-opt`)."""

from mlreads.core.run.saved import Loadable
from mlreads.optim.adam import Adam, bias_corrections, first_step_size, update_moments
from mlreads.optim.sophia import (
           SophiaG,
           clipped_ratio,
           ema_hessian_,
           gnb_loss,
           sophia_hessian_hook,
)
from mlreads.optim.vae import VAE, VAEConfig

__all__ = ["Adam", "SophiaG", "bias_corrections", "clipped_ratio", "ema_hessian_", "first_step_size", "gnb_loss",
           "sophia_hessian_hook", "update_moments", "VAE", "VAEConfig"]  # fmt: skip

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(VAE, VAEConfig, kwargs=True),)
