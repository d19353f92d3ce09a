"""Figures a reader can read: each fix of the newcomer's list, checked on the matplotlib figure itself."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_an_all_zero_bleu_panel_says_so_instead_of_staying_empty():
    from mlreads.transformer.figures import ablation_figure

    fig = ablation_figure({"base": (12.3, 0.0), "ls0": (11.1, 0.0)})
    bleu = fig.axes[1]
    texts = [t.get_text() for t in bleu.texts]
    assert any("BLEU is 0 for every variant" in t for t in texts), texts
    assert texts.count("0") == 2, "each bar carries its value"


def test_the_seq2seq_title_names_only_the_models_it_plots():
    from mlreads.transformer.figures import time_curves_figure

    alone = time_curves_figure({"Transformer": ([1, 2], [1.0, 2.0])}).axes[0].get_title()
    both = time_curves_figure({"Transformer": ([1, 2], [1.0, 2.0]), "RNNsearch": ([1, 2], [1.0, 1.5])})
    assert "RNNsearch" not in alone and "Transformer" in alone
    assert "Transformer" in both.axes[0].get_title() and "RNNsearch" in both.axes[0].get_title()
    assert "Transformer ends at 2.0" in both.axes[0].get_title() and "RNNsearch ends at 1.5" in both.axes[0].get_title()


def test_the_ablation_title_says_what_the_run_measured():
    from mlreads.transformer.exp_ablations import _title

    out = {"ppl_ls0": 3.10, "ppl_base": 3.25, "bleu_ls0": 71.2, "bleu_base": 71.5, "bleu_learned_pe": 72.3}
    title = _title(out)
    assert "perplexity 3.1 -> 3.25" in title and "BLEU 71.20 -> 71.50" in title and "72.30 vs sinusoids 71.50" in title
    assert _title({}) is None


def test_reference_lines_of_one_figure_never_look_alike():
    from mlreads.s4.figures import smnist_accuracy_figure

    ax = smnist_accuracy_figure(([100, 200], [0.5, 0.8]), 0.98, 196, 80.0).axes[0]
    refs = [line for line in ax.get_lines() if line.get_label() in ("target 98%", "chance (10%)")]
    assert len(refs) == 2
    assert refs[0].get_linestyle() != refs[1].get_linestyle()


def test_the_phase_change_legend_sits_outside_the_curves():
    from mlreads.circuits.figures import phase_figure

    steps = list(range(0, 601, 50))
    s = np.array(steps)
    sig = 1 / (1 + np.exp(-(s - 250) / 40))
    two = {"step": steps, "loss_rep2": list(4.2 - 3.6 * sig), "loss_rep1": list(4.3 - 0.3 * sig),
           "induction": list(0.05 + 0.85 * sig)}  # fmt: skip
    one = {"step": steps, "loss_rep2": list(4.2 - 0.4 * sig), "loss_rep1": list(4.3 - 0.3 * sig),
           "induction": list(0.05 + 0.05 * sig)}  # fmt: skip
    fig = phase_figure({"2-layer": two, "1-layer": one}, 250, 260)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent()), "the legend does not cover the plotting area"


def test_a_single_step_size_keeps_every_marker_visible():
    from mlreads.optim.figures import bias_correction

    beta2s = (0.99, 0.999)
    finals = {(b2, 3e-3, corr): 120.0 for b2 in beta2s for corr in (True, False)}  # all equal: they would stack
    ax = bias_correction(finals, beta2s, (3e-3,), 3, 3e-3, None, None).axes[0]
    points = [(float(x), float(y)) for line in ax.get_lines() for x, y in zip(line.get_xdata(), line.get_ydata())]
    assert len(points) == 4 and len(set(points)) == 4, points


def test_ddpm_figures_say_what_they_show_with_one_colour_scheme():
    from mlreads.generative.figures import image_grid, reverse_chain_figure

    side = 6
    imgs = torch.zeros(4, side * side)
    grid = image_grid(imgs, "DDPM samples, sigma^2 = beta_tilde (all 4)", side)
    canvas = grid.axes[0].get_images()[0].get_array()
    assert canvas.shape == (2 * side + 2, 2 * side + 2), "a 2-pixel gap between images"
    assert np.allclose(canvas[side : side + 2, :], 0.15), "the gap is drawn, unlike the white background"
    chain = {t: imgs * 2 - 1 for t in (1000, 0)}
    fig = reverse_chain_figure(chain, 2, side, "beta_tilde")
    assert fig._suptitle.get_text().endswith("sigma^2 = beta_tilde")
    cmaps = {im.get_cmap().name for ax in fig.axes for im in ax.get_images()}
    assert cmaps == {grid.axes[0].get_images()[0].get_cmap().name}, "the chain uses the samples' colours"


def test_ddpm_smoke_checks_whatever_variance_it_samples(tmp_path):
    from mlreads.core.run.registry import load_all
    from mlreads.core.run.runner import run_experiment

    exp = load_all()["ddpm/mnist"]
    result = run_experiment(exp, "smoke", out=tmp_path, threads=1, overrides={
        "sigma2_kinds": "beta_tilde", "train.steps": "10", "n_samples": "4", "T": "50"})  # fmt: skip
    (check,) = [c for c in result["checks"] if "background" in c["name"]]
    assert isinstance(check["measured"], float), check  # measured, not "missing metric 'background_frac_beta'"
    assert "samples_beta_tilde.png" in result["figures"] and "all 4" in result["captions"]["samples_beta_tilde.png"]
