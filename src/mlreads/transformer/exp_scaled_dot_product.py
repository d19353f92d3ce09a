"""transformer/scaled-dot-product: why Eq. 1 divides by sqrt(d_k) (Section 3.2.1, footnote 4).

With q and k of independent unit-variance components, q·k = Σ_i q_i k_i has mean 0 and variance d_k. Unscaled, the
logits grow like sqrt(d_k), the softmax saturates on one key, and its Jacobian (what backpropagation multiplies by)
shrinks towards zero; divided by sqrt(d_k) the logits keep unit variance at every d_k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mlreads.core.fields import positive
from mlreads.core.figures import curves
from mlreads.core.run.runner import RunContext
from mlreads.gpt import attention_scores


@dataclass(frozen=True)
class ScaledDotConfig:
    d_ks: tuple[int, ...] = positive((16, 64, 256, 1024))
    n_samples: int = positive(20_000)  # (q, k) pairs per d_k for the variance
    d_k_saturation: int = positive(512)  # where the Jacobians and entropies are compared
    n_keys: int = positive(32)
    n_queries: int = positive(256)


def softmax_jacobian_norm(p: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of d softmax / d scores = diag(p) - p p^T, per row of p (..., n) -> (...)."""
    jac = torch.diag_embed(p) - p[..., :, None] * p[..., None, :]  # (..., n, n)
    return jac.flatten(-2).norm(dim=-1)


def run_scaled_dot(cfg: ScaledDotConfig, ctx: RunContext) -> dict:
    gen = ctx.generator("qk")
    var_ratio = {}
    for d in cfg.d_ks:
        q = torch.randn(cfg.n_samples, d, generator=gen, dtype=torch.float64)
        k = torch.randn(cfg.n_samples, d, generator=gen, dtype=torch.float64)
        var_ratio[d] = float((q * k).sum(-1).var() / d)  # Var(q·k) / d_k, expected 1
    d = cfg.d_k_saturation
    q = torch.randn(1, 1, cfg.n_queries, d, generator=gen, dtype=torch.float64)  # (B, H, Lq, P)
    k = torch.randn(1, 1, cfg.n_keys, d, generator=gen, dtype=torch.float64)  # (B, H, Lk, P)
    scaled = attention_scores(q, k).softmax(-1)  # Eq. 1's softmax(QK^T / sqrt(d_k))
    unscaled = (attention_scores(q, k) * math.sqrt(d)).softmax(-1)  # softmax(QK^T)
    norms_scaled, norms_unscaled = softmax_jacobian_norm(scaled).flatten(), softmax_jacobian_norm(unscaled).flatten()
    jac_scaled, jac_unscaled = norms_scaled.mean(), norms_unscaled.mean()

    def entropy(p):
        return float(-(p * p.clamp_min(1e-300).log()).sum(-1).mean())

    ent_s, ent_u = entropy(scaled), entropy(unscaled)
    max_rel_err = max(abs(r - 1) for r in var_ratio.values())
    ctx.savefig(curves({"Var(q·k) / d_k, unscaled logits": (list(cfg.d_ks), list(var_ratio.values()))},
                       xlabel="d_k", ylabel="Var(q·k) / d_k", logx=2, refs={"1: variance d_k": 1.0},
                       title="q·k has variance d_k (footnote 4): the scale 1/sqrt(d_k) restores unit variance"),
                "variance",
                caption=("Measured Var(q·k) / d_k for random q and k with independent unit-variance entries, against "
                         "d_k; the grey dashed line is 1. Footnote 4 predicts the points lie on it: unscaled logits "
                         "grow like sqrt(d_k) and saturate the softmax, and 1/sqrt(d_k) restores unit variance. At "
                         f"d_k = {d}, the unscaled softmax's mean Jacobian norm is "
                         f"{float(jac_unscaled / jac_scaled):.2g}x the scaled one's (a metric, not drawn)."),
                )  # fmt: skip
    return {
        "var_over_dk": {str(d): v for d, v in var_ratio.items()},
        "var_max_rel_err": max_rel_err,
        "jacobian_norm_scaled": float(jac_scaled),
        "jacobian_norm_unscaled": float(jac_unscaled),
        "jacobian_ratio_unscaled_over_scaled": float(jac_unscaled / jac_scaled),
        "jacobian_median_ratio": float(norms_unscaled.median() / norms_scaled.median()),
        "share_vanishing_unscaled": float((norms_unscaled < 1e-3).double().mean()),
        "share_vanishing_scaled": float((norms_scaled < 1e-3).double().mean()),
        "entropy_scaled": ent_s,
        "entropy_unscaled": ent_u,
        "entropy_uniform": math.log(cfg.n_keys),
        "max_weight_unscaled": float(unscaled.max(-1).values.mean()),
    }
