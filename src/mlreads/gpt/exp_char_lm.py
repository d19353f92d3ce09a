"""gpt/char-lm: a character-level language model on Shakespeare (nanoGPT's shakespeare_char).

Anchor: nanoGPT (Karpathy), `config/train_shakespeare_char.py` and its README. On tiny-shakespeare (1 MB, 65
characters) the "baby GPT" (4 layers, 4 heads, d_model 128, block 64, batch 12, 2000 iters) reaches val loss 1.88 on
a CPU, and the 6L/6H/384 model (block 256, batch 64, dropout 0.2, 5000 iters) reaches 1.4697.

Deviations:
    - The corpus is the `shakespeare` package (42 works, 5.06 MB, 84 characters), not tiny-shakespeare. It has more
      characters (a larger uniform baseline), includes the sonnets and poems, and its val split is the last 10% of
      the concatenated works (the tail of the alphabetical file list), so the losses are close but not identical.
    - Optimiser and schedule follow nanoGPT's shakespeare_char config (AdamW, betas (0.9, 0.99), weight decay 0.1 on
      matrices, grad clip 1.0, 100 warmup steps, cosine to min_lr); nanoGPT also decays embeddings, as we do.
    - Validation loss is estimated on `eval_batches` random windows (nanoGPT: eval_iters), drawn with a fixed
      generator so that every evaluation sees the same windows.
Registered in experiments.py.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Literal

import torch

from mlreads.core.data.text import TextConfig, load_text
from mlreads.core.fields import in_range, positive
from mlreads.core.nn.lm import lm_evaluator, next_token_loss
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import TrainConfig, fit, recipe
from mlreads.gpt.figures import training_curves_figure
from mlreads.gpt.model import GPT, GPTConfig

NANOGPT = {"weight_decay": 0.1, "betas": (0.9, 0.99)}  # shakespeare_char's AdamW; recipe's cosine ends at lr / 10


@dataclass(frozen=True)
class CharLMConfig:
    n_layers: int = positive(4)
    n_heads: int = positive(4)
    d_model: int = positive(128)
    n_ctx: int = positive(64)  # context, in characters
    dropout: float = in_range(0.0, 0.0, 1.0)
    bias: bool = False  # nanoGPT's default for this config
    gelu: Literal["tanh", "exact"] = "tanh"
    batch_size: int = positive(12)  # sequences per step
    eval_batches: int = positive(20)  # batches per split per evaluation (nanoGPT's eval_iters)
    sample_chars: int = positive(1000)  # length of the generated sample
    temperature: float = positive(0.8)  # sampling temperature of the sample (nanoGPT's sample.py)
    train: TrainConfig = field(default_factory=lambda: recipe(2000, 1e-3, warmup=100, eval_every=250, **NANOGPT))
    data: TextConfig = field(default_factory=TextConfig)


def _normalise(token: str) -> str:
    return token.strip(string.punctuation).lower()


def word_vocabulary(text: str) -> frozenset[str]:
    """Every whitespace-separated word of `text`, stripped of surrounding punctuation and lowercased."""
    return frozenset(w for w in map(_normalise, text.split()) if w)


def word_fraction(sample: str, vocab: frozenset[str]) -> float:
    """The fraction of the sample's whitespace-separated words (punctuation stripped, lowercased, letters and
    apostrophes only) that occur in `vocab`. A token with any other character counts as a miss."""
    words = [w for w in map(_normalise, sample.split()) if w]
    if not words:
        return 0.0
    hits = sum(1 for w in words if re.fullmatch(r"[a-z']+", w) and w in vocab)
    return hits / len(words)


def run_char_lm(cfg: CharLMConfig, ctx: RunContext) -> dict:
    """Train a GPT on characters and measure val loss, the unigram baseline and how many sampled words are real.

    Metrics: val_loss and train_loss (nats/char, on `eval_batches` fixed windows); unigram_entropy (the loss of the
    best context-free model, from the train split's character frequencies); word_frac (the share of sampled words
    found in the training text) and word_frac_unigram (the same for characters drawn from the unigram
    distribution, a baseline a model without context would reach); params; tokens_per_s.
    """
    data = load_text(cfg.data)
    V = data.vocab_size
    with init_rng(ctx.seed_for("init/gpt")):
        model = GPT(GPTConfig(d_vocab=V, n_ctx=cfg.n_ctx, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                              d_model=cfg.d_model, dropout=cfg.dropout, bias=cfg.bias, gelu=cfg.gelu))  # fmt: skip

    def batch_fn(step: int, gen: torch.Generator):
        return data.get_batch("train", cfg.batch_size, cfg.n_ctx, gen)  # (B, L), (B, L)

    eval_fn = lm_evaluator(data, cfg.batch_size, cfg.n_ctx, cfg.eval_batches, splits=("train", "val"))
    result = fit(model, cfg.train, batch_fn, next_token_loss, eval_fn=eval_fn, ctx=ctx, desc="gpt/char-lm")
    train_s = result.elapsed_s  # fit's training time, which a resumed run continues (its checkpoint saves it)

    # A sample, and the same number of characters from the unigram distribution as a baseline.
    model.eval()
    gen = ctx.generator("sample")
    newline = data.tokenizer.stoi.get("\n", int(data.val[0]))
    ids = model.generate(torch.tensor([[newline]]), cfg.sample_chars, temperature=cfg.temperature, generator=gen)[0, 1:]
    sample = data.tokenizer.decode(ids)
    counts = torch.bincount(data.train, minlength=V).double()
    unigram_ids = torch.multinomial(counts / counts.sum(), cfg.sample_chars, replacement=True, generator=gen)
    vocab = word_vocabulary(data.tokenizer.decode(data.train))
    unigram = data.unigram_entropy()

    ctx.write_text("sample", sample)
    ctx.save_model("gpt", model, **data.vocabulary())
    ctx.savefig(training_curves_figure(result.history, unigram), "loss_curves",
                caption=("Loss against steps for the character-level GPT: batch-mean training loss (thin line) and "
                         "training and validation loss on fixed evaluation windows (markers). The grey dashed line is "
                         "the unigram entropy, the best a model that ignores context can do; learning the text means "
                         f"ending well below it. The validation loss ends at {result.final['val_loss']:.3f} against "
                         f"{unigram:.3f} nats/char."))  # fmt: skip
    return {
        "val_loss": result.final["val_loss"],
        "train_loss": result.final["train_loss"],
        "unigram_entropy": unigram,
        "word_frac": word_fraction(sample, vocab),
        "word_frac_unigram": word_fraction(data.tokenizer.decode(unigram_ids), vocab),
        "params": model.num_params(),
        "vocab_size": V,
        "steps": result.steps,
        "tokens_per_s": result.steps * cfg.batch_size * cfg.n_ctx / train_s,
        "train_s": train_s,
    }
