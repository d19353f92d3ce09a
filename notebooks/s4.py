# %% [markdown]
# # Structured state spaces: HiPPO, LSSL, S4 and S4D
#
# **Papers.** Gu, Dao, Ermon, Rudra, Ré 2020, "HiPPO: Recurrent Memory with Optimal Polynomial Projections",
# [arXiv:2008.07669](https://arxiv.org/abs/2008.07669); Gu et al. 2021, "Combining Recurrent, Convolutional, and
# Continuous-time Models with Linear State-Space Layers" (LSSL), [arXiv:2110.13985](https://arxiv.org/abs/2110.13985);
# Gu, Goel, Ré 2021, "Efficiently Modeling Long Sequences with Structured State Spaces" (S4),
# [arXiv:2111.00396](https://arxiv.org/abs/2111.00396); Gu, Gupta, Goel, Ré 2022, "On the Parameterization and
# Initialization of Diagonal State Space Models" (S4D), [arXiv:2206.11893](https://arxiv.org/abs/2206.11893).
#
# **The idea.** A linear state-space model $x'(t) = A x(t) + B u(t)$, $y = C x + D u$ maps a sequence to a sequence
# through an $N$-dimensional state. HiPPO picks $A$ so that the state is, at every moment, the best polynomial
# summary of the whole input history seen so far. LSSL discretises the model and notices it is at once a recurrence
# (cheap per step) and a convolution with a kernel $\bar K$ (parallel over the sequence). S4 makes the kernel cheap to
# compute for HiPPO's $A$, by writing $A$ as normal plus low rank; S4D shows that a diagonal $A$ with a HiPPO-inspired
# initialisation does about as well, with a kernel that is a few lines of code.
#
# **Our claims.**
# - `s4/hippo-reconstruction`: HiPPO-LegS memorises a signal's history online as Legendre coefficients; a random $A$
#   of the same size cannot.
# - `s4/mnist-init`: a HiPPO $A$ beats a random $A$ by a wide margin on permuted (and sequential) MNIST (LSSL §5.4:
#   random about 62%, HiPPO 98.60% fixed, 98.76% trained, on permuted MNIST).
# - `s4/smnist`: S4 and S4D classify sequential MNIST, the image read one pixel at a time (the papers: S4 99.63%).
#
# The walkthrough goes from the HiPPO matrix to the discretised kernel to the layer, showing the package code at each
# step, runs the three experiments at the smoke budget (seconds each: pipeline checks on pooled 49-pixel images, not
# measurements of the papers) and draws the figures from what they trained.

# %%
import json

import matplotlib.pyplot as plt
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.core.run import seeding
from mlreads.s4 import (
    S4Config,
    S4DKernel,
    S4Kernel,
    SequenceClassifier,
    bilinear,
    dplr_legs,
    krylov_kernel,
    legs,
    random_a,
    vandermonde_kernel,
    zoh_diag,
)
from mlreads.s4.exp_common import DataConfig, mnist_views
from mlreads.s4.exp_hippo_reconstruction import ReconConfig, smooth_signals
from mlreads.s4.memory import legendre_reconstruct, scaled_online_states

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## HiPPO-LegS: a state that remembers the whole history
#
# HiPPO asks for the coefficients $x(t) \in \mathbb{R}^N$ of the best approximation of the input's history
# $f|_{[0, t]}$ by Legendre polynomials, stretched over $[0, t]$ (the "scaled Legendre" measure, LegS). Those
# coefficients obey a linear ODE,
#
# $$\frac{d}{dt} x(t) = \frac{1}{t} \big(A x(t) + B f(t)\big), \qquad
#   A_{nk} = -\begin{cases} \sqrt{2n+1}\sqrt{2k+1} & n > k \\ n + 1 & n = k \\ 0 & n < k \end{cases}, \qquad
#   B_n = \sqrt{2n+1}$$
#
# (HiPPO Theorem 2, written with the stable sign that the package and the S4 code use). The package builds $A$ and
# $B$, and runs the memory online with the bilinear step $\Delta_k = 1/k$:

# %%
wt.show_source(legs)
wt.show_source(scaled_online_states);

# %% [markdown]
# `s4/hippo-reconstruction` feeds random smooth signals to the LegS memory and to a random $A$ of the same size (the
# scale of LSSL's ablation), keeps only the final state $x(1)$, and asks how well the whole history can be rebuilt
# from it. The smoke run is short (signals of 300 samples); it takes a few seconds.

# %%
result, run_dir = wt.smoke("s4/hippo-reconstruction")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | relative MSE of the rebuilt history: LegS {m['mse_legs']:.4f}, "
      f"random A {m['mse_random']:.4f} (ratio {m['mse_ratio_random_over_legs']:.0f})")

# %% [markdown]
# The picture, recomputed with the package's functions on the smoke configuration: LegS with its analytic Legendre
# read-out $f(s) \approx \sum_n x_n(1)\, \sqrt{2n+1}\, P_n(2s - 1)$ (nothing fitted), and the random $A$ with the best
# linear read-out that least squares can fit on training signals. On the right, why the random $A$ fails: the
# singular values of its final states over many signals fall off a cliff after a few directions, so most of the
# history never makes it into the state.

