"""transformer/ablations: the rows of Table 3 that fit on a CPU, on the pseudo-French task.

- (D) label smoothing ε_ls 0.1 against 0: smoothing "hurts perplexity, as the model learns to be more unsure, but
  improves accuracy and BLEU score" (Section 5.4);
- (E) learned positional embeddings against sinusoids: "nearly identical results" (Section 3.5, Table 3 row E);
- (A) one head against several at equal d_model (h = 1 costs 0.9 BLEU in Table 3).

The variants are paired: every one starts from the same initial weights (those it shares with the base model) and
trains on the same batches, in the same order, with the same dropout stream; each comparison is a difference on the
same test sentences, with a paired bootstrap interval over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlreads.core.data.translation import TranslationConfig, corpus_batch_fn, make_task
from mlreads.core.fields import choices, in_range, nonnegative, positive
from mlreads.core.nn.decoding import bleu, paired_bleu, translate
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.stats import bootstrap
from mlreads.transformer.exp_common import (
    PAPER_PEAK_LR,
    build,
    paper_recipe,
    sentence_scores,
    train,
)
from mlreads.transformer.figures import ablation_figure

VARIANTS = {  # name -> (label smoothing, positional, heads); "base" is the paper's base recipe scaled down
    "base": (0.1, "sinusoidal", 4),
    "ls0": (0.0, "sinusoidal", 4),
    "learned_pe": (0.1, "learned", 4),
    "h1": (0.1, "sinusoidal", 1),
}
COMPARISONS = {  # metric -> (variant a, variant b): the paired BLEU difference a - b, when both are trained
    "bleu_gain_ls": ("base", "ls0"),
    "bleu_diff_learned_pe": ("learned_pe", "base"),
    "bleu_gain_heads": ("base", "h1"),
}


def _small_synonym_language() -> TranslationConfig:
    """130 source words (4 determiners, 30 adjectives, 60 nouns, 30 verbs, 6 connectives), sentences of 5-15 words,
    and three target synonyms per word drawn 0.6 / 0.3 / 0.1 (multi-modal references): small enough that every
    variant trains near convergence within quick (see the experiment's notes)."""
    return TranslationConfig(n_determiners=4, n_adjectives=30, n_nouns=60, n_verbs=30, n_connectives=6, min_len=5,
                             max_len=15, synonym_probs=(0.6, 0.3, 0.1))  # fmt: skip


@dataclass(frozen=True)
class AblationConfig:
    # multi-modal references (three target synonyms per word) on a finite corpus: see the experiment's notes
    data: TranslationConfig = field(default_factory=_small_synonym_language)
    variants: tuple[str, ...] = choices(("base", "ls0", "learned_pe"), tuple(VARIANTS))
    d_model: int = positive(64)
    d_mlp: int = positive(256)
    n_layers: int = positive(2)
    dropout: float = in_range(0.1, 0.0, 1.0)
    warmup: int = positive(300)
    # Eq. 3's shape peaking at the paper's own rate (d_model 512, warmup 4000); None: Eq. 3 at this d_model
    peak_lr: float | None = positive(PAPER_PEAK_LR)
    steps: int = positive(3200)
    batch_size: int = positive(32)
    corpus: int = nonnegative(10_000)  # training pairs, drawn once; 0: fresh pairs at every step
    n_test: int = positive(2000)
    n_boot: int = positive(1000)  # paired bootstrap resamples of the test sentences


def run_ablations(cfg: AblationConfig, ctx: RunContext) -> dict:
    unknown = set(cfg.variants) - set(VARIANTS)
    if unknown or cfg.variants[0] != "base":
        raise ValueError(f"variants: base first, then any of {sorted(VARIANTS)}; got {cfg.variants}")
    task = make_task(cfg.data)
    lo, hi = cfg.data.min_len, cfg.data.max_len
    test = task.sample(cfg.n_test, ctx.generator("test"), lo, hi)
    batches = corpus_batch_fn(task.sample(cfg.corpus, ctx.generator("corpus"), lo, hi), cfg.batch_size) \
        if cfg.corpus else None  # fmt: skip
    out: dict = {"uniform_ppl": float(task.tgt_vocab)}
    scores, hyps, init = {}, {}, None
    for name in cfg.variants:
        ls, positional, heads = VARIANTS[name]
        model = build(task, ctx, "ablation", d_model=cfg.d_model, n_heads=heads, d_mlp=cfg.d_mlp,
                      n_layers=cfg.n_layers, dropout=cfg.dropout, positional=positional, n_ctx=hi + 12)  # fmt: skip
        if init is None:  # the base model's initial weights, given to every variant where the shapes agree
            init = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict({k: v for k, v in init.items() if k in model.state_dict()
                               and model.state_dict()[k].shape == v.shape}, strict=False)  # fmt: skip
        with init_rng(ctx.seed_for("dropout")):  # the same dropout stream for every variant
            train(model, task, paper_recipe(cfg.steps, cfg.d_model, cfg.warmup, cfg.peak_lr), ctx, f"ablation/{name}",
                  cfg.batch_size, lo, hi, label_smoothing=ls, batches=batches)  # fmt: skip
        scores[name] = sentence_scores(model, test).numpy()  # (n, 3): nll, tokens, hits
        hyps[name] = translate(model, test)
        ctx.save_model(name, model, src_tokens=task.src_itos, tgt_tokens=task.tgt_itos)
        nll, n, hits = scores[name].sum(0)
        out |= {f"ppl_{name}": float(np.exp(nll / n)), f"token_acc_{name}": float(hits / n),
                f"bleu_{name}": bleu(task, hyps[name], test)}  # fmt: skip
    out |= _references(cfg, task, test, out)
    if "ls0" in cfg.variants:  # log(PPL_base / PPL_ls0) > 0: smoothing raises perplexity
        rows = np.stack([scores["base"][:, 0], scores["ls0"][:, 0], scores["base"][:, 1]], 1)
        out |= bootstrap("ppl_log_ratio_ls", rows, lambda r: float((r[:, 0].sum() - r[:, 1].sum()) / r[:, 2].sum()),
                         n_boot=cfg.n_boot, seed=ctx.seed_for("boot/ppl"))  # fmt: skip
    for metric, (a, b) in COMPARISONS.items():
        if a in cfg.variants and b in cfg.variants:
            out |= paired_bleu(metric, task, hyps[a], hyps[b], test, n_boot=cfg.n_boot, seed=ctx.seed_for(f"boot/{metric}"))
    ctx.savefig(ablation_figure({v: (out[f"ppl_{v}"], out[f"bleu_{v}"]) for v in cfg.variants}, _title(out)),
                "ablations",
                caption=("Test perplexity (left, lower is better) and BLEU (right, higher is better) of each "
                         "Transformer variant, paired (the same initial weights, batches and dropout stream; base: "
                         "label smoothing 0.1, sinusoidal positions, 4 heads; ls0: no label smoothing; learned_pe: "
                         "learned positions; h1: one head). The claim (Table 3) predicts ls0 has a lower perplexity "
                         "but a lower BLEU than base, and learned_pe about base's BLEU. The references hold one of "
                         f"three synonyms per word, so the best greedy BLEU is about {out['bleu_bayes']:.0f}."))
    return out


def _references(cfg: AblationConfig, task, test, out: dict) -> dict:
    """What the best possible model scores on this test set: the task's own token probabilities bound accuracy
    (the likeliest synonym is right with probability max(synonym_probs)) and perplexity (its entropy), and the greedy
    translation into likeliest synonyms has a BLEU; `min_token_acc_of_best` is the worst variant's token accuracy
    as a fraction of the best possible (the precondition: training is near convergence)."""
    if not hasattr(task, "token_probs"):  # a user's parallel text: no known distribution to compare with
        return {"min_token_acc_of_best": None}
    probs = [task.token_probs(p) for p in test]
    top = max(cfg.data.synonym_probs)
    best_acc = sum(top if q < 1 else 1.0 for ps in probs for q in ps) / sum(len(ps) for ps in probs)
    entropy_ppl = float(np.exp(-np.mean([np.log(q) for ps in probs for q in ps])))
    likeliest = [[task.synonyms[p.src[a]][0] for a in p.alignment] for p in test]
    return {"token_acc_best": best_acc, "ppl_floor": entropy_ppl, "bleu_bayes": bleu(task, likeliest, test),
            "min_token_acc_of_best": min(out[f"token_acc_{v}"] for v in cfg.variants) / best_acc}  # fmt: skip


def _title(out: dict) -> str | None:
    """What the run shows, from its own numbers: smoothing's effect on perplexity and BLEU, learned positions' BLEU."""
    parts = []
    if "ppl_ls0" in out:
        parts.append(f"adding label smoothing: perplexity {out['ppl_ls0']:.4g} -> {out['ppl_base']:.4g}, "
                     f"BLEU {out['bleu_ls0']:.2f} -> {out['bleu_base']:.2f}")
    if "bleu_learned_pe" in out:
        parts.append(f"learned positions {out['bleu_learned_pe']:.2f} vs sinusoids {out['bleu_base']:.2f} BLEU")
    return "; ".join(parts) or None
