"""The GPT package's figures: the char-level LM's training curves against the unigram entropy. The caption, which
quotes the measured losses, stays with the experiment."""

from __future__ import annotations

from mlreads.core.figures import loss_curves


def training_curves_figure(history: list[dict], unigram: float):
    """Batch-mean training loss, and training and validation loss on fixed windows, against steps."""
    return loss_curves({"gpt": history}, eval_keys=("train_loss", "val_loss"), ylabel="loss (nats / char)",
                       title="gpt/char-lm: training curves", refs={f"unigram entropy {unigram:.2f}": unigram})
