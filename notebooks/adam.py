# %% [markdown]
# # Adam: A Method for Stochastic Optimization
#
# **Paper.** Kingma & Ba 2015 (ICLR), [arXiv:1412.6980](https://arxiv.org/abs/1412.6980). With Reddi, Kale & Kumar
# 2018, "On the Convergence of Adam and Beyond" (ICLR), which found a counterexample to the paper's convergence
# theorem.
#
# **The idea.** Give every parameter its own step size. Adam keeps two exponential moving averages of the gradient,
# of $g$ (momentum) and of $g^2$ (its uncentred variance), and steps by their ratio $\hat m / \sqrt{\hat v}$: a step
# whose size is about $\alpha$ whatever the scale of the gradient, smaller where the gradient is noisy. Both averages
# start at zero and are therefore biased towards zero early on; dividing by $1 - \beta^t$ removes that bias, which
# matters most when $\beta_2$ is close to 1.
#
# **Our claims.**
# - `adam/logreg-mnist` (Fig 1, left): on L2-regularised logistic regression, Adam converges like SGD with Nesterov
#   momentum, and both faster than AdaGrad.
# - `adam/mlp-mnist` (Fig 2a): on an MNIST MLP with dropout, Adam reaches the lowest training cost of five
#   optimisers.
# - `adam/bias-correction` (Section 3, Fig 4): without bias correction, $\beta_2$ near 1 makes training unstable;
#   with it, $\beta_2 = 0.9999$ is as good as $0.99$.
# - `adam/regret-counterexample` (against Theorem 4.1): on Reddi et al.'s online problem Adam's average regret does
#   not vanish, so the paper's $O(\sqrt T)$ regret bound cannot hold as stated; AMSGrad converges.
#
# Below: Algorithm 1 beside the code, bias correction in closed form and on a VAE, smoke runs of the two MNIST
# comparisons, and the counterexample.

# %%

import matplotlib.pyplot as plt
import numpy as np
import torch

from mlreads.core.report import walkthrough as wt
from mlreads.optim import Adam, bias_corrections, first_step_size, update_moments
from mlreads.optim.exp_adam_regret_counterexample import RegretConfig, online_run
from mlreads.optim.exp_common import lr_grid
from mlreads.optim.vae import VAE

torch.manual_seed(0)
torch.set_num_threads(1)


# %% [markdown]
# ## Algorithm 1
#
# With gradient $g_t$ at step $t$, step size $\alpha$ (default 0.001), $\beta_1 = 0.9$, $\beta_2 = 0.999$ and
# $\epsilon = 10^{-8}$:
#
# $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2,$$
#
# $$\hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
# \theta_t = \theta_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}.$$
#
# The package splits it the same way: the two moving averages, the two bias corrections, and the optimiser's `step`
# that puts them together (with switches for the paper's variants: no bias correction, the $\hat\epsilon$ form of
# Section 2, AdamW, AMSGrad).

# %%
wt.show_source(update_moments)
wt.show_source(bias_corrections);

# %% [markdown]
# The package's Adam follows `torch.optim.Adam` operation for operation, so the two trajectories are identical (the
# package's tests hold this in float32 and float64). A check on a small least-squares problem:

