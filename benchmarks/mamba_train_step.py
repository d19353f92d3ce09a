"""A training step (forward, backward, AdamW) of each Mamba quick recipe: today's block against the one before issue
25 (`--sections step`), the fused scan against the chunked one (`impl`), and the Mamba-vs-GPT step-time ratio of
`mamba/lm-vs-transformer` as the context L grows (`gpt`). Ratios in one run.

    python benchmarks/mamba_train_step.py [--sections step impl gpt] [--reps 15] [--threads 1]
                                          [--lengths 128 512 2048 8192] [--json out.json]

`step`: the new block and the pinned old step (benchmarks/mamba_baseline.py: the block forward before issue 25 on
the scan kernel of that commit, built from git; the same AdamW) take turns step by step in one process, A B A B ...,
so that a shared machine's load falls on both alike; the ratio of each pair's CPU times is reported as the median and
the range over --reps pairs (targets of issue 25: >= 2x at one thread). Then the new step at 2 threads against 1
thread, alternating the same way, by wall time, with the ratio of CPU times (target: >= 1.6x). libgomp reads
OMP_WAIT_POLICY at start: run once with OMP_WAIT_POLICY=PASSIVE and once without to compare.

The recipes are read from the registered experiments' quick configs (model sizes, batch, final training length), so
this measures the steps those runs take. The Mamba-vs-GPT part keeps the tokens per step fixed (--tokens, default
16 x 128 = the quick recipe's batch) and grows L, so the batch shrinks as L grows; both models are the quick recipe's
(Mamba: 3 blocks, GPT: 2 blocks of 4 heads, d_model 64, about equal parameters). Target of `impl`: a Mamba
training step of the quick recipes >= 2x faster end to end with the fused kernel than with the chunked path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F


def stepper(model, batch_fn):
    """A function that runs one forward + backward + AdamW step of `model` (after one warm-up step here)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def one():
        x, y = batch_fn()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one()
    return one


def timed(fn, threads: int | None = None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call of fn, at `threads` torch threads when given."""
    if threads is not None:
        torch.set_num_threads(threads)
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def step_time(model, batch_fn, reps: int) -> float:
    """Best of `reps` wall-clock seconds of one forward + backward + AdamW step (after one warm-up step)."""
    one = stepper(model, batch_fn)
    return min(timed(one)[1] for _ in range(reps))


def summary(ratios: list[float]) -> dict:
    """Median and range of paired ratios."""
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "n": len(ratios)}


def interleaved(a, b, reps: int, threads_a: int | None = None, threads_b: int | None = None) -> dict:
    """Run a and b alternately `reps` times: per-pair ratios time(a) / time(b) of CPU and of wall time, and each
    side's median seconds."""
    ta, tb = [], []
    for _ in range(reps):
        ta.append(timed(a, threads_a))
        tb.append(timed(b, threads_b))
    out = {}
    for i, kind in enumerate(("cpu", "wall")):
        out[kind] = summary([x[i] / y[i] for x, y in zip(ta, tb)])
        out[f"{kind}_a_s"], out[f"{kind}_b_s"] = (statistics.median(t[i] for t in ts) for ts in (ta, tb))
    return out


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


def fmt(r: dict) -> str:
    return f"{r['median']:.2f}x [{r['min']:.2f}, {r['max']:.2f}]"


def section_step(reps: int) -> list[dict]:
    """New block vs the pinned old one at one thread (CPU time), then the new step at 2 vs 1 threads (wall time)."""
    from mamba_baseline import pin_baseline

    rows = []
    for name, (kw, batch, length, vocab) in recipes().items():
        data = tokens(batch, length, vocab)
        old, new = stepper(pin_baseline(mamba(kw, vocab, "fused")), data), stepper(mamba(kw, vocab, "fused"), data)
        torch.set_num_threads(1)
        speed = interleaved(old, new, reps)
        scale = interleaved(new, new, reps, threads_a=1, threads_b=2)
        torch.set_num_threads(1)
        rows.append({"experiment": name, "batch": batch, "L": length, **kw, "old_vs_new_1t": speed,
                     "1t_vs_2t_new": scale})
        print(f"{name:30s} B={batch} L={length}: 1 thread, CPU time: old {speed['cpu_a_s'] * 1e3:.0f} ms, new "
              f"{speed['cpu_b_s'] * 1e3:.0f} ms, new {fmt(speed['cpu'])} faster | new at 2 threads: "
              f"{fmt(scale['wall'])} faster than at 1 (wall), CPU time x{1 / scale['cpu']['median']:.2f}", flush=True)
    return rows


def section_impl(reps: int) -> list[dict]:
    rows = []
    for name, (kw, batch, length, vocab) in recipes().items():
        times = {impl: step_time(mamba(kw, vocab, impl), tokens(batch, length, vocab), reps)
                 for impl in ("fused", "chunked")}
        rows.append({"experiment": name, "batch": batch, "L": length, **kw, **times,
                     "speedup": times["chunked"] / times["fused"]})
        print(f"{name:30s} B={batch} L={length} {kw}: fused {times['fused']:.3f} s, chunked "
              f"{times['chunked']:.3f} s per step: {times['chunked'] / times['fused']:.2f}x", flush=True)
    return rows


def section_gpt(reps: int, lengths: list[int], n_tokens: int) -> list[dict]:
    from mlreads.mamba.experiments import LM

    kw, _, _, vocab = recipes()["mamba/lm-vs-transformer"]
    lm = LM["quick"]
    rows = []
    for length in lengths:
        batch = max(1, n_tokens // length)
        row = {"L": length, "batch": batch}
        for impl in ("fused", "chunked"):
            row[f"mamba_{impl}"] = step_time(mamba(kw, vocab, impl), tokens(batch, length, vocab), reps)
        row["gpt"] = step_time(gpt(lm.d_model, lm.gpt_layers, lm.gpt_heads, length, vocab),
                               tokens(batch, length, vocab), reps)
        rows.append(row)
        print(f"L={length:6d} B={batch:3d}: GPT {row['gpt']:.3f} s, Mamba fused {row['mamba_fused']:.3f} s "
              f"({row['mamba_fused'] / row['gpt']:.2f}x GPT's), chunked {row['mamba_chunked']:.3f} s "
              f"({row['mamba_chunked'] / row['gpt']:.2f}x GPT's)", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", nargs="+", choices=("step", "impl", "gpt"), default=["step"])
    p.add_argument("--threads", type=int, default=1, help="torch threads of the impl and gpt sections")
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    p.add_argument("--tokens", type=int, default=16 * 128)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from mlreads.mamba import csrc

    if not csrc.available():
        raise SystemExit("the fused extension is not available here: nothing to compare")
    out = {"threads": a.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
           "load_average": os.getloadavg()}
    print(f"OMP_WAIT_POLICY={out['omp_wait_policy']}, load average {out['load_average'][0]:.2f}", flush=True)
    if "step" in a.sections:
        out["step"] = section_step(a.reps)
    torch.set_num_threads(a.threads)
    if "impl" in a.sections:
        out["recipes"] = section_impl(a.reps)
    if "gpt" in a.sections:
        out["vs_gpt"] = section_gpt(a.reps, a.lengths, a.tokens)
    out["load_average_end"] = os.getloadavg()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
