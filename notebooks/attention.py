# %% [markdown]
# # Neural Machine Translation by Jointly Learning to Align and Translate: attention for RNNs
#
# **Paper.** Bahdanau, Cho & Bengio 2015, [arXiv:1409.0473](https://arxiv.org/abs/1409.0473). With an older
# reading of the same idea: Nadaraya 1964 and Watson 1964, kernel regression, as d2l's "attention pooling by
# similarity" (§11.2) presents it.
#
# **The idea.** An encoder-decoder RNN ("RNNencdec") squeezes the whole source sentence into one fixed vector, which
# the decoder must unpack word by word: long sentences do not fit. RNNsearch keeps one vector per source word (the
# annotations of a bidirectional RNN) and, before emitting each target word, computes a soft alignment, a softmax
# over how well each annotation matches the decoder's state, and reads their weighted average. The alignment is
# learned with the translation, from the translation loss alone. Kernel regression is the same operation with a fixed
# score: predict at $x$ by averaging the $y_i$ with softmax weights that favour the $x_i$ close to $x$.
#
# **Our claims.**
# - `attention/rnnsearch-vs-rnnencdec` (Fig 2, Fig 3): RNNencdec's BLEU falls as sentences grow while RNNsearch's
#   holds; RNNsearch's attention puts its weight on the source word being translated.
# - `attention/kernel-regression`: softmax attention with the score $-(q-k)^2/2h^2$ is the Nadaraya-Watson
#   estimator; with a cross-validated bandwidth its error falls as the data grow, and a learned bandwidth lands near
#   the cross-validated one.
#
# Below: the alignment model and its code, both RNNs trained briefly on a synthetic translation task (a smoke run),
# the alignment matrix of Fig 3, and then kernel regression as attention.

# %%
import json

import matplotlib.pyplot as plt
import torch

import mlreads
from mlreads.attention import (
    PaperGRUCell,
    Seq2Seq,
    attention_pooling,
    loo_bandwidth,
    nadaraya_watson,
)
from mlreads.attention.figures import alignment_figure
from mlreads.attention.kernel_regression import attention_scores, toy_data, toy_function
from mlreads.core.data.translation import TranslationConfig, make_task, pad_batch
from mlreads.core.report import walkthrough as wt
from mlreads.core.run.results import run_dir_name

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## The alignment model (Section 3.1, Eq. 5-6, Appendix A.1.2)
#
# The encoder reads the source forwards and backwards; annotation $h_j = [\overrightarrow{h}_j;
# \overleftarrow{h}_j]$ describes word $j$ in its context. Before emitting target word $i$, the decoder (state
# $s_{i-1}$) scores every annotation with a one-hidden-layer network, normalises the scores with a softmax and takes
# the weighted average as its context:
#
# $$e_{ij} = v_a^\top \tanh\!\left(W_a s_{i-1} + U_a h_j\right), \qquad
# \alpha_{ij} = \frac{\exp e_{ij}}{\sum_{k} \exp e_{ik}}, \qquad c_i = \sum_j \alpha_{ij} h_j .$$
#
# RNNencdec instead gives every step the same $c = \tanh(V h_T)$, computed from the forward RNN's last state. In the
# package both are one class, `Seq2Seq`, switched by `RNNConfig(attention=...)`; the context is one method:

# %%
wt.show_source(Seq2Seq.context);

# %% [markdown]
# The recurrent unit is the paper's gated unit (Appendix A.1.1), whose reset gate acts *before* the recurrent matrix,
# $\tilde s = \tanh(W x + U[r \circ s] + C c)$, and $s_{new} = (1 - z) \circ s + z \circ \tilde s$. PyTorch's
# `nn.GRUCell` applies the reset gate after the product, a different function, so the package has its own cell:

# %%
wt.show_source(PaperGRUCell.forward);

# %% [markdown]
# ## Train both (smoke scale)
#
# The experiment trains RNNsearch and RNNencdec on a synthetic "pseudo-French": clauses of noun phrases and verbs,
# translated word by word, with noun phrases reordered the French way (`F A1 A2 N` becomes `F' N' A2' A1'`), so the
# true alignment is known. At the quick budget each model gets 180 CPU seconds on sentences of 5-50 words; the
# paper's models had 1000 hidden units and days of training on WMT'14 English-French.
#
# We run the smoke budget (sentences of 5-12 words, tiny models) with three changes so that 200 steps teach RNNsearch
# something to look at: the quick budget's 52-word vocabulary, 200 steps instead of 120, and a constant learning
# rate. About 15 CPU seconds, a pipeline check: the sentences are too short for Fig 2's length effect, and
# RNNencdec, which learns more slowly, is still far from trained.

