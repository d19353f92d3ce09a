"""dropout/mnist (Table 2, Fig 4 and a Fig 10 point): dropout lowers MNIST test error and the train-test gap.

Both arms are judged on the same images, so their errors are paired: the error gain's standard error comes from the
per-image differences on the test set, and the gap ratio's from the delta method over the test and training images
(`gap_ratio_se`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mlreads.core.fields import in_range, positive
from mlreads.core.stats import paired, proportion
from mlreads.core.train import TrainConfig
from mlreads.dropout.exp_common import Arm, mnist_tensors, train_classifier, wrong
from mlreads.dropout.model import MLPConfig


@dataclass(frozen=True)
class DropoutMNISTConfig:
    n_train: int = positive(10_000)
    n_test: int = positive(10_000)
    d_hidden: tuple[int, ...] = positive((512, 512))
    # Section 6.1.1: retain 80% of the inputs and 50% of the hidden units
    p_keep_input: float = in_range(0.8, 0.0, 1.0, lo_open=True, hi_open=False)
    p_keep_hidden: float = in_range(0.5, 0.0, 1.0, lo_open=True, hi_open=False)
    max_norm: float = positive(3.0)  # c, Section 5.1 (3-4 in App. B.1)
    # 200 epochs of 10k (15.6k steps per arm): Section 9 says a dropout net "typically takes 2-3 times longer to
    # train"; the no-dropout arm fits its 10k images within 50 epochs, so the dropout arm gets 4x that
    epochs: int = positive(200)
    batch_size: int = positive(128)
    eval_n: int = positive(10_000)  # images per split at each logged evaluation
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        lr=0.1, schedule="cosine", optimizer="sgd", betas=(0.9, 0.999), grad_clip=None, log_every=50))  # fmt: skip

    @property
    def steps(self) -> int:
        return self.epochs * self.n_train // self.batch_size


def arms(cfg) -> list[Arm]:
    base = {"d_hidden": cfg.d_hidden}
    return [Arm("no-dropout", MLPConfig(**base)),
            Arm("dropout", MLPConfig(**base, p_keep_input=cfg.p_keep_input, p_keep_hidden=cfg.p_keep_hidden,
                                     max_norm=cfg.max_norm))]  # fmt: skip


def run_mnist(cfg: DropoutMNISTConfig, ctx) -> dict:
    """Train the same MLP without and with dropout (+ max-norm) on the same batches; compare test errors and gaps.

    Metrics (percent): err_<arm> (full test set, with _se and the Wilson _ci), train_err_<arm> (the training
    subset), gap_<arm> = test - train, err_gain = err_none - err_dropout (with _se and _ci from the paired per-image
    differences), gap_ratio = gap_dropout / gap_none with gap_ratio_se.
    """
    from dataclasses import replace

    from mlreads.dropout import figures

    data = mnist_tensors(cfg.n_train, cfg.n_test)
    train = replace(cfg.train, steps=cfg.steps, eval_every=max(1, cfg.steps // 10))
    out, histories, flags = {}, {}, {}
    for arm in arms(cfg):
        model, res = train_classifier(arm, data, train, cfg.batch_size, ctx, cfg.eval_n)
        key = "none" if arm.name == "no-dropout" else "dropout"
        flags[key] = wrong(model, *data["test"]), wrong(model, *data["train"])
        out |= proportion(f"err_{key}", flags[key][0], scale=100)
        out[f"train_err_{key}"] = 100.0 * float(flags[key][1].mean())
        out[f"gap_{key}"] = out[f"err_{key}"] - out[f"train_err_{key}"]
        histories[arm.name] = res.history
        ctx.save_model(arm.name, model)
    # the same test images under both arms: the gain's noise is that of the per-image differences
    out |= paired("err_gain", 100.0 * flags["none"][0], 100.0 * flags["dropout"][0])
    out["gap_ratio"], out["gap_ratio_se"] = gap_ratio(flags["dropout"], flags["none"])
    title = (f"dropout changes test error by {-out['err_gain']:+.2f} pp (+- {2 * out['err_gain_se']:.2f}); "
             f"its gap is {out['gap_ratio']:.2f}x (+- {2 * out['gap_ratio_se']:.2f}) the gap without")
    ctx.savefig(figures.error_curves(histories, cfg.n_train, cfg.batch_size, title), "test_error_vs_epochs",
                caption=("Test (solid) and training (dashed) classification error against epochs for the same MLP "
                         "without and with dropout (+ max-norm), on the same batches. The claim predicts the dropout "
                         "run ends with the lower test error and a gap between its two lines at most 0.66x the gap "
                         "without (Table 2's 1.06% vs 1.60%)."))
    return out


def gap_ratio(dropout: tuple, none: tuple) -> tuple[float, float]:
    """(gap_d / gap_n, its standard error) from each arm's (test, train) per-image error flags. The delta method for
    a ratio R = A / B of paired means: Var R ~ Var(A - R B) / B^2, summed over the test and the training images
    (independent sets; within each, the two arms share the images)."""
    (te_d, tr_d), (te_n, tr_n) = ([np.asarray(f, dtype=float) for f in arm] for arm in (dropout, none))
    gap_d, gap_n = te_d.mean() - tr_d.mean(), te_n.mean() - tr_n.mean()
    if gap_n <= 0:
        return math.inf, 0.0  # no gap without dropout: there is nothing to shrink
    r = gap_d / gap_n
    var = np.var(te_d - r * te_n, ddof=1) / len(te_d) + np.var(tr_d - r * tr_n, ddof=1) / len(tr_d)
    return float(r), float(math.sqrt(var) / gap_n)
