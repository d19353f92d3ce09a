# %% [markdown]
# # Denoising Diffusion Probabilistic Models
#
# **Paper.** Ho, Jain & Abbeel 2020, *Denoising Diffusion Probabilistic Models*, NeurIPS 2020,
# [arXiv:2006.11239](https://arxiv.org/abs/2006.11239).
#
# **The idea.** Destroy data slowly with a fixed Markov chain that adds a little Gaussian noise at each of $T = 1000$
# steps, until nothing but noise is left; then train a network to undo one step at a time. Sampling runs the learned
# reverse chain from pure noise. The paper's key move is the parameterisation: the network predicts the *noise* that
# was added, which turns the variational bound into a weighted denoising loss, and dropping the weights gives a simple
# mean-squared error that produces the best samples.
#
# **Our claims.**
# - `ddpm/forward-process` (Eq 4, Section 4): the forward chain has a closed form $q(x_t \mid x_0)$; with $\beta_t$
#   linear from $10^{-4}$ to $0.02$ over $T = 1000$ steps almost no signal is left at $t = T$, and the prior term $L_T$
#   of the bound is negligible (the paper: about $10^{-5}$ bits per dimension).
# - `ddpm/mnist` (Algorithms 1 and 2, Section 3.2): training with $L_\text{simple}$ and ancestral sampling produce
#   data-like samples, and the two fixed reverse variances $\sigma_t^2 = \beta_t$ and $\tilde\beta_t$ give similar
#   results.
# - `ddpm/objective-ablation` (Tables 1 and 2): predicting $\epsilon$ with $L_\text{simple}$ gives the best samples,
#   the true bound the better likelihood, and predicting $\tilde\mu$ with an unweighted MSE is worst or unstable.
#
# This walkthrough reads the equations beside the code that implements them, checks the closed forms numerically,
# runs the three experiments at the smoke budget (seconds: pipeline checks, not measurements), samples from the saved
# denoisers and draws the forward chain, the reverse chain and the 2-D samples.

# %%
import json
import math

import matplotlib.pyplot as plt
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.generative import ddpm
from mlreads.generative.exp_common import mnist_tensors
from mlreads.generative.exp_ddpm_objective_ablation import eight_gaussians
from mlreads.generative.figures import (
    ablation_figure,
    forward_chain_figure,
    image_grid,
    reverse_chain_figure,
)
from mlreads.generative.metrics import sliced_wasserstein

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Eqs 2 and 4: the forward process
#
# Each step scales the previous state down a little and adds noise,
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\big(x_t;\ \sqrt{1 - \beta_t}\, x_{t-1},\ \beta_t I\big) \quad \text{(Eq 2)},$$
#
# and since a sum of Gaussians is Gaussian, any $x_t$ can be drawn from $x_0$ in one go, with
# $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s \le t} \alpha_s$:
#
# $$q(x_t \mid x_0) = \mathcal{N}\big(x_t;\ \sqrt{\bar\alpha_t}\, x_0,\ (1 - \bar\alpha_t) I\big), \qquad
#   x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon, \quad \epsilon \sim \mathcal{N}(0, I)
#   \quad \text{(Eq 4)}.$$

# %%
wt.show_source(ddpm.q_step)
wt.show_source(ddpm.q_sample);

# %% [markdown]
# The paper's schedule (Section 4) and the prior term of the bound, $L_T = D_\mathrm{KL}(q(x_T \mid x_0) \,\|\,
# \mathcal{N}(0, I))$, which has no parameters: for an image in $[-1, 1]$ it is a closed-form Gaussian KL per pixel.
# Here on 16 MNIST test digits, in bits per dimension:

# %%
s = ddpm.Schedule(ddpm.linear_betas(1000, 1e-4, 0.02))
x0 = mnist_tensors()["test"][0][:16].double() * 2 - 1  # (16, 784) in [-1, 1]
L_T = ddpm.prior_kl(s, x0).sum(1) / x0.shape[1] / math.log(2)
print(f"T = {s.T}, alpha_bar_T = {float(s.alpha_bar[-1]):.3g}, L_T = {float(L_T.mean()):.2g} bits/dim "
      f"(largest of the 16: {float(L_T.max()):.2g})")

# %% [markdown]
# The registered experiment checks Eq 4 the hard way: it iterates Eq 2 for 1000 steps on 100,000 pixel chains and
# tests that the residual $x_t - \sqrt{\bar\alpha_t} x_0$ has mean 0 and variance $1 - \bar\alpha_t$ at several $t$.
# It has no training, so its smoke budget is the quick budget's.