# %%
overrides = {"data.n_determiners": "4", "data.n_adjectives": "12", "data.n_nouns": "20", "data.n_verbs": "12",
             "data.n_connectives": "4", "train.steps": "200", "train.schedule": "constant", "train.lr": "0.005"}
result, run_dir = wt.smoke("attention/rnnsearch-vs-rnnencdec", overrides=overrides)
run_dir = run_dir.parent / run_dir_name("smoke", 0, overrides)  # a run with overrides has its own folder name
m = result["metrics"]
for name in ("rnnsearch", "rnnencdec"):
    print(f"{name:9s}: final training loss {m[f'final_loss_{name}']:.3f}, BLEU by source length "
          + ", ".join(f"{b}: {v:.1f}" for b, v in m[f"bleu_{name}"].items()))
print(f"RNNsearch's strongest attention on the true source word: {m['alignment_accuracy']:.0%} of target words")

# %% [markdown]
# The run logged both models' training loss to `metrics.jsonl`, RNNsearch first (the step count restarts for the
# second model). Beside it, the BLEU of each model per source-length bin, the axis of the paper's Fig 2.

# %%
rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
restart = next(i for i in range(1, len(rows)) if rows[i]["step"] < rows[i - 1]["step"])
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
for part, name in ((rows[:restart], "RNNsearch"), (rows[restart:], "RNNencdec")):
    a.plot([r["step"] for r in part], [r["loss"] for r in part], label=name)
a.set(xlabel="step", ylabel="training loss (nats / word)", title="training (smoke scale)")
a.legend()
bins = list(m["bleu_rnnsearch"])
for name, label in (("rnnsearch", "RNNsearch"), ("rnnencdec", "RNNencdec")):
    b.plot(bins, [m[f"bleu_{name}"][k] for k in bins], "o-", label=label)
b.set(xlabel="source length (words)", ylabel="test BLEU (greedy)", ylim=(0, 105), title="BLEU by length (cf. Fig 2)")
b.legend(loc="center right")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Fig 3: the soft alignment
#
# `mlreads.load_run` rebuilds both trained models. We rebuild the task from the run's config, draw a sentence pair and
# read RNNsearch's $\alpha_{ij}$ for every target step through the `decoder.hook_attn` hook (teacher-forced on the
# reference). The package's own figure marks the true alignment with crosses: the reordered noun phrases show as
# anti-diagonal blocks.

# %%
rnnsearch = mlreads.load_run(run_dir)["rnnsearch"]
data = result["config"]["data"] | {"synonym_probs": tuple(result["config"]["data"]["synonym_probs"])}
task = make_task(TranslationConfig(**data))
pair = task.sample(1, torch.Generator().manual_seed(1), 11, 12)[0]
src, tgt_in, _ = pad_batch([pair])
_, cache = rnnsearch.run_with_cache(src, tgt_in)
alpha = cache["decoder.hook_attn"][0]  # (T, S): target steps x source words
print("source:   ", task.decode(pair.src, "src"))
print("reference:", task.decode(pair.tgt))
print("RNNsearch:", task.decode(rnnsearch.greedy(src, src.shape[1] + 5)[0][0].tolist()))
alignment_figure(alpha[: len(pair.tgt), : len(pair.src)], [task.src_itos[i] for i in pair.src],
                 [task.tgt_itos[i] for i in pair.tgt], pair.alignment)
plt.show()

# %% [markdown]
# ## Attention as kernel regression
#
# Given pairs $(x_i, y_i)$, the Nadaraya-Watson estimator with kernel $K$ and bandwidth $h$ is
#
# $$\hat f(x) = \sum_i \frac{K\!\left((x - x_i)/h\right)}{\sum_j K\!\left((x - x_j)/h\right)}\, y_i .$$
#
# With the Gaussian kernel $K(u) \propto \exp(-u^2/2)$ the normalising constant cancels, and the weights are a
# softmax:
#
# $$\hat f(x) = \sum_i \mathrm{softmax}_i\!\left(-\frac{(x - x_i)^2}{2h^2}\right) y_i ,$$
#
# attention with query $x$, keys $x_i$, values $y_i$ and the score $a(q, k) = -(q - k)^2 / 2h^2$. Where Bahdanau
# et al. learn the score, here it is fixed up to one number, the bandwidth. The package has both forms:

# %%
wt.show_source(nadaraya_watson)
wt.show_source(attention_scores)
wt.show_source(attention_pooling);

