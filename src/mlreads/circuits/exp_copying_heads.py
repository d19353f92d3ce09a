"""circuits/copying-heads: a 1-layer model's OV eigenvalue copying scores and its skip-trigrams.

Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", section "One-Layer Attention-Only
Transformers" ("Copying / Primarily Positive Eigenvalues", "Skip-Trigrams"): a head's OV circuit W_U W_OV W_E with
mostly positive eigenvalues copies the attended token to the output.

Deviations: word tokens of the Shakespeare corpus, not BPE; smaller models (see CopyingConfig). Registered in
experiments.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mlreads.circuits import figures
from mlreads.circuits.detectors import ov_copying_accuracy
from mlreads.circuits.exp_common import POSITIONAL, build_model
from mlreads.circuits.model import AttnOnlyTransformer
from mlreads.circuits.qk_ov import copying_scores, full_ov_circuit, full_qk_circuit
from mlreads.core.data.text import TextConfig, load_text
from mlreads.core.fields import choices, in_range, positive
from mlreads.core.nn.lm import lm_evaluator, next_token_loss
from mlreads.core.run.runner import RunContext
from mlreads.core.train import TrainConfig, fit, recipe


@dataclass(frozen=True)
class CopyingConfig:
    """A 1-layer attention-only model on the corpus's words (shortformer positions, no LayerNorm). Deviations: words
    and punctuation (vocab 1000 with <unk>), not BPE; 8 heads of 32 and d_model 256 (the paper: 12 heads of 64);
    context 512 (the paper's models: 2048); about 5M training tokens. The context length decides the outcome at this
    budget (measured): with the same tokens per step, n_ctx 64 gave 1-2 of 8 copying heads after 3000 steps, n_ctx
    256 gave 4 of 8 from step ~1000 on (seeds 0-2). Quick uses the longest context its budget allows."""

    d_model: int = positive(256)
    n_heads: int = positive(8)
    d_head: int = positive(32)
    n_ctx: int = positive(512)
    positional: str = choices("shortformer", POSITIONAL)
    init_std: float = positive(0.02)
    batch_size: int = positive(4)  # 4 x 512 = 2048 tokens per step, as 8 x 256 and 32 x 64 before
    settle_frac: float = in_range(0.2, 0.0, 1.0, lo_open=True)  # the census must hold over this last share of steps
    top_tokens: int = positive(300)  # skip-trigrams are read among the most frequent tokens, for readability
    n_trigrams: int = positive(6)  # per head
    train: TrainConfig = field(
        default_factory=lambda: recipe(2500, 1e-2, warmup=100, betas=(0.9, 0.99), eval_every=250)
    )
    data: TextConfig = field(default_factory=lambda: TextConfig(tokens="word", vocab=1000))


def skip_trigrams(model: AttnOnlyTransformer, layer: int, head: int, itos: list[str], top: int, n: int
                  ) -> list[tuple[str, str, str, float]]:  # fmt: skip
    """The head's strongest skip-trigrams "A … B -> C" among the `top` first token ids (the most frequent): A is a
    source token whose OV row boosts C most (above the row's mean), B the query token that prefers A most among keys
    (QK, each query row standardised over keys, so that tokens with large embeddings do not win every row). Sorted
    by the OV boost."""
    with torch.no_grad():
        ov = full_ov_circuit(model, layer)[head].AB[:top, :top]  # (top, top): source -> output logits
        qk = full_qk_circuit(model, layer)[head].AB[:top, :top]  # (top, top): query -> key scores
        ov = ov - ov.mean(1, keepdim=True)
        qk = (qk - qk.mean(1, keepdim=True)) / qk.std(1, keepdim=True).clamp_min(1e-12)
        boost, out = ov.max(1)  # (top,), per source token
        query = qk.argmax(0)  # (top,): the query attending most to each key (source) token
        order = torch.argsort(boost, descending=True)[:n]
    return [(itos[a], itos[int(query[a])], itos[int(out[a])], float(boost[a])) for a in order.tolist()]


def self_attention(model: AttnOnlyTransformer, data, cfg: CopyingConfig) -> torch.Tensor:
    """-> (H,): each head's mean attention from a position to itself on validation windows (positions >= 1). A head
    that mostly attends to the current token acts as extra capacity for the bigram (direct) path, not as a copier."""
    x, _ = data.get_batch("val", 16, cfg.n_ctx, torch.Generator().manual_seed(4321))
    with torch.no_grad():
        _, cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("hook_pattern"))
    pattern = cache.stack("hook_pattern")[0]  # (B, H, L, L)
    return pattern.diagonal(dim1=-2, dim2=-1)[..., 1:].mean((0, 2))


def census_settled(history: list[dict], steps: int, n_final: int, settle_frac: float) -> tuple[bool, list[int]]:
    """Whether the number of copying heads is a settled property of the trained model, not a snapshot of heads still
    turning: the count `n_copying` of every evaluation in the last `settle_frac` of the steps equals the final count
    `n_final` (False without such an evaluation). Returns (settled, those counts)."""
    late = [r["n_copying"] for r in history if "n_copying" in r and r["step"] >= (1 - settle_frac) * steps]
    return bool(late) and all(n == n_final for n in late), late


def run_copying_heads(cfg: CopyingConfig, ctx: RunContext) -> dict:
    """Train a 1-layer model; report every head's copying score sum(lambda)/sum(|lambda|) of W_U W_OV W_E, the
    fraction of heads above 0.5, the direct-path copying accuracy (own token in the OV row's top 5) and skip-trigrams.

    Metrics: copying_scores (per head), frac_copying_heads (the check), copying_scores_init (the same heads before
    training), copying_scores_over_training (per head, per evaluation), self_attention (per head: mean attention to the
    current token), ov_top5_copying (per head), val_loss and unigram_entropy."""
    data = load_text(cfg.data)
    V = data.vocab_size
    model = build_model(V, 1, cfg, ctx.generator("init/attn-only-1"))
    init_scores = copying_scores(model)[0].detach()  # (H,)
    batch_fn = lambda step, gen: data.get_batch("train", cfg.batch_size, cfg.n_ctx, gen)  # noqa: E731
    val_loss = lm_evaluator(data, 32, cfg.n_ctx, 8)

    def eval_fn(m: AttnOnlyTransformer) -> dict:
        scores = copying_scores(m)[0]  # (H,)
        return val_loss(m) | {"mean_copying": float(scores.mean()), "n_copying": int((scores > 0.5).sum()),
                              "head_copying": [round(float(s), 4) for s in scores]}  # fmt: skip

    result = fit(model, cfg.train, batch_fn, next_token_loss, eval_fn=eval_fn, ctx=ctx, desc="1-layer")
    ctx.save_model("1-layer", model, **data.vocabulary())
    with torch.no_grad():
        scores = copying_scores(model)[0]  # (H,)
        top5 = ov_copying_accuracy(model, k=5)[0]  # (H,)
        eig = [full_ov_circuit(model, 0)[h].eigenvalues.numpy() for h in range(cfg.n_heads)]
    lines = []
    for h in torch.argsort(scores, descending=True).tolist():
        lines.append(f"head 0.{h}  copying score {scores[h]:+.3f}")
        for a, b, c, boost in skip_trigrams(model, 0, h, data.tokenizer.itos, min(cfg.top_tokens, V), cfg.n_trigrams):
            lines.append(f"    {a!r} … {b!r} → {c!r}    (OV boost {boost:.2f})")
    ctx.write_text("skip_trigrams", "\n".join(lines))
    n_copy = int((scores > 0.5).sum())
    settled, late = census_settled(result.history, result.steps, n_copy, cfg.settle_frac)
    ctx.savefig(figures.copying_figure(scores.numpy(), eig), "copying_scores",
                caption=f"Left: each head's copying score, sum(λ)/sum(|λ|) over the eigenvalues of its OV circuit "
                        f"W_U W_O W_V W_E; the claim (most heads copy) needs a score above 0.5 for more than half "
                        f"of the heads: here {n_copy} of {len(scores)}. Right: each head's eigenvalues in the complex "
                        f"plane; a copying head's lie mostly on the positive real side.")  # fmt: skip
    return {
        "copying_scores": scores.tolist(),
        "frac_copying_heads": float((scores > 0.5).float().mean()),
        "n_copying_heads": n_copy,
        "copying_census_settled": settled,
        "n_copying_late": late,
        "mean_copying_score": float(scores.mean()),
        "mean_copying_over_training": [[r["step"], r["mean_copying"]] for r in result.history if "mean_copying" in r],
        "copying_scores_over_training": [[r["step"], r["head_copying"]] for r in result.history if "head_copying" in r],
        "self_attention": self_attention(model, data, cfg).tolist(),
        "copying_scores_init": init_scores.tolist(),
        "mean_copying_score_init": float(init_scores.mean()),
        "ov_top5_copying": top5.tolist(),
        "val_loss": result.final["val_loss"],
        "unigram_entropy": data.unigram_entropy(),
        "vocab_size": V,
        "steps": result.steps,
    }
