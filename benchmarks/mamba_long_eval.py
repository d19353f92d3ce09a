"""Mamba induction-heads accuracy at very long test lengths (up to 2^20), with wall time and peak memory.

    python benchmarks/mamba_long_eval.py RUN_DIR [--log2 16 18 20] [--n 8] [--segment 4096] [--threads 1]
                                         [--out long_eval.json]

RUN_DIR is a `mamba/induction-extrapolation` run folder (its saved models: `mlreads.load_run`); it is only read: the
rows go to `--out` (default long_eval.json in the current folder), since the run folder is the run's. The model reads
each input in segments with its recurrent state, so activation memory depends on the segment, not on L. Each length
is evaluated in a fresh subprocess; reported are its peak RSS growth during the evaluation (after the model and the
inputs exist; flat in L means memory flat in L) and the size of the inputs themselves (n * L int64 tokens), which is
the only thing that grows with L.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def evaluate(run_dir: str, log2: int, n: int, segment: int, threads: int, seed: int = 123) -> dict:
    import torch

    from mlreads import load_run
    from mlreads.core.data.synthetic import induction_heads
    from mlreads.core.memory import peak_rss_growth_mb

    torch.set_num_threads(threads)
    model = load_run(run_dir, "mamba")["mamba"]  # in eval mode
    vocab = model.cfg.d_vocab
    x, answer = induction_heads(n, 2**log2, vocab, torch.Generator().manual_seed(seed + log2))
    model.last_logits(x[:1, :segment], segment=segment)  # warm-up: first-call allocations stay out of the peak
    t0 = time.perf_counter()
    logits, growth = peak_rss_growth_mb(lambda: model.last_logits(x, segment=segment))
    seconds = time.perf_counter() - t0
    pred = logits.argmax(-1)
    return {"L": 2**log2, "n": n, "correct": int((pred == answer).sum()), "acc": float((pred == answer).float().mean()),
            "seconds": round(seconds, 2), "peak_growth_mb": None if growth is None else round(growth, 1),
            "inputs_mb": round(x.numel() * 8 / 2**20, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--log2", type=int, nargs="+", default=[16, 18, 20])
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--segment", type=int, default=4096)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("long_eval.json"), help="the JSON file the rows are written to")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(evaluate(a.run_dir, a.log2[0], a.n, a.segment, a.threads)))
        return
    rows = []
    for k in a.log2:
        cmd = [sys.executable, __file__, a.run_dir, "--child", "--log2", str(k), "--n", str(a.n), "--segment",
               str(a.segment), "--threads", str(a.threads)]
        # Large blocks through mmap, so freed memory leaves the process: otherwise glibc's heap keeps freed segment
        # buffers resident and fragments, and the peak creeps up with the number of segments (measured: +115, +157,
        # +181 MB at 2^12, 2^16, 2^18 without this; +94, +116, +115 MB with it).
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        print(f"L=2^{k:<2d} acc {100 * row['acc']:6.2f}% ({row['correct']}/{row['n']})  {row['seconds']:8.1f} s  "
              f"peak +{row['peak_growth_mb']} MB (inputs {row['inputs_mb']} MB)", flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
