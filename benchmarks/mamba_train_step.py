"""A training step (forward, backward, AdamW) of each Mamba quick recipe with the fused scan against the chunked one,
and the Mamba-vs-GPT step-time ratio of `mamba/lm-vs-transformer` as the context L grows. Ratios in one run.

    python benchmarks/mamba_train_step.py [--threads 1] [--reps 3] [--lengths 128 512 2048 8192] [--json out.json]

The recipes are read from the registered experiments' quick configs (model sizes, batch, final training length), so
this measures the steps those runs take. The Mamba-vs-GPT part keeps the tokens per step fixed (--tokens, default
16 x 128 = the quick recipe's batch) and grows L, so the batch shrinks as L grows; both models are the quick recipe's
(Mamba: 3 blocks, GPT: 2 blocks of 4 heads, d_model 64, about equal parameters). Target: a Mamba training
step of the quick recipes >= 2x faster end to end with the fused kernel than with the chunked path.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F


def step_time(model, batch_fn, reps: int) -> float:
    """Best of `reps` wall-clock seconds of one forward + backward + AdamW step (after one warm-up step)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def one():
        x, y = batch_fn()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        one()
        best = min(best, time.perf_counter() - t0)
    return best


def recipes() -> dict:
    """(model config kwargs, batch, length, vocab) of each Mamba experiment's quick budget, at its final length."""
    from mlreads.mamba.experiments import COPYING, INDUCTION, LM

    cp, ind, lm = COPYING["quick"], INDUCTION["quick"], LM["quick"]
    return {
        "mamba/selective-copying": (dict(d_model=cp.d_model, n_layers=cp.n_layers, d_state=cp.d_state),
                                    cp.batch_size, cp.seq_len + cp.n_memorize, cp.vocab),
        "mamba/induction-extrapolation": (dict(d_model=ind.d_model, n_layers=ind.n_layers, d_state=ind.d_state),
                                          ind.batch_size, ind.train_len, ind.vocab),
        "mamba/lm-vs-transformer": (dict(d_model=lm.d_model, n_layers=lm.mamba_layers, d_state=lm.d_state),
                                    lm.batch_size, lm.n_ctx, 84),
    }


def mamba(kw: dict, vocab: int, impl: str, seed: int = 0):
    from mlreads.mamba.model import MambaConfig, MambaLM

    torch.manual_seed(seed)
    return MambaLM(MambaConfig(d_vocab=vocab, scan_impl=impl, chunk_size=32, **kw))


def gpt(d_model: int, n_layers: int, n_heads: int, n_ctx: int, vocab: int, seed: int = 0):
    from mlreads.gpt.model import GPT, GPTConfig

    torch.manual_seed(seed)
    return GPT(GPTConfig(d_vocab=vocab, n_ctx=n_ctx, n_layers=n_layers, n_heads=n_heads, d_model=d_model, bias=False))


def tokens(batch: int, length: int, vocab: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(vocab, (batch, length + 1), generator=g)
    return lambda: (x[:, :-1], x[:, 1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    p.add_argument("--tokens", type=int, default=16 * 128)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from mlreads.mamba import csrc

    if not csrc.available():
        raise SystemExit("the fused extension is not available here: nothing to compare")
    out = {"threads": a.threads, "recipes": [], "vs_gpt": []}
    for name, (kw, batch, length, vocab) in recipes().items():
        times = {impl: step_time(mamba(kw, vocab, impl), tokens(batch, length, vocab), a.reps)
                 for impl in ("fused", "chunked")}
        out["recipes"].append({"experiment": name, "batch": batch, "L": length, **kw, **times,
                               "speedup": times["chunked"] / times["fused"]})
        print(f"{name:30s} B={batch} L={length} {kw}: fused {times['fused']:.3f} s, chunked "
              f"{times['chunked']:.3f} s per step: {times['chunked'] / times['fused']:.2f}x", flush=True)
    kw, _, _, vocab = recipes()["mamba/lm-vs-transformer"]
    from mlreads.mamba.experiments import LM

    lm = LM["quick"]
    for length in a.lengths:
        batch = max(1, a.tokens // length)
        row = {"L": length, "batch": batch}
        for impl in ("fused", "chunked"):
            row[f"mamba_{impl}"] = step_time(mamba(kw, vocab, impl), tokens(batch, length, vocab), a.reps)
        row["gpt"] = step_time(gpt(lm.d_model, lm.gpt_layers, lm.gpt_heads, length, vocab),
                               tokens(batch, length, vocab), a.reps)
        out["vs_gpt"].append(row)
        print(f"L={length:6d} B={batch:3d}: GPT {row['gpt']:.3f} s, Mamba fused {row['mamba_fused']:.3f} s "
              f"({row['mamba_fused'] / row['gpt']:.2f}x GPT's), chunked {row['mamba_chunked']:.3f} s "
              f"({row['mamba_chunked'] / row['gpt']:.2f}x GPT's)", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