# %%
result, run_dir = wt.smoke("ddpm/forward-process")
fp = result["metrics"]
print(f"smoke verdict: {result['verdict']} | worst mean error {fp['max_mean_err_in_se']:.2f} s.e., worst relative "
      f"variance error {fp['max_rel_var_err']:.4f} | L_T up to {fp['L_T_bits_per_dim_max']:.2g} bits/dim")

# %% [markdown]
# One digit along the forward process, drawn from Eq 4 directly at each $t$, with the signal and noise coefficients
# below (the package's figure function):

# %%
eps = torch.randn(x0[0].shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
keep = {t: ddpm.q_sample(s, x0[:1], torch.tensor([t]), eps[None])[0] for t in (10, 50, 100, 250, 500, 1000)}
fig = forward_chain_figure(x0[0], keep, s)
plt.show()

# %% [markdown]
# ## Eqs 6-7 and 11: the reverse step and the $\epsilon$-parameterisation
#
# Given $x_0$, the forward step can be undone exactly: the posterior is Gaussian,
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\big(\tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\big), \quad
#   \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\, x_0
#   + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\, x_t, \quad
#   \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\, \beta_t \quad \text{(Eqs 6-7)}.$$
#
# The reverse model $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta(x_t, t), \sigma_t^2 I)$ fixes $\sigma_t^2$ to
# $\beta_t$ or $\tilde\beta_t$ (Section 3.2). Writing $x_0$ in terms of $x_t$ and the noise (Eq 4 inverted) and
# letting the network predict that noise gives
#
# $$\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}} \Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,
#   \epsilon_\theta(x_t, t)\Big) \quad \text{(Eq 11)}.$$

# %%
wt.show_source(ddpm.posterior)
wt.show_source(ddpm.mu_from_eps);

# %% [markdown]
# With the *true* noise in place of $\epsilon_\theta$, Eq 11 must give $\tilde\mu_t$ exactly. The forward-process run
# checked it on random $t$ (`eq11_max_abs_err`, in float64); the same check here, at every $t$ for one digit:

# %%
t_all = torch.arange(1, s.T + 1)
xt = ddpm.q_sample(s, x0[:1].expand(s.T, -1), t_all, eps.expand(s.T, -1))
mu_tilde, _ = ddpm.posterior(s, x0[:1].expand(s.T, -1), xt, t_all)
err = float((ddpm.mu_from_eps(s, xt, t_all, eps) - mu_tilde).abs().max())
print(f"max |Eq 11 - mu_tilde| over t = 1..1000: {err:.1e} (the run's check on random t: {fp['eq11_max_abs_err']:.1e})")

# %% [markdown]
# ## Algorithms 1 and 2: training with $L_\text{simple}$, sampling
#
# With Eq 11, each KL term of the bound becomes a weighted squared error between the true and the predicted noise
# (Eq 12). Dropping the weight gives
#
# $$L_\text{simple}(\theta) = \mathbb{E}_{t, x_0, \epsilon}\Big[\big\|\epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}
#   x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon,\ t\big)\big\|^2\Big], \quad t \sim \mathrm{Uniform}\{1, \dots, T\}
#   \quad \text{(Eq 14)},$$
#
# which is Algorithm 1. Algorithm 2 samples: $x_T \sim \mathcal{N}(0, I)$, then for $t = T, \dots, 1$,
# $x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$ with $z \sim \mathcal{N}(0, I)$ ($z = 0$ at $t = 1$). The package's
# `loss_terms` holds $L_\text{simple}$ and the three other objectives of Table 2; `step` is one iteration of
# Algorithm 2 (its `clip_x0` option is the official code's clipping of the predicted $x_0$, which Algorithm 2 does not
# have and the MNIST experiment uses):

# %%
wt.show_source(ddpm.loss_terms)
wt.show_source(ddpm.step);

# %% [markdown]
# ## MNIST (smoke budget)
#
# The denoiser is an MLP with a sinusoidal time embedding (the paper uses a 35.7M-parameter U-Net, far too slow on
# one CPU thread) and a time-conditioned skip path from $x_t$ to the output, standing in for the U-Net's skips. The
# smoke budget trains a one-hidden-layer MLP on 14x14 digits for 400 steps: it checks that $L_\text{simple}$ falls and
# that samples have a mostly dark background like the data; it measures nothing about the claim.

# %%
result, run_dir = wt.smoke("ddpm/mnist")
mn = result["metrics"]
print(f"smoke verdict: {result['verdict']} | L_simple {mn['loss_first']:.3f} -> {mn['loss_last']:.3f} | background "
      f"pixels: samples {mn['background_frac']:.2f}, data {mn['background_frac_data']:.2f}")
rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
fig, ax = plt.subplots(figsize=(5.5, 3))
ax.plot([r["step"] for r in rows if "loss" in r], [r["loss"] for r in rows if "loss" in r])
ax.set_xlabel("step")
ax.set_ylabel(r"$L_{simple}$ (mean over pixels)")
ax.set_title("Algorithm 1 at the smoke budget", fontsize=9)
plt.show()

# %% [markdown]
# Now Algorithm 2 with the saved denoiser (the exponential moving average of its weights, as the paper samples),
# with each of Section 3.2's variances from the same starting noise, keeping a few intermediate states for the
# reverse-chain figure. 1000 steps for 18 samples of a small MLP take a few seconds.

# %%
denoiser = mlreads.load_run(run_dir)["ddpm"]
side = math.isqrt(denoiser.cfg.d_data)
chains = {}
for kind in ("beta", "beta_tilde"):
    x_0, chains[kind] = ddpm.sample(denoiser, s, (18, side * side), torch.Generator().manual_seed(1), sigma2=kind,
                                    keep=(1000, 750, 500, 250, 100, 50, 0), clip_x0=True)
fig = reverse_chain_figure(chains["beta"], n=4, side=side, kind="beta")
plt.show()
both = torch.cat([chains["beta"][0], chains["beta_tilde"][0]])
fig = image_grid(((both + 1) / 2).clamp(0, 1), "rows 1-3: sigma^2 = beta; rows 4-6: beta-tilde (same noise)", side)
plt.show()

# %% [markdown]
# ## Table 2: which objective? (smoke budget)
#
# The ablation trains the same denoiser with four objectives: $\epsilon$ with $L_\text{simple}$, $\epsilon$ with the
# true bound (Eq 12), $\tilde\mu$ with the true bound (Eq 10) and $\tilde\mu$ with an unweighted MSE. At the quick
# budget it measures likelihood in 2-D (eight Gaussians on a ring, where the bound can be computed) and sample quality
# on 14x14 MNIST (where there is detail for $L_\text{simple}$ to favour). The smoke budget trains only the
# $\epsilon$ + $L_\text{simple}$ arm in 2-D for 1000 steps: a pipeline check.

# %%
result, run_dir = wt.smoke("ddpm/objective-ablation")
ab = result["metrics"]
print(f"smoke verdict: {result['verdict']} | sliced W1 to held-out data: samples {ab['sw_eps_simple']:.3f}, "
      f"pure noise {ab['sw_noise_baseline']:.3f}")

# %% [markdown]
# Fresh samples from the saved 2-D denoiser beside held-out data, drawn with the package's figure function (at the
# quick budget it has one panel per objective), titled with their sliced Wasserstein-1 distance to the held-out
# points (the package's `sliced_wasserstein`; lower is better):

# %%
arm = mlreads.load_run(run_dir)["eps_simple"]
held_out = eight_gaussians(1000, torch.Generator().manual_seed(2))
x_2d, _ = ddpm.sample(arm, s, (1000, 2), torch.Generator().manual_seed(3), sigma2="beta")
sw = sliced_wasserstein(x_2d.double(), held_out.double(), 128, torch.Generator().manual_seed(4))  # of these samples
fig = ablation_figure(held_out, {"eps_simple": x_2d}, {"sw_eps_simple": sw})
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (10 minutes each on a 2-core CPU) decide the claims; these cells read them from the ledger
# (`results/`), so they always show the current verdict and, when a claim is not reproduced, which check decided it.

# %%
print(wt.published("ddpm/forward-process"))
print()
print(wt.published("ddpm/mnist"))
print()
print(wt.published("ddpm/objective-ablation"))

# %% [markdown]
# **Read next.** The model and the equations: `src/mlreads/generative/ddpm.py` (its docstring maps each name to the
# paper and lists the deviations; `schedules.py` has the other beta schedules and timestep spacings diffusers users
# know); the experiments: `src/mlreads/generative/exp_ddpm_forward_process.py`,
# `src/mlreads/generative/exp_ddpm_mnist.py` and `src/mlreads/generative/exp_ddpm_objective_ablation.py`; the claims'
# pages: `reports/claims/ddpm__forward-process/index.html`, `reports/claims/ddpm__mnist/index.html` and
# `reports/claims/ddpm__objective-ablation/index.html` after `mlreads report`. The other generative model of the
# reading list, trained on the same digits: [gan.ipynb](gan.ipynb).