# %%
cfg = ReconConfig(**result["config"])
gen = torch.Generator().manual_seed(0)
f_train, f_test = smooth_signals(cfg.n_train, cfg, gen), smooth_signals(2, cfg, gen)  # (M, L) each
a_legs, b_legs = legs(cfg.d_state)
a_rand, b_rand = random_a(cfg.d_state, torch.Generator().manual_seed(1))
x_legs, x_rand = scaled_online_states(a_legs, b_legs, f_test), scaled_online_states(a_rand, b_rand, f_train)
readout = torch.linalg.pinv(x_rand, rtol=1e-12) @ f_train  # (N, L): the random A's best linear read-out
s = (torch.arange(cfg.length) + 0.5) / cfg.length
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [2, 1]})
axes[0].plot(s, f_test[0], color="0.6", lw=4, label="signal f")
axes[0].plot(s, legendre_reconstruct(x_legs, cfg.length)[0], label="LegS, Legendre read-out (no fitting)")
axes[0].plot(s, scaled_online_states(a_rand, b_rand, f_test)[0] @ readout, label="random A, fitted read-out")
axes[0].set(xlabel="time s (the state is read at s = 1)", ylabel="f(s)")
axes[0].legend(fontsize=8)
for name, x in (("LegS", scaled_online_states(a_legs, b_legs, f_train)), ("random A", x_rand)):
    sv = torch.linalg.svdvals(x)  # (N,)
    axes[1].semilogy(sv / sv[0], ".-", label=name)
axes[1].set(xlabel="index", ylabel="singular value / largest", title="final states over training signals")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## From continuous to discrete: recurrence and convolution
#
# A sequence model samples the input every $\Delta$. With the bilinear rule (S4 eq. 3; LSSL's generalised bilinear
# transform) or the zero-order hold (S4D),
#
# $$\text{bilinear: } \bar A = (I - \tfrac{\Delta}{2} A)^{-1}(I + \tfrac{\Delta}{2} A), \quad
#   \bar B = (I - \tfrac{\Delta}{2} A)^{-1} \Delta B; \qquad
#   \text{ZOH: } \bar A = e^{\Delta A}, \quad \bar B = (\Delta A)^{-1}(e^{\Delta A} - I)\, \Delta B,$$
#
# the model becomes a recurrence $x_k = \bar A x_{k-1} + \bar B u_k$, $y_k = C x_k$, and unrolling it from $x_{-1} = 0$
# shows it is also a causal convolution,
#
# $$y = \bar K * u, \qquad \bar K = \left(C\bar B,\; C\bar A\bar B,\; \dots,\; C\bar A^{L-1}\bar B\right).$$

# %%
wt.show_source(bilinear)
wt.show_source(zoh_diag);

# %% [markdown]
# Computing $\bar K$ naively needs $L$ powers of an $N \times N$ matrix. **S4** writes HiPPO's $A$ as normal plus low
# rank, $A = V \Lambda V^* - P Q^\top$ (for LegS, $Q = P$ and rank 1), evaluates the kernel's generating function at
# the roots of unity with a Cauchy kernel and the Woodbury identity, and takes an inverse FFT (S4 Algorithm 1). The
# package's `S4Kernel` does that; its `step_form` rebuilds the dense $\bar A$, $\bar B$, $C$ of the same system, so we
# can check S4's algorithm against the plain powers of $\bar A$ (LSSL's Krylov kernel):

# %%
lam = dplr_legs(8).lam
print("eigenvalues of LegS's normal part (conjugate half, N = 8):", lam.numpy().round(2))
kernel = S4Kernel(S4Config(d_model=3, d_state=16, kernel="s4"), torch.Generator().manual_seed(0))
with torch.no_grad():
    k_s4 = kernel(100)  # (channels, L): Cauchy + Woodbury + inverse FFT
    form = kernel.step_form(100)
    k_powers = krylov_kernel(form.c, form.a_bar, form.b_bar, 100)  # (channels, L): C Ā^l B̄ by repeated squaring
print(f"largest |S4 kernel - C Ā^l B̄| = {(k_s4 - k_powers).abs().max():.1e} (kernel values up to "
      f"{k_s4.abs().max():.2f})")

# %% [markdown]
# **S4D** drops the low-rank term: $A = \Lambda$ diagonal and complex, in conjugate pairs, so only $N/2$ modes are kept
# and the kernel is a Vandermonde product,
#
# $$\bar K_\ell = 2\,\mathrm{Re} \sum_{n=0}^{N/2-1} C_n \bar B_n \bar A_n^{\ell}, \qquad
#   \bar A_n = e^{\Delta \Lambda_n} \text{ (ZOH)},$$
#
# with, for the S4D-Lin initialisation, $\Lambda_n = -\tfrac12 + i\pi n$ and $B_n = 1$.

# %%
wt.show_source(vandermonde_kernel)
wt.show_source(S4DKernel.discrete);

