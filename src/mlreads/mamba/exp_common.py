"""What the Mamba experiments share: the AdamW betas, parameter groups, the model builder and the length curriculum;
the losses and accuracies of the synthetic tasks; and the selection-mechanism analysis (arXiv 2312.00752).

- Selective copying (Section 4.1.1, Table 1): loss and accuracy on the marker positions only.
- Induction heads (Section 4.1.2, Table 2): loss and accuracy of the prediction at the last position, and
  accuracy at long lengths read in segments (`MambaLM.last_logits`), so memory stays flat in the test length.
- Interpretation of selection (Section 3.5.1, "Variable Spacing" / "Filtering Context"): a large Δ resets the
  state and writes the current token, a small Δ keeps the state and ignores the token. On selective copying a
  selective model should therefore put a larger Δ on data tokens than on noise tokens in the channels it uses.

Each experiment's run function lives in the exp_ module named after its id; the recipe is `mlreads.core.train.recipe`
and the plots are in figures.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.data.synthetic import induction_heads
from mlreads.core.fields import nonnegative, positive
from mlreads.core.run.progress import bar
from mlreads.core.run.seeding import init_rng
from mlreads.core.stats import proportion
from mlreads.core.train import param_groups as core_param_groups
from mlreads.mamba.model import MambaConfig, MambaLM

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


# -------------------------------------------------------------- the synthetic tasks: losses, accuracies, what Δ selects


@dataclass(frozen=True)
class InductionTask:
    """Induction heads as both Table 2 experiments train and test it (the Mamba run and the attention baseline's).

    Test accuracies are proportions over `n_test` fresh sequences per length, with a Wilson interval: 0 errors in n
    clears 99% by two standard errors only from n = 396 on (its lower end is n / (n + 4)), hence 400 at quick."""

    train_len: int = positive(256)
    vocab: int = positive(16)
    d_model: int = positive(32)
    n_layers: int = positive(2)
    batch_size: int = positive(32)
    # Curriculum: the run is cut into len(curriculum) equal parts, part i trains at length curriculum[i]; it must end
    # at train_len, so the model is never trained on a sequence longer than train_len. () = train_len throughout.
    curriculum: tuple[int, ...] = positive((), nonempty=False)
    test_log2_min: int = nonnegative(6, le=30)
    n_test: int = positive(400)  # fresh sequences per test length
    eval_batch_tokens: int = positive(2**19)  # sequences per forward pass = max(1, this / L): memory stays bounded

    def __post_init__(self):
        check_curriculum(self.curriculum, self.train_len, "curriculum")
        if any(n > self.train_len for n in self.curriculum):
            raise ValueError(f"curriculum lengths must be <= train_len={self.train_len}, got {self.curriculum}")

    def batch_fn(self, steps: int):
        """fit's batch function: the curriculum's stage at `step` of a `steps`-step run picks the length."""
        lengths = self.curriculum or (self.train_len,)

        def batch(step: int, gen: torch.Generator):
            return induction_heads(self.batch_size, lengths[stage(step, steps, len(lengths))], self.vocab, gen)

        return batch


def per_pass(task: InductionTask, seq_len: int, max_batch: int | None = None) -> int:
    """How many test sequences of `seq_len` tokens are drawn and read at once (task.eval_batch_tokens in all)."""
    return max_batch or max(1, task.eval_batch_tokens // seq_len)


@torch.no_grad()
def induction_hits(model: nn.Module, task: InductionTask, seq_len: int, gen: torch.Generator, n: int,
                   distance: int | None = None, segment: int | None = None, max_batch: int | None = None,
                   desc: str | None = None) -> Tensor:
    """Whether the model recalled the right token, for each of `n` fresh sequences of `seq_len` tokens (the pair
    `distance` tokens before the query when given), drawn and read `per_pass` at a time so memory stays bounded at
    any length: a bool tensor (n,). `desc`: show progress over the sequences (a test at 2^20 tokens runs an hour)."""
    size = per_pass(task, seq_len, max_batch)
    hits = []
    with bar(total=n, desc=desc or "test", enabled=desc is not None) as progress:
        for start in range(0, n, size):
            x, answer = induction_heads(min(size, n - start), seq_len, task.vocab, gen, distance=distance)
            logits = model.last_logits(x, segment=segment) if segment else model(x)[:, -1]  # (b, V)
            hits.append(logits.argmax(-1) == answer)
            progress.update(len(answer))
    return torch.cat(hits)


def induction_test(name: str, model: nn.Module, task: InductionTask, seq_len: int, gen: torch.Generator,
                   distance: int | None = None, segment: int | None = None, max_batch: int | None = None) -> dict:
    """Recall accuracy in % over `task.n_test` fresh sequences (`induction_hits`): `core.stats.proportion` (name,
    name_se, name_ci, name_n)."""
    hits = induction_hits(model, task, seq_len, gen, task.n_test, distance, segment, max_batch)
    return proportion(name, hits.numpy(), scale=100)


def worst_length(results: dict[int, dict], key: str) -> dict:
    """The length with the lowest accuracy among `results` {L: induction_test(key, ...)}: its accuracy, interval and
    length under the names min_<key>, min_<key>_ci, min_<key>_len. With the same n at every length, the worst
    accuracy has the lowest interval: its lower end clears a bound only if every length's does."""
    L = min(results, key=lambda n: results[n][key])
    r = results[L]
    return {f"min_{key}": r[key], f"min_{key}_se": r[f"{key}_se"], f"min_{key}_ci": r[f"{key}_ci"], f"min_{key}_len": L}


def copying_loss(model: nn.Module, batch) -> Tensor:
    x, y, mask = batch  # (B, L + M) each
    logits = model(x)  # (B, L + M, V)
    return F.cross_entropy(logits[mask], y[mask])


@torch.no_grad()
def copying_accuracy(model: nn.Module, batch) -> float:
    x, y, mask = batch
    return float((model(x)[mask].argmax(-1) == y[mask]).float().mean())


@torch.no_grad()
def copying_accuracy_by_position(model: nn.Module, batch) -> list[float]:
    """Accuracy of the k-th copied token, k = 1..n_memorize (which tokens of the copy fail)."""
    x, y, mask = batch
    n_mem = int(mask[0].sum())
    hit = (model(x)[:, -n_mem:].argmax(-1) == y[:, -n_mem:]).float()  # (B, M): the markers are the last M positions
    return hit.mean(0).tolist()


def induction_loss(model: nn.Module, batch) -> Tensor:
    x, answer = batch  # (B, L), (B,)
    return F.cross_entropy(model(x)[:, -1], answer)


@torch.no_grad()
def induction_accuracy(model: nn.Module, x: Tensor, answer: Tensor, segment: int | None = None,
                       max_batch: int | None = None) -> float:
    """Accuracy of the last-position prediction; `segment` reads a MambaLM in pieces (memory flat in L);
    `max_batch` bounds how many sequences go through at once (attention memory grows as batch * L^2)."""
    step = max_batch or x.shape[0]
    correct = 0
    for i in range(0, x.shape[0], step):
        xi = x[i : i + step]
        logits = model.last_logits(xi, segment=segment) if segment else model(xi)[:, -1]  # (b, V)
        correct += int((logits.argmax(-1) == answer[i : i + step]).sum())
    return correct / x.shape[0]


def clean_noise_mask(data_mask: Tensor, d_conv: int) -> Tensor:
    """Noise positions with no data token among the previous d_conv - 1 positions: Δ at position t is a function of
    tokens t - d_conv + 1 .. t (through the causal conv), so only these positions see noise alone."""
    near = data_mask.clone()
    for k in range(1, d_conv):
        near[:, k:] |= data_mask[:, :-k]
    return ~near


@torch.no_grad()
def delta_by_token_kind(model: nn.Module, x: Tensor, data_mask: Tensor, noise_mask: Tensor | None = None,
                        layer: int = 0, top_frac: float = 0.125):
    """How Δ treats data tokens against noise tokens, per channel, in layer `layer` of a trained MambaLM.

    x: (B, L) inputs; data_mask: (B, L) True on data tokens; noise_mask: (B, L) the noise positions to compare
    with (default: every other position; see `clean_noise_mask`). Δ is a time scale spanning orders of
    magnitude, so channels are compared in log space: r_c = mean log Δ on data − mean log Δ on noise (r_c > 0: the
    channel writes data tokens and skips noise more than the reverse). "The channels that matter" are chosen without
    looking at the labels: the `top_frac` of channels whose log Δ varies most across positions (a channel with a
    constant Δ cannot select). Returns per-channel means (E,), the chosen channels, and summary numbers.
    """
    _, cache = model.run_with_cache(x, names_filter=f"blocks.{layer}.mixer.hook_delta")
    delta = cache[f"blocks.{layer}.mixer.hook_delta"]  # (B, L, E)
    log_delta = delta.clamp_min(1e-30).log()
    noise_mask = ~data_mask if noise_mask is None else noise_mask
    on_data, on_noise = delta[data_mask].mean(0), delta[noise_mask].mean(0)  # (E,)
    log_ratio = log_delta[data_mask].mean(0) - log_delta[noise_mask].mean(0)  # (E,)
    k = max(1, int(round(top_frac * delta.shape[-1])))
    top = log_delta.flatten(0, 1).std(0).topk(k).indices
    return {
        "delta": delta,
        "on_data": on_data,
        "on_noise": on_noise,
        "top": top,
        "top_data_mean": float(on_data[top].mean()),
        "top_noise_mean": float(on_noise[top].mean()),
        "top_log_ratio": float(log_ratio[top].mean()),  # > 0: larger Δ on data tokens (geometric mean)
        "frac_channels_data_gt_noise": float((log_ratio[top] > 0).float().mean()),
    }


@torch.no_grad()
def memory_horizon(model: nn.Module, x: Tensor, skip: int = 8) -> list[float]:
    """Per layer, the longest memory of any state entry: 1 / (the slowest typical decay rate per step), in tokens.

    The state entry (e, n) is multiplied by exp(-Δ_t[e] |A[e, n]|) at every step, so what is written at one step is
    scaled by exp(-Σ Δ|A|) after the following ones: a typical rate r = median_t Δ_t|A| forgets over ~1/r tokens.
    x (B, L) are ordinary inputs; the first `skip` positions are left out. To recall at a distance d a model needs
    d * r << 1 on the tokens in between; this is the quantity training at a short length does not push down.
    """
    names = [f"blocks.{i}.mixer.hook_delta" for i in range(len(model.blocks))]
    _, cache = model.run_with_cache(x, names_filter=lambda n: n in names)
    horizons = []
    for i, name in enumerate(names):
        delta = cache[name][:, skip:].flatten(0, 1)  # (B * L', E)
        A = torch.exp(model.blocks[i].mixer.A_log.float())  # |A| (E, N)
        rate = (delta.median(0).values[:, None] * A).min()  # median over time is per channel; |A| is constant
        horizons.append(float(1 / rate))
    return horizons
