# %% [markdown]
# # Generative Adversarial Nets
#
# **Paper.** Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville & Bengio 2014, *Generative
# Adversarial Nets*, NIPS 2014, [arXiv:1406.2661](https://arxiv.org/abs/1406.2661).
#
# **The idea.** Train a generator $G$, which turns noise $z$ into samples, against a discriminator $D$, which tells
# real data from $G$'s output. $D$ is trained to be right, $G$ to make $D$ wrong. No likelihood, no Markov chain, no
# inference network: both are ordinary networks trained by backpropagation. The paper proves that, with enough
# capacity, this two-player game has its optimum exactly where $G$'s distribution equals the data's.
#
# **Our claims.**
# - `gan/optimal-discriminator` (Proposition 1, Theorem 1, Fig 1): for a fixed $G$ the best discriminator is
#   $p_\text{data} / (p_\text{data} + p_g)$, and the value of the game at that discriminator is
#   $-\log 4 + 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g)$.
# - `gan/mnist` (Table 1, Fig 2): adversarial nets reach a Parzen-window log-likelihood of 225 ± 2 nats on MNIST,
#   and their samples are not copies of training images.
#
# This walkthrough reads the objective and the theory with the code that implements them, checks Theorem 1 by
# quadrature, runs both experiments at the smoke budget (seconds: pipeline checks, not measurements) and draws Fig 1,
# the training curves, samples and Fig 2 from the runs' outputs.

# %%
import json
import math

import matplotlib.pyplot as plt
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.generative.exp_common import mnist_tensors
from mlreads.generative.figures import (
    discriminator_figure,
    gan_curves_figure,
    image_grid,
    neighbours_grid,
)
from mlreads.generative.gan import (
    d_loss,
    g_loss,
    joint_loss,
    jsd,
    normal_pdf,
    optimal_discriminator,
    value,
    virtual_training_criterion,
)
from mlreads.generative.metrics import nearest_distances, parzen_log_likelihood

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Eq 1 and Algorithm 1: the two-player game
#
# $$\min_G \max_D V(D, G) = \mathbb{E}_{x \sim p_\text{data}}\big[\log D(x)\big]
#   + \mathbb{E}_{z \sim p_z}\big[\log\big(1 - D(G(z))\big)\big]$$
#
# Algorithm 1 alternates $k$ steps of gradient ascent on $V$ for $D$ (the paper used $k = 1$) with one step for $G$.
# Early in training $D$ rejects $G$'s samples confidently, $\log(1 - D(G(z)))$ saturates and gives $G$ almost no
# gradient; so Section 3 trains $G$ to *maximise* $\log D(G(z))$ instead, which has the same fixed point and strong
# gradients early. The package writes both steps as losses to minimise ($D$ outputs a logit, so each log is a binary
# cross-entropy):

# %%
wt.show_source(d_loss)
wt.show_source(g_loss);

# %% [markdown]
# ## Proposition 1 and Theorem 1: the optimal discriminator
#
# For fixed $G$, $V$ is $\int p_\text{data}(x) \log D(x) + p_g(x) \log(1 - D(x))\, dx$, and $a \log y + b \log(1 - y)$
# is maximised at $y = a / (a + b)$, pointwise. So
#
# $$D^*_G(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)} \quad \text{(Eq 2)}, \qquad
#   C(G) = \max_D V(D, G) = -\log 4 + 2\, \mathrm{JSD}(p_\text{data} \,\|\, p_g) \quad \text{(Theorem 1)},$$
#
# and since the Jensen-Shannon divergence is non-negative and zero only for equal distributions, the game's global
# minimum $C(G) = -\log 4$ is reached exactly when $p_g = p_\text{data}$, where $D^* = 1/2$ everywhere. The package's
# functions for the 1-D experiment, which integrate on a grid:

# %%
wt.show_source(optimal_discriminator)
wt.show_source(value)
wt.show_source(virtual_training_criterion)
wt.show_source(jsd);

