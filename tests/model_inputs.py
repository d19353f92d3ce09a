"""Outputs of a saved model on a fixed input of the right kind, for the tests that compare a model rebuilt by
`mlreads.load_run` with the one its run trained (tests/test_smoke.py, tests/core/test_saved_models.py): one input
per loadable class, drawn from a seeded generator, so two models with the same weights give bit-equal outputs."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def outputs(cls: str, model: nn.Module, meta: dict) -> list[Tensor]:
    """The outputs of `model` (a loadable class, named as in its JSON: "gpt.GPT") on a fixed input, in eval mode."""
    g = torch.Generator().manual_seed(0)
    cfg = model.cfg
    model.eval()
    with torch.no_grad():
        if cls in ("gpt.GPT", "circuits.AttnOnlyTransformer", "mamba.MambaLM"):
            length = min(getattr(cfg, "n_ctx", 16), 16)
            return [model(torch.randint(cfg.d_vocab, (2, length), generator=g))]
        if cls == "s4.SequenceClassifier":
            return [model(torch.rand(2, meta.get("sequence_length", 16), cfg.d_input, generator=g))]
        if cls.startswith("superposition."):
            return [model(model.sample(4, g))]
        if cls == "dl_review.Students":
            return [model(torch.randn(5, 2, generator=g))]
        if cls in ("dl_review.ManyMLPs", "dropout.DropoutMLP", "dropout.Autoencoder"):
            return [model(torch.rand(3, cfg.d_in, generator=g))]
        if cls == "optim.VAE":
            x = torch.rand(3, cfg.d_in, generator=g)
            return [model.neg_elbo(x, torch.randn(3, cfg.d_latent, generator=g))]
        if cls.startswith("vision."):
            side = meta.get("image_side", cfg.image_size if hasattr(cfg, "image_size") else 28)
            return [model(torch.rand(2, cfg.in_channels, side, side, generator=g))]
        if cls == "generative.GAN":
            return [model.gen(torch.randn(3, cfg.d_z, generator=g)), model.disc(torch.rand(3, cfg.d_data, generator=g))]
        if cls == "generative.Discriminator":
            return [model(torch.randn(5, cfg.d_data, generator=g))]
        if cls == "generative.MLPDenoiser":
            t = torch.randint(1, meta.get("T", 1000) + 1, (3,), generator=g)
            return [model(torch.randn(3, cfg.d_data, generator=g), t)]
        if cls in ("attention.Seq2Seq", "transformer.EncoderDecoder"):
            src = torch.randint(4, cfg.src_vocab, (2, 7), generator=g)
            out = model(src, torch.randint(4, cfg.tgt_vocab, (2, 5), generator=g))
            return [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None]
        if cls == "attention.ParametricAttention":
            x = torch.rand(6, generator=g, dtype=torch.float64) * 5
            return [model(x[:3], x, torch.sin(x))]
    raise AssertionError(f"no example input for {cls}: add one to tests/model_inputs.py")


def assert_same_outputs(cls: str, trained: nn.Module, loaded: nn.Module, meta: dict) -> None:
    """The rebuilt model gives the trained model's outputs bit for bit (same dtype, same values)."""
    for a, b in zip(outputs(cls, trained, meta), outputs(cls, loaded, meta), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), f"{cls}: the loaded model's output is not the trained one's"
