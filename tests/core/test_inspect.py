"""`mlreads inspect RUN_DIR` (mlreads/explore.py) shows what a run's saved models learned: a trained char model's text
continues what it learned, an attention-only model's head scores are Olsson et al.'s probe's, and the GAN and the DDPM
draw PNGs. Every registered experiment's smoke run is inspected in tests/test_smoke.py; here tiny models, saved
through the runner's own path, are checked for what the output says."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib.image
import pytest
import torch

from mlreads.core.run.runner import RunContext
from mlreads.explore import inspect_run

sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli  # noqa: E402

PATTERN = "abcd"


def _save(tmp_path: Path, arm: str, model, **meta) -> Path:
    ctx = RunContext(tmp_path / "run", "smoke", 0, 1)
    ctx.save_model(arm, model, **meta)
    ctx.close()
    return tmp_path / "run"


@pytest.fixture(scope="module")
def char_lm():
    """A tiny GPT trained on 'abcdabcd...': a model that learned something a sample must show."""
    from mlreads.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(d_vocab=len(PATTERN) + 1, n_ctx=8, n_layers=1, n_heads=2, d_model=16))
    text = torch.tensor([i % len(PATTERN) for i in range(64)])  # ids of a b c d a b c d ...
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for step in range(60):
        starts = torch.randint(0, 64 - 9, (8,), generator=torch.Generator().manual_seed(step))
        x = torch.stack([text[s : s + 9] for s in starts.tolist()])
        loss = torch.nn.functional.cross_entropy(model(x[:, :-1]).transpose(1, 2), x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_the_char_model_continues_what_it_learned(char_lm, tmp_path):
    run = _save(tmp_path, "gpt", char_lm, tokens=[*PATTERN, "\n"], joiner="")
    lines = inspect_run(run, prompt="ab", length=40, temperature=0.5)
    text = "".join(line.strip() for line in lines[lines.index(next(x for x in lines if "sample (" in x)) + 1 :])
    assert text.startswith("ab") and PATTERN * 8 in text, lines
    assert lines == inspect_run(run, prompt="ab", length=40, temperature=0.5)  # seeded: the same text again
    assert "gpt: gpt.GPT" in lines[0] and "hook points: blocks.0" in "\n".join(lines)


def test_the_cli_samples_text_and_refuses_bad_prompts_in_one_line(char_lm, tmp_path):
    run = _save(tmp_path, "gpt", char_lm, tokens=[*PATTERN, "\n"], joiner="")
    code, out, _ = run_cli(["inspect", str(run), "--prompt", "abcd", "--length", "20", "--seed", "3"])
    assert code == 0 and "abcdabcd" in out
    for argv in (["--prompt", "xyz"], ["--temperature", "0"], ["--arm", "nope"], ["--length", "0"]):
        code, _, err = run_cli(["inspect", str(run), *argv])
        assert_one_line_exit_2(code, err)


def test_head_scores_are_the_probes_and_the_induction_pattern_is_drawn(tmp_path):
    from mlreads.circuits import AttnOnlyConfig, AttnOnlyTransformer, repeated_sequence_scores
    from mlreads.circuits.corpus import repeated_batch

    model = AttnOnlyTransformer(AttnOnlyConfig(n_layers=2, d_model=16, n_heads=3, d_head=8, d_vocab=20, n_ctx=16),
                                torch.Generator().manual_seed(1))  # fmt: skip
    run = _save(tmp_path, "2-layer", model, half=6, probe_vocab=20)
    lines = inspect_run(run, seed=5)
    probe = repeated_batch(16, 6, 20, torch.Generator().manual_seed(5))[:, :-1]
    want = repeated_sequence_scores(model.eval(), probe)
    table = [line.split() for line in lines if line.startswith("    ") and line.split()[0][0].isdigit()]
    rows = {cells[0]: cells[1:] for cells in table}
    assert len(rows) == 6  # 2 layers x 3 heads
    for name, (prev, ind) in rows.items():
        layer, head = map(int, name.split("."))
        assert float(prev) == pytest.approx(float(want["previous"][layer, head]), abs=6e-4)
        assert float(ind) == pytest.approx(float(want["induction"][layer, head]), abs=6e-4)
    best = divmod(int(want["induction"][1:].argmax()) + 3, 3)
    assert any(f"induction head {best[0]}.{best[1]}," in line for line in lines)
    png = run / "inspect" / "2-layer-attention.png"
    assert matplotlib.image.imread(png).ndim == 3


def test_the_gan_and_the_ddpm_draw_samples(tmp_path):
    from mlreads.generative import GAN, DenoiserConfig, GANConfig, MLPDenoiser

    torch.manual_seed(0)
    gan = GAN(GANConfig(d_data=16, d_z=4, d_gen=(8,), d_disc=(8,), n_pieces=2))
    ctx = RunContext(tmp_path / "run", "smoke", 0, 1)
    ctx.save_model("gan", gan, image_side=4, pixel_range=[0, 1])
    ctx.save_model("ddpm", MLPDenoiser(DenoiserConfig(d_data=16, d_hidden=8, n_layers=2, d_time=8)), image_side=4,
                   pixel_range=[-1, 1], T=10, betas="linear", param="eps")  # fmt: skip
    ctx.save_model("ddpm-2d", MLPDenoiser(DenoiserConfig(d_data=2, d_hidden=8, n_layers=2, d_time=8)), T=10,
                   betas="linear", param="eps")  # fmt: skip
    ctx.close()
    out = tmp_path / "pngs"
    lines = inspect_run(tmp_path / "run", out=out, n=9)
    for arm in ("gan", "ddpm", "ddpm-2d"):
        assert any(line.endswith(str(out / f"{arm}-samples.png")) for line in lines), lines
        assert matplotlib.image.imread(out / f"{arm}-samples.png").ndim == 3
    assert "10 reverse steps" in "\n".join(lines)
