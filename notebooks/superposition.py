# %% [markdown]
# # Toy Models of Superposition
#
# **Paper.** Elhage et al. 2022, "Toy Models of Superposition", [arXiv:2209.10652](https://arxiv.org/abs/2209.10652).
#
# **The idea.** A network that has to represent more features than it has dimensions can still do it, if the
# features are *sparse* (rarely active at the same time): it gives them nearly orthogonal directions that overlap a
# little, and lets a nonlinearity clean up the small interference. The paper studies this in the smallest possible
# setting, a tied autoencoder that squeezes $n$ sparse features through $m < n$ hidden dimensions and reconstructs
# them through a ReLU. A linear model keeps only the $m$ most important features; the ReLU model, as sparsity rises,
# stores more, and arranges them in regular geometric shapes (antipodal pairs, triangles, pentagons, ...). The same
# happens when the model must *compute* (here $|x|$): its neurons turn polysemantic.
#
# **Our claims.**
# - `superposition/intro`: $n=5$, $m=2$, $I_i = 0.9^i$: dense features keep 2 orthogonal features; sparse ones pack 5
#   into a pentagon.
# - `superposition/sparsity-sweep`: $n=20$, $m=5$, $I_i = 0.7^i$: the linear model keeps the top $m$ features
#   ($\lVert W\rVert_F^2 = m$); the ReLU model stores more, in superposition, as sparsity rises ($\lVert W\rVert_F^2$
#   past $2m$ at $1-S = 0.001$).
# - `superposition/phase-diagram`: $n=2$, $m=1$: the extra feature is not represented, given its own dimension, or
#   stored in superposition; superposition takes the sparse, comparable-importance corner.
# - `superposition/dimensionality`: feature dimensionalities stick at 1, 3/4, 2/3, 1/2, 2/5, 3/8 and 0, and the
#   dimensions per feature stick at 1/2.
# - `superposition/abs-computation`: computing $|x|$ in superposition, neurons go from monosemantic to polysemantic as
#   sparsity rises.
#
# This walkthrough states the model and the measures, shows the package code for each, runs every experiment at the
# smoke budget (a few seconds each: pipeline checks on smaller grids and shorter training, not measurements of the
# paper) and redraws the paper's figures from the models those runs saved.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.superposition import (
    STICKY_FRACTIONS,
    classify_phase,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    importance_weighted_mse,
    sample_features,
    superposition,
    toy_forward,
)
from mlreads.superposition.exp_common import logspace
from mlreads.superposition.measures import features_per_neuron

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## The toy model (Section 2)
#
# Each input is a vector of $n$ features; each feature is zero with probability $S$ (the sparsity) and uniform on
# $[0, 1]$ otherwise. The model maps it to $m$ dimensions with $W \in \mathbb{R}^{m \times n}$ and back with the same
# matrix, transposed:
#
# $$h = W x, \qquad x' = \mathrm{ReLU}(W^\top h + b),$$
#
# and is trained to reconstruct its input with an importance $I_i$ per feature:
#
# $$L = \sum_x \sum_i I_i \,(x_i - x'_i)^2 .$$
#
# The column $W_i$ is feature $i$'s direction in the hidden space. The "linear" model drops the ReLU. The package holds
# many independent models ("instances") in one tensor, so a whole grid of sparsities trains in one set of einsums:

# %%
wt.show_source(sample_features)
wt.show_source(toy_forward)
wt.show_source(importance_weighted_mse);

# %% [markdown]
# A quick look at the data: at $1-S = 0.05$ most rows are all zero and the rest have one or two active features.

# %%
x = sample_features(8, torch.full((1, 5), 0.05), torch.Generator().manual_seed(0))  # (batch, instances, features)
print(x[:, 0].numpy().round(2))

# %% [markdown]
# ## Five features in two dimensions (Section 1's figure)
#
# `wt.smoke` runs `superposition/intro` as `mlreads run` would, at the smallest budget: the ReLU model with $n=5$,
# $m=2$ and $I_i = 0.9^i$, at a dense and a sparse setting, best of a few restarts each (the smoke budget trains 3,000
# steps; the paper and the quick budget 10,000).

