# %% [markdown]
# # Transformer circuits: bigrams, copying heads and induction heads
#
# **Papers.** Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"
# ([transformer-circuits.pub/2021/framework](https://transformer-circuits.pub/2021/framework/index.html); it has no
# arXiv version), and Olsson et al. 2022, "In-context Learning and Induction Heads",
# [arXiv:2209.11895](https://arxiv.org/abs/2209.11895).
#
# **The idea.** Take MLPs and biases out of a transformer and it becomes almost linear: every layer only *adds* its
# heads' outputs to the residual stream, and the only nonlinearity left is the attention pattern. The logits can then
# be written as a sum over *paths* through the residual stream, and each path is a product of weight matrices that
# can be read directly: the direct path $W_U W_E$ is a bigram table, a head's OV circuit says which tokens it writes
# when it attends to a token, its QK circuit says which tokens it attends to. With two layers, heads can *compose*:
# a layer-1 head whose keys read what a layer-0 "previous-token" head wrote becomes an **induction head**, which on
# `[A][B] ... [A]` attends to the earlier `[B]` and copies it. Olsson et al. find these heads form suddenly, in a phase
# change, and argue they carry most of in-context learning.
#
# **Our claims.**
# - `circuits/zero-layer-bigram`: a 0-layer transformer's $W_U W_E$ approximates $\log p(\text{next} \mid
#   \text{current})$, the corpus's bigram table.
# - `circuits/copying-heads`: in a 1-layer attention-only model most heads copy: the OV circuit $W_U W_{OV}^h W_E$ of
#   more than half of the heads has mostly positive eigenvalues (the paper: 10 of 12 heads).
# - `circuits/induction-heads`: a 2-layer attention-only model forms induction heads by K-composition with a
#   previous-token head, in a phase change; a 1-layer model cannot.
#
# This walkthrough writes down the path expansion and the circuits, shows the package code that computes them, runs
# each experiment at the smoke budget (seconds each: pipeline checks, not measurements of the papers) and draws the
# papers' pictures from what those runs trained.

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import torch

import mlreads
from mlreads.circuits import (
    AttnOnlyConfig,
    AttnOnlyTransformer,
    composition_baseline,
    composition_scores,
    copying_scores,
    direct_path,
    full_ov_circuit,
    full_qk_circuit,
    path_expansion,
    repeated_sequence_scores,
)
from mlreads.circuits.corpus import bigram_counts, repeated_batch
from mlreads.circuits.detectors import induction_target, pattern_score
from mlreads.core.data.text import TextConfig, load_text
from mlreads.core.report import walkthrough as wt

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## The path expansion
#
# The paper writes a model as a map $T$ from one-hot tokens $t$ to logits, in column-vector notation, with
# $W_{OV}^h = W_O^h W_V^h$ and $W_{QK}^h = W_Q^{h\top} W_K^h$. With no layers, only the direct path is left:
#
# $$T = W_U W_E .$$
#
# One layer of attention heads adds one term per head, a tensor product of the attention pattern $A^h$ (which
# position is read) and the OV circuit (what is written, as logits, for each token read):
#
# $$T = \mathrm{Id} \otimes W_U W_E + \sum_h A^h \otimes W_U W_{OV}^h W_E, \qquad
#   A^h = \mathrm{softmax}^{*}\!\left(t^\top W_E^\top W_{QK}^h W_E\, t\right)$$
#
# ($\mathrm{softmax}^*$: causally masked, and scaled by $1/\sqrt{d_\text{head}}$ in practice). A second layer adds the
# layer-1 heads' own terms and the *virtual heads* $(A^{h_2} A^{h_1}) \otimes W_U W_{OV}^{h_2} W_{OV}^{h_1} W_E$, and
# its patterns $A^{h_2}$ may themselves read what layer-0 heads wrote.
#
# The package keeps TransformerLens's row-vector convention, so each circuit here is the paper's transposed: rows are
# the token read (or the query), columns the output logit (or the key). The circuits are products of low-rank factors,
# kept as a `FactoredMatrix` so that a vocabulary-by-vocabulary matrix is only formed when asked for:

