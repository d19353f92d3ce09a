"""Classics II, generative: GANs (Goodfellow et al. 2014) and DDPM (Ho et al. 2020), with offline sample metrics."""

from mlreads.core.run.saved import Loadable
from mlreads.generative.ddpm import (
    DenoiserConfig,
    MLPDenoiser,
    Schedule,
    linear_betas,
    loss_terms,
    mu_from_eps,
    posterior,
    prior_kl,
    q_sample,
    sample,
    step,
    vlb,
    x0_from_eps,
)
from mlreads.generative.gan import (
    GAN,
    Discriminator,
    GANConfig,
    d_loss,
    g_loss,
    optimal_discriminator,
    virtual_training_criterion,
)
from mlreads.generative.metrics import (
    class_coverage,
    frechet_distance,
    nearest_distances,
    parzen_estimate,
    parzen_log_likelihood,
)

__all__ = [
    "Discriminator",
    "GAN",
    "DenoiserConfig",
    "GANConfig",
    "MLPDenoiser",
    "Schedule",
    "class_coverage",
    "d_loss",
    "frechet_distance",
    "g_loss",
    "linear_betas",
    "loss_terms",
    "mu_from_eps",
    "nearest_distances",
    "optimal_discriminator",
    "parzen_estimate",
    "parzen_log_likelihood",
    "posterior",
    "prior_kl",
    "q_sample",
    "sample",
    "step",
    "virtual_training_criterion",
    "vlb",
    "x0_from_eps",
]  # fmt: skip

# The model classes a run may save and `mlreads.load_run` rebuilds (core/run/saved.py): each with its config.
LOADABLE = (Loadable(GAN, GANConfig), Loadable(Discriminator, GANConfig), Loadable(MLPDenoiser, DenoiserConfig))