# %%
result, run_dir = wt.smoke("superposition/intro")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | features represented (||W_i|| > 0.5) per density "
      f"{m['n_represented']} | geometry {m['geometry']}")

# %% [markdown]
# The run saved every instance and which one won at each density (`meta["best"]`). We draw the paper's picture: the
# Gram matrix $W^\top W$ (which features share directions) and each feature's vector $W_i$ in the plane, coloured by
# its importance. The paper's result: dense inputs get the two most important features on orthogonal axes and drop
# the rest; sparse inputs get all five, $72°$ apart, a regular pentagon.

# %%
saved = mlreads.load_saved(run_dir)["toy"]
Ws = saved.model.W.detach()[saved.meta["best"]]  # (densities, m, n)
colors = plt.cm.viridis(np.linspace(1, 0, Ws.shape[-1]))  # most important feature: yellow
fig, axes = plt.subplots(2, len(Ws), figsize=(3.2 * len(Ws) + 1, 6), layout="constrained")
for g, W in enumerate(Ws):
    im = axes[0, g].imshow(W.T @ W, cmap="RdBu", vmin=-1.3, vmax=1.3)
    axes[0, g].set(title=f"W^T W at 1-S = {saved.meta['densities'][g]:g}", xlabel="feature j", ylabel="feature i")
    for i in range(W.shape[1]):
        axes[1, g].plot([0, W[0, i]], [0, W[1, i]], "o-", color=colors[i], markevery=[1], label=f"W_{i}")
    axes[1, g].set(xlim=(-1.4, 1.4), ylim=(-1.4, 1.4), aspect="equal", xlabel="hidden dim 1", ylabel="hidden dim 2")
axes[1, 0].legend(fontsize=8, title="importance 0.9^i")
fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="W_i · W_j")
plt.show()

# %% [markdown]
# ## Measuring superposition and feature dimensionality (Sections 3 and 6)
#
# The paper reads two numbers off each feature. How much of its direction it shares with others,
#
# $$\sum_{j \neq i} (\hat W_i \cdot W_j)^2, \qquad \hat W_i = W_i / \lVert W_i \rVert,$$
#
# which is 0 for a feature with a dimension of its own; and its **feature dimensionality**, the share of a dimension it
# effectively gets,
#
# $$D_i = \frac{\lVert W_i \rVert^2}{\sum_j (\hat W_i \cdot W_j)^2}$$
#
# (1 for a dedicated dimension, 1/2 for each of an antipodal pair, 2/5 for each corner of a pentagon in a plane, 0 for
# a feature left out). Over the whole model, the *dimensions per feature* are $m / \lVert W \rVert_F^2$.

# %%
wt.show_source(superposition)
wt.show_source(feature_dimensionality);

# %%
for density, W in zip(saved.meta["densities"], Ws):
    print(f"1-S = {density:<5g} ||W_i|| {feature_norms(W).numpy().round(2)}  superposition "
          f"{superposition(W).numpy().round(2)}  D_i {feature_dimensionality(W).numpy().round(2)}")

# %% [markdown]
# ## Linear versus ReLU, across sparsity (Section 3's figure)
#
# With $n=20$, $m=5$ and $I_i = 0.7^i$, the linear model's optimum is the projection on the top 5 features at every
# sparsity, so $\lVert W\rVert_F^2 = m$. The ReLU model can filter small interference out, and as features get sparser
# it stores more of them. The experiment measures this with $\lVert W\rVert_F^2$: $2m$ is the most features a ReLU
# model can hold with no positive interference (antipodal pairs $\pm e_k$), so a value above $2m$ means features share
# dimensions. At the smoke budget it trains both models at two sparsities only.

# %%
result, run_dir = wt.smoke("superposition/sparsity-sweep")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | 1-S {m['densities']} | ||W||_F^2 linear "
      f"{np.round(m['frob_linear'], 2)}, ReLU {np.round(m['frob_relu'], 2)} (2m = {m['two_m']})")

# %% [markdown]
# The paper's bar plot: each feature's norm $\lVert W_i\rVert$ (features in order of importance, top to bottom),
# coloured by its superposition measure, dark for a feature with its own direction, bright for one that shares.

