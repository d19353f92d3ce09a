"""The learning-rate pilot behind dropout/sparsity's design 2: train the plain autoencoder only (no dropout arm, so
the claim's ratio is never read) at each Adam learning rate and print the share of its 256 ReLU units still alive on
the 10k test images (a unit is dead when it is 0 on every image), with the reconstruction error.

The rule, fixed before the pilot ran: the largest learning rate of {3e-3, 1e-3, 3e-4, 1e-4} whose plain autoencoder
keeps at least 90% of its units alive at the full budget's length (100 epochs), seed 0. Measured (2026-12-06):
10 epochs: 3e-3 48% alive (recon 3.57), 1e-3 79% (2.20), 3e-4 100% (2.76), 1e-4 100% (5.16); 100 epochs: 3e-4 100%
(recon 1.10). A dead unit gets no gradient and stays dead, so 1e-3 cannot recover by 100 epochs: the rule gives 3e-4.

    python benchmarks/dropout_sparsity_lr_pilot.py 10 3e-3 1e-3 3e-4 1e-4     # about 30 CPU-s per rate
    python benchmarks/dropout_sparsity_lr_pilot.py 100 3e-4                   # about 6 CPU-minutes
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from mlreads.core.run.seeding import derive_seed, init_rng
from mlreads.core.train import fit
from mlreads.dropout.exp_common import mnist_tensors, random_batches
from mlreads.dropout.exp_sparsity import SparsityConfig, reconstruction_loss
from mlreads.dropout.model import Autoencoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("epochs", type=int)
    ap.add_argument("lrs", type=float, nargs="+")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = SparsityConfig()
    data = mnist_tensors(cfg.n_train, cfg.n_test)
    (xtr, _), (xte, _) = data["train"], data["test"]
    steps = args.epochs * cfg.n_train // cfg.batch_size
    for lr in args.lrs:
        t0 = time.process_time()
        with init_rng(derive_seed(args.seed, "init/autoencoder")):  # the experiment's initial weights
            model = Autoencoder(784, cfg.d_hidden, p_keep=1.0)
        fit(model, replace(cfg.train, steps=steps, lr=lr), random_batches(xtr, xtr, batch_size=cfg.batch_size),
            reconstruction_loss,
            data_seed=derive_seed(args.seed, "data"))  # fmt: skip
        model.eval()
        with torch.no_grad():
            h = model.code(xte)
            recon = float(reconstruction_loss(model, (xte, xte)))
        alive = float((h.amax(0) > 0).float().mean())
        print(f"{args.epochs} epochs, lr {lr:g}: {alive:.1%} of units alive, recon {recon:.2f} "
              f"({time.process_time() - t0:.0f} CPU-s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
