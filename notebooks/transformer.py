# %% [markdown]
# # Attention Is All You Need: the encoder-decoder Transformer
#
# **Paper.** Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser & Polosukhin 2017,
# [arXiv:1706.03762](https://arxiv.org/abs/1706.03762).
#
# **The idea.** Translate without recurrence. An encoder turns the source sentence into one vector per word by
# letting every word attend to every other word; a decoder writes the target one word at a time, attending to the
# words it has already written (masked self-attention) and to the encoder's vectors (cross-attention). Attention is
# a softmax over scaled query-key dot products; position enters only through sinusoids added to the embeddings. All
# positions of a layer are computed at once, which is what made it train faster than recurrent models on GPUs.
#
# **Our claims.**
# - `transformer/scaled-dot-product` (Section 3.2.1, footnote 4): $q \cdot k$ has variance $d_k$, so without the
#   $1/\sqrt{d_k}$ scale the softmax saturates for large $d_k$ and the typical query's gradient vanishes.
# - `transformer/ablations` (Table 3, rows D and E): label smoothing raises perplexity but raises BLEU; learned
#   positional embeddings match the sinusoids to within 1 BLEU.
# - `transformer/seq2seq` (Table 2, its quality half): at equal CPU time the Transformer translates better than
#   RNNsearch (the attention RNN of [attention.ipynb](attention.ipynb)) on a synthetic "pseudo-French" task.
#
# Below: Eq. 1 and footnote 4 with the code that implements them, a smoke run of the footnote-4 experiment, the
# model's pieces (encoder layer, positions, the learning-rate schedule of Eq. 3, label smoothing), and a tiny
# translation model trained at the smoke budget whose cross-attention we draw.

# %%
import json
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import mlreads
from mlreads.attention import seq2seq_loss
from mlreads.core.data.translation import TranslationConfig, make_task, pad_batch
from mlreads.core.report import walkthrough as wt
from mlreads.core.run.results import run_dir_name
from mlreads.gpt.attention import attention_scores
from mlreads.transformer import noam_lr, sinusoids
from mlreads.transformer.exp_scaled_dot_product import softmax_jacobian_norm
from mlreads.transformer.model import EncoderLayer

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Eq. 1 and footnote 4: why divide by $\sqrt{d_k}$
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$
#
# If the components of $q$ and $k$ are independent with mean 0 and variance 1, then
# $q \cdot k = \sum_{i=1}^{d_k} q_i k_i$ has mean 0 and variance $d_k$. Unscaled, the logits spread like
# $\sqrt{d_k}$; the softmax puts almost all its weight on one key, and its Jacobian
#
# $$\frac{\partial\, \mathrm{softmax}(s)}{\partial s} = \mathrm{diag}(p) - p\,p^\top$$
#
# (what backpropagation multiplies the incoming gradient by) goes to zero. The Transformer shares
# `attention_scores` with the GPT package; the experiment measures the Frobenius norm of that Jacobian per query:

# %%
wt.show_source(attention_scores)
wt.show_source(softmax_jacobian_norm);

# %% [markdown]
# One query against 32 random keys at $d_k = 512$ (the paper's $d_{model}$), with and without the scale. The
# unscaled softmax is close to one-hot, and its Jacobian norm is orders of magnitude smaller.

# %%
d_k = 512
q, k = torch.randn(1, 1, 1, d_k, dtype=torch.float64), torch.randn(1, 1, 32, d_k, dtype=torch.float64)
scaled = attention_scores(q, k).softmax(-1)[0, 0, 0]  # (32,)
unscaled = (attention_scores(q, k) * math.sqrt(d_k)).softmax(-1)[0, 0, 0]  # softmax(q k^T), no scale
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
for ax, p, name in zip(axes, (scaled, unscaled), ("scaled: softmax(qk/√d_k)", "unscaled: softmax(qk)")):
    ax.bar(range(32), p, color="C0" if "/" in name else "C3")
    ax.set_title(f"{name}\n||J|| = {softmax_jacobian_norm(p).item():.2g}", fontsize=10)
    ax.set_xlabel("key")
axes[0].set_ylabel("attention weight")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### The footnote-4 experiment (smoke budget)
#
# `wt.smoke` runs the registered experiment as `mlreads run transformer/scaled-dot-product --budget smoke` would, on
# one thread, into a temporary folder. It measures $\mathrm{Var}(q\cdot k)/d_k$ over a sweep of $d_k$, and, over
# independent queries, the median ratio of the unscaled to the scaled Jacobian norm and the share of queries whose
# unscaled Jacobian norm is below $10^{-3}$. The smoke budget uses few samples and stops the sweep at $d_k = 512$
# (the quick budget goes to 4096): it checks the pipeline, it does not decide the claim.

# %%
result, run_dir = wt.smoke("transformer/scaled-dot-product")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | attention entropy at d_k={d_k}: scaled {m['entropy_scaled']:.2f}, "
      f"unscaled {m['entropy_unscaled']:.2f} nats (uniform over 32 keys: {m['entropy_uniform']:.2f})")

