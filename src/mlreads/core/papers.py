"""The reading list, in its order: one entry per experiment-id prefix, with its package, the paper and where to read it.

This is the one map from an experiment-id prefix to the package under `src/mlreads/` that holds its code: several
prefixes share a package (`gan/...` and `ddpm/...` live in `generative`, `adam/...` and `sophia/...` in `optim`),
and ids never change (the results ledger keys on them). The registry imports the `experiments` module of every
package named here, and an experiment's run function lives in the file `exp_file(id)` names.

It is also the one place for paper metadata: each section's title and links, and what each experiment cites
(`citation`), so an experiment declares no title of its own.

The report's index, `docs/claims.md` and the README's results table list claims in this order (the reading list's five
main papers, then the footnote's classics). An id prefix that is not here sorts last, under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    prefix: str  # the experiment-id prefix: "mamba" for "mamba/selective-copying"
    package: str  # the package under src/mlreads/ that holds the code: "generative" for "gan"
    title: str  # the heading of its section in the report and docs/claims.md
    links: tuple[tuple[str, str], ...]  # (label, URL): arXiv first where the paper is on arXiv
    cite: str = ""  # the `paper` of its experiments (result.json, `mlreads list`) unless one names a SOURCES key


READING_LIST: tuple[Paper, ...] = (
    Paper("gpt", "gpt", "Vaswani et al. 2017, Attention Is All You Need (a GPT-2-style decoder)",
          (("arXiv 1706.03762", "https://arxiv.org/abs/1706.03762"),),
          cite="Vaswani et al. 2017 (arXiv:1706.03762); Radford et al. 2019 (GPT-2)"),
    Paper("circuits", "circuits", "Elhage et al. 2021, A Mathematical Framework for Transformer Circuits; Olsson et "
          "al. 2022, In-context Learning and Induction Heads",
          (("transformer-circuits.pub", "https://transformer-circuits.pub/2021/framework/index.html"),
           ("arXiv 2209.11895", "https://arxiv.org/abs/2209.11895")),
          cite="Elhage et al. 2021, A Mathematical Framework for Transformer Circuits"),
    Paper("superposition", "superposition", "Elhage et al. 2022, Toy Models of Superposition",
          (("arXiv 2209.10652", "https://arxiv.org/abs/2209.10652"),),
          cite="Elhage et al. 2022, Toy Models of Superposition"),
    Paper("s4", "s4", "Gu et al. 2020-2022: HiPPO, LSSL, S4, S4D",
          (("S4, arXiv 2111.00396", "https://arxiv.org/abs/2111.00396"),
           ("HiPPO, arXiv 2008.07669", "https://arxiv.org/abs/2008.07669"),
           ("LSSL, arXiv 2110.13985", "https://arxiv.org/abs/2110.13985"),
           ("S4D, arXiv 2206.11893", "https://arxiv.org/abs/2206.11893"))),  # each experiment names its source
    Paper("mamba", "mamba", "Gu & Dao 2023, Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
          (("arXiv 2312.00752", "https://arxiv.org/abs/2312.00752"),),
          cite="Gu & Dao 2023, Mamba (arXiv 2312.00752)"),
    Paper("dl-review", "dl_review", "LeCun, Bengio & Hinton 2015, Deep Learning (Nature 521)",
          (("doi 10.1038/nature14539", "https://doi.org/10.1038/nature14539"),),
          cite="LeCun, Bengio & Hinton 2015, Deep learning (Nature 521:436-444)"),
    Paper("dropout", "dropout", "Srivastava et al. 2014, Dropout: A Simple Way to Prevent Neural Networks from "
          "Overfitting",
          (("JMLR 15", "https://jmlr.org/papers/v15/srivastava14a.html"),
           ("arXiv 1207.0580 (the 2012 preprint)", "https://arxiv.org/abs/1207.0580")),
          cite="Srivastava et al. 2014, Dropout: A Simple Way to Prevent Neural Networks from Overfitting (JMLR 15)"),
    Paper("adam", "optim", "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization",
          (("arXiv 1412.6980", "https://arxiv.org/abs/1412.6980"),),
          cite="Kingma & Ba 2015, Adam: A Method for Stochastic Optimization (ICLR, arXiv:1412.6980)"),
    Paper("sophia", "optim", "Liu et al. 2023, Sophia: A Scalable Stochastic Second-order Optimizer",
          (("arXiv 2305.14342", "https://arxiv.org/abs/2305.14342"),),
          cite="Liu, Li, Hall, Liang & Ma 2023, Sophia: A Scalable Stochastic Second-order Optimizer "
               "(arXiv:2305.14342)"),
    Paper("alexnet", "vision", "Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep CNNs",
          (("NeurIPS 2012",
            "https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks"),),
          cite="Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep CNNs (NIPS)"),
    Paper("resnet", "vision", "He et al. 2016, Deep Residual Learning for Image Recognition",
          (("arXiv 1512.03385", "https://arxiv.org/abs/1512.03385"),),
          cite="He, Zhang, Ren & Sun 2016, Deep Residual Learning for Image Recognition (arXiv 1512.03385)"),
    Paper("gan", "generative", "Goodfellow et al. 2014, Generative Adversarial Nets",
          (("arXiv 1406.2661", "https://arxiv.org/abs/1406.2661"),),
          cite="Goodfellow et al. 2014, Generative Adversarial Nets (NIPS, arXiv 1406.2661)"),
    Paper("ddpm", "generative", "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models",
          (("arXiv 2006.11239", "https://arxiv.org/abs/2006.11239"),),
          cite="Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models (arXiv 2006.11239)"),
    Paper("attention", "attention", "Bahdanau, Cho & Bengio 2015, Neural Machine Translation by Jointly Learning to "
          "Align and Translate; attention as kernel regression",
          (("arXiv 1409.0473", "https://arxiv.org/abs/1409.0473"),),
          cite="Bahdanau, Cho & Bengio 2015, Neural Machine Translation by Jointly Learning to Align and Translate "
               "(arXiv:1409.0473)"),
    Paper("transformer", "transformer", "Vaswani et al. 2017, Attention Is All You Need (the encoder-decoder)",
          (("arXiv 1706.03762", "https://arxiv.org/abs/1706.03762"),),
          cite="Vaswani et al. 2017, Attention Is All You Need (arXiv:1706.03762)"),
)  # fmt: skip

# The sources of claims that are not (only) their prefix's paper's: an experiment names one with `source=KEY`.
SOURCES: dict[str, str] = {
    "olsson2022": "Olsson et al. 2022, In-context Learning and Induction Heads (arXiv:2209.11895); Elhage et al. 2021, "
                  "A Mathematical Framework for Transformer Circuits",
    "hippo": "Gu et al. 2020, HiPPO (arXiv 2008.07669); LSSL (arXiv 2110.13985) for the random A",
    "lssl": "Gu et al. 2021, LSSL (arXiv 2110.13985) §5.4; S4 (arXiv 2111.00396)",
    "s4d": "Gu et al. 2022, S4D (arXiv 2206.11893); S4 (arXiv 2111.00396)",
    "reddi2018": "Reddi, Kale & Kumar 2018, On the Convergence of Adam and Beyond (ICLR), against Kingma & Ba Thm 4.1",
    "nadaraya-watson": "Nadaraya 1964; Watson 1964; d2l §11.2, attention pooling by similarity",
}  # fmt: skip

BY_PREFIX = {p.prefix: p for p in READING_LIST}
PACKAGES: tuple[str, ...] = tuple(dict.fromkeys(p.package for p in READING_LIST))  # in reading order, each once


def paper_of(exp_id: str) -> Paper | None:
    return BY_PREFIX.get(exp_id.split("/", 1)[0])


def citation(exp_id: str, source: str = "") -> str:
    """What an experiment cites (its `paper`): SOURCES[source] when it names one, else its prefix's paper's `cite`
    (its title when it has none). KeyError for an unknown source or a prefix not on the reading list."""
    if source:
        return SOURCES[source]
    paper = BY_PREFIX[exp_id.split("/", 1)[0]]
    return paper.cite or paper.title


def reading_key(exp_id: str, position: int = 0) -> tuple:
    """Sort key: reading-list position of the id's paper, then `position` (declaration order), then the id."""
    prefix = exp_id.split("/", 1)[0]
    order = [p.prefix for p in READING_LIST]
    return (order.index(prefix) if prefix in order else len(order), prefix, position, exp_id)


def exp_file(exp_id: str) -> str:
    """The file, relative to src/mlreads/, that holds the run function of `exp_id` (the layout's naming rule).

    `P/S` lives in `<package>/exp_<S>.py` when P is the package's own name (dl-review is dl_review's), else in
    `<package>/exp_<P>_<S>.py`, with every '-' written '_': mamba/selective-copying -> mamba/exp_selective_copying.py,
    gan/mnist -> generative/exp_gan_mnist.py. KeyError when the prefix is not on the reading list."""
    prefix, slug = exp_id.split("/", 1)
    paper = BY_PREFIX[prefix]
    stem = slug if paper.package == prefix.replace("-", "_") else f"{prefix}_{slug}"
    return f"{paper.package}/exp_{stem.replace('-', '_')}.py"
