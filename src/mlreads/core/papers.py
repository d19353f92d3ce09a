"""The reading list, in its order: one entry per experiment-id prefix, with the paper and where to read it.

The report's index, `docs/claims.md` and the README's results table list claims in this order (the reading list's five
main papers, then the footnote's classics). An id prefix that is not here sorts last, under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    prefix: str  # the experiment-id prefix: "mamba" for "mamba/selective-copying"
    title: str  # as a reader would cite it
    links: tuple[tuple[str, str], ...]  # (label, URL): arXiv first where the paper is on arXiv


READING_LIST: tuple[Paper, ...] = (
    Paper("gpt", "Vaswani et al. 2017, Attention Is All You Need (a GPT-2-style decoder)",
          (("arXiv 1706.03762", "https://arxiv.org/abs/1706.03762"),)),
    Paper("circuits", "Elhage et al. 2021, A Mathematical Framework for Transformer Circuits; Olsson et al. 2022, "
          "In-context Learning and Induction Heads",
          (("transformer-circuits.pub", "https://transformer-circuits.pub/2021/framework/index.html"),
           ("arXiv 2209.11895", "https://arxiv.org/abs/2209.11895"))),
    Paper("superposition", "Elhage et al. 2022, Toy Models of Superposition",
          (("arXiv 2209.10652", "https://arxiv.org/abs/2209.10652"),)),
    Paper("s4", "Gu et al. 2020-2022: HiPPO, LSSL, S4, S4D",
          (("S4, arXiv 2111.00396", "https://arxiv.org/abs/2111.00396"),
           ("HiPPO, arXiv 2008.07669", "https://arxiv.org/abs/2008.07669"),
           ("LSSL, arXiv 2110.13985", "https://arxiv.org/abs/2110.13985"),
           ("S4D, arXiv 2206.11893", "https://arxiv.org/abs/2206.11893"))),
    Paper("mamba", "Gu & Dao 2023, Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
          (("arXiv 2312.00752", "https://arxiv.org/abs/2312.00752"),)),
    Paper("dl-review", "LeCun, Bengio & Hinton 2015, Deep Learning (Nature 521)",
          (("doi 10.1038/nature14539", "https://doi.org/10.1038/nature14539"),)),
    Paper("dropout", "Srivastava et al. 2014, Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
          (("JMLR 15", "https://jmlr.org/papers/v15/srivastava14a.html"),
           ("arXiv 1207.0580 (the 2012 preprint)", "https://arxiv.org/abs/1207.0580"))),
    Paper("adam", "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization",
          (("arXiv 1412.6980", "https://arxiv.org/abs/1412.6980"),)),
    Paper("sophia", "Liu et al. 2023, Sophia: A Scalable Stochastic Second-order Optimizer",
          (("arXiv 2305.14342", "https://arxiv.org/abs/2305.14342"),)),
    Paper("alexnet", "Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep CNNs",
          (("NeurIPS 2012", "https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks"),)),
    Paper("resnet", "He et al. 2016, Deep Residual Learning for Image Recognition",
          (("arXiv 1512.03385", "https://arxiv.org/abs/1512.03385"),)),
    Paper("gan", "Goodfellow et al. 2014, Generative Adversarial Nets",
          (("arXiv 1406.2661", "https://arxiv.org/abs/1406.2661"),)),
    Paper("ddpm", "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models",
          (("arXiv 2006.11239", "https://arxiv.org/abs/2006.11239"),)),
    Paper("attention", "Bahdanau, Cho & Bengio 2015, Neural Machine Translation by Jointly Learning to Align and "
          "Translate; attention as kernel regression", (("arXiv 1409.0473", "https://arxiv.org/abs/1409.0473"),)),
    Paper("transformer", "Vaswani et al. 2017, Attention Is All You Need (the encoder-decoder)",
          (("arXiv 1706.03762", "https://arxiv.org/abs/1706.03762"),)),
)  # fmt: skip

BY_PREFIX = {p.prefix: p for p in READING_LIST}


def paper_of(exp_id: str) -> Paper | None:
    return BY_PREFIX.get(exp_id.split("/", 1)[0])


def reading_key(exp_id: str, position: int = 0) -> tuple:
    """Sort key: reading-list position of the id's paper, then `position` (declaration order), then the id."""
    prefix = exp_id.split("/", 1)[0]
    order = [p.prefix for p in READING_LIST]
    return (order.index(prefix) if prefix in order else len(order), prefix, position, exp_id)
