"""dropout/mnist (Table 2, Fig 4 and a Fig 10 point): dropout lowers MNIST test error and the train-test gap."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlreads.core.fields import in_range, positive
from mlreads.core.train import TrainConfig
from mlreads.dropout.exp_common import Arm, error_pct, mnist_tensors, train_classifier
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
    epochs: int = positive(50)
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

    Metrics (percent): err_<arm> (full test set), train_err_<arm> (the training subset), gap_<arm> = test - train,
    err_gain = err_none - err_dropout, gap_ratio = gap_dropout / gap_none.
    """
    from dataclasses import replace

    from mlreads.dropout import figures

    data = mnist_tensors(cfg.n_train, cfg.n_test)
    train = replace(cfg.train, steps=cfg.steps, eval_every=max(1, cfg.steps // 10))
    out, histories = {}, {}
    for arm in arms(cfg):
        model, res = train_classifier(arm, data, train, cfg.batch_size, ctx, cfg.eval_n)
        key = "none" if arm.name == "no-dropout" else "dropout"
        out[f"err_{key}"] = error_pct(model, *data["test"])
        out[f"train_err_{key}"] = error_pct(model, *data["train"])
        out[f"gap_{key}"] = out[f"err_{key}"] - out[f"train_err_{key}"]
        histories[arm.name] = res.history
        ctx.save_model(arm.name, model)
    out["err_gain"] = out["err_none"] - out["err_dropout"]
    out["gap_ratio"] = out["gap_dropout"] / max(out["gap_none"], 1e-9)
    ctx.savefig(figures.error_curves(histories, cfg.n_train, cfg.batch_size), "test_error_vs_epochs",
                caption=("Test (solid) and training (dashed) classification error against epochs for the same MLP "
                         "without and with dropout (+ max-norm), on the same batches. The claim predicts the dropout "
                         "run ends with the lower test error and the smaller gap between its two lines; here dropout "
                         f"changes the test error by {-out['err_gain']:+.2f} points and its gap is "
                         f"{out['gap_ratio']:.2f}x the gap without."))
    return out
