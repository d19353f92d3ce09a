"""transformer/seq2seq: on the pseudo-French task, the Transformer against RNNsearch at equal CPU time (the spirit
of Table 2: better BLEU at a fraction of the training cost).

Both models train for the same CPU seconds on one thread (the process's CPU time: on a shared machine wall time
would measure the other processes); dev BLEU is measured along the way, so the report
can also say how long the Transformer took to reach RNNsearch's final BLEU. Caution: on one CPU
thread a Transformer step costs about what an attention-RNN step costs; the paper's speed advantage is parallelism
across positions on a GPU, which this machine does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mlreads.attention import RNNConfig, RNNSearchConfig, Seq2Seq, seq2seq_loss
from mlreads.core.data.translation import (
    TranslationConfig,
    batch_fn,
    make_task,
    test_bins,
)
from mlreads.core.fields import in_range, positive
from mlreads.core.nn.decoding import bleu, translate
from mlreads.core.run.runner import RunContext
from mlreads.core.run.seeding import init_rng
from mlreads.core.train import fit
from mlreads.transformer.exp_common import build, paper_recipe, teacher_forced, train
from mlreads.transformer.figures import time_curves_figure


@dataclass(frozen=True)
class Seq2SeqConfig:
    data: TranslationConfig = field(default_factory=TranslationConfig)
    d_model: int = positive(64)
    n_heads: int = positive(4)
    d_mlp: int = positive(256)
    n_layers: int = positive(2)
    dropout: float = in_range(0.1, 0.0, 1.0)
    label_smoothing: float = in_range(0.1, 0.0, 1.0)
    warmup: int = positive(400)
    batch_size: int = positive(32)
    steps: int = positive(100_000)  # an upper bound: each model stops at time_s
    # CPU seconds per model, one thread (equal time; CPU time, so load does not decide it)
    time_s: float = positive(200.0)
    eval_every: int = positive(50)  # steps between dev BLEU measurements
    n_dev: int = positive(100)
    n_test: int = positive(500)
    rnnsearch: RNNSearchConfig = field(default_factory=RNNSearchConfig)
    compare: bool = True  # False: train only the Transformer (the smoke copy task)


def run_seq2seq(cfg: Seq2SeqConfig, ctx: RunContext) -> dict:
    task = make_task(cfg.data)
    dev = task.sample(cfg.n_dev, ctx.generator("dev"), cfg.data.min_len, cfg.data.max_len)
    test = test_bins(task, ((cfg.data.min_len, cfg.data.max_len),), cfg.n_test, ctx.generator("test"))
    test_pairs = next(iter(test.values()))

    def dev_bleu(model):
        return {"dev_bleu": bleu(task, translate(model, dev), dev)}

    out: dict = {}
    curves = {}
    model = build(task, ctx, "transformer", d_model=cfg.d_model, n_heads=cfg.n_heads, d_mlp=cfg.d_mlp,
                  n_layers=cfg.n_layers, dropout=cfg.dropout, n_ctx=cfg.data.max_len + 12)  # fmt: skip
    tcfg = paper_recipe(cfg.steps, cfg.d_model, cfg.warmup, eval_every=cfg.eval_every, log_every=cfg.eval_every,
                        time_limit_s=cfg.time_s, clock="cpu")  # fmt: skip
    res = train(model, task, tcfg, ctx, "transformer", cfg.batch_size, cfg.data.min_len, cfg.data.max_len,
                cfg.label_smoothing, eval_fn=dev_bleu)  # fmt: skip
    out.update(steps_transformer=res.steps, train_s_transformer=res.elapsed_s,
               bleu_transformer=bleu(task, translate(model, test_pairs), test_pairs),
               **{f"{k}_transformer": v for k, v in teacher_forced(model, test_pairs).items()})
    curves["Transformer"] = _time_series(res.history)
    ctx.save_model("transformer", model, src_tokens=task.src_itos, tgt_tokens=task.tgt_itos)
    if cfg.compare:
        r = cfg.rnnsearch
        with init_rng(ctx.seed_for("init/rnnsearch")):
            rnn = Seq2Seq(RNNConfig(src_vocab=task.src_vocab, tgt_vocab=task.tgt_vocab, d_embed=r.d_embed,
                                    d_hidden=r.d_hidden, d_maxout=r.d_maxout, d_align=r.d_align))  # fmt: skip
        rcfg = replace(r.train, steps=cfg.steps, eval_every=cfg.eval_every, log_every=cfg.eval_every,
                       time_limit_s=cfg.time_s, clock="cpu")  # fmt: skip
        res_r = fit(rnn, rcfg, batch_fn(task, cfg.batch_size, cfg.data.min_len, cfg.data.max_len), seq2seq_loss,
                    eval_fn=dev_bleu, ctx=ctx, desc="rnnsearch")  # fmt: skip
        out.update(steps_rnnsearch=res_r.steps, train_s_rnnsearch=res_r.elapsed_s,
                   bleu_rnnsearch=bleu(task, translate(rnn, test_pairs), test_pairs))
        curves["RNNsearch"] = _time_series(res_r.history)
        ctx.save_model("rnnsearch", rnn, src_tokens=task.src_itos, tgt_tokens=task.tgt_itos)
        target = curves["RNNsearch"][1][-1]
        reached = [t for t, b in zip(*curves["Transformer"]) if b >= target]
        out["rnnsearch_final_dev_bleu"] = target
        out["transformer_time_to_rnnsearch_final_s"] = reached[0] if reached else float("inf")
        out["time_ratio_to_rnnsearch_final"] = (reached[0] if reached else float("inf")) / res_r.elapsed_s
        out["bleu_gap"] = out["bleu_transformer"] - out["bleu_rnnsearch"]
    if cfg.compare:
        t = out["time_ratio_to_rnnsearch_final"]
        here = ("it never reaches it here" if t == float("inf") else
                f"here it reaches it after {t:.2f}x RNNsearch's training time")
        caption = ("Dev BLEU (greedy decoding) against training CPU time, one thread each, for the Transformer and "
                   "RNNsearch on the same task. The claim predicts the Transformer's curve reaches RNNsearch's final "
                   f"BLEU in less time than RNNsearch trained; {here}.")
    else:
        caption = ("Dev BLEU (greedy decoding) against training CPU time (one thread) for the Transformer; it should "
                   "climb steadily (RNNsearch is not run in this configuration).")
    ctx.savefig(time_curves_figure(curves), "dev_bleu_vs_time", caption=caption)
    return out


def _time_series(history: list[dict]) -> tuple[list[float], list[float]]:
    rows = [r for r in history if "dev_bleu" in r and "elapsed_s" in r]
    return [r["elapsed_s"] for r in rows], [r["dev_bleu"] for r in rows]