# %% [markdown]
# On d2l's toy data, $y = 2\sin x + x^{0.8} + \varepsilon$ with $\varepsilon \sim N(0, 0.5^2)$, the two forms agree
# to float64 precision. `loo_bandwidth` picks $h$ by leave-one-out cross-validation on a grid: each point is
# predicted from all the others (the diagonal of the attention matrix masked).

# %%
x, y = toy_data(100, torch.Generator().manual_seed(0))
q = torch.linspace(0, 5, 200, dtype=torch.float64)
print("max |attention pooling - Nadaraya-Watson|:",
      max(float((attention_pooling(q, x, y, h)[0] - nadaraya_watson(q, x, y, h)).abs().max()) for h in (0.05, 0.3, 1)))
grid = torch.logspace(-2, 0.5, 40, dtype=torch.float64)
h_cv, loo_errors = loo_bandwidth(x, y, grid)
print(f"leave-one-out bandwidth: h = {h_cv:.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
axes[0].plot(x, y, ".", color="grey", ms=4, label="data")
axes[0].plot(q, toy_function(q), "k-", lw=1, label="true f")
for h, color in ((0.05, "C3"), (h_cv, "C0"), (1.0, "C2")):
    axes[0].plot(q, attention_pooling(q, x, y, h)[0], color=color, label=f"h = {h:.2f}")
axes[0].set(xlabel="x", ylabel="y", title="attention pooling at three bandwidths")
axes[0].legend(fontsize=8)
axes[1].semilogx(grid, loo_errors, "o-", ms=3)
axes[1].axvline(h_cv, color="C0", ls="--")
axes[1].set(xlabel="bandwidth h", ylabel="leave-one-out squared error", title="choosing h")
weights = attention_pooling(q, x, y, h_cv)[1]  # (queries, keys)
axes[2].imshow(weights, aspect="auto", cmap="viridis", extent=(0, 100, 5, 0))
axes[2].set(xlabel="key i (training points, sorted by x)", ylabel="query x", title=f"attention weights, h = {h_cv:.2f}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Too small an $h$ attends to one or two neighbours and follows the noise; too large an $h$ averages everything and
# flattens the curve. The weight matrix is a band: each query attends to the keys near it.
#
# ### The consistency experiment (smoke budget)
#
# The experiment repeats this for growing $n$ and measures the excess error $E[(\hat f - f)^2]$ on noiseless test
# queries; kernel-regression theory gives $O(n^{-4/5})$ at the best bandwidth for a twice-differentiable $f$. It also
# trains d2l's parametric version, one learned scalar $w = 1/h$, by gradient descent on the leave-one-out loss. The
# smoke budget has three sizes and two data sets per size, a pipeline check; the quick budget fits the slope over
# seven sizes.

# %%
result, run_dir = wt.smoke("attention/kernel-regression")
m = result["metrics"]
learned = mlreads.load_run(run_dir)["parametric"]
print(f"smoke verdict: {result['verdict']} | identity error {m['identity_max_err']:.1e} | "
      f"learned h = {learned.bandwidth:.3f} against cross-validated h = {m['h_cv']:.3f}")
sizes = [int(n) for n in m["excess_mse"]]
excess = list(m["excess_mse"].values())
fig, ax = plt.subplots(figsize=(5.5, 3.6))
ax.loglog(sizes, excess, "o-", label=f"measured (slope {m['log_log_slope']:.2f})")
ax.loglog(sizes, [excess[0] * (n / sizes[0]) ** -0.8 for n in sizes], "--", color="grey", label="n^-4/5")
ax.set(xlabel="training points n", ylabel="excess error E[(f̂ - f)²]", title="the error falls with n (smoke scale)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (the claim's own budget, minutes on a 2-core CPU) decide the claims; these cells read
# them from the ledger (`results/`), so they always show the current verdicts.

# %%
print(wt.published("attention/rnnsearch-vs-rnnencdec"))

# %%
print(wt.published("attention/kernel-regression"))

# %% [markdown]
# **Read next.** The experiments: `src/mlreads/attention/exp_rnnsearch_vs_rnnencdec.py` (its notes explain the
# synthetic language and the equal-CPU-time design) and `src/mlreads/attention/exp_kernel_regression.py`; the models:
# `src/mlreads/attention/rnn.py` (RNNsearch, RNNencdec, the paper's GRU; the docstring lists the deviations) and
# `src/mlreads/attention/kernel_regression.py`; the task: `src/mlreads/core/data/translation.py`. The claims' pages,
# after `mlreads report`: `reports/claims/attention__rnnsearch-vs-rnnencdec/index.html` and
# `reports/claims/attention__kernel-regression/index.html`. The Transformer, which keeps the attention and drops the
# recurrence, is [transformer.ipynb](transformer.ipynb).
