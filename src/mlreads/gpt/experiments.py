"""Experiments for the GPT decoder (Vaswani et al. 2017; Radford et al. 2019): declarations only.

    gpt/char-lm   a character-level language model on Shakespeare (nanoGPT's shakespeare_char)

The run function, its config dataclass and its deviations are in exp_char_lm.py.
"""

from __future__ import annotations

from mlreads.core.run.registry import Experiment, at_least, at_most, register
from mlreads.core.train import recipe
from mlreads.gpt.exp_char_lm import NANOGPT, CharLMConfig, run_char_lm

CONFIGS = {
    # A tiny model that must beat the best context-free (unigram) predictor within seconds.
    "smoke": CharLMConfig(
        n_layers=2, n_heads=2, d_model=64, n_ctx=32, batch_size=16, eval_batches=8, sample_chars=300,
        train=recipe(200, 3e-3, warmup=20, eval_every=100, **NANOGPT),
    ),  # fmt: skip
    # nanoGPT's "baby GPT" on CPU.
    "quick": CharLMConfig(train=recipe(2000, 1e-3, warmup=100, eval_every=250, **NANOGPT)),
    # nanoGPT's train_shakespeare_char.py model (6L/6H/384, block 256) at 8 sequences per step, not 64: one step of
    # 64 x 256 costs about 22 CPU-s here (31 CPU-hours for 5000). About 1.1 passes over the training text, so no
    # dropout (nanoGPT's 0.2 fights the overfitting of ~80 passes over its 1 MB). ~2.4 s per step: a checkpoint
    # every 125 steps is about 5 minutes.
    "full": CharLMConfig(
        n_layers=6, n_heads=6, d_model=384, n_ctx=256, dropout=0.0, batch_size=8, eval_batches=40,
        sample_chars=2000,
        train=recipe(2500, 1e-3, warmup=100, eval_every=500, ckpt_every=125, **NANOGPT),
    ),  # fmt: skip
}


register(
    Experiment(
        id="gpt/char-lm",
        claim="A small decoder-only Transformer learns character-level Shakespeare.",
        paper_value="nanoGPT on tiny-shakespeare: baby GPT (4L/4H/128, 2000 iters) val 1.88; 6L/6H/384 val 1.4697",
        configs=CONFIGS,
        run=run_char_lm,
        checks={
            "smoke": [at_most("val_loss", "unigram_entropy", margin=0.3)],
            "quick": [
                at_most("val_loss", 2.0),
                at_least("word_frac", 0.5),
                at_least("word_frac", "word_frac_unigram", margin=0.3),
            ],
            "full": [at_most("val_loss", 1.55), at_least("word_frac", 0.5)],
        },
        requires=("text",),
        headline="val_loss",
        full_scale=(
            "Largest faithful scale: nanoGPT's 6-layer model (6 heads, d_model 384, block 256) with its optimiser and "
            "schedule, 2500 steps of 8 sequences (5.1M characters, about one pass over the corpus, so no dropout); "
            "the paper: nanoGPT's train_shakespeare_char, 5000 steps of 64 sequences with dropout 0.2, val 1.4697; "
            "why: one step of 64 x 256 characters costs about 22 CPU-seconds here (31 CPU-hours for 5000; 3 minutes "
            "on an A100); about 1.8 CPU-hours here (estimate: 2.4 CPU-s per step measured, plus evaluations)."
        ),
        notes=(
            "Anchor: nanoGPT's shakespeare_char (baby GPT val 1.88 on CPU; 6L/6H/384 val 1.4697). Our corpus is the "
            "`shakespeare` package: 42 works, 5.06 MB and 84 distinct characters, against tiny-shakespeare's 1 MB and "
            "65 characters, with the last 10% of the concatenated works as the val split; the numbers are close but "
            "not identical. 'Readable words' is measured as word_frac: the share of sampled whitespace-separated "
            "words (punctuation stripped, lowercased) found in the training text, against characters drawn from the "
            "unigram distribution (word_frac_unigram). The smoke budget trains a tiny model for seconds and checks "
            "that it beats the best context-free predictor (the unigram entropy) by 0.3 nats."
        ),
    )
)