# %% [markdown]
# A check of Theorem 1 by quadrature: hold $p_\text{data} = \mathcal{N}(2, 0.5^2)$ (the experiment's) and move
# $p_g = \mathcal{N}(\mu, s^2)$. For each, plug $D^*$ into $V$ and compare with $-\log 4 + 2\,\mathrm{JSD}$: the two
# agree to quadrature precision, and $C(G)$ touches $-\log 4$ only where $p_g = p_\text{data}$ ($\mu = 2$, $s = 0.5$).

# %%
xq = torch.linspace(-10, 12, 22_001, dtype=torch.float64)  # wide enough that no density loses mass off the grid
dq = float(xq[1] - xq[0])
pdq = normal_pdf(xq, 2.0, 0.5)
mus = torch.linspace(-1, 5, 61)
fig, ax = plt.subplots(figsize=(6.4, 3.6))
for s in (0.5, 1.0):
    pgs = [normal_pdf(xq, float(mu), s) for mu in mus]
    v_at_dstar = [float(value(optimal_discriminator(pdq, pg), pdq, pg, dq)) for pg in pgs]
    thm1 = [float(virtual_training_criterion(pdq, pg, dq)) for pg in pgs]
    print(f"s = {s}: max |V(D*, G) - (-log 4 + 2 JSD)| = {max(abs(a - b) for a, b in zip(v_at_dstar, thm1)):.1e}")
    ax.plot(mus, v_at_dstar, lw=3, alpha=0.5, label=f"V(D*, G) with $p_g = N(\\mu, {s}^2)$")
    ax.plot(mus, thm1, "k:", lw=1)
ax.plot([], [], "k:", label="-log 4 + 2 JSD (Theorem 1)")
ax.axhline(-math.log(4), color="grey", ls="--", lw=0.8, label="-log 4")
ax.set_xlabel(r"mean $\mu$ of $p_g$ ($p_{data} = N(2, 0.5^2)$)")
ax.set_ylabel("C(G) (nats)")
ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
plt.show()

# %% [markdown]
# ## Fig 1: a trained discriminator approaches $D^*$ (smoke budget)
#
# The experiment holds $G$ fixed ($p_g = \mathcal{N}(0, 1)$), trains a small MLP discriminator on fresh samples with
# Algorithm 1's $D$ objective, and compares it with $D^*$ on a grid; then it repeats with $p_g = p_\text{data}$, where
# $D$ should be $1/2$ and $V = -\log 4$. The smoke budget trains 800 steps instead of 3,000: a pipeline check.

# %%
result, run_dir = wt.smoke("gan/optimal-discriminator")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | max |D - D*| {m['max_abs_d_minus_dstar']:.3f} | V(D, G) "
      f"{m['value_learned']:.4f} vs C(G) {m['c_of_g']:.4f} | with p_g = p_data: V {m['equal_value']:.4f} "
      f"(-log 4 = {-math.log(4):.4f})")

# %% [markdown]
# The run saved both discriminators; `mlreads.load_run` rebuilds them, and we evaluate them on the grid and draw Fig 1
# with the package's figure function: the data density (black, dotted), $p_g$ (green), $D^*$ (thick) and the trained
# $D$ (dashed).

# %%
discs = mlreads.load_run(run_dir)
x = torch.linspace(-6, 8, 14_001, dtype=torch.float64)  # the experiment's grid
pd, pg = normal_pdf(x, 2.0, 0.5), normal_pdf(x, 0.0, 1.0)
grid = x.float()[:, None]
with torch.no_grad():
    d, d_eq = (torch.sigmoid(discs[name](grid)).double() for name in ("disc", "disc-equal"))
fig = discriminator_figure(x, pd, pg, optimal_discriminator(pd, pg), d, d_eq)
plt.show()

