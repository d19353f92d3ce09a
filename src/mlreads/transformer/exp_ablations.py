"""transformer/ablations: the rows of Table 3 that fit on a CPU, on the pseudo-French task.

- (D) label smoothing ε_ls 0.1 against 0: smoothing "hurts perplexity, as the model learns to be more unsure, but
  improves accuracy and BLEU score" (Section 5.4);
- (E) learned positional embeddings against sinusoids: "nearly identical results" (Section 3.5, Table 3 row E);
- (A) one head against several at equal d_model (h = 1 costs 0.9 BLEU in Table 3).

Every variant trains for the same steps on the same batches from its own initialisation seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlreads.core.data.translation import TranslationConfig, make_task
from mlreads.core.fields import choices, in_range, positive
from mlreads.core.nn.decoding import bleu, translate
from mlreads.core.run.runner import RunContext
from mlreads.transformer.exp_common import build, paper_recipe, teacher_forced, train
from mlreads.transformer.figures import ablation_figure

VARIANTS = {  # name -> (label smoothing, positional, heads); "base" is the paper's base recipe scaled down
    "base": (0.1, "sinusoidal", 4),
    "ls0": (0.0, "sinusoidal", 4),
    "learned_pe": (0.1, "learned", 4),
    "h1": (0.1, "sinusoidal", 1),
}


@dataclass(frozen=True)
class AblationConfig:
    data: TranslationConfig = field(default_factory=lambda: TranslationConfig(max_len=30))
    variants: tuple[str, ...] = choices(("base", "ls0", "learned_pe"), tuple(VARIANTS))
    d_model: int = positive(64)
    d_mlp: int = positive(256)
    n_layers: int = positive(2)
    dropout: float = in_range(0.1, 0.0, 1.0)
    warmup: int = positive(200)
    steps: int = positive(600)
    batch_size: int = positive(32)
    n_test: int = positive(300)


def run_ablations(cfg: AblationConfig, ctx: RunContext) -> dict:
    unknown = set(cfg.variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"variants: unknown {sorted(unknown)}; choose from {sorted(VARIANTS)}")
    task = make_task(cfg.data)
    test = task.sample(cfg.n_test, ctx.generator("test"), cfg.data.min_len, cfg.data.max_len)
    out: dict = {"uniform_ppl": float(task.tgt_vocab)}
    for name in cfg.variants:
        ls, positional, heads = VARIANTS[name]
        model = build(task, ctx, name, d_model=cfg.d_model, n_heads=heads, d_mlp=cfg.d_mlp, n_layers=cfg.n_layers,
                      dropout=cfg.dropout, positional=positional, n_ctx=cfg.data.max_len + 12)  # fmt: skip
        train(model, task, paper_recipe(cfg.steps, cfg.d_model, cfg.warmup), ctx, f"ablation/{name}",
              cfg.batch_size, cfg.data.min_len, cfg.data.max_len, label_smoothing=ls)  # fmt: skip
        ctx.save_model(name, model, src_tokens=task.src_itos, tgt_tokens=task.tgt_itos)
        tf = teacher_forced(model, test)
        out[f"ppl_{name}"], out[f"token_acc_{name}"] = tf["ppl"], tf["token_acc"]
        out[f"bleu_{name}"] = bleu(task, translate(model, test), test)
    if "learned_pe" in cfg.variants:
        out["bleu_gap_learned_pe"] = abs(out["bleu_learned_pe"] - out["bleu_base"])
    ctx.savefig(ablation_figure({v: (out[f"ppl_{v}"], out[f"bleu_{v}"]) for v in cfg.variants}), "ablations",
                caption=("Test perplexity (left, lower is better) and BLEU (right, higher is better) of each "
                         "Transformer variant, trained alike (base: label smoothing 0.1, sinusoidal positions, 4 "
                         "heads; ls0: no label smoothing; learned_pe: learned positions; h1: one head). The claim "
                         "(Table 3) predicts ls0 has a lower perplexity but a lower BLEU than base, and learned_pe "
                         "about base's BLEU."))
    return out
