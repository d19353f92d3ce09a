"""What the Mamba experiments share: the AdamW betas, parameter groups, the model builder and the length curriculum.
Each experiment's run function lives in the exp_ module named after its id; the recipe is
`mlreads.core.train.recipe` and the curves are `mlreads.core.figures`.
"""

from __future__ import annotations

import torch

from mlreads.core.run.seeding import init_rng
from mlreads.core.train import param_groups as core_param_groups
from mlreads.mamba.model import MambaConfig, MambaLM

PAPER = "Gu & Dao 2023, Mamba (arXiv 2312.00752)"
BETAS = (0.9, 0.98)  # AdamW betas of every Mamba recipe (with clipping 1.0 and cosine to lr / 10, recipe's defaults)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices except A_log (the official code exempts A_log and D: `_no_weight_decay`)."""
    return core_param_groups(model, weight_decay, no_decay=lambda name, p: name.endswith("A_log"))


def build_mamba(d_model: int, n_layers: int, d_state: int, d_vocab: int, selective: bool = True, *,
                seed: int) -> MambaLM:  # fmt: skip
    """A MambaLM whose initial weights are drawn under `init_rng(seed)` (e.g. `ctx.seed_for("init/mamba")`)."""
    with init_rng(seed):
        return MambaLM(MambaConfig(d_vocab=d_vocab, d_model=d_model, n_layers=n_layers, d_state=d_state,
                                   selective=selective, chunk_size=32))  # fmt: skip


def stage(step: int, steps: int, n_stages: int) -> int:
    """Which of `n_stages` equal parts of a `steps`-step run `step` falls in (a curriculum's current stage)."""
    return min(n_stages - 1, step * n_stages // max(1, steps))


def check_curriculum(lengths: tuple[int, ...], final: int, what: str) -> None:
    if lengths and lengths[-1] != final:
        raise ValueError(f"{what}: the curriculum must end at the task's length {final}, got {lengths}")