# %% [markdown]
# ## MNIST (smoke budget)
#
# The MNIST model follows the official code's `mnist.yaml`: $G$ maps 100-d noise, uniform on $[-\sqrt 3, \sqrt 3]$,
# through two ReLU layers to 784 sigmoid pixels; $D$ is two maxout layers with dropout. The experiment trains it with
# that file's recipe (SGD with a momentum ramp, small uniform initial weights) and the official code's update, where
# both players take their step at once from gradients of the same $D$ and $G$ (`joint_loss`; Algorithm 1 alternates
# them), then scores 10,000 samples. Table 1's number is a Parzen-window
# estimate: a Gaussian kernel density with one centre per sample, its width $\sigma$ chosen on validation images,
# evaluated on the test set,
#
# $$\log \hat p(x) = \log \frac{1}{n} \sum_{i=1}^{n} \mathcal{N}(x;\, G(z_i),\, \sigma^2 I)
#   = \operatorname{logsumexp}_i\!\left(-\frac{\|x - G(z_i)\|^2}{2 \sigma^2}\right) - \log n
#   - \frac{d}{2} \log(2 \pi \sigma^2).$$
#
# Theis et al. 2016 showed this is a poor proxy for likelihood in 784 dimensions, so the experiment also reports
# class coverage, a Fréchet distance in a small classifier's feature space and the distance of each sample to its
# nearest training image (Fig 2's memorisation check).

# %%
wt.show_source(parzen_log_likelihood)
wt.show_source(joint_loss);

# %% [markdown]
# The smoke budget trains tiny nets (128-128 generator, 64-unit maxout discriminator) for 400 steps and skips the
# scoring: it checks only that $G$ moves towards the data's mean image and that $D$ still tells real from generated.

# %%
result, run_dir = wt.smoke("gan/mnist")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | D(x) {m['d_real']:.3f}, D(G(z)) {m['d_fake']:.3f} | mean-pixel error "
      f"{m['mean_pixel_err']:.3f} (at init {m['mean_pixel_err_init']:.3f})")

# %% [markdown]
# The training curves, redrawn from the run's log (`metrics.jsonl`) with the package's figure function: the two
# losses (left) and $D$'s mean output on a fixed set of real and generated images (right). In the ideal game both
# outputs end at 1/2; a discriminator that wins outright drives $D(G(z))$ to 0 and leaves $G$ no signal (the quick
# budget's precondition catches that).

# %%
rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
fig = gan_curves_figure(rows)
plt.show()

# %% [markdown]
# Samples from the saved generator, and Fig 2's check: each of 8 samples above the training image nearest to it in
# Euclidean distance. After 400 steps of a tiny net the samples are not digits yet, and they may all look alike (the
# collapse the quick budget's class-coverage check looks for); what matters here is that the pipeline (sampling,
# nearest neighbours among the 50,000 training images) runs.

# %%
gan = mlreads.load_run(run_dir)["gan"]
x_train = mnist_tensors()["train"][0]  # (50000, 784) in [0, 1]
with torch.no_grad():
    samples = gan.sample(64, torch.Generator().manual_seed(0))
fig = image_grid(samples, "smoke-budget GAN samples (the first 64, not cherry-picked)")
plt.show()
dist, idx = nearest_distances(samples[:8], x_train)
fig = neighbours_grid(samples[:8], x_train[idx])
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (10 minutes each on a 2-core CPU) decide the claims; these cells read them from the ledger
# (`results/`), so they always show the current verdict.

# %%
print(wt.published("gan/optimal-discriminator"))
print()
print(wt.published("gan/mnist"))

# %% [markdown]
# **Read next.** The model and the theory: `src/mlreads/generative/gan.py` (its docstring maps the code to the paper
# and lists the deviations); the experiments: `src/mlreads/generative/exp_gan_optimal_discriminator.py` and
# `src/mlreads/generative/exp_gan_mnist.py` (the official recipe and every sample metric); the metrics:
# `src/mlreads/generative/metrics.py`; the claims' pages: `reports/claims/gan__optimal-discriminator/index.html` and
# `reports/claims/gan__mnist/index.html` after `mlreads report`. Another generative model trained on the same digits:
# [ddpm.ipynb](ddpm.ipynb).