# %%
A, b = torch.randn(20, 5, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
thetas = [torch.zeros(5, dtype=torch.float64, requires_grad=True) for _ in range(2)]
opts = [Adam([thetas[0]], lr=0.01), torch.optim.Adam([thetas[1]], lr=0.01)]
for _ in range(200):
    for theta, opt in zip(thetas, opts):
        opt.zero_grad()
        ((A @ theta - b) ** 2).mean().backward()
        opt.step()
print("max |ours - torch.optim.Adam| after 200 steps:", (thetas[0] - thetas[1]).abs().max().item())

# %% [markdown]
# ## Section 3: why bias correction matters
#
# Started at $v_0 = 0$, the average $v_t$ is a weighted sum of the $g_s^2$ whose weights add up to
# $1 - \beta_2^t$, not 1, so for a stationary gradient $\mathbb E[v_t] \approx (1 - \beta_2^t)\, \mathbb E[g_t^2]$,
# and likewise for $m_t$. Without the corrections the step is $\alpha\, m_t/\sqrt{v_t}$, which is
# $(1 - \beta_1^t)/\sqrt{1 - \beta_2^t}$ times the corrected one. At $t = 1$ that is
# $(1 - \beta_1)/\sqrt{1 - \beta_2}$: $10\alpha$ for $\beta_1 = 0.9$, $\beta_2 = 0.9999$.

# %%
wt.show_source(first_step_size)
print("first step / alpha without correction, b2 = 0.9999:", first_step_size(1.0, 0.9, 0.9999, False))

# %%
t = np.arange(1, 5001)
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for beta2 in (0.99, 0.999, 0.9999):
    c1, c2 = bias_corrections(0.9, beta2, t)
    ax.plot(t, c1 / np.sqrt(c2), label=f"β2 = {beta2}")
ax.axhline(1, color="grey", ls="--")
ax.set(xscale="log", yscale="log", xlabel="step t", ylabel="uncorrected step / corrected step",
       title="Section 3: how far too large uncorrected steps are (β1 = 0.9)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# At $\beta_2 = 0.9999$ the uncorrected steps stay too large for thousands of steps, while the moments are still
# dominated by their zero start. Section 6.4 trains a variational autoencoder (Kingma & Welling 2014; the package's
# `VAE`, 784-500-50, Bernoulli pixels) with and without correction over $\beta_2 \in \{0.99, 0.999, 0.9999\}$ and
# finds the uncorrected runs at $\beta_2$ near 1 unstable. The loss is the negative ELBO, reconstruction plus KL:

# %%
wt.show_source(VAE.neg_elbo_each);

# %% [markdown]
# The smoke budget trains the VAE at $\alpha = 0.003$, $\beta_2 \in \{0.99, 0.9999\}$, with and without correction,
# for three epochs of 2,000 images (the quick budget: 30 epochs of 10,000 and three step sizes): a pipeline check.
# The run logged each training curve (in the order: 0.99 corrected, 0.99 uncorrected, 0.9999 corrected, 0.9999
# uncorrected), and measured the first step on the VAE's own parameters against Section 3's $10\alpha$.

# %%
result, run_dir = wt.smoke("adam/bias-correction")
m = result["metrics"]
print(f"first step, uncorrected / corrected at b2 = 0.9999: measured {m['first_step_ratio']:.4f}, "
      f"predicted {m['first_step_pred']:.4f}")
for key in sorted(k for k in m if k.startswith("loss_")):
    print(f"{key}: final -ELBO {m[key]:.1f} nats")

# %%
labels = [(b2, corr) for b2 in result["config"]["beta2s"] for corr in ("corrected", "uncorrected")]
fig, ax = plt.subplots(figsize=(6.5, 4))
for (b2, corr), run in zip(labels, wt.fits(run_dir).values()):
    ax.plot([r["step"] for r in run], [r["loss"] for r in run], color="C0" if b2 == 0.99 else "C3",
            ls="-" if corr == "corrected" else "--", label=f"β2 = {b2}, {corr}")
ax.set(yscale="log", xlabel="step", ylabel="training loss, -ELBO (nats)", title="VAE, α = 0.003 (smoke budget)")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Fig 1 (left): logistic regression on MNIST
#
# Section 6.1 trains L2-regularised multiclass logistic regression with minibatches of 128 and a decaying step
# $\alpha_t = \alpha/\sqrt t$, and finds Adam on par with SGD with Nesterov momentum and faster than AdaGrad. The
# experiment gives each optimiser a grid of three step sizes and keeps its best; the smoke budget uses the middle one
# for three epochs on 10,000 images (a pipeline check; the quick budget runs 20 epochs on 50,000). AdaGrad and
# SGD-Nesterov are `torch.optim`'s, and the package's Adam is the one shown above.

# %%
result, run_dir = wt.smoke("adam/logreg-mnist")
n_train, batch = result["config"]["n_train"], result["config"]["batch_size"]
names = [name for name, lrs in lr_grid(result["config"]["lrs"]) for _ in lrs]  # the runs, in the order they ran
logreg = {}
for name, run in zip(names, wt.fits(run_dir).values()):
    evals = [r for r in run if "train_cost" in r]
    logreg[name] = ([r["step"] * batch / n_train for r in evals], [r["train_cost"] for r in evals])
print({name: round(result["metrics"][f"cost_{name}"], 4) for name in logreg})

# %% [markdown]
# ## Fig 2a: a multilayer network with dropout
#
# Section 6.2 trains a 784-1000-1000-10 ReLU network with dropout and compares Adam with AdaGrad, RMSProp,
# SGD-Nesterov and AdaDelta. The experiment runs each at its standard step size and at three times it, on the same
# initial weights, batches and dropout masks, and keeps the better of the two. The smoke budget shrinks the net to
# 2×128 and trains six epochs on 2,000 images: a pipeline check.

# %%
result, run_dir = wt.smoke("adam/mlp-mnist")
m = result["metrics"]
n_train, batch = result["config"]["n_train"], result["config"]["batch_size"]
grid = lr_grid(result["config"]["lrs"])
runs = dict(zip([(name, lr) for name, lrs in grid for lr in lrs], wt.fits(run_dir).values()))
mlp = {}
for name, lrs in grid:
    lr = min(lrs, key=lambda lr: m[f"cost_{name}_{lr:g}"])  # the better of its two step sizes
    evals = [r for r in runs[(name, lr)] if "train_cost" in r]
    mlp[f"{name} ({lr:g})"] = ([r["step"] * batch / n_train for r in evals], [r["train_cost"] for r in evals])
print({name: round(m[f"cost_{name}"], 4) for name, _ in grid})

# %% [markdown]
# Both smoke runs' training cost against epochs, each optimiser at its best step size:

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for ax, curves, title in ((axes[0], logreg, "logistic regression (cf. Fig 1, left)"),
                          (axes[1], mlp, "dropout MLP (cf. Fig 2a)")):
    for label, (epochs, cost) in curves.items():
        ax.plot(epochs, cost, "o-", ms=3, label=label)
    ax.set(yscale="log", xlabel="epoch", ylabel="training cost (nats)", title=f"{title}, smoke budget")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Theorem 4.1 and its counterexample
#
# Section 4 analyses Adam in online convex optimisation and states a regret of $O(\sqrt T)$, so that the average
# regret $R_T / T$ goes to 0. Reddi et al. 2018 show the proof is flawed with a one-dimensional problem on
# $x \in [-1, 1]$:
#
# $$f_t(x) = \begin{cases} C x & t \bmod 3 = 1 \\ -x & \text{otherwise,} \end{cases} \qquad C = 3 .$$
#
# Over every three steps the sum is $(C - 2)x$, minimised at $x^* = -1$. But with $\beta_1 = 0$ and
# $\beta_2 = 1/(1 + C^2)$, $v_t$ follows the latest $g_t^2$ closely: the large gradient $C$ inflates $v_t$ for the
# very step it comes with, so that step moves $x$ no further than each $-1$ gradient does. Two steps towards $+1$ for
# each one towards $-1$: Adam drifts to the worst point $x = +1$. AMSGrad, which normalises by the running maximum of $v_t$, converges. The experiment runs the package's
# Adam (with `amsgrad=True` for AMSGrad), $\alpha_t = 0.1/\sqrt t$, projected onto $[-1, 1]$ after each step:

# %%
wt.show_source(online_run);

# %% [markdown]
# The smoke budget's 3,000 steps take a second, so we call the experiment's function directly (the quick budget runs
# 30,000 steps):

# %%
cfg = RegretConfig(steps=3000)
trajectories = {"Adam": online_run(cfg, amsgrad=False), "AMSGrad": online_run(cfg, amsgrad=True)}
fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.6))
for name, (xs, regret) in trajectories.items():
    a.plot(range(1, len(xs) + 1), xs, lw=0.8, label=name)
    b.plot(range(1, len(regret) + 1), regret, label=name)