# %%
wt.show_source(direct_path)
wt.show_source(full_qk_circuit)
wt.show_source(full_ov_circuit);

# %% [markdown]
# `path_expansion` splits a forward pass's logits into one term per path: the direct path `()`, each single head
# `((layer, head),)` and each virtual head. It reads the attention patterns from `run_with_cache` and multiplies the
# weights, so the terms add up to the logits exactly (there is no LayerNorm to break the linearity). With the
# package's default "shortformer" positions (the paper's footnote 15), positions reach only queries and keys, so each
# OV term depends on the tokens alone, as in the equations above.

# %%
wt.show_source(path_expansion);

# %%
model = AttnOnlyTransformer(AttnOnlyConfig(n_layers=2, d_model=32, n_heads=2, d_head=8, d_vocab=20, n_ctx=16,
                                           init_std=0.3))
tokens = torch.randint(0, 20, (3, 10))
terms = path_expansion(model, tokens)
print(len(terms), "paths:", list(terms))
with torch.no_grad():
    gap = (sum(terms.values()) - model(tokens)).abs().max()
print(f"largest |sum of path terms - logits| = {gap:.1e}")
assert gap < 1e-4

# %% [markdown]
# ## Zero layers: the direct path is a bigram table
#
# A 0-layer model sees only the current token, so the best it can do is the bigram distribution
# $p(\text{next} \mid \text{current})$, and its logits are $W_E W_U$ (row-vector convention). `wt.smoke` trains one on
# the Shakespeare characters exactly as `mlreads run circuits/zero-layer-bigram` would, at the smallest budget. The
# experiment's metric is the correlation between $W_E W_U$ and the corpus's log-bigram table, each row centred (a row
# of logits is only defined up to a constant).

# %%
result, run_dir = wt.smoke("circuits/zero-layer-bigram")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | bigram_corr {m['bigram_corr']:.3f} | val loss {m['val_loss']:.3f} "
      f"(bigram entropy {m['bigram_entropy']:.3f}, unigram entropy {m['unigram_entropy']:.3f}) nats/char")

# %% [markdown]
# The picture: the model's next-character distribution, $\mathrm{log\,softmax}(W_E W_U)$, beside the corpus's
# $\log p(\text{next} \mid \text{current})$, for the most frequent characters. We rebuild the trained model from the run
# folder (`mlreads.load_saved`), recount the bigrams with the package's `bigram_counts` and check that the corpus is
# tokenised the same way the run saw it.

# %%
saved = mlreads.load_saved(run_dir)["0-layer"]
data = load_text(TextConfig())
assert list(data.tokenizer.itos) == saved.meta["tokens"]
counts = bigram_counts(data.train, data.vocab_size)  # (V, V)
top = torch.argsort(counts.sum(1), descending=True)[:24]
with torch.no_grad():
    model_logp = torch.log_softmax(direct_path(saved.model), -1)[top][:, top]
corpus_logp = (counts / counts.sum(1, keepdim=True)).log()[top][:, top]
labels = ["␣" if c == " " else "⏎" if c == "\n" else c for c in (data.tokenizer.itos[i] for i in top)]
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, table, title in ((axes[0], model_logp, "model: log softmax(W_E W_U)"),
                         (axes[1], corpus_logp, "corpus: log p(next | current)")):
    im = ax.imshow(table.numpy(), cmap="viridis", vmin=-8, vmax=0)
    ax.set_title(title)
    ax.set_xticks(range(len(top)), labels, fontsize=8)
    ax.set_yticks(range(len(top)), labels, fontsize=8)
    ax.set_xlabel("next character")
    ax.set_ylabel("current character")
fig.colorbar(im, ax=axes, shrink=0.8, label="log-probability (nats); corpus: white = never seen")
plt.show()

