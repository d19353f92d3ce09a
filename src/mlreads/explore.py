"""What `mlreads inspect RUN_DIR` shows of a run's trained models, at once (cli.py parses, this module looks).

For every saved arm (core/run/saved.py) it prints a summary (class, parameters, config, hook names), then what the
model is for:
    a language model (GPT, Mamba, an attention-only model with a saved vocabulary)   text sampled from it
    an attention-only model with layers     each head's previous-token and induction scores on a random sequence
                                            repeated twice; with two layers or more, a PNG of the most induction-like
                                            head's attention pattern beside the most previous-token-like one's
    the GAN                                 a PNG grid of samples
    a DDPM denoiser                         a PNG of samples (Algorithm 2): a grid of images, or a 2-D scatter

PNGs go to `out` (default RUN_DIR/inspect). Everything is drawn from a generator seeded with `seed`, never the global
RNG, so the same command prints the same text.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from mlreads.core.errors import UserError
from mlreads.core.run.saved import SavedModel, load_saved

LANGUAGE_MODELS = ("gpt.GPT", "mamba.MambaLM", "circuits.AttnOnlyTransformer")


def inspect_run(run_dir: str | Path, arm: str | None = None, out: str | Path | None = None, prompt: str | None = None,
                length: int = 300, temperature: float = 0.8, n: int | None = None, seed: int = 0
                ) -> list[str]:  # fmt: skip
    """Look at the saved models of `run_dir` (or its arm `arm`); returns the lines to print. `prompt` starts the
    language models' text (default: a newline, else their first token), `length` tokens are sampled at
    `temperature`; `n` samples are drawn (default 64 from the GAN; from a DDPM, whose sampler takes T steps, 16 images
    or 512 points of 2-D data)."""
    import matplotlib

    matplotlib.use("Agg")
    if not 0.01 <= temperature <= 100:  # a finite, positive scale of the logits
        raise UserError(f"--temperature {temperature:g}: choose one from 0.01 to 100")
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "inspect"
    lines = []
    for name, saved in load_saved(run_dir, arm).items():
        gen = torch.Generator().manual_seed(seed)
        lines += summary(saved)
        if saved.cls == "circuits.AttnOnlyTransformer" and saved.config.n_layers >= 1:
            lines += head_scores(saved, out, gen)
        if saved.cls in LANGUAGE_MODELS and "tokens" in saved.meta:
            lines += sample_text(saved, prompt, length, temperature, gen)
        if saved.cls == "generative.GAN":
            lines += gan_samples(saved, out, n or 64, gen)
        if saved.cls == "generative.MLPDenoiser" and "T" in saved.meta:
            lines += ddpm_samples(saved, out, n or (512 if saved.config.d_data == 2 else 16), gen)
        lines.append("")
    return lines


def summary(saved: SavedModel) -> list[str]:
    """The arm's class, size and config, and the hook names `run_with_cache` records."""
    from dataclasses import asdict

    from mlreads.core.fmt import flat

    model = saved.model
    n_params = sum(p.numel() for p in model.parameters())
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    config = " ".join(f"{k}={v}" for k, v in flat(asdict(saved.config)).items())
    lines = [f"{saved.arm}: {saved.cls}, {n_params:,} parameters ({str(dtype).removeprefix('torch.')})",
             f"  config: {config}"]  # fmt: skip
    hooked = {"": model} if hasattr(model, "hook_points") else {
        f"{name}.": child for name, child in model.named_children() if hasattr(child, "hook_points")}  # fmt: skip
    for prefix, module in hooked.items():
        names = list(module.hook_points())
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        lines.append(f"  hook points{f' of {prefix[:-1]}' if prefix else ''}: {shown}")
    if not hooked:
        lines.append("  hook points: none (no run_with_cache)")
    return lines


@torch.no_grad()
def sample_text(saved: SavedModel, prompt: str | None, length: int, temperature: float, gen: torch.Generator
                ) -> list[str]:  # fmt: skip
    """`length` tokens sampled after `prompt`, each from softmax(logits / temperature) over the last n_ctx tokens."""
    tokens = saved.meta["tokens"]
    if prompt is None:
        prompt = "\n" if "\n" in tokens else tokens[0]
    ids = saved.encode(prompt)[None]  # (1, L)
    if ids.shape[1] == 0:
        raise UserError("--prompt is empty: give at least one token")
    window = getattr(saved.config, "n_ctx", 512)  # a recurrent model reads any length: the last 512 tokens
    for _ in range(length):
        logits = saved.model(ids[:, -window:])[:, -1] / temperature  # (1, V)
        ids = torch.cat([ids, torch.multinomial(logits.softmax(-1), 1, generator=gen)], dim=1)
    text = saved.decode(ids[0, -length:])
    return [f"  sample ({length} tokens at temperature {temperature:g}, after {prompt!r}):", *(
        "    " + line for line in (prompt + saved.meta.get("joiner", "") + text).splitlines())]  # fmt: skip


