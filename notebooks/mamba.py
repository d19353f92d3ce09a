# %% [markdown]
# # Mamba: selective state spaces
#
# **Paper.** Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
# [arXiv:2312.00752](https://arxiv.org/abs/2312.00752).
#
# **The idea.** S4-style models are linear and time-invariant: the same $\bar A$, $\bar B$, $C$ at every step, which
# is what lets them run as one long convolution. The price is that they cannot decide, token by token, what to keep:
# every input is written into the state the same way. Mamba makes $\Delta$, $B$ and $C$ functions of the current
# input (the *selection mechanism*, "S6"). A large $\Delta$ lets a token overwrite the state, a small one lets the
# state pass it by. The convolution view is lost, so Mamba computes the recurrence directly with a scan that never
# writes the expanded state (batch x length x channels x state) to slow memory; with a diagonal $A$ the per-token
# discretisation is elementwise.
#
# **Our claims.**
# - `mamba/selective-copying`: S6 (selective) solves selective copying; S4 (time-invariant) does not (Table 1: 99.8%
#   against 56.4% in the Mamba architecture).
# - `mamba/induction-extrapolation`: Mamba solves induction heads and extrapolates from training length 256 to
#   $2^{20}$ (Table 2: 100% at every length).
# - `mamba/induction-attention`: attention with learned absolute positions, having solved induction heads at length
#   256, does not extrapolate (Table 2, MHA-Abs: 58.6% at 512, 26.6% at 1024).
# - `mamba/lm-vs-transformer`: Mamba matches or beats a Transformer of the same size on language modelling (in the
#   spirit of Table 3).
# - `mamba/discretization-cost`: with a diagonal $A$, per-token ZOH discretisation costs $O(N)$, against the
#   $O(N^3)$ of a dense $A$ (Section 3.5).
#
# The walkthrough states the discretisation and the selective scan, shows the reference scan and checks the fast
# paths against it on small shapes, draws what selection does to a state, and runs three experiments at the smoke
# budget (pipeline checks on tiny models and short sequences, not measurements of the paper).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import mlreads
from mlreads.core.data.synthetic import selective_copying
from mlreads.core.report import walkthrough as wt
from mlreads.mamba import (
    MambaMixer,
    selective_scan,
    selective_scan_ref,
    selective_state_update,
)
from mlreads.mamba.exp_common import clean_noise_mask, delta_by_token_kind
from mlreads.mamba.exp_discretization_cost import zoh_dense, zoh_diag
from mlreads.mamba.scan import discretize

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## The selective SSM (Section 2, Section 3.2, Algorithm 2)
#
# Each of the $D$ channels runs a state space model with an $N$-dimensional state,
#
# $$h'(t) = A h(t) + B x(t), \quad y(t) = C h(t)
#   \qquad\longrightarrow\qquad
#   h_t = \bar A h_{t-1} + \bar B x_t, \quad y_t = C h_t,$$
#
# discretised with step $\Delta$ by the zero-order hold (Eq. 4),
#
# $$\bar A = \exp(\Delta A), \qquad \bar B = (\Delta A)^{-1}\big(\exp(\Delta A) - I\big)\cdot \Delta B .$$
#
# Selection (Algorithm 2) makes the parameters depend on the input at each step: $B_t = s_B(x_t)$ and
# $C_t = s_C(x_t)$ are linear projections to $N$, and $\Delta_t = \mathrm{softplus}(\text{Parameter} + s_\Delta(x_t))$
# per channel, where the package (like the official code) computes $s_\Delta$ as a projection down to a small rank $R$
# and back up to $D$ channels. $A$ stays an input-independent parameter, diagonal, initialised S4D-real,
# $A_n = -(n+1)$.
#
# Two details of the code matter for reading it. With a diagonal $A$, Eq. 4 is elementwise, and the official code
# (and this package) keeps $\bar A = \exp(\Delta A)$ but simplifies $\bar B$ to the Euler step $\Delta B$; the two
# agree to first order in $\Delta$. The one function every fast path uses:

