"""Adam and AdamW.

Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", arXiv:1412.6980: Algorithm 1 (the update), Section 2
(the "efficient" reordering with eps-hat), Section 3 (bias correction), Section 6.1 (alpha_t = alpha / sqrt(t), set
by `fit`'s `rsqrt` schedule without warmup). AdamW: Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization",
arXiv:1711.05101, Algorithm 2 (decay applied to the weights, not added to the gradient).

Mirrors: `torch.optim.Adam` / `AdamW`, `_single_tensor_adam` in torch/optim/adam.py (torch 2.13); the same operations
in the same order, so trajectories are bit-identical on float64 and float32 (tests/optim/test_adam.py).

Glossary (code name -> paper symbol):
    lr          alpha (step size)          betas       (beta_1, beta_2)
    eps         epsilon (Algorithm 1), or epsilon-hat with eps_mode="hat" (end of Section 2)
    exp_avg     m_t (biased first moment)  exp_avg_sq  v_t (biased second raw moment)
    step        t                          weight_decay  lambda (L2 in the gradient, or AdamW's decoupled decay)
    max_exp_avg_sq  max_{s<=t} v_s (AMSGrad, Reddi et al. 2018, Algorithm 2), used with amsgrad=True

Deviations:
    - m_t is computed as m + (1 - beta_1)(g - m) (`lerp`, as torch does), which is Algorithm 1's
      beta_1 m + (1 - beta_1) g up to rounding; `reference.adam_ref` writes the paper's form and agrees to 1e-12.
    - Decoupled decay multiplies by (1 - lr * weight_decay) with the scheduled lr (torch's AdamW), where
      Loshchilov & Hutter scale it by the schedule multiplier eta_t alone.
    - AMSGrad keeps the max of the raw v_t and bias-corrects it (torch's choice); Reddi et al. use no correction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from torch import Tensor
from torch.optim import Optimizer


def update_moments(exp_avg: Tensor, exp_avg_sq: Tensor, grad: Tensor, beta1: float, beta2: float) -> None:
    """Algorithm 1, lines 7-8, in place: m_t = b1 m + (1 - b1) g; v_t = b2 v + (1 - b2) g^2."""
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)


def bias_corrections(beta1: float, beta2: float, step: int) -> tuple[float, float]:
    """Section 3: the factors (1 - b1^t, 1 - b2^t) that m_t and v_t are divided by (Algorithm 1, lines 9-10)."""
    return 1 - beta1**step, 1 - beta2**step


def first_step_size(lr: float, beta1: float, beta2: float, bias_correction: bool) -> float:
    """The size of the first update when |g_1| >> eps: alpha with correction, alpha (1 - b1) / sqrt(1 - b2) without
    (Section 3: 10 alpha at b1 = 0.9, b2 = 0.9999)."""
    return lr if bias_correction else lr * (1 - beta1) / math.sqrt(1 - beta2)


class Adam(Optimizer):
    """Adam (Algorithm 1) with switches for the paper's variants.

    `bias_correction=False` uses m_t and v_t as they are (the "no correction" arm of Section 6.4, Fig 4).
    `eps_mode="hat"` is the reordering at the end of Section 2: alpha_t = alpha sqrt(1 - b2^t) / (1 - b1^t),
    theta -= alpha_t m_t / (sqrt(v_t) + eps_hat). `decoupled=True` is AdamW. `amsgrad=True` normalises by the
    running max of v_t.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        decoupled: bool = False,
        bias_correction: bool = True,
        eps_mode: Literal["paper", "hat"] = "paper",
        amsgrad: bool = False,
    ):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid Adam hyper-parameters lr={lr} betas={betas} eps={eps} wd={weight_decay}")
        if eps_mode not in ("paper", "hat"):
            raise ValueError(f"eps_mode must be 'paper' or 'hat', not {eps_mode!r}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "decoupled": decoupled,
                        "bias_correction": bias_correction, "eps_mode": eps_mode, "amsgrad": amsgrad}  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)  # a tensor, as torch keeps it (checkpoints store tensors)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"].item()
                if wd != 0:
                    if group["decoupled"]:
                        p.mul_(1 - lr * wd)  # AdamW, Algorithm 2 line 12
                    else:
                        grad = grad.add(p, alpha=wd)  # L2 in the objective: g_t + lambda theta
                m, v = state["exp_avg"], state["exp_avg_sq"]
                update_moments(m, v, grad, beta1, beta2)
                if group["amsgrad"]:
                    torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                    v = state["max_exp_avg_sq"]
                c1, c2 = bias_corrections(beta1, beta2, t) if group["bias_correction"] else (1.0, 1.0)
                if group["eps_mode"] == "hat":
                    # Section 2: alpha_t = alpha sqrt(1 - b2^t) / (1 - b1^t); theta -= alpha_t m / (sqrt(v) + eps_hat)
                    p.addcdiv_(m, v.sqrt().add_(eps), value=-lr * c2**0.5 / c1)
                else:
                    # Algorithm 1 lines 9-11: theta -= alpha m_hat / (sqrt(v_hat) + eps), m_hat = m / c1, v_hat = v / c2
                    p.addcdiv_(m, (v.sqrt() / c2**0.5).add_(eps), value=-lr / c1)
        return loss