# %% [markdown]
# ## One layer: copying heads and the OV eigenvalues
#
# A head's OV circuit $W_U W_{OV}^h W_E$ is a vocabulary-by-vocabulary map from the token attended to, to the logits
# it adds. A head that *copies* raises the logit of the very token it attends to: the map acts like a positive
# multiple of the identity, on average, and its eigenvalues are mostly positive. The paper summarises each head by
#
# $$\text{copying score} = \frac{\sum_i \lambda_i}{\sum_i |\lambda_i|} \in [-1, 1],
#   \qquad \lambda_i \text{ the eigenvalues of } W_U W_{OV}^h W_E,$$
#
# and counts a head as copying when the score is well above zero (the package: above 0.5). The $d_\text{head}$
# nonzero eigenvalues come from the small $d_\text{head} \times d_\text{head}$ product of the factors, never from the
# vocabulary-sized matrix:

# %%
wt.show_source(copying_scores);

# %% [markdown]
# A check of the definition by construction: with $d_\text{head} = d_\text{model}$, $W_V W_O = I$ and $W_U = W_E^\top$,
# the OV circuit is $W_E W_E^\top$, positive semi-definite, so the score is 1; flip the sign of $W_O$ and it is -1.

# %%
toy = AttnOnlyTransformer(AttnOnlyConfig(n_layers=1, d_model=16, n_heads=2, d_head=16, d_vocab=40, init_std=0.3))
with torch.no_grad():
    toy.blocks[0].attn.W_V.copy_(torch.eye(16).expand(2, 16, 16))
    toy.blocks[0].attn.W_O.copy_(torch.stack([torch.eye(16), -torch.eye(16)]))
    toy.W_U.copy_(toy.W_E.T)
    print("copying scores of the two constructed heads:", copying_scores(toy)[0].numpy().round(3))

# %% [markdown]
# Now the experiment, `circuits/copying-heads`, at the smoke budget: a 1-layer model with 4 heads trained for a few
# hundred steps on Shakespeare's words. The experiment's notes record what happens early in training: every head
# first turns *anti*-copying (a word rarely comes again right away, so suppressing recent tokens pays first) and heads
# turn to copying only later, helped by long contexts. A smoke run stops long before that, so expect anti-copying
# heads here; the quick budget trains an 8-head model with 512-token windows for the real census.

# %%
result, run_dir = wt.smoke("circuits/copying-heads")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | copying scores per head {np.round(m['copying_scores'], 2)} "
      f"| at initialisation {np.round(m['copying_scores_init'], 2)}")

# %% [markdown]
# The eigenvalues of each head's OV circuit in the complex plane, for the trained smoke model (bottom) and, for
# contrast, a freshly initialised model of the same shape (top; its own random draw, not the run's), each scaled by
# the head's largest $|\lambda|$. At initialisation they scatter on both sides of zero; a copying head's lie mostly
# on the right, an anti-copying head's on the left.

# %%
trained = mlreads.load_run(run_dir)["1-layer"]
fresh = AttnOnlyTransformer(trained.cfg, generator=torch.Generator().manual_seed(0))
fig, axes = plt.subplots(2, trained.cfg.n_heads, figsize=(3 * trained.cfg.n_heads, 6.8), sharex=True, sharey=True,
                         layout="constrained")
for row, (name, net) in enumerate((("init", fresh), ("trained", trained))):
    with torch.no_grad():
        eig, scores = full_ov_circuit(net, 0).eigenvalues, copying_scores(net)[0]  # (H, d_head), (H,)
    for h, ax in enumerate(axes[row]):
        lam = (eig[h] / eig[h].abs().max()).numpy()
        ax.scatter(lam.real, lam.imag, s=12, c=np.where(lam.real > 0, "tab:blue", "tab:red"))
        ax.axvline(0, color="k", lw=0.5)
        ax.axhline(0, color="k", lw=0.5)
        ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal")
        ax.set_title(f"head 0.{h} ({name}): score {scores[h]:+.2f}", fontsize=10)
    axes[row, 0].set_ylabel("Im λ / max|λ|")
