"""Selective scan on the CPU, forward + backward: ours (the fused C++ kernel, chunked, and the unbind loop) against
mambapy's `pscan` path and the plain PyTorch loop that transformers' Mamba falls back to without mamba-ssm, with a
roofline line. Ratios are measured in one run.

    python benchmarks/selective_scan.py [--lengths 1024 4096 16384 65536] [--threads 1] [--json out.json]
    python benchmarks/selective_scan.py --updates     # every implementation at AiDotNet's shape, updates/s
    python benchmarks/selective_scan.py --impls ours_fused_pinned --no-memory   # today's kernel against the pinned one
    python benchmarks/selective_scan.py --ab-pinned 9 --lengths 1024 4096 16384  # the same, alternating, CPU time

Shapes follow the issue: B=8, D=128 (inner width), N=16. Targets: fused >= 5x the chunked path at 1 thread and within
2x of the roofline; chunked at L=4096 >= 10x vs pscan, >= 3x vs the HF loop; a peak memory that never holds a
(B, L, D, N) tensor.

Each timing is one forward and one backward from a fixed output gradient (`y.backward(dy)`, dy made once per
shape), so no loss's elementwise ops are timed (`fwd_bwd`).

Roofline: the fastest a fused forward + backward could be on this core. Compute: per (b, l, d, n) element, 2 exps
(forward, and the backward's recomputation) and 17 multiply-adds (forward 4, recomputation 4, adjoint 9), at the
measured single-core vector exp and FMA rates (the kernel's own exp, data in L1; `roofline_probe.cpp`, built here
with the kernel's flags). Memory: the compulsory float32 traffic, 8 (B, D, L) tensors (forward reads u, Δ, writes y;
backward reads u, Δ, dy, writes du, dΔ) and 6 (B, N, L) ones (B, C twice, dB, dC), at the measured single-thread
copy bandwidth.
The bound is the larger of the two; each implementation's fraction is bound / its time.

Peak memory is measured in a fresh subprocess per (implementation, L): the growth of the process's peak RSS (VmHWM,
reset through /proc/self/clear_refs; Linux) during one forward + backward, after the inputs exist. The HF loop's backward is O(L^2) (each `x[:, :, i]` index writes a
full-size zero tensor in backward), so it is run only up to --hf-max (default 1024) and its ratio at larger L is at
least the ratio at --hf-max; pscan materialises several (B, L, D, N) tensors and runs up to --pscan-max.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

BATCH, DIM, STATE = 8, 128, 16
PROBE = Path(__file__).with_name("roofline_probe.cpp")


def set_state(n: int) -> None:
    global STATE
    STATE = n


def set_shape(batch: int, dim: int, state: int) -> None:
    global BATCH, DIM, STATE
    BATCH, DIM, STATE = batch, dim, state


def updates_per_s(length: int, seconds: float) -> float:
    """State updates per second of one forward + backward: B*D*N*L / time, a rate that compares across shapes,
    implementations and papers (the forward-only kernels of ggml, IPEX and MAX report forward passes only)."""
    return BATCH * DIM * STATE * length / seconds


# The one other public parallel CPU forward + backward selective scan found (AiDotNet, C#) reports about 13 M state
# updates per second on one core at this shape; `--updates` times every implementation here at it.
PEER_SHAPE = {"batch": 2, "length": 256, "dim": 512, "state": 16}
PEER_UPDATES_PER_S = 13e6


def updates_table(reps: int, threads: int) -> list[dict]:
    """Each implementation at PEER_SHAPE: best of `reps` forward + backward, state updates per second, and the ratio
    to ours_fused (all in this run)."""
    set_shape(PEER_SHAPE["batch"], PEER_SHAPE["dim"], PEER_SHAPE["state"])
    torch.set_num_threads(threads)
    length = PEER_SHAPE["length"]
    rows = [{"impl": name, "seconds": time_it(name, length, reps)} for name in IMPLS if name != "ours_fused_pinned"]
    fused = next(r["seconds"] for r in rows if r["impl"] == "ours_fused")
    print(f"B={BATCH} L={length} D={DIM} N={STATE}, {threads} thread(s), forward + backward, best of {reps}; load "
          f"average {open('/proc/loadavg').read().split()[0]}")
    for r in rows:
        r["updates_per_s"] = updates_per_s(length, r["seconds"])
        print(f"  {r['impl']:14s} {r['seconds'] * 1e3:9.2f} ms  {r['updates_per_s'] / 1e6:8.1f} M updates/s  "
              f"ours_fused {r['seconds'] / fused:6.1f}x faster")
    print(f"  (AiDotNet, C#, reports ~{PEER_UPDATES_PER_S / 1e6:.0f} M updates/s on one core at this shape, on its own "
          "machine: not measured here)")
    return rows


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


# A pinned earlier fused kernel, built from git (benchmarks/mamba_baseline.py), so that a kernel change is timed
# against it in one run (`--impls ours_fused_pinned`). ce7247a: the kernel of issue 25's parts 1-3.
PINNED = "ce7247a"
PINNED_SOURCES = tuple(f"src/mlreads/mamba/csrc/{name}" for name in ("selective_scan.cpp", "simd.h", "causal_conv.h"))


def ours_fused_pinned(u, delta, A, B, C, D):
    from mamba_baseline import pinned_kernel

    from mlreads.mamba.scan import _bc_layout, _fused

    batch, dim, length = u.shape
    B, C = (_bc_layout(X, name, batch, dim, A.shape[1], length, False) for X, name in ((B, "B"), (C, "C")))
    return _fused(u, delta, A, B, C, D, None, None, True, None, 64, pinned_kernel(PINNED, PINNED_SOURCES))[0]


IMPLS = {
    "ours_fused": ours("fused", chunk=64),
    "ours_fused_pinned": ours_fused_pinned,
    "ours_chunked": ours("chunked"),
    "ours_loop": ours("loop"),
    "mambapy_pscan": mambapy_pscan,
    "hf_loop": hf_loop,
}


_GRADS: dict = {}


def out_grad(args) -> torch.Tensor:
    """The gradient fed to the scan's output: one fixed seeded (B, D, L) tensor per shape, the same for every
    implementation, made once (outside the timings and the peak-memory window)."""
    shape = tuple(args[0].shape)
    if shape not in _GRADS:
        _GRADS[shape] = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    return _GRADS[shape]


def fwd_bwd(fn, args) -> None:
    """One forward and one backward of the scan, backward from a given output gradient: the timing holds the scan
    alone, not a loss's elementwise ops (a square().mean() loss added ~40 ms at L=4096, B=8, D=128 on this machine,
    mostly page faults of its four fresh (B, D, L) temporaries, the same for every implementation)."""
    for a in args:
        a.grad = None
    fn(*args).backward(out_grad(args))


def time_it(name: str, length: int, reps: int) -> float:
    fwd_bwd(IMPLS[name], make_inputs(8))  # warm-up: imports and first-call costs stay out of the timing
    args = make_inputs(length)
    out_grad(args)
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
        f"torch.set_num_threads({threads}); args = b.make_inputs({length}); b.out_grad(args);"
        f"b.fwd_bwd(b.IMPLS['{name}'], b.make_inputs(8));"  # warm up imports and allocator
        f"print(b.peak_growth_mb(b.IMPLS['{name}'], args))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def probe_rates() -> dict:
    """Single-core vector exp and FMA rates (per second) and the vector width, from `roofline_probe.cpp`: a small
    program built here with the kernel's compiler and flags around the kernel's own vector math (csrc/simd.h), so the
    extension carries no benchmark code."""
    from mlreads.mamba import csrc

    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise SystemExit(f"no C++ compiler ({cxx}) on PATH: no roofline")
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "roofline_probe")
        subprocess.run([cxx, *csrc.CFLAGS, f"-I{csrc.SOURCE.parent}", str(PROBE), "-o", exe], check=True)
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def machine_rates() -> dict:
    """The probe's exp and FMA rates and vector width, and single-thread copy bandwidth (bytes per second, read +
    write of a 256 MB float32 tensor)."""
    rates = probe_rates()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        src = torch.randn(64 * 2**20)
        dst = torch.empty_like(src)
        dst.copy_(src)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            dst.copy_(src)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return {**rates, "copy_bytes_per_s": 2 * src.numel() * 4 / best}


def roofline_s(length: int, rates: dict) -> tuple[float, float]:
    """(compute-bound seconds, memory-bound seconds) of one fused forward + backward at this length."""
    elems = BATCH * length * DIM * STATE
    compute = elems * (2 / rates["exp_per_s"] + 17 / rates["fma_per_s"])
    bytes_ = 4 * (8 * BATCH * DIM * length + 6 * BATCH * STATE * length)
    return compute, bytes_ / rates["copy_bytes_per_s"]


def ab_pinned(lengths: list[int], pairs: int) -> list[dict]:
    """Today's fused kernel against the pinned one (PINNED), alternating new, pinned, new, pinned ... in one process
    (a shared machine's load falls on both alike): the CPU time of each forward + backward, and per length the median
    and range of the pinned/new ratio over `pairs` pairs."""
    import statistics

    rows = []
    for length in lengths:
        args = make_inputs(length)
        out_grad(args)
        names = ("ours_fused", "ours_fused_pinned")
        for name in names:
            fwd_bwd(IMPLS[name], args)  # warm-up (and the pinned kernel's build)
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(pairs):
            for name in names:
                c = time.process_time()
                fwd_bwd(IMPLS[name], args)
                cpu[name].append(time.process_time() - c)
        ratios = [p / n for n, p in zip(cpu["ours_fused"], cpu["ours_fused_pinned"])]
        row = {"L": length, "new_s": min(cpu["ours_fused"]), "pinned_s": min(cpu["ours_fused_pinned"]),
               "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}
        rows.append(row)
        print(f"L={length:6d} fused {row['new_s']:.3f} s, pinned ({PINNED}) {row['pinned_s']:.3f} s (best CPU); "
              f"pinned / new: median {row['ratio_median']:.3f} [{row['ratio_min']:.3f}, {row['ratio_max']:.3f}] over "
              f"{pairs} pairs", flush=True)
    return rows


STUDY = """
import json, sys, time, torch
sys.path.insert(0, 'benchmarks')
import selective_scan as b
torch.set_num_threads({threads})
out = {{}}
for name in ('ours_chunked', 'ours_fused'):
    args = b.make_inputs({length})
    b.out_grad(args)
    b.fwd_bwd(b.IMPLS[name], b.make_inputs(8))
    best = None
    for _ in range(3):
        w, c = time.perf_counter(), time.process_time()
        b.fwd_bwd(b.IMPLS[name], args)
        w, c = time.perf_counter() - w, time.process_time() - c
        best = (w, c) if best is None or w < best[0] else best
    out[name] = best
x, y = torch.randn(32 * 8 * 128 * 16), torch.randn(32 * 8 * 128 * 16)  # one chunk's (32, B, D, N) working set
x.add_(y)
w, c = time.perf_counter(), time.process_time()
for _ in range(200):
    x.add_(y)
out['chunk_sized_add'] = ((time.perf_counter() - w) / 200, (time.process_time() - c) / 200)
print(json.dumps(out))
"""


def threads_study(length: int) -> list[dict]:
    """Why the chunked path slows down with 2 threads: each variant in a fresh process (OpenMP reads its environment
    at start), wall and CPU seconds of one forward + backward, and of one chunk-sized elementwise op (the chunked
    path runs ~10 such parallel ops per chunk, each ending in an OpenMP barrier)."""
    import os

    rows = []
    for threads, policy in ((1, None), (2, None), (2, "PASSIVE")):
        env = {**os.environ, **({"OMP_WAIT_POLICY": policy} if policy else {})}
        res = subprocess.run([sys.executable, "-c", STUDY.format(threads=threads, length=length)], env=env,
                             capture_output=True, text=True, check=True)
        m = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({"threads": threads, "omp_wait_policy": policy or "default", **m})
        print(f"threads={threads} OMP_WAIT_POLICY={policy or 'default':8s} " + "  ".join(
            f"{k}: wall {v[0] * 1e3:.2f} ms cpu {v[1] * 1e3:.2f} ms" for k, v in m.items()), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hf-max", type=int, default=1024)
    p.add_argument("--pscan-max", type=int, default=4096)
    p.add_argument("--chunked-max", type=int, default=1 << 30,
                   help="skip the chunked path above this L (at 2 threads on a busy machine it takes many minutes)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--state", type=int, default=STATE, help="N (16 in the issue)")
    p.add_argument("--impls", nargs="+", default=[n for n in IMPLS if n != "ours_fused_pinned"], choices=list(IMPLS),
                   help="which implementations to time (ours_fused always runs: the ratios are against it; "
                        "ours_fused_pinned, the kernel at PINNED built from git, only when named)")
    p.add_argument("--updates", action="store_true",
                   help="only time every implementation at AiDotNet's shape (B=2, L=256, D=512, N=16), in state "
                        "updates per second")  # fmt: skip
    p.add_argument("--ab-pinned", type=int, default=0, metavar="PAIRS",
                   help="only time today's fused kernel against the pinned one, alternating, PAIRS pairs per length")
    p.add_argument("--threads-study", type=int, default=0, metavar="L",
                   help="only run the 1- vs 2-thread study at this length (see threads_study)")
    a = p.parse_args()
    set_state(a.state)
    if a.updates:
        rows = updates_table(max(a.reps, 5), a.threads)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"updates": rows, "shape": PEER_SHAPE}, f, indent=1)
        return
    if a.ab_pinned:
        torch.set_num_threads(a.threads)
        print(f"load average {open('/proc/loadavg').read().split()[0]}", flush=True)
        rows = ab_pinned(a.lengths, a.ab_pinned)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"ab_pinned": rows, "pinned": PINNED, "threads": a.threads}, f, indent=1)
        return
    if a.threads_study:
        print(f"load average {open('/proc/loadavg').read().split()[0]}", flush=True)
        rows = threads_study(a.threads_study)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"threads_study": rows, "L": a.threads_study}, f, indent=1)
        return
    rates = machine_rates()
    print(f"machine, one core: {rates['exp_per_s'] / 1e9:.2f} G exp/s, {rates['fma_per_s'] / 1e9:.1f} G FMA/s "
          f"({rates['float_lanes']}-float vectors, L1), copy {rates['copy_bytes_per_s'] / 1e9:.1f} GB/s; load average "
          f"{open('/proc/loadavg').read().split()[0]}", flush=True)
    torch.set_num_threads(a.threads)
    rows = []
    for length in a.lengths:
        bldn_mb = BATCH * length * DIM * STATE * 4 / 2**20
        compute_s, memory_s = roofline_s(length, rates)
        bound = max(compute_s, memory_s)
        for name in IMPLS:
            if name != "ours_fused" and name not in a.impls:
                continue
            if (name == "hf_loop" and length > a.hf_max) or (name == "mambapy_pscan" and length > a.pscan_max):
                continue
            if (name == "ours_loop" and length > a.pscan_max) or (name == "ours_chunked" and length > a.chunked_max):
                continue
            reps = a.reps if name.startswith("ours") else 1
            t = time_it(name, length, reps)
            # the HF loop's memory is not measured: it would double its minutes-long O(L^2) run
            mem = None if a.no_memory or name == "hf_loop" else child_peak_mb(name, length, a.threads)
            rows.append({"impl": name, "L": length, "seconds": round(t, 4), "peak_mb": mem, "bldn_mb": bldn_mb,
                         "roofline_fraction": round(bound / t, 4), "updates_per_s": updates_per_s(length, t)})
            print(f"L={length:6d} {name:14s} {t:9.3f} s  {updates_per_s(length, t) / 1e6:7.1f} M updates/s  "
                  f"peak +{mem if mem is None else round(mem)} MB  "
                  f"roofline {100 * bound / t:5.1f}%  (one (B,L,D,N) fp32 tensor = {bldn_mb:.0f} MB)", flush=True)
        print(f"L={length:6d} roofline: compute {compute_s:.4f} s, memory {memory_s:.4f} s, "
              f"{a.threads} thread(s) would have up to {a.threads}x", flush=True)
        base = next(r for r in rows if r["L"] == length and r["impl"] == "ours_fused")
        for r in rows:
            if r["L"] == length and r["impl"] != "ours_fused":
                print(f"L={length:6d} speed-up of ours_fused vs {r['impl']}: {r['seconds'] / base['seconds']:.1f}x",
                      flush=True)
        chunked = next((r for r in rows if r["L"] == length and r["impl"] == "ours_chunked"), None)
        for r in rows if chunked else ():
            if r["L"] == length and r["impl"] in ("mambapy_pscan", "hf_loop"):
                print(f"L={length:6d} speed-up of ours_chunked vs {r['impl']}: "
                      f"{r['seconds'] / chunked['seconds']:.1f}x", flush=True)
        if base["peak_mb"] is not None:
            bdl_mb = bldn_mb / STATE
            for r in (base, chunked) if chunked else (base,):
                print(f"L={length:6d} {r['impl']} peak = {r['peak_mb'] / bldn_mb:.2f} (B,L,D,N) tensors = "
                      f"{r['peak_mb'] / bdl_mb:.1f} (B,D,L) tensors", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"batch": BATCH, "dim": DIM, "state": STATE, "threads": a.threads, "rates": rates, "rows": rows},
                      f, indent=1)


if __name__ == "__main__":
    main()