# %%
wt.show_source(discretize);

# %% [markdown]
# The reference scan is the recurrence written as a loop over time, one step per token, with mamba-ssm's layout
# (`u` is $x$, shape (batch, D, L); $B$ and $C$ are (batch, N, L) when selective, (D, N) when constant) and the block's
# epilogue: the skip $D\,x_t$ and the gate $\mathrm{SiLU}(z_t)$.

# %%
wt.show_source(selective_scan_ref);

# %% [markdown]
# The package has three faster paths with the same semantics: `"loop"` (the same loop, vectorised over the
# discretisation), `"chunked"` (a custom autograd function that scans in chunks and recomputes the states in backward,
# the CPU counterpart of the paper's hardware-aware scan, Section 3.3.2) and `"fused"` (a C++ kernel, the default; it
# falls back to `"chunked"` where it cannot be compiled). On small shapes they all give the reference's output and
# last state, and stepping one token at a time with `selective_state_update` (the generation path) gives the same
# outputs again.

# %%
g = torch.Generator().manual_seed(0)
batch, D, N, L = 2, 4, 3, 10
u, z = torch.randn(batch, D, L, generator=g), torch.randn(batch, D, L, generator=g)
delta = torch.rand(batch, D, L, generator=g)
A = -torch.arange(1.0, N + 1).repeat(D, 1)  # (D, N): S4D-real
B, C = torch.randn(batch, N, L, generator=g), torch.randn(batch, N, L, generator=g)
skip = torch.ones(D)
y_ref, h_ref = selective_scan_ref(u, delta, A, B, C, skip, z, return_last_state=True)
for impl in ("loop", "chunked", "fused"):
    y, h = selective_scan(u, delta, A, B, C, skip, z, return_last_state=True, impl=impl, chunk_size=4)
    print(f"{impl:>8}: max |y - y_ref| {(y - y_ref).abs().max():.1e}, "
          f"max |h_L - h_L,ref| {(h - h_ref).abs().max():.1e}")
state = torch.zeros(batch, D, N)
steps = [selective_state_update(state, u[..., t], delta[..., t], A, B[..., t], C[..., t], skip, z[..., t])
         for t in range(L)]  # each updates `state` in place
print(f"    step: max |y - y_ref| {(torch.stack(steps, -1) - y_ref).abs().max():.1e}")

# %% [markdown]
# ## What selection does to the state
#
# One channel, one state entry, $A = -4$, $B = C = 1$, driven by a random input. With a time-invariant $\Delta$
# (here 0.3 everywhere) the state is a blurred running average of every token. With a selective $\Delta$ that is 1 on a
# few chosen tokens and $10^{-3}$ elsewhere, $\bar A = e^{-4\Delta}$ nearly erases the state at a chosen token and
# $\bar B x = \Delta x$ writes it in, while at the other tokens $\bar A \approx 1$ and $\bar B x \approx 0$: the state
# holds the last chosen token and ignores the rest. This is the reading of $\Delta$ in Section 3.5.1 (a large $\Delta$
# resets and focuses on the current input, a small one persists and ignores it), computed with the package's
# reference scan.

# %%
L = 60
x = torch.randn(1, 1, L, generator=torch.Generator().manual_seed(3))
chosen = torch.zeros(L, dtype=torch.bool)
chosen[[5, 18, 31, 47]] = True
deltas = {"time-invariant Δ = 0.3": torch.full((1, 1, L), 0.3),
          "selective Δ (1 on chosen tokens, 1e-3 elsewhere)": torch.where(chosen, 1.0, 1e-3)[None, None]}
