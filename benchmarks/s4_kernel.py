"""Forward + backward time of SSM kernel generation + FFT convolution: S4D (Vandermonde) vs S4 (Cauchy + Woodbury),
with the LSSL dense Krylov kernel for reference, at L in {1k, 4k, 16k}. One thread; ratios within one run.

    python benchmarks/s4_kernel.py [--lengths 1024 4096 16384] [--d-model 32] [--d-state 64] [--batch 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mlreads.s4.kernels import fft_conv
from mlreads.s4.model import S4Config, SequenceClassifier


def bench(kernel_name: str, length: int, args, reps: int) -> float:
    cfg = S4Config(d_model=args.d_model, d_state=args.d_state, n_layers=1, kernel=kernel_name,
                   disc="bilinear" if kernel_name != "s4d" else "zoh")  # fmt: skip
    layer = SequenceClassifier(cfg).blocks[0]
    kernel, d = layer.kernel, layer.d
    u = torch.randn(args.batch, args.d_model, length, generator=torch.Generator().manual_seed(0), requires_grad=True)
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        y = fft_conv(u, kernel(length), d)  # (B, H, L)
        y.square().mean().backward()
        if i:  # the first repetition warms up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--d-state", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    print(f"H={args.d_model} N={args.d_state} B={args.batch}, forward+backward of kernel + FFT conv, 1 thread")
    print(f"{'L':>6} {'S4D ms':>9} {'S4 ms':>9} {'LSSL ms':>9} {'S4/S4D':>7} {'LSSL/S4D':>9}")
    for length in args.lengths:
        t = {k: bench(k, length, args, args.reps) for k in ("s4d", "s4", "dense")}
        row = {"L": length, **{f"{k}_s": v for k, v in t.items()},
               "ratio_s4_over_s4d": t["s4"] / t["s4d"], "ratio_dense_over_s4d": t["dense"] / t["s4d"]}  # fmt: skip
        rows.append(row)
        print(f"{length:>6} {1e3 * t['s4d']:>9.1f} {1e3 * t['s4']:>9.1f} {1e3 * t['dense']:>9.1f} "
              f"{row['ratio_s4_over_s4d']:>7.2f} {row['ratio_dense_over_s4d']:>9.2f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
