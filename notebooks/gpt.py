# %% [markdown]
# # Attention Is All You Need, as a decoder: a character-level GPT
#
# **Paper.** Vaswani et al. 2017, [arXiv:1706.03762](https://arxiv.org/abs/1706.03762), Section 3; with the GPT-2
# changes of Radford et al. 2019 (layer norm before each sub-block, learned positions, GELU).
#
# **The idea.** A Transformer drops recurrence: every position reads every earlier position at once through
# attention, a softmax over query-key similarities that weights the values. Stack attention and a per-position MLP,
# each inside a residual connection, mask the future, and train the stack to predict the next token. Because all
# positions are processed in parallel, training is a few matrix products per layer.
#
# **Our claim** (`gpt/char-lm`): a small decoder-only Transformer learns character-level Shakespeare: its validation
# loss falls far below the unigram entropy and its samples are mostly real words.
#
# This walkthrough reads the equation, then the code that implements it, trains a tiny model at the smoke budget
# (seconds: a pipeline check, not a measurement) and draws the learning curves, the attention patterns and a sample.

# %%
import matplotlib.pyplot as plt
import torch

import mlreads
from mlreads.core.report import walkthrough as wt
from mlreads.gpt import GPT, GPTConfig
from mlreads.gpt.attention import attention_pattern, attention_scores

torch.manual_seed(0)
torch.set_num_threads(1)

# %% [markdown]
# ## Eq. 1: scaled dot-product attention
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$
#
# The scores are the query-key dot products divided by $\sqrt{d_k}$ (the paper's footnote 4: without it, the dot
# products of random $d_k$-dimensional vectors have variance $d_k$ and the softmax saturates). A decoder masks each
# query's future keys to $-\infty$ before the softmax (Section 3.2.3). Here is the package's code for both parts:

# %%
wt.show_source(attention_scores)
wt.show_source(attention_pattern);

# %% [markdown]
# A quick check of the equation on random vectors: each row of the pattern is a distribution over the keys at or
# before the query, and the masked entries are exactly zero.

# %%
q, k = torch.randn(1, 1, 5, 16), torch.randn(1, 1, 5, 16)  # (batch, heads, positions, d_k)
pattern = attention_pattern(q, k)  # (1, 1, 5, 5)
print(pattern[0, 0].numpy().round(2))
assert torch.allclose(pattern.sum(-1), torch.ones(1, 1, 5))
assert (pattern[0, 0].triu(1) == 0).all()

# %% [markdown]
# ## The model
#
# `GPT` stacks `n_layers` blocks, each `x + attn(ln_1(x))` then `x + mlp(ln_2(x))`, over token plus position
# embeddings, and reads the logits through the (tied) token embedding. Its parameter names follow the GPT-2
# checkpoint and its hook names follow TransformerLens, so `run_with_cache` records every intermediate.

# %%
model = GPT(GPTConfig(d_vocab=65, n_ctx=32, n_layers=2, n_heads=2, d_model=64))
print(f"{model.num_params():,} parameters")
logits, cache = model.run_with_cache(torch.randint(0, 65, (1, 12)))
print(logits.shape, "| some hook names:", [name for name in cache if "blocks.0" in name][:6])

# %% [markdown]
# ## Train it (smoke budget)
#
# `wt.smoke` runs the registered experiment exactly as `mlreads run gpt/char-lm` would, on one thread, into a
# temporary folder: the same data, model, training loop and checks, at the smallest budget. It takes about half a
# minute; a smoke verdict only says the pipeline works.

# %%
result, run_dir = wt.smoke("gpt/char-lm")
m = result["metrics"]
print(f"smoke verdict: {result['verdict']} | val loss {m['val_loss']:.3f} nats/char "
      f"(unigram entropy {m['unigram_entropy']:.3f}) | {m['params']:,} parameters")

# %% [markdown]
# ## The learning curves
#
# The run wrote its figure; here we redraw it from the run's own log (`metrics.jsonl`): the training loss per step
# and the validation loss at each evaluation, against the unigram entropy, the best loss without context.

# %%
import json

rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
train = [(r["step"], r["loss"]) for r in rows if "loss" in r and "step" in r]
val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(*zip(*train), lw=0.8, label="training loss (batch)")
ax.plot(*zip(*val), "o-", label="validation loss")
ax.axhline(m["unigram_entropy"], color="grey", ls="--", label="unigram entropy")
ax.set_xlabel("step")
ax.set_ylabel("nats / character")
ax.legend()
plt.show()

# %% [markdown]
# ## Look inside the trained model
#
# `mlreads.load_saved` rebuilds the model the run kept (its weights and config, plus the character vocabulary). We
# feed it a line of Shakespeare and draw each head's attention pattern in the first layer: lower-triangular, as Eq. 1
# with the causal mask requires.

# %%
saved = mlreads.load_saved(run_dir)["gpt"]
text = "ROMEO: But soft"
idx = saved.encode(text)[None]  # (1, L)
_, cache = saved.model.run_with_cache(idx)
patterns = cache["blocks.0.attn.hook_pattern"][0]  # (heads, L, L)
fig, axes = plt.subplots(1, patterns.shape[0], figsize=(3.2 * patterns.shape[0], 3.2))
for h, ax in enumerate(axes):
    ax.imshow(patterns[h].detach(), cmap="viridis")
    ax.set_title(f"layer 0, head {h}")
    ax.set_xticks(range(len(text)), list(text), fontsize=7)
    ax.set_yticks(range(len(text)), list(text), fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# And a sample. After the smoke budget it is letter soup with the right letter frequencies and spacing; the quick
# budget's model (2,000 steps, 10 minutes) writes mostly real words.

# %%
out = saved.model.generate(saved.encode("\n")[None], 200, temperature=0.8)
print(saved.decode(out[0]))

# %% [markdown]
# ## What the quick runs found
#
# The published quick runs (10 minutes each on a 2-core CPU) decide the claim; this cell reads them from the ledger
# (`results/`), so it always shows the current verdict.

# %%
print(wt.published("gpt/char-lm"))

# %% [markdown]
# **Read next.** The experiment: `src/mlreads/gpt/exp_char_lm.py`; the model: `src/mlreads/gpt/model.py` (its
# docstring lists every deviation from the paper); the claim's page: `reports/claims/gpt__char-lm/index.html` after
# `mlreads report`. The Transformer's own claims (footnote 4's scaling, the ablations of Table 3, translation) are in
# [transformer.ipynb](transformer.ipynb).