# %%
models = mlreads.load_saved(run_dir)
densities = models["linear"].meta["densities"]
fig, axes = plt.subplots(1, 2 * len(densities), figsize=(11, 4), sharey=True, layout="constrained")
for k, (kind, arm) in enumerate((kind, models[kind]) for kind in ("linear", "relu")):
    Ws = arm.model.W.detach()[arm.meta["best"]]  # (densities, m, n)
    for g, W in enumerate(Ws):
        ax = axes[k * len(densities) + g]
        ax.barh(range(W.shape[1]), feature_norms(W), color=plt.cm.plasma(superposition(W).clamp(0, 1).numpy()))
        ax.set(title=f"{kind}, 1-S = {densities[g]:g}", xlabel="||W_i||", xlim=(0, 1.4))
axes[0].set_yticks(range(0, 20, 5))
axes[0].invert_yaxis()
axes[0].set_ylabel("feature i (importance 0.7^i falls downwards)")
fig.colorbar(plt.cm.ScalarMappable(cmap="plasma"), ax=axes.tolist(), label="superposition  Σ_j≠i (Ŵ_i·W_j)²")
plt.show()

# %% [markdown]
# ## Two features, one dimension: the phase diagram (Section 4)
#
# The smallest case, $n=2$ and $m=1$: the first feature has importance 1, the extra one importance $r$, both have
# density $1-S$. The trained model does one of three things with the extra feature: leaves it out, gives it the
# dimension instead of the first, or stores both on the one axis with opposite signs (antipodal), which is
# superposition. The package reads the phase from the norms:

# %%
wt.show_source(classify_phase);

# %% [markdown]
# The smoke run trains a 6 x 6 grid of $(r, 1-S)$, best of 3 restarts per cell (the quick budget: 20 x 20 with 10
# restarts).

# %%
result, run_dir = wt.smoke("superposition/phase-diagram")
cfg = result["config"]
print(f"smoke verdict: {result['verdict']} | cells per phase {result['metrics']['phase_counts']}")

# %%
saved = mlreads.load_saved(run_dir)["toy"]
G = cfg["grid"]
rel, dens = logspace(*cfg["importance_range"], G), logspace(*cfg["density_range"], G)  # columns, rows
phases = classify_phase(saved.model.W.detach()[saved.meta["best"]]).reshape(G, G)  # (density, importance)
cmap = plt.matplotlib.colors.ListedColormap(["#4c72b0", "#dd8452", "#55a868"])
fig, ax = plt.subplots(figsize=(5.5, 4.5))
ax.pcolormesh(rel.log10(), dens.log10(), phases, cmap=cmap, vmin=-0.5, vmax=2.5, shading="nearest")
ax.set(xlabel="log10 relative importance r of the extra feature", ylabel="log10 density 1-S (sparse at the bottom)")
names = ("not represented", "dedicated dimension", "superposition")
ax.legend([plt.Rectangle((0, 0), 1, 1, color=cmap(k)) for k in range(3)], names, fontsize=8, ncol=3,
          loc="upper center", bbox_to_anchor=(0.5, -0.15))
plt.show()

# %% [markdown]
# ## Sticky dimensionalities (Section 6)
#
# With many features of equal importance, the paper sweeps sparsity and plots every $D_i$: instead of spreading
# evenly, they cluster on a few fractions (1, 3/4, 2/3, 1/2, 2/5, 3/8), the shares of a dimension that a feature gets
# as a vertex of a regular polytope (a tetrahedron in 3 dimensions gives 3/4, a triangle 2/3, a digon 1/2, a pentagon
# 2/5, a square antiprism 3/8), and the dimensions per feature $m / \lVert W\rVert_F^2$ linger at 1/2 over a range of
# sparsity, where features pair up as digons. The smoke run is a small version: $n=40$, $m=8$, 10 sparsities, 1,500
# steps (quick: $n=200$, $m=20$, 40 sparsities, 10,000 steps).

# %%
wt.show_source(dimensions_per_feature)
result, run_dir = wt.smoke("superposition/dimensionality")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | share of features on a sticky fraction {m['sticky_share']:.2f}, "
      f"the same numbers shuffled {m['sticky_share_shuffled']:.2f}")