A1, B1, C1 = torch.tensor([[-4.0]]), torch.ones(1, 1), torch.ones(1, 1)  # (D, N) constant B and C
fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
for ax, (name, d) in zip(axes, deltas.items()):
    ax.bar(range(L), x[0, 0], color=np.where(chosen, "tab:orange", "0.75"), label="input x_t (orange: chosen)")
    ax.step(range(L), selective_scan_ref(x, d, A1, B1, C1)[0, 0], where="mid", color="k", label="state h_t")
    ax.set(title=name, ylabel="value")
    ax.legend(fontsize=8, loc="lower left")
axes[1].set_xlabel("position t")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Why a diagonal $A$: the cost of discretising (Section 3.5)
#
# Because $\Delta$ changes at every token, $\bar A$ and $\bar B$ must be recomputed at every token. With a dense $A$
# that means a matrix exponential and a linear solve, $O(N^3)$ per token and channel; with a diagonal $A$ it is $N$
# scalar exponentials. `mamba/discretization-cost` times both forms of Eq. 4, fits the exponent of $N$ and checks that
# they agree when the dense $A$ happens to be diagonal:

# %%
wt.show_source(zoh_dense)
wt.show_source(zoh_diag)
result, run_dir = wt.smoke("mamba/discretization-cost")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | fitted exponents: dense {m['exponent_dense']:.2f}, diagonal "
      f"{m['exponent_diag']:.2f} | Euler B̄ against ZOH B̄ at Mamba's Δ range: {m['euler_vs_zoh_B_rel_gap']:.0%}")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for key, label in (("dense_s_per_token", "dense A: matrix exp + solve"), ("diag_s_per_token", "diagonal A")):
    ns = [int(n) for n in m[key]]
    ax.loglog(ns, [1e6 * m[key][str(n)] for n in ns], "o-", label=label)
ax.set(xlabel="state size N", ylabel="µs per token (one channel, CPU time)", title="ZOH discretisation cost")
ax.legend()
plt.show()

# %% [markdown]
# ## Selective copying (Table 1, smoke budget)
#
# The task: a sequence of noise tokens with a few data tokens at random positions, then as many marker tokens, at which
# the model must output the data tokens in order. Because the spacing varies, a time-invariant model cannot know which
# positions to remember; a selective one can let noise pass and write data in. `mamba/selective-copying` trains the
# same 2-layer Mamba twice, with S6 and with its time-invariant ablation (`selective=False`: $\Delta$, $B$, $C$ become
# plain parameters). The smoke budget copies 3 tokens out of a body of 24 after 300 steps; the quick budget 16 out of
# 256 with a curriculum, and the paper 16 out of 4096.

# %%
wt.show_source(MambaMixer.ssm_params)
result, run_dir = wt.smoke("mamba/selective-copying")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | accuracy on the copied tokens: S6 {m['acc_s6']:.1f}%, LTI "
      f"{m['acc_lti']:.1f}% (chance {m['chance']:.1f}%)")

# %% [markdown]
# Inside the trained S6 model: $\Delta_t$ of layer 0 (read with `run_with_cache` at `hook_delta`) over one input, in
# the channels whose $\Delta$ varies most, with the data tokens marked. A model that selects has its peaks of
# $\Delta$ on the data tokens; the quick budget checks this (in log space, against noise tokens the convolution has not mixed with
# data), while after 300 smoke steps the pattern may not have formed yet. On the right, the accuracy per copied token
# for both models.

# %%
cfg = result["config"]
x, targets, marks = selective_copying(64, cfg["seq_len"], cfg["n_memorize"], cfg["vocab"],
                                      torch.Generator().manual_seed(0))
models = mlreads.load_run(run_dir)
data = (x != 0) & ~marks
stats = delta_by_token_kind(models["s6"], x, data, clean_noise_mask(data, models["s6"].cfg.d_conv) & ~marks)
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [2, 1]})
for pos in data[0].nonzero().flatten():
    axes[0].axvspan(pos - 0.5, pos + 0.5, color="0.85")