# %%
d_ks = [int(d) for d in m["var_over_dk"]]
by = m["by_dk"]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
axes[0].plot(d_ks, list(m["var_over_dk"].values()), "o-")
axes[0].axhline(1, color="grey", ls="--")
axes[0].set(ylabel="Var(q·k) / d_k", ylim=(0.8, 1.2), title="q·k has variance d_k")
axes[1].plot(d_ks, [by["median_ratio"][str(d)] for d in d_ks], "o-", label="median query")
axes[1].plot(d_ks, [by["mean_ratio"][str(d)] for d in d_ks], "s--", label="mean (near-ties dominate)")
axes[1].set(yscale="log", ylabel="||J|| unscaled / scaled", title="the typical gradient collapses")
axes[1].legend(fontsize=8)
axes[2].plot(d_ks, [by["vanishing_unscaled"][str(d)] for d in d_ks], "o-", color="C3", label="unscaled")
axes[2].plot(d_ks, [by["vanishing_scaled"][str(d)] for d in d_ks], "o-", color="C0", label="scaled (Eq. 1)")
axes[2].set(ylabel="share of queries, ||J|| < 1e-3", ylim=(-0.03, 1), title="vanishing softmax gradients")
axes[2].legend(fontsize=8)
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xticks(d_ks, [str(d) for d in d_ks])
    ax.minorticks_off()
    ax.set_xlabel("d_k")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The encoder layer (Section 3.1) and the positions (Section 3.5)
#
# Each encoder layer applies multi-head self-attention and then the position-wise feed-forward network
# $\mathrm{FFN}(x) = \max(0, xW_1 + b_1)W_2 + b_2$ (Eq. 2), each wrapped as $\mathrm{LayerNorm}(x +
# \mathrm{Dropout}(\mathrm{Sublayer}(x)))$: the original "post-LN" arrangement (GPT-2 later moved the norm before the
# sub-layer). A decoder layer adds a cross-attention sub-layer whose keys and values are the encoder's output.

# %%
wt.show_source(EncoderLayer.forward);

# %% [markdown]
# Attention itself ignores order, so position is added to the embeddings:
#
# $$PE_{(pos,\,2i)} = \sin\!\left(pos / 10000^{2i/d_{model}}\right), \qquad
# PE_{(pos,\,2i+1)} = \cos\!\left(pos / 10000^{2i/d_{model}}\right)$$
#
# wavelengths from $2\pi$ to $10000 \cdot 2\pi$. Table 3, row E replaces them by learned embeddings
# (`TransformerConfig(positional="learned")`), with nearly the same result (25.7 against 25.8 BLEU).

# %%
wt.show_source(sinusoids);

# %% [markdown]
# ## Eq. 3: the learning rate
#
# $$\mathit{lrate} = d_{model}^{-0.5} \cdot \min\!\left(\mathit{step}^{-0.5},\ \mathit{step} \cdot
# \mathit{warmup}^{-1.5}\right)$$
#
# a linear warmup, then decay as the inverse square root of the step (the paper: warmup 4,000 steps, Adam with
# $\beta_1 = 0.9$, $\beta_2 = 0.98$, $\epsilon = 10^{-9}$). Our experiments use the same curve with a shorter warmup.

# %%
wt.show_source(noam_lr);

