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
    # nanoGPT's train_shakespeare_char.py.
    "full": CharLMConfig(
        n_layers=6, n_heads=6, d_model=384, n_ctx=256, dropout=0.2, batch_size=64, eval_batches=200,
        sample_chars=2000,
        train=recipe(5000, 1e-3, warmup=100, eval_every=250, ckpt_every=250, **NANOGPT),  # hours: resumable
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