for ax in axes[1]:
    ax.set_xlabel("Re λ / max|λ|")
fig.suptitle("eigenvalues λ of each head's OV circuit W_U W_OV W_E (blue: Re λ > 0, copying side)")
plt.show()

# %% [markdown]
# ## Two layers: K-composition and induction heads
#
# In a 2-layer model a layer-1 head's query and key inputs include what layer-0 heads wrote. When a layer-0 head
# attends to the previous token and copies it, a layer-1 head whose keys read that output can look for "the position
# whose *previous* token equals my current token" and then copy the token found there: on `[A][B] ... [A]` it predicts
# `[B]`. That is an induction head, built by **K-composition**. The paper measures how much head $h_1$'s output feeds
# head $h_2$'s keys by
#
# $$\frac{\lVert W_{QK}^{h_2} W_{OV}^{h_1} \rVert_F}{\lVert W_{QK}^{h_2} \rVert_F\,
#   \lVert W_{OV}^{h_1} \rVert_F}$$
#
# (the same norm in the package's row-vector convention: $W_V^{h_1} W_O^{h_1}\, W_K^{h_2} W_Q^{h_2\top}$), against the
# same score for random matrices of the same shapes. Q- and V-composition replace $W_{QK}^{h_2}$ by
# $W_{QK}^{h_2\top}$ (the earlier head writes into the query side) and by $W_{OV}^{h_2}$.

# %%
wt.show_source(composition_scores);

# %% [markdown]
# Olsson et al. detect induction heads behaviourally: feed a random token sequence repeated twice and measure the
# attention each token of the second copy pays to the token just after its first occurrence (the prefix-matching
# score; 1 is a perfect induction head). The package's detectors build the target mask and average the attention mass
# on it; a previous-token score does the same with the sub-diagonal.

# %%
wt.show_source(induction_target)
wt.show_source(pattern_score);

# %% [markdown]
# `circuits/induction-heads` trains a 2-layer and a 1-layer attention-only model side by side and evaluates both every
# 100 steps on a fixed repeated-sequence probe: the loss on the first copy (unpredictable random tokens) and on the
# second (predictable by induction), and the best induction score. At the smoke budget both models are tiny (2 heads,
# 600 steps on repeated random tokens only); it is a pipeline check, about half a minute.

# %%
result, run_dir = wt.smoke("circuits/induction-heads")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | 2nd/1st-repeat loss: 2-layer {m['rep2_over_rep1']:.2f}, 1-layer "
      f"{m['rep2_over_rep1_1layer']:.2f} | best induction score {m['induction_score']:.2f}, best previous-token "
      f"score {m['prev_token_score']:.2f}")

# %% [markdown]
# The phase-change plot, from the run's log: `metrics.jsonl` holds the 2-layer model's training and then the 1-layer
# model's (the step count starts again), each with an evaluation every 100 steps. The paper's signature is the
# 2-layer model's second-repeat loss falling while its induction score jumps; the 1-layer model has no path for it.

# %%
rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
evals = [r for r in rows if "induction" in r]
split = next(i for i in range(1, len(evals)) if evals[i]["step"] < evals[i - 1]["step"])
fig, ax = plt.subplots(figsize=(7, 4))
ax2 = ax.twinx()
for name, arm, color in (("2-layer", evals[:split], "tab:blue"), ("1-layer", evals[split:], "tab:orange")):
    steps = [r["step"] for r in arm]
    ax.plot(steps, [r["loss_rep2"] for r in arm], "o-", color=color, label=f"{name}: loss on 2nd repeat")
    ax.plot(steps, [r["loss_rep1"] for r in arm], "^:", color=color, label=f"{name}: loss on 1st repeat")
    ax2.plot(steps, [r["induction"] for r in arm], "s--", color=color, alpha=0.6, label=f"{name}: induction score")