# %%
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.4))
im = a.imshow(sinusoids(64, 64).T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
a.set(xlabel="position", ylabel="dimension", title="sinusoidal positions (d_model = 64)")
fig.colorbar(im, ax=a)
steps = range(1, 20_001)
b.plot(steps, [noam_lr(s, 512, 4000) for s in steps], label="paper base: d_model 512, warmup 4000")
b.plot(steps, [noam_lr(s, 64, 400) for s in steps], label="our quick runs: d_model 64, warmup 400")
b.set(xlabel="step", ylabel="learning rate", title="Eq. 3", yscale="log")
b.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Label smoothing (Section 5.4, Table 3 row D)
#
# Training replaces the one-hot target by $(1-\epsilon_{ls})\,\delta_{y} + \epsilon_{ls}/K$ over a vocabulary of
# $K$ words, with $\epsilon_{ls} = 0.1$; the package passes $\epsilon_{ls}$ to PyTorch's cross-entropy:

# %%
wt.show_source(seq2seq_loss);

# %% [markdown]
# Why it raises perplexity: on a word whose translation is certain, the smoothed loss is minimised by putting only
# $1 - \epsilon_{ls} + \epsilon_{ls}/K$ on the right word, so the model's perplexity there stays above 1 however
# long it trains. A direct check, minimising the smoothed loss over one free logit vector ($K = 300$):

# %%
K, target = 300, torch.tensor([7])
rows = []
for eps in (0.0, 0.05, 0.1, 0.2, 0.3):
    logits = torch.zeros(1, K, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(logits, target, label_smoothing=eps).backward()
        opt.step()
    p_right = logits.softmax(-1)[0, 7].item()
    rows.append((eps, p_right, 1 - eps + eps / K, 1 / p_right))
for eps, p, closed, ppl in rows:
    print(f"eps {eps:.2f}: p(right word) {p:.4f} (closed form {closed:.4f}) -> perplexity {ppl:.3f}")

# %% [markdown]
# On real text, where several translations are right, the paper finds the same direction with a BLEU gain: base
# ($\epsilon_{ls} = 0.1$) 4.92 perplexity / 25.8 BLEU against 4.67 / 25.3 without smoothing (newstest2013). Our
# `transformer/ablations` trains the variants paired (same initial weights, batches and dropout) on a task whose
# references have three synonyms per word, so smoothing has something to act on; `mlreads run
# transformer/ablations --budget smoke` checks its pipeline.
#
# ## A tiny translation model (smoke budget)
#
# The `transformer/seq2seq` experiment trains the Transformer and RNNsearch for equal CPU time. Its smoke budget
# trains the Transformer alone on a copy task; we switch the task to pseudo-French (`data.task=pseudo-french`), where
# noun phrases are reordered the French way, `F A1 A2 N` becomes `F' N' A2' A1'`, so that the cross-attention has
# something to show. 250 steps, a few seconds: a pipeline check, not a measurement.

# %%
overrides = {"data.task": "pseudo-french"}
result, run_dir = wt.smoke("transformer/seq2seq", overrides=overrides)
run_dir = run_dir.parent / run_dir_name("smoke", 0, overrides)  # a run with overrides has its own folder name
m = result["metrics"]
print(f"smoke: {m['steps_transformer']} steps, test BLEU {m['bleu_transformer']:.1f}, "
      f"token accuracy {m['token_acc_transformer']:.3f} (the smoke check is written for the copy task)")
for row in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()):
    print(f"  step {row['step']}: training loss {row['loss']:.3f}, dev BLEU {row['dev_bleu']:.1f}")

# %% [markdown]
# `mlreads.load_saved` rebuilds the trained model from the run folder; we rebuild the task from the run's config,
# draw a test sentence, translate it greedily, and read the last decoder layer's cross-attention with
# `run_with_cache` (teacher-forced on the reference). The white dots are the task's true alignment.

# %%
model = mlreads.load_saved(run_dir)["transformer"].model
data = result["config"]["data"] | {"synonym_probs": tuple(result["config"]["data"]["synonym_probs"])}
task = make_task(TranslationConfig(**data))
pair = task.sample(1, torch.Generator().manual_seed(3), 9, 10)[0]
src, tgt_in, tgt_out = pad_batch([pair])
print("source:     ", task.decode(pair.src, "src"))
print("reference:  ", task.decode(pair.tgt))
print("Transformer:", task.decode(model.greedy(src, src.shape[1] + 5)[0].tolist()))
_, cache = model.run_with_cache(src, tgt_in)
last = model.cfg.n_layers - 1
pattern = cache[f"decoder.blocks.{last}.cross_attn.hook_pattern"][0].mean(0)  # (T, S), averaged over heads

# %%
src_words = [task.src_itos[i] for i in src[0]]
tgt_words = [task.tgt_itos[i] for i in tgt_out[0]]  # row j: the word the decoder predicts at step j
fig, ax = plt.subplots(figsize=(5.5, 5))
ax.imshow(pattern, cmap="viridis")
ax.plot(pair.alignment, range(len(pair.alignment)), "w.", ms=6, label="true alignment")
ax.set_xticks(range(len(src_words)), src_words, rotation=90, fontsize=8)
ax.set_yticks(range(len(tgt_words)), tgt_words, fontsize=8)
ax.set(xlabel="source word", ylabel="target word being predicted",
       title=f"cross-attention, layer {last}, mean over heads")
ax.legend(loc="lower left", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Row $j$ is the decoder predicting target word $j$ (having read the reference up to word $j-1$); the dot marks the
# source word that target word translates. A model that translates well need not look exactly there (a head may read a neighbour,
# or the layer below may already have gathered the word), so this is a picture, not a test.
#
# ## What the quick runs found
#
# The published quick runs (the claim's own budget, minutes on a 2-core CPU) decide the claims; these cells read
# them from the ledger (`results/`), so they always show the current verdicts.

# %%
print(wt.published("transformer/scaled-dot-product"))

# %%
print(wt.published("transformer/ablations"))

# %%
print(wt.published("transformer/seq2seq"))

# %% [markdown]
# **Read next.** The experiments: `src/mlreads/transformer/exp_scaled_dot_product.py`,
# `src/mlreads/transformer/exp_ablations.py`, `src/mlreads/transformer/exp_seq2seq.py` (and their shared recipe,
# `exp_common.py`); the model: `src/mlreads/transformer/model.py` (its docstring lists the deviations from the
# paper); the claims' pages, after `mlreads report`: `reports/claims/transformer__scaled-dot-product/index.html`,
# `reports/claims/transformer__ablations/index.html`, `reports/claims/transformer__seq2seq/index.html`. The
# decoder-only version is [gpt.ipynb](gpt.ipynb); RNNsearch, the recurrent baseline, is
# [attention.ipynb](attention.ipynb).