# %%
saved = mlreads.load_saved(run_dir)["toy"]
Ws = saved.model.W.detach()[saved.meta["best"]]  # (sparsities, m, n)
inv = torch.tensor(saved.meta["inv_density"])
fig, ax = plt.subplots(figsize=(7, 4.2))
for frac, name in zip(STICKY_FRACTIONS, ["1", "3/4", "2/3", "1/2", "2/5", "3/8"]):  # close pairs: one label below
    ax.axhline(frac, color="0.85", lw=1, zorder=0)
    ax.annotate(name, (1.01, frac), xycoords=("axes fraction", "data"), va="top" if name in ("2/3", "3/8") else
                "bottom", fontsize=8)
D = feature_dimensionality(Ws)  # (sparsities, n)
ax.scatter(inv[:, None].expand_as(D).flatten(), D.flatten(), s=6, alpha=0.4, label="D_i, one dot per feature")
ax.plot(inv, dimensions_per_feature(Ws), "k.-", label="m / ||W||_F^2")
ax.set(xscale="log", xlabel="1 / (1 - S)  (sparser to the right)", ylabel="dimensions per feature", ylim=(-0.05, 1.1))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Computing in superposition: $|x|$ (Section 8)
#
# Now the model must compute, not just store: inputs are uniform on $[-1, 1]$ (when active) and the target is $|x|$,
# through a layer of real neurons, with untied weights:
#
# $$h = \mathrm{ReLU}(W_1 x), \qquad y' = \mathrm{ReLU}(W_2 h + b).$$
#
# A dense $|x_i|$ needs two neurons ($\mathrm{ReLU}(x_i) + \mathrm{ReLU}(-x_i)$), so 10 neurons serve 5 features
# monosemantically; with sparse inputs the paper finds neurons that respond to several features. The experiment
# counts, per neuron, the features whose weight is at least half the neuron's largest:

# %%
wt.show_source(features_per_neuron)
result, run_dir = wt.smoke("superposition/abs-computation")
fpn = np.round(result["metrics"]["features_per_neuron"], 2)
print(f"smoke verdict: {result['verdict']} | features per neuron {fpn} at 1-S = {result['config']['densities']}")

# %%
saved = mlreads.load_saved(run_dir)["abs"]
W_ins = saved.model.W_in.detach()[saved.meta["best"]]  # (densities, neurons, features)
fig, axes = plt.subplots(1, len(W_ins), figsize=(5 * len(W_ins), 3.4), layout="constrained")
for ax, W, density in zip(axes, W_ins, saved.meta["densities"]):
    order = torch.argsort(W.abs().argmax(1))  # neurons sorted by their strongest feature
    im = ax.imshow(W[order], cmap="RdBu", vmin=-2, vmax=2, aspect="auto")
    ax.set(title=f"W_1 at 1-S = {density:g}", xlabel="input feature", ylabel="neuron (sorted)")
fig.colorbar(im, ax=axes.tolist(), label="weight")
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (up to 10 minutes each on a 2-core CPU, on the paper's sizes or the deviations each
# experiment's notes give) decide the claims. These cells read the ledger (`results/`), so they always show the
# current verdicts.

# %%
print(wt.published("superposition/intro"))

# %%
print(wt.published("superposition/sparsity-sweep"))

# %%
print(wt.published("superposition/phase-diagram"))

# %%
print(wt.published("superposition/dimensionality"))

# %%
print(wt.published("superposition/abs-computation"))

# %% [markdown]
# **Read next.** The experiments: `src/mlreads/superposition/exp_intro.py`, `exp_sparsity_sweep.py`,
# `exp_phase_diagram.py`, `exp_dimensionality.py` and `exp_abs_computation.py` (same folder), with the shared training
# and best-of-restarts selection in `exp_common.py`; the model: `src/mlreads/superposition/model.py` (its docstring
# lists the deviations); the measures: `src/mlreads/superposition/measures.py`. The claims' pages, after
# `mlreads report`: `reports/claims/superposition__intro/index.html`,
# `reports/claims/superposition__sparsity-sweep/index.html`, `reports/claims/superposition__phase-diagram/index.html`,
# `reports/claims/superposition__dimensionality/index.html` and
# `reports/claims/superposition__abs-computation/index.html`.