# %% [markdown]
# ## S4D on sequential MNIST (smoke budget)
#
# A `SequenceClassifier` is a linear encoder, a stack of S4 blocks (per channel an SSM convolution plus a skip $D u$,
# then GELU, a position-wise linear layer with a GLU, a residual connection, pre-norm), mean pooling over time and a
# linear decoder (S4 App. D.2). `s4/smnist` trains one with S4D kernels; at the smoke budget the image is pooled 4 x 4
# (a sequence of 49 pixels instead of 784), there is one layer and 300 steps on 10,000 images: a pipeline check.

# %%
result, run_dir = wt.smoke("s4/smnist")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | test accuracy {m['test_acc']:.1f}% on sequences of "
      f"{m['sequence_length']} pixels | {m['n_params']:,} parameters")

# %% [markdown]
# The model is a convolution during training and a recurrence at inference: `features_recurrent` runs it one pixel at
# a time through `ssm_step`, and gives the same features. On the right, what the first layer learnt: the convolution
# kernels $\bar K_\ell$ of its first four channels before and after training. The initial model is rebuilt from the
# seed the run derived for it (the smoke run is seed 0; `train_classifier` draws the weights from the stream
# `"init/s4"`).

# %%
saved = mlreads.load_saved(run_dir)["s4d"]
x, y = mnist_views(DataConfig(pool=4, n_train=1, n_eval=200, n_val=1), permute=False)["test"]  # (200, 49, 1)
with torch.no_grad():
    gap = (saved.model.features(x[:8]) - saved.model.features_recurrent(x[:8])).abs().max()
    k_trained = saved.model.blocks[0].kernel(x.shape[1])  # (H, L)
    initial = SequenceClassifier(saved.config, seeding.generator(0, "init/s4"))  # the run's own initial weights
    k_initial = initial.blocks[0].kernel(x.shape[1])  # (H, L)
print(f"largest |convolutional - recurrent| feature: {gap:.1e}")
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1, 2, 2]})
axes[0].imshow(x[0, :, 0].reshape(7, 7), cmap="gray")
axes[0].set(title=f"a test digit ({int(y[0])}), 7 x 7 = 49 steps", xticks=[], yticks=[])
for ax, k, name in ((axes[1], k_initial, "at initialisation"), (axes[2], k_trained, "after the smoke run")):
    for h in range(4):
        ax.plot(k[h], lw=1.2)
    ax.set(title=f"layer-0 S4D kernels {name}", xlabel="lag ℓ (pixels back)", ylabel="K_ℓ")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## HiPPO versus a random $A$ on permuted MNIST (smoke budget)
#
# LSSL's ablation keeps $A$ fixed and changes only where it comes from. `s4/mnist-init` trains the same LSSL-style
# model (a dense $A$ shared by the channels, bilinear, the Krylov kernel) twice, with $A$ = HiPPO-LegS and with a
# random $A$, on permuted MNIST: a fixed shuffle of the pixels, which spreads each stroke over the whole sequence, so
# the model needs long memory. Both models start from the same initial stream and see the same batches.

# %%
result, run_dir = wt.smoke("s4/mnist-init")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | permuted MNIST test accuracy: HiPPO A {m['acc_hippo']:.1f}%, "
      f"random A {m['acc_random']:.1f}%")

# %% [markdown]
# The validation accuracy during training, from the run's log: the HiPPO model's evaluations come first in
# `metrics.jsonl`, then the random model's (the step count starts again).

# %%
rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
evals = [r for r in rows if "val_acc" in r]
split = next(i for i in range(1, len(evals)) if evals[i]["step"] < evals[i - 1]["step"])
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, arm in (("HiPPO-LegS A", evals[:split]), ("random A", evals[split:])):
    ax.plot([r["step"] for r in arm], [100 * r["val_acc"] for r in arm], "o-", label=name)
ax.axhline(10, color="grey", ls="--", label="chance")
ax.set(xlabel="training step", ylabel="validation accuracy (%)", title="permuted MNIST, A fixed, 49 steps")
ax.legend()
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (up to 10 minutes each on a 2-core CPU: larger models, more steps, 196- or 49-pixel
# sequences as each experiment's notes say) decide the claims. These cells read the ledger (`results/`), so they
# always show the current verdicts.

# %%
print(wt.published("s4/hippo-reconstruction"))

# %%
print(wt.published("s4/mnist-init"))

# %%
print(wt.published("s4/smnist"))

# %% [markdown]
# **Read next.** The experiments: `src/mlreads/s4/exp_hippo_reconstruction.py`, `src/mlreads/s4/exp_mnist_init.py`
# and `src/mlreads/s4/exp_smnist.py` (shared data and training: `exp_common.py`); the model:
# `src/mlreads/s4/model.py` (its docstring lists the deviations), with `hippo.py`, `discretize.py` and `kernels.py`
# beside it. The claims' pages, after `mlreads report`: `reports/claims/s4__hippo-reconstruction/index.html`,
# `reports/claims/s4__mnist-init/index.html` and `reports/claims/s4__smnist/index.html`.