ax.set(xlabel="training step", ylabel="loss (nats / token)")
ax2.set(ylabel="best induction score", ylim=(0, 1))
handles = ax.get_legend_handles_labels()
handles2 = ax2.get_legend_handles_labels()
ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], fontsize=8, ncol=2, frameon=False, loc="upper center",
          bbox_to_anchor=(0.5, -0.15))
plt.show()

# %% [markdown]
# Inside the trained 2-layer model: its heads' attention on a fresh repeated sequence (`repeated_batch`, the probe of
# Olsson et al.), with the package's detectors picking the most previous-token-like head in layer 0 and the most
# induction-like head in layer 1, and the K-composition of every layer-0 head into every layer-1 head. A converged
# model shows a clean sub-diagonal on the left, a clean stripe in the second half on the right, and one K-composition
# cell far above the baseline; the smoke model is on its way there.

# %%
two = mlreads.load_saved(run_dir)["2-layer"]
half = two.meta["half"]
probe = repeated_batch(16, half, two.meta["probe_vocab"], torch.Generator().manual_seed(1))[:, :-1]  # (16, 2 half)
with torch.no_grad():
    s = repeated_sequence_scores(two.model, probe)  # each (layers, heads)
    _, cache = two.model.run_with_cache(probe[:1])
    kcomp = composition_scores(two.model, "K")[0, :, 1]  # (layer-0 head, layer-1 head)
base = composition_baseline(two.model, "K")
prev_h, ind_h = int(s["previous"][0].argmax()), int(s["induction"][1].argmax())
fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1, 1, 0.8]})
for ax, layer, h, kind in ((axes[0], 0, prev_h, "previous"), (axes[1], 1, ind_h, "induction")):
    ax.imshow(cache[f"blocks.{layer}.attn.hook_pattern"][0, h], cmap="viridis", vmin=0, vmax=1)
    ax.axhline(half - 0.5, color="w", lw=0.6)
    ax.axvline(half - 0.5, color="w", lw=0.6)
    ax.set(title=f"head {layer}.{h}: {kind} score {s[kind][layer, h]:.2f}", xlabel="key position",
           ylabel="query position", xticks=range(0, 2 * half, 5), yticks=range(0, 2 * half, 5))
im = axes[2].imshow(kcomp, cmap="Reds", vmin=0)
for (i, j), value in np.ndenumerate(kcomp.numpy()):
    axes[2].text(j, i, f"{value:.2f}", ha="center", va="center", color="k", backgroundcolor="w")
axes[2].set(xticks=range(len(kcomp)), xticklabels=[f"1.{h}" for h in range(len(kcomp))], xlabel="layer-1 head (keys)",
            yticks=range(len(kcomp)), yticklabels=[f"0.{h}" for h in range(len(kcomp))], ylabel="layer-0 head (OV)",
            title=f"K-composition (random baseline {base:.2f})")
fig.colorbar(im, ax=axes[2], shrink=0.8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (up to 10 minutes each on a 2-core CPU; larger models, text mixed into the training
# batches, the full set of checks) decide the claims. These cells read the ledger (`results/`), so they always show
# the current verdicts.

# %%
print(wt.published("circuits/zero-layer-bigram"))

# %%
print(wt.published("circuits/copying-heads"))

# %%
print(wt.published("circuits/induction-heads"))

# %% [markdown]
# **Read next.** The experiments: `src/mlreads/circuits/exp_zero_layer_bigram.py`,
# `src/mlreads/circuits/exp_copying_heads.py` (it also lists each head's strongest skip-trigrams "A … B → C") and
# `src/mlreads/circuits/exp_induction_heads.py`; the model: `src/mlreads/circuits/model.py` (its docstring maps every
# weight to the paper's symbol); the circuits and scores: `src/mlreads/circuits/qk_ov.py`,
# `src/mlreads/circuits/detectors.py` and `src/mlreads/circuits/factored.py`. The claims' pages, after
# `mlreads report`: `reports/claims/circuits__zero-layer-bigram/index.html`,
# `reports/claims/circuits__copying-heads/index.html` and `reports/claims/circuits__induction-heads/index.html`.