for c in stats["top"][:4]:
    axes[0].plot(stats["delta"][0, :, c], ".-", label=f"channel {int(c)}")
axes[0].axvline(cfg["seq_len"] - 0.5, color="k", ls=":", lw=1)
axes[0].set(yscale="log", xlabel="position (grey: data tokens; after the dotted line: markers)", ylabel="Δ_t",
            title="layer-0 Δ of the trained S6 model, most variable channels")
axes[0].legend(fontsize=8, ncol=4, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.15))
k = np.arange(1, cfg["n_memorize"] + 1)
for shift, name in ((-0.2, "s6"), (0.2, "lti")):
    axes[1].bar(k + shift, m[f"acc_{name}_by_position"], width=0.4, label=name.upper())
axes[1].axhline(m["chance"], color="grey", ls="--", label="chance")
axes[1].set(xlabel="copied token", ylabel="accuracy (%)", xticks=k, title="accuracy per copied token")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Induction heads and length extrapolation (Table 2, smoke budget)
#
# Induction heads here: random tokens, a special token followed by the token to recall somewhere, the special token
# again at the end; the model must output the recalled token. Mamba is trained at one length and tested at every power
# of two above it, reading long inputs in segments with its recurrent state carried over, so memory stays flat in the
# length. The smoke run trains at length 32 and tests to 128 (quick: 256 and $2^{16}$; the paper: 256 and $2^{20}$). It
# also measures *retention*: the accuracy with the pair to recall $d$ tokens before the query.

# %%
result, run_dir = wt.smoke("mamba/induction-extrapolation")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | accuracy per test length {dict(zip(m['lengths'], m['acc_mamba']))}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
low, high = np.array(m["acc_mamba_ci"]).T
ax.errorbar(m["lengths"], m["acc_mamba"], yerr=[np.array(m["acc_mamba"]) - low, high - np.array(m["acc_mamba"])],
            fmt="o-", capsize=3, label=f"test accuracy ({m['n_test']} sequences, Wilson interval)")
ax.plot(m["retention_distances"], m["retention_acc"], "s--", label="retention: pair d tokens before the query")
train_len = result["config"]["train_len"]
ax.axvline(train_len, color="grey", ls=":", label=f"training length {train_len}")
ax.set(xlabel="sequence length / distance d (tokens)", ylabel="accuracy (%)", ylim=(0, 105))
ax.set_xscale("log", base=2)
ax.legend(fontsize=8, loc="lower left")
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (up to 10 minutes each on a 2-core CPU: small models and short training, as each
# experiment's notes say) decide the claims. These cells read the ledger (`results/`), so they always show the current
# verdicts, with the reason when a claim is not reproduced.

# %%
print(wt.published("mamba/selective-copying"))

# %%
print(wt.published("mamba/induction-extrapolation"))

# %%
print(wt.published("mamba/induction-attention"))

# %%
print(wt.published("mamba/lm-vs-transformer"))

# %%
print(wt.published("mamba/discretization-cost"))

# %% [markdown]
# **Read next.** The experiments: `src/mlreads/mamba/exp_selective_copying.py`,
# `exp_induction_extrapolation.py`, `exp_induction_attention.py`, `exp_lm_vs_transformer.py` and
# `exp_discretization_cost.py` (same folder; shared tasks and measures in `exp_common.py`); the model:
# `src/mlreads/mamba/model.py` (its docstring maps each layer to Figure 3 and Algorithm 2, and lists the deviations);
# the scans: `src/mlreads/mamba/scan.py`, `reference.py`, `step.py`, and `docs/mamba.md`. The claims' pages, after
# `mlreads report`: `reports/claims/mamba__selective-copying/index.html`,
# `reports/claims/mamba__induction-extrapolation/index.html`, `reports/claims/mamba__induction-attention/index.html`,
# `reports/claims/mamba__lm-vs-transformer/index.html` and `reports/claims/mamba__discretization-cost/index.html`.
