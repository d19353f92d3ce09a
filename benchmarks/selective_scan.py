"""Selective scan on the CPU, forward + backward: ours (chunked, and the unbind loop) against mambapy's `pscan` path
and the plain PyTorch loop that transformers' Mamba falls back to without mamba-ssm. Ratios are measured in one run.

    python benchmarks/selective_scan.py [--lengths 512 1024 4096 16384] [--threads 1] [--json out.json]

Shapes follow the issue: B=8, D=128 (inner width), N=16. Targets at L=4096: >= 10x vs pscan, >= 3x vs the HF loop,
and a peak memory that never holds a (B, L, D, N) tensor.

Peak memory is measured in a fresh subprocess per (implementation, L): the growth of the process's peak RSS (VmHWM,
reset through /proc/self/clear_refs; Linux) during one forward + backward, after the inputs exist. The HF loop's backward is O(L^2) (each `x[:, :, i]` index writes a
full-size zero tensor in backward), so it is run only up to --hf-max (default 1024) and its ratio at larger L is at
least the ratio at --hf-max; pscan materialises several (B, L, D, N) tensors and runs up to --pscan-max.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import torch
import torch.nn.functional as F

BATCH, DIM, STATE = 8, 128, 16


def set_state(n: int) -> None:
    global STATE
    STATE = n


def make_inputs(length: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(BATCH, DIM, length, generator=g)
    delta = torch.randn(BATCH, DIM, length, generator=g) * 0.5 - 2.0
    A = -torch.rand(DIM, STATE, generator=g) - 0.5
    B = torch.randn(BATCH, STATE, length, generator=g)
    C = torch.randn(BATCH, STATE, length, generator=g)
    D = torch.randn(DIM, generator=g)
    return [t.requires_grad_() for t in (u, delta, A, B, C, D)]


def ours(impl: str, chunk: int = 32):
    from mlreads.mamba import selective_scan

    return lambda u, delta, A, B, C, D: selective_scan(u, delta, A, B, C, D, delta_softplus=True, impl=impl,
                                                       chunk_size=chunk)


def mambapy_pscan(u, delta, A, B, C, D):
    """mamba.py's `selective_scan` (pscan path) in its (B, L, D) layout."""
    from mambapy.pscan import pscan

    dt = F.softplus(delta).transpose(1, 2)  # (B, L, D)
    x = u.transpose(1, 2)
    dA = torch.exp(dt[..., None] * A)  # (B, L, D, N)
    bx = dt[..., None] * B.transpose(1, 2)[:, :, None, :] * x[..., None]  # (B, L, D, N)
    hs = pscan(dA, bx)  # (B, L, D, N)
    y = (hs @ C.transpose(1, 2)[..., None])[..., 0] + D * x
    return y.transpose(1, 2)


def hf_loop(u, delta, A, B, C, D):
    from transformers.models.mamba.modeling_mamba import mamba_selective_scan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mamba_selective_scan(u, delta, A, B, C, D=D, delta_softplus=True, use_mambapy=False)


IMPLS = {
    "ours_chunked": ours("chunked"),
    "ours_loop": ours("loop"),
    "mambapy_pscan": mambapy_pscan,
    "hf_loop": hf_loop,
}


def fwd_bwd(fn, args) -> None:
    for a in args:
        a.grad = None
    fn(*args).square().mean().backward()


def time_it(name: str, length: int, reps: int) -> float:
    fwd_bwd(IMPLS[name], make_inputs(8))  # warm-up: imports and first-call costs stay out of the timing
    args = make_inputs(length)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fwd_bwd(IMPLS[name], args)
        best = min(best, time.perf_counter() - t0)
    return best


def peak_growth_mb(fn, args) -> float:
    """Peak RSS growth (MB) during fn(*args) forward + backward (the high-water mark is reset first, Linux)."""
    from mlreads.core.memory import peak_rss_growth_mb

    return peak_rss_growth_mb(lambda: fwd_bwd(fn, args))[1]


def child_peak_mb(name: str, length: int, threads: int) -> float:
    """Peak RSS growth (MB) of one forward + backward, in a fresh process."""
    code = (
        f"import sys, torch; sys.path.insert(0, 'benchmarks'); import selective_scan as b; b.set_state({STATE});"
        f"torch.set_num_threads({threads}); args = b.make_inputs({length});"
        f"b.fwd_bwd(b.IMPLS['{name}'], b.make_inputs(8));"  # warm up imports and allocator
        f"print(b.peak_growth_mb(b.IMPLS['{name}'], args))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 4096, 16384])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hf-max", type=int, default=1024)
    p.add_argument("--pscan-max", type=int, default=4096)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--state", type=int, default=STATE, help="N (16 in the issue)")
    a = p.parse_args()
    set_state(a.state)
    torch.set_num_threads(a.threads)
    rows = []
    for length in a.lengths:
        bldn_mb = BATCH * length * DIM * STATE * 4 / 2**20
        for name in IMPLS:
            if (name == "hf_loop" and length > a.hf_max) or (name == "mambapy_pscan" and length > a.pscan_max):
                continue
            if name == "ours_loop" and length > a.pscan_max:
                continue
            reps = a.reps if name.startswith("ours") else 1
            t = time_it(name, length, reps)
            # the HF loop's memory is not measured: it would double its minutes-long O(L^2) run
            mem = None if a.no_memory or name == "hf_loop" else child_peak_mb(name, length, a.threads)
            rows.append({"impl": name, "L": length, "seconds": round(t, 4), "peak_mb": mem, "bldn_mb": bldn_mb})
            print(f"L={length:6d} {name:14s} {t:9.3f} s  peak +{mem if mem is None else round(mem)} MB  "
                  f"(one (B,L,D,N) fp32 tensor = {bldn_mb:.0f} MB)", flush=True)
        base = next(r for r in rows if r["L"] == length and r["impl"] == "ours_chunked")
        for r in rows:
            if r["L"] == length and r["impl"] != "ours_chunked":
                print(f"L={length:6d} speed-up of ours_chunked vs {r['impl']}: {r['seconds'] / base['seconds']:.1f}x")
        if base["peak_mb"] is not None:
            bdl_mb = bldn_mb / STATE
            print(f"L={length:6d} ours_chunked peak = {base['peak_mb'] / bldn_mb:.2f} (B,L,D,N) tensors = "
                  f"{base['peak_mb'] / bdl_mb:.1f} (B,D,L) tensors (inputs, grads, saved activations, chunk workspaces; "
                  f"compare --state 64)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"batch": BATCH, "dim": DIM, "state": STATE, "threads": a.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