a.axhline(-1, color="grey", ls="--", label="optimum x* = -1")
a.set(xscale="log", xlabel="step t", ylabel="x_t", title="the iterate")
b.set(xscale="log", xlabel="step t", ylabel="average regret R_t / t", title="average regret")
a.legend(fontsize=8)
b.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (the claim's own budget, minutes on a 2-core CPU) decide the claims; these cells read
# them from the ledger (`results/`), so they always show the current verdicts. For the counterexample,
# "reproduced" means the counterexample holds: Theorem 4.1 as stated fails.

# %%
print(wt.published("adam/logreg-mnist"))

# %%
print(wt.published("adam/mlp-mnist"))

# %%
print(wt.published("adam/bias-correction"))

# %%
print(wt.published("adam/regret-counterexample"))

# %% [markdown]
# **Read next.** The optimiser: `src/mlreads/optim/adam.py` (its docstring maps every line to Algorithm 1 and lists
# where it follows `torch.optim.Adam`); the VAE: `src/mlreads/optim/vae.py`. The experiments:
# `src/mlreads/optim/exp_adam_logreg_mnist.py`, `src/mlreads/optim/exp_adam_mlp_mnist.py`,
# `src/mlreads/optim/exp_adam_bias_correction.py` and `src/mlreads/optim/exp_adam_regret_counterexample.py`. The
# claims' pages, after `mlreads report`: `reports/claims/adam__logreg-mnist/index.html`,
# `reports/claims/adam__mlp-mnist/index.html`, `reports/claims/adam__bias-correction/index.html` and
# `reports/claims/adam__regret-counterexample/index.html`.
