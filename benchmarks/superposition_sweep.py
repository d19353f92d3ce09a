"""Toy-model sweeps: instances trained per minute, batched (one ToyModel with I instances) against a per-model loop
(I separate single-instance ToyModels, one after another) on the same work: same n, m, steps and batch per instance.

Both paths train with mlreads.core.train.fit. A third line measures fit's own per-step overhead: the same
single-instance model trained by a bare AdamW loop.

    OMP_NUM_THREADS=1 python benchmarks/superposition_sweep.py [--instances 400] [--steps 200] [--json out.json]

Target: batched >= 20x the per-model loop.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from mlreads.superposition import ToyConfig, ToyModel
from mlreads.superposition.exp_common import ToyTrain, train_toy


def _model(n_inst: int, n: int, m: int, seed0: int = 0) -> ToyModel:
    gen = torch.Generator().manual_seed(seed0)
    model = ToyModel(ToyConfig(n, m, n_inst, "relu"), gen)
    model.set_data(torch.rand(n_inst, n, generator=gen) * 2, torch.rand(n_inst, n, generator=gen) * 0.99 + 0.01)
    return model


def batched(n_inst: int, n: int, m: int, t: ToyTrain) -> float:
    model = _model(n_inst, n, m)
    start = time.perf_counter()
    train_toy(model, t)
    return time.perf_counter() - start


def per_model_loop(n_inst: int, n: int, m: int, t: ToyTrain) -> float:
    start = time.perf_counter()
    for i in range(n_inst):
        train_toy(_model(1, n, m, seed0=i), t)
    return time.perf_counter() - start


def bare_loop(n: int, m: int, t: ToyTrain) -> float:
    """fit's overhead reference: the same single-instance training as a plain AdamW loop."""
    model = _model(1, n, m)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(t.steps):
        loss = model.loss(model.sample(t.batch, gen)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=400, help="batched instances (a 20x20 grid = 400)")
    p.add_argument("--loop-instances", type=int, default=8, help="instances the per-model loop trains")
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--m", type=int, default=1)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    t = ToyTrain(steps=a.steps, batch=a.batch)

    per_model_loop(1, a.n, a.m, ToyTrain(steps=20, batch=a.batch))  # warm-up
    t_loop = per_model_loop(a.loop_instances, a.n, a.m, t)
    t_batch = batched(a.instances, a.n, a.m, t)
    t_bare = bare_loop(a.n, a.m, t)
    loop_rate = a.loop_instances / t_loop * 60
    batch_rate = a.instances / t_batch * 60
    per_step_fit = t_loop / a.loop_instances / a.steps * 1e3
    per_step_bare = t_bare / a.steps * 1e3
    res = {
        "work": f"n={a.n}, m={a.m}, {a.steps} steps x batch {a.batch} per instance, {a.threads} thread(s)",
        "batched_instances": a.instances, "batched_s": round(t_batch, 3),
        "batched_instances_per_min": round(batch_rate, 1),
        "loop_instances": a.loop_instances, "loop_s": round(t_loop, 3),
        "loop_instances_per_min": round(loop_rate, 1),
        "ratio_batched_over_loop": round(batch_rate / loop_rate, 2),
        "fit_ms_per_step_single_instance": round(per_step_fit, 3),
        "bare_adamw_ms_per_step_single_instance": round(per_step_bare, 3),
    }  # fmt: skip
    print(f"work: {res['work']}")
    print(f"batched  ({a.instances:5d} instances): {batch_rate:10.1f} instances/min  ({t_batch:.1f} s)")
    print(f"per-model loop ({a.loop_instances:3d} instances): {loop_rate:10.1f} instances/min  ({t_loop:.1f} s)")
    print(f"ratio batched / loop: {res['ratio_batched_over_loop']:.1f}x  (target >= 20x)")
    print(f"single instance ms/step: fit {per_step_fit:.3f}, bare AdamW loop {per_step_bare:.3f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
