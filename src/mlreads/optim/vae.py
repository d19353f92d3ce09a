"""The MNIST VAE of Kingma & Welling 2014 ("Auto-Encoding Variational Bayes", arXiv:1312.6114), as Adam's Section 6.4
uses it to test bias correction (adam/bias-correction): a tanh MLP encoder to a diagonal Gaussian latent, and a tanh MLP
decoder to Bernoulli pixels.

Glossary (code name -> symbol): mu, logvar   the encoder's mean and log-variance of q(z|x); eps ~ N(0, I), the
reparameterisation's noise; z = mu + exp(logvar / 2) eps; neg_elbo   -L(theta, phi; x) of Eq. 10, per example.

Deviations: none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class VAEConfig:
    """`VAE`'s sizes (its constructor's arguments), kept as `model.cfg` so a saved run can rebuild it."""

    d_in: int = 784
    d_hidden: int = 500
    d_latent: int = 50


class VAE(nn.Module):
    """Kingma & Welling 2014's MNIST VAE as Adam Section 6.4 uses it: one hidden layer of 500 tanh units in the
    encoder and the decoder, a 50-d Gaussian latent, Bernoulli pixels."""

    def __init__(self, d_in: int = 784, d_hidden: int = 500, d_latent: int = 50):
        super().__init__()
        self.cfg = VAEConfig(d_in, d_hidden, d_latent)
        self.enc = nn.Linear(d_in, d_hidden)
        self.mu = nn.Linear(d_hidden, d_latent)
        self.logvar = nn.Linear(d_hidden, d_latent)
        self.dec = nn.Sequential(nn.Linear(d_latent, d_hidden), nn.Tanh(), nn.Linear(d_hidden, d_in))

    def neg_elbo_each(self, x: Tensor, eps: Tensor) -> Tensor:
        """-ELBO of each example (nats), (B,), with the reparameterisation z = mu + sigma * eps. x (B, 784),
        eps (B, 50)."""
        h = torch.tanh(self.enc(x))  # (B, d_hidden)
        mu, logvar = self.mu(h), self.logvar(h)  # (B, d_latent)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(-1)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
        return rec + kl

    def neg_elbo(self, x: Tensor, eps: Tensor) -> Tensor:
        """Mean -ELBO per example (nats): the training loss."""
        return self.neg_elbo_each(x, eps).mean()
