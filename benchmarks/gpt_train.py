"""Training-step throughput (tokens/s) of mlreads' GPT against transformers' GPT2LMHeadModel, measured in one run.

Both models get the same config, the same weights (ours is loaded with `GPT.from_hf`), the same batch, the same loss
(cross-entropy on the logits of every position) and the same optimiser (AdamW, fused=False, grad clip 1.0). Repeats are
interleaved (ours, HF, ours, HF, ...) so that load from other processes hits both alike; the median of the repeats is
reported, with the ratio ours / HF (target >= 1.0).

The natural peer is nanoGPT, but nanoGPT is not published on PyPI, so HF GPT-2 (the same architecture, and what
nanoGPT's own `from_pretrained` loads) is the peer here.

    python benchmarks/gpt_train.py [--threads N] [--repeats 5] [--steps N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from mlreads.gpt import GPT

CONFIGS = {
    # name: (vocab, n_layer, n_head, d_model, block, batch, timed steps per repeat)
    "baby 4L/4H/128 block 64 batch 12": (84, 4, 4, 128, 64, 12, 10),
    "6L/6H/384 block 256 batch 8": (84, 6, 6, 384, 256, 8, 2),
}


def make_models(vocab, n_layer, n_head, d_model, block):
    import transformers

    hc = transformers.GPT2Config(
        vocab_size=vocab, n_positions=block, n_embd=d_model, n_layer=n_layer, n_head=n_head,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(hc).train()
    ours = GPT.from_hf(hf).train()
    return ours, hf


def step_fn(model, logits_of, x, y, vocab):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.99), weight_decay=0.1, foreach=True)

    def step():
        logits = logits_of(model, x)  # (B, L, V)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step


def timed(step, n):
    """(wall seconds, process CPU seconds) of n steps."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        step()
    return time.perf_counter() - t0, time.process_time() - c0


def bench(name, spec, repeats, steps, warmup):
    vocab, n_layer, n_head, d_model, block, batch, default_steps = spec
    steps = steps or default_steps
    ours, hf = make_models(vocab, n_layer, n_head, d_model, block)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (batch, block), generator=g)
    y = torch.randint(0, vocab, (batch, block), generator=g)
    steps_of = {
        "ours": step_fn(ours, lambda m, x: m(x), x, y, vocab),
        "hf": step_fn(hf, lambda m, x: m(x).logits, x, y, vocab),
    }
    for s in steps_of.values():
        timed(s, warmup)
    tps = {"ours": [], "hf": []}  # tokens per wall-clock second
    cpu = {"ours": [], "hf": []}  # tokens per process-CPU second: less sensitive to other processes on the machine
    for r in range(repeats):
        order = ("ours", "hf") if r % 2 == 0 else ("hf", "ours")
        for who in order:
            wall, proc = timed(steps_of[who], steps)
            tps[who].append(steps * batch * block / wall)
            cpu[who].append(steps * batch * block / proc)
    med = {k: statistics.median(v) for k, v in tps.items()}
    return {
        "config": name,
        "params": ours.num_params(),
        "hf_attn_implementation": getattr(hf.config, "_attn_implementation", "?"),
        "tokens_per_s_ours": med["ours"],
        "tokens_per_s_hf": med["hf"],
        "ratio_ours_over_hf": med["ours"] / med["hf"],
        # each repeat's ours/HF, the two measured back to back: robust to load that drifts over the run
        "ratio_paired_median": statistics.median(a / b for a, b in zip(tps["ours"], tps["hf"])),
        "ratio_cpu_time": statistics.median(cpu["ours"]) / statistics.median(cpu["hf"]),
        "repeats_ours": tps["ours"],
        "repeats_hf": tps["hf"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="timed training steps per repeat (default: per config)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--only", choices=list(CONFIGS), default=None)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    try:
        import transformers
    except ImportError:
        print("transformers is not installed (pip install transformers): no peer to compare with", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"peer: transformers {transformers.__version__} GPT2LMHeadModel (nanoGPT is not on PyPI)")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.repeats} interleaved repeats, median")
    results = []
    for name, spec in CONFIGS.items():
        if args.only and name != args.only:
            continue
        r = bench(name, spec, args.repeats, args.steps, args.warmup)
        results.append(r)
        print(
            f"{name:<36} ours {r['tokens_per_s_ours']:9.0f} tok/s   HF ({r['hf_attn_implementation']}) "
            f"{r['tokens_per_s_hf']:9.0f} tok/s   ratio ours/HF {r['ratio_ours_over_hf']:.3f} "
            f"(paired median {r['ratio_paired_median']:.3f}, by CPU time {r['ratio_cpu_time']:.3f})"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": torch.get_num_threads(), "torch": torch.__version__,
                       "transformers": transformers.__version__, "results": results}, f, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
