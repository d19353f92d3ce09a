"""Sophia-G: clipped diagonal second-order steps with the Gauss-Newton-Bartlett Hessian estimator.

Liu, Li, Hall, Liang & Ma 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
Pre-training", arXiv:2305.14342 (ICLR 2024): Algorithm 1 (the update), Algorithm 2 / Section 2.3 (GNB estimator),
Section 2.2 (per-coordinate clipping), Section 3.1 (k = 10, rho, the win rate).

Mirrors: the official `sophia.py` (Liuhong99/Sophia, `SophiaG`, `_single_tensor_sophiag`), shipped verbatim as PyPI
`sophia-opt==0.2.2`; the same operations in the same order, so trajectories are bit-identical
(tests/optim/test_sophia.py).

Glossary (code name -> paper symbol):
    lr          eta_t (peak learning rate)     betas         (beta_1, beta_2)
    rho         rho, the clip ratio; the code's gamma = rho * bs (Algorithm 1's gamma)
    bs          tokens per step; the GNB estimate h is the squared gradient of a *mean* loss, so bs * h ~ B * g^2
    exp_avg     m_t                            hessian       h_t (EMA of the diagonal Hessian estimate)
    weight_decay  lambda (decoupled, Algorithm 1 line 12)
    win_rate    the fraction of coordinates with |m| < gamma h (not clipped), Section 3.1

Algorithm 1, per step t:  m_t = b1 m + (1 - b1) g_t;  every k steps h_t = b2 h + (1 - b2) h_hat_t (else h_t = h);
theta = theta - eta lambda theta;  theta = theta - eta clip(m_t / max(gamma h_t, eps), 1).

Deviations (all the official code's; we follow the code, as the brief's oracle is the code):
    - The denominator is gamma h + 1e-15, not max(gamma h, eps); identical whenever gamma h >> 1e-15. While h = 0
      (the first k - 1 steps) both give sign(m) steps of size lr.
    - h is refreshed after the step of every k-th iteration (the caller runs `update_hessian` after a backward of
      the GNB loss), on the batch just trained on; h starts at 0, not at an initial estimate.
    - The Hessian estimate is hat_g * hat_g of the *mean* sampled-label loss; Algorithm 2's factor B sits in
      gamma = rho * bs instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

EPS = 1e-15  # the official code's floor on gamma * h


def gnb_loss(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Algorithm 2 (GNB): the mean cross-entropy of `logits` (..., V) against labels y_hat sampled from the model's
    own softmax. Its gradient g_hat gives the Gauss-Newton diagonal estimate g_hat * g_hat (times B)."""
    flat = logits.reshape(-1, logits.shape[-1])  # (N, V)
    with torch.no_grad():
        y_hat = torch.multinomial(F.softmax(flat.float(), dim=-1), 1, generator=generator).squeeze(-1)  # (N,)
    return F.cross_entropy(flat, y_hat)


def ema_hessian_(hessian: Tensor, g_hat: Tensor, beta2: float) -> None:
    """Algorithm 1 line 8 with Algorithm 2's estimate, in place: h = b2 h + (1 - b2) g_hat * g_hat."""
    hessian.mul_(beta2).addcmul_(g_hat, g_hat, value=1 - beta2)


def clipped_ratio(exp_avg: Tensor, hessian: Tensor, gamma: float) -> Tensor:
    """Section 2.2: min(|m| / (gamma h + eps), 1); the step is -lr sign(m) times this."""
    return (exp_avg.abs() / (gamma * hessian + EPS)).clamp(None, 1)


class SophiaG(Optimizer):
    """Sophia with the GNB estimator. Call `step()` every iteration; every k-th, backward `gnb_loss(model(x))` and
    call `update_hessian()` (see `mlreads.optim.sophia_hessian_hook` for `fit`). `last_win_rate` is the fraction of
    coordinates not clipped at the last step."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.965, 0.99),
        rho: float = 0.04,
        weight_decay: float = 0.1,
        bs: int = 5120,
    ):
        if lr < 0 or rho < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid SophiaG hyper-parameters lr={lr} betas={betas} rho={rho} wd={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "rho": rho, "weight_decay": weight_decay, "bs": bs})
        self.last_win_rate = float("nan")

    def _state(self, p: Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def update_hessian(self) -> None:
        """h = b2 h + (1 - b2) g * g from the current `.grad`s, which must be those of `gnb_loss`."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    ema_hessian_(self._state(p)["hessian"], p.grad, group["betas"][1])

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        unclipped, total = 0, 0
        for group in self.param_groups:
            beta1, _ = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            gamma = group["rho"] * group["bs"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state(p)
                state["step"] += 1
                p.mul_(1 - lr * wd)  # Algorithm 1 line 12: decoupled weight decay
                m = state["exp_avg"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)  # line 5: m_t = b1 m + (1 - b1) g
                ratio = clipped_ratio(m, state["hessian"], gamma)
                p.addcmul_(m.sign(), ratio, value=-lr)  # line 13: theta -= eta clip(m / max(gamma h, eps), 1)
                unclipped += int((ratio < 1).sum())
                total += ratio.numel()
        self.last_win_rate = unclipped / max(total, 1)
        return loss


def sophia_hessian_hook(every: int, seed: int, forward=None, grad_clip: float | None = None):
    """An `after_step` hook for `fit`: every `every` steps, sample labels from the model's logits on the batch just
    trained on, backward the GNB loss and refresh the optimiser's h (the official train_sophiag.py's cadence).

    Labels are drawn from a generator seeded by (seed, step), so a resumed run draws the same labels. `forward(model,
    batch) -> logits` defaults to `model(batch[0])`. `grad_clip`: clip the sampled-label gradient's global norm
    before it enters h, as the official train_sophiag.py does (`clip_grad_norm_` before `update_hessian`).
    """
    from mlreads.core.run.seeding import derive_seed

    def hook(done: int, model, opt, batch) -> None:
        if done % every:
            return
        logits = forward(model, batch) if forward is not None else model(batch[0])
        gen = torch.Generator().manual_seed(derive_seed(seed, f"gnb/{done}"))
        opt.zero_grad(set_to_none=True)
        gnb_loss(logits, gen).backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], grad_clip)
        opt.update_hessian()
        opt.zero_grad(set_to_none=True)

    return hook
