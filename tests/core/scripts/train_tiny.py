"""A tiny training run for the kill-and-resume and DDP tests: `python train_tiny.py OUT [--resume] [--sleep S]`.

Writes OUT/final.safetensors (rank 0, or every rank as final-rank{r}.safetensors under DDP), and OUT/metrics.jsonl
(one row per step) outside DDP.
"""

import argparse
import os
import time

import torch
from safetensors.torch import save_file
from torch import nn

from mlreads.core.run.runner import RunContext
from mlreads.core.train import TrainConfig, fit


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Dropout(args.dropout), nn.GELU(), nn.Linear(32, 1))

    def batch_fn(step, gen):
        if args.sleep:
            time.sleep(args.sleep)
        x = torch.randn(16, 8, generator=gen)
        return x, torch.sin(x.sum(1, keepdim=True))

    def loss_fn(m, batch):
        x, y = batch
        return ((m(x) - y) ** 2).mean()

    cfg = TrainConfig(steps=args.steps, lr=3e-3, warmup=5, weight_decay=0.1, ckpt_every=5, grad_clip=1.0, log_every=1)
    ctx = RunContext(args.out, "smoke", 0, 1, resume=args.resume) if "WORLD_SIZE" not in os.environ else None
    fit(model, cfg, batch_fn, loss_fn, ctx=ctx, ckpt_dir=os.path.join(args.out, "checkpoints"), resume=args.resume,
        data_seed=0)
    rank = int(os.environ.get("RANK", "0"))
    name = f"final-rank{rank}.safetensors" if "WORLD_SIZE" in os.environ else "final.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(args.out, name))


if __name__ == "__main__":
    main()