@torch.no_grad()
def head_scores(saved: SavedModel, out: Path, gen: torch.Generator) -> list[str]:
    """Each head's previous-token and induction scores on a random sequence repeated twice (Olsson et al.'s probe),
    and, with two layers or more, a PNG of the best induction head's pattern beside the best previous-token head's."""
    from mlreads.circuits import repeated_sequence_scores
    from mlreads.circuits.corpus import repeated_batch
    from mlreads.circuits.figures import patterns_figure

    model, cfg = saved.model, saved.config
    half = min(int(saved.meta.get("half", 32)), cfg.n_ctx // 2)
    vocab = min(int(saved.meta.get("probe_vocab", cfg.d_vocab)), cfg.d_vocab)
    probe = repeated_batch(16, half, vocab, gen)[:, :-1]  # (B, 2 half): a random sequence, then the same again
    scores = repeated_sequence_scores(model, probe)  # each (L, H)
    lines = [f"  head scores on {probe.shape[0]} random sequences of {half} tokens repeated twice (1 = perfect):",
             "    head   previous-token   induction"]  # fmt: skip
    for layer in range(cfg.n_layers):
        for h in range(cfg.n_heads):
            prev, ind = float(scores["previous"][layer, h]), float(scores["induction"][layer, h])
            lines.append(f"    {layer}.{h:<5}{prev:>12.3f}{ind:>14.3f}")
    if cfg.n_layers < 2:
        return lines + ["  (one layer: no earlier head to compose with, so no induction head is expected)"]
    ind_layer, ind_head = divmod(int(scores["induction"][1:].argmax()) + cfg.n_heads, cfg.n_heads)
    prev_head = int(scores["previous"][0].argmax())
    _, cache = model.run_with_cache(probe[:1], names_filter=lambda name: name.endswith("hook_pattern"))
    prev_score, ind_score = float(scores["previous"][0, prev_head]), float(scores["induction"][ind_layer, ind_head])
    fig = patterns_figure(cache["blocks.0.attn.hook_pattern"][0, prev_head].numpy(),
                          cache[f"blocks.{ind_layer}.attn.hook_pattern"][0, ind_head].numpy(),
                          f"previous-token head 0.{prev_head} (score {prev_score:.2f})",
                          f"induction head {ind_layer}.{ind_head} (score {ind_score:.2f})", half)  # fmt: skip
    path = _save(fig, out, f"{saved.arm}-attention.png")
    return lines + [f"  induction head {ind_layer}.{ind_head}, previous-token head 0.{prev_head}: their attention "
                    f"patterns -> {path}"]  # fmt: skip


@torch.no_grad()
def gan_samples(saved: SavedModel, out: Path, n: int, gen: torch.Generator) -> list[str]:
    """A grid of `n` samples G(z), z ~ N(0, I)."""
    from mlreads.generative.figures import image_grid

    side = _side(saved)
    samples = saved.model.sample(n, gen)  # (n, d_data), in [0, 1]
    path = _save(image_grid(samples, f"GAN samples ({saved.arm}, seed-drawn z)", side), out, f"{saved.arm}-samples.png")
    return [f"  {n} samples -> {path}"]


@torch.no_grad()
def ddpm_samples(saved: SavedModel, out: Path, n: int, gen: torch.Generator) -> list[str]:
    """`n` samples by ancestral sampling (Algorithm 2, sigma^2 = beta) over the saved schedule."""
    from mlreads.generative import Schedule, linear_betas, sample

    meta = saved.meta
    if meta.get("betas") != "linear" or meta.get("param") not in ("eps", "mu"):
        raise UserError(f"arm {saved.arm!r}: its saved schedule {meta.get('betas')!r} / {meta.get('param')!r} is not "
                        "one inspect samples (linear betas, eps or mu)")  # fmt: skip
    d = saved.config.d_data
    x0, _ = sample(saved.model, Schedule(linear_betas(int(meta["T"]))), (n, d), gen, param=meta["param"])  # (n, d)
    name = f"{saved.arm}-samples.png"
    if d == 2:
        path = _save(_scatter(x0, f"DDPM samples ({saved.arm}, {n} points)"), out, name)
    else:
        lo, hi = meta.get("pixel_range", [0, 1])
        images = ((x0 - lo) / (hi - lo)).clamp(0, 1)
        from mlreads.generative.figures import image_grid

        path = _save(image_grid(images, f"DDPM samples ({saved.arm}, Algorithm 2)", _side(saved)), out, name)
    return [f"  {n} samples ({meta['T']} reverse steps) -> {path}"]


def _side(saved: SavedModel) -> int:
    side = int(saved.meta.get("image_side", round(saved.config.d_data**0.5)))
    if side * side != saved.config.d_data:
        raise UserError(f"arm {saved.arm!r}: {saved.config.d_data} values per sample are not a {side}x{side} image")
    return side


def _scatter(x: Tensor, title: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=6)
    ax.set_title(title)
    ax.set_aspect("equal")
    return fig


def _save(fig, out: Path, name: str) -> Path:
    import matplotlib.pyplot as plt

    try:
        out.mkdir(parents=True, exist_ok=True)
        path = out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as e:
        raise UserError(f"cannot write {name} to {out} ({e.strerror or e}); choose another --out") from None
    finally:
        plt.close(fig)
    return path
