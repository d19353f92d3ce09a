"""The reading list, in its order: one entry per experiment-id prefix, with its package, the paper and where to read it.

This is the one map from an experiment-id prefix to the package under `src/mlreads/` that holds its code: several
prefixes share a package (`gan/...` and `ddpm/...` live in `generative`, `adam/...` and `sophia/...` in `optim`),
and ids never change (the results ledger keys on them). The registry imports the `experiments` module of every
package named here, and an experiment's run function lives in the file `exp_file(id)` names.

It is also the one place for paper metadata: each section's title and links, and what each experiment cites
(`citation`), so an experiment declares no title of its own; where in the paper each claim is (`WHERE`: a section, a
figure, a table); which files implement the paper (`code_files`); and its walkthrough notebook (`walkthrough`). The
claim pages of the report and `mlreads show` print all of them.

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
    code: tuple[str, ...] = ()  # the files that implement it, relative to src/mlreads/: the model file first

    @property
    def walkthrough(self) -> str:
        """Its walkthrough, relative to the repository root: a notebook that runs top to bottom on a CPU."""
        return f"notebooks/{self.prefix}.ipynb"


READING_LIST: tuple[Paper, ...] = (
    Paper("gpt", "gpt", "Vaswani et al. 2017, Attention Is All You Need (a GPT-2-style decoder)",
          (("arXiv 1706.03762", "https://arxiv.org/abs/1706.03762"),),
          cite="Vaswani et al. 2017 (arXiv:1706.03762); Radford et al. 2019 (GPT-2)",
          code=("gpt/model.py", "gpt/attention.py")),
    Paper("circuits", "circuits", "Elhage et al. 2021, A Mathematical Framework for Transformer Circuits; Olsson et "
          "al. 2022, In-context Learning and Induction Heads",
          (("transformer-circuits.pub", "https://transformer-circuits.pub/2021/framework/index.html"),
           ("arXiv 2209.11895 (Olsson et al., induction heads)", "https://arxiv.org/abs/2209.11895")),
          cite="Elhage et al. 2021, A Mathematical Framework for Transformer Circuits",
          code=("circuits/model.py", "circuits/qk_ov.py", "circuits/detectors.py")),
    Paper("superposition", "superposition", "Elhage et al. 2022, Toy Models of Superposition",
          (("arXiv 2209.10652", "https://arxiv.org/abs/2209.10652"),),
          cite="Elhage et al. 2022, Toy Models of Superposition",
          code=("superposition/model.py", "superposition/measures.py")),
    Paper("s4", "s4", "Gu et al. 2020-2022: HiPPO, LSSL, S4, S4D",
          (("S4, arXiv 2111.00396", "https://arxiv.org/abs/2111.00396"),
           ("HiPPO, arXiv 2008.07669", "https://arxiv.org/abs/2008.07669"),
           ("LSSL, arXiv 2110.13985", "https://arxiv.org/abs/2110.13985"),
           ("S4D, arXiv 2206.11893", "https://arxiv.org/abs/2206.11893")),  # each experiment names its source
          code=("s4/model.py", "s4/kernels.py", "s4/hippo.py")),
    Paper("mamba", "mamba", "Gu & Dao 2023, Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
          (("arXiv 2312.00752", "https://arxiv.org/abs/2312.00752"),),
          cite="Gu & Dao 2023, Mamba (arXiv 2312.00752)",
          code=("mamba/model.py", "mamba/scan.py")),
    Paper("dl-review", "dl_review", "LeCun, Bengio & Hinton 2015, Deep Learning (Nature 521)",
          (("doi 10.1038/nature14539", "https://doi.org/10.1038/nature14539"),),
          cite="LeCun, Bengio & Hinton 2015, Deep learning (Nature 521:436-444)",
          code=("dl_review/model.py",)),
    Paper("dropout", "dropout", "Srivastava et al. 2014, Dropout: A Simple Way to Prevent Neural Networks from "
          "Overfitting",
          (("JMLR 15", "https://jmlr.org/papers/v15/srivastava14a.html"),
           ("arXiv 1207.0580 (Hinton et al. 2012, the precursor)", "https://arxiv.org/abs/1207.0580")),
          cite="Srivastava et al. 2014, Dropout: A Simple Way to Prevent Neural Networks from Overfitting (JMLR 15)",
          code=("dropout/model.py",)),
    Paper("adam", "optim", "Kingma & Ba 2015, Adam: A Method for Stochastic Optimization",
          (("arXiv 1412.6980", "https://arxiv.org/abs/1412.6980"),),
          cite="Kingma & Ba 2015, Adam: A Method for Stochastic Optimization (ICLR, arXiv:1412.6980)",
          code=("optim/adam.py",)),
    Paper("sophia", "optim", "Liu et al. 2023, Sophia: A Scalable Stochastic Second-order Optimizer",
          (("arXiv 2305.14342", "https://arxiv.org/abs/2305.14342"),),
          cite="Liu, Li, Hall, Liang & Ma 2023, Sophia: A Scalable Stochastic Second-order Optimizer "
               "(arXiv:2305.14342)",
          code=("optim/sophia.py",)),
    Paper("alexnet", "vision", "Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep CNNs",
          (("NeurIPS 2012",
            "https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks"),),
          cite="Krizhevsky, Sutskever & Hinton 2012, ImageNet Classification with Deep CNNs (NIPS)",
          code=("vision/alexnet.py",)),
    Paper("resnet", "vision", "He et al. 2016, Deep Residual Learning for Image Recognition",
          (("arXiv 1512.03385", "https://arxiv.org/abs/1512.03385"),),
          cite="He, Zhang, Ren & Sun 2016, Deep Residual Learning for Image Recognition (arXiv 1512.03385)",
          code=("vision/resnet.py",)),
    Paper("gan", "generative", "Goodfellow et al. 2014, Generative Adversarial Nets",
          (("arXiv 1406.2661", "https://arxiv.org/abs/1406.2661"),),
          cite="Goodfellow et al. 2014, Generative Adversarial Nets (NIPS, arXiv 1406.2661)",
          code=("generative/gan.py",)),
    Paper("ddpm", "generative", "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models",
          (("arXiv 2006.11239", "https://arxiv.org/abs/2006.11239"),),
          cite="Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models (arXiv 2006.11239)",
          code=("generative/ddpm.py",)),
    Paper("attention", "attention", "Bahdanau, Cho & Bengio 2015, Neural Machine Translation by Jointly Learning to "
          "Align and Translate; attention as kernel regression",
          (("arXiv 1409.0473", "https://arxiv.org/abs/1409.0473"),),
          cite="Bahdanau, Cho & Bengio 2015, Neural Machine Translation by Jointly Learning to Align and Translate "
               "(arXiv:1409.0473)",
          code=("attention/rnn.py",)),
    Paper("transformer", "transformer", "Vaswani et al. 2017, Attention Is All You Need (the encoder-decoder)",
          (("arXiv 1706.03762", "https://arxiv.org/abs/1706.03762"),),
          cite="Vaswani et al. 2017, Attention Is All You Need (arXiv:1706.03762)",
          code=("transformer/model.py",)),
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

# The files of a source's claims where they are not its prefix's paper's.
SOURCE_CODE: dict[str, tuple[str, ...]] = {
    "olsson2022": ("circuits/model.py", "circuits/detectors.py", "circuits/qk_ov.py"),
    "hippo": ("s4/hippo.py",),
    "lssl": ("s4/model.py", "s4/hippo.py"),
    "nadaraya-watson": ("attention/kernel_regression.py",),
}

# Where in the paper each claim is, as its claim, paper value or notes name it (the paper links are whole papers).
WHERE: dict[str, str] = {
    "circuits/zero-layer-bigram": "section 'Zero-Layer Transformers'",
    "circuits/copying-heads": "section 'Copying / Primarily Positive Eigenvalues'",
    "superposition/phase-diagram": "Section 4",
    "superposition/dimensionality": "Section 6",
    "superposition/abs-computation": "Section 8",
    "s4/hippo-reconstruction": "HiPPO Figs 2-3; LSSL §5.4",
    "s4/mnist-init": "LSSL §5.4",
    "mamba/selective-copying": "Section 3.5.1, Table 1",
    "mamba/induction-extrapolation": "Table 2, Appendix E",
    "mamba/lm-vs-transformer": "Table 3, Figure 4",
    "mamba/discretization-cost": "Sections 3.3.2 and 3.5",
    "dl-review/separability": "Fig 1a",
    "dl-review/local-minima": "p. 438",
    "dropout/mnist": "Table 2, Fig 4",
    "dropout/mc-vs-weight-scaling": "Section 7.5, Fig 11",
    "dropout/sparsity": "Section 7.2, Fig 8",
    "adam/logreg-mnist": "Section 6.1, Fig 1 (left)",
    "adam/mlp-mnist": "Section 6.2, Fig 2a",
    "adam/bias-correction": "Sections 3 and 6.4, Fig 4",
    "adam/regret-counterexample": "Theorem 4.1; Reddi et al. 2018, Section 3",
    "sophia/toy-2d": "Fig 2",
    "sophia/char-lm": "Abstract, Fig 4",
    "alexnet/relu-vs-tanh": "Section 3.1, Fig 1",
    "alexnet/feature-neighbours": "Section 6.1, Fig 4",
    "resnet/degradation": "Figs 1, 6 and 7, Table 6",
    "gan/optimal-discriminator": "Proposition 1, Theorem 1, Fig 1",
    "gan/mnist": "Table 1, Fig 2",
    "ddpm/forward-process": "Eq 4, Section 4",
    "ddpm/mnist": "Algorithms 1-2, Section 3.2, Table 1",
    "ddpm/objective-ablation": "Table 2",
    "attention/rnnsearch-vs-rnnencdec": "Table 1, Figs 2-3",
    "attention/kernel-regression": "d2l §11.2",
    "transformer/seq2seq": "Table 2",
    "transformer/ablations": "Table 3, rows D and E",
    "transformer/scaled-dot-product": "Section 3.2.1, footnote 4",
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


def code_files(exp_id: str, source: str = "") -> tuple[str, ...]:
    """The files, relative to src/mlreads/, that implement what `exp_id` tests (its source's where it names one);
    () for a prefix not on the reading list."""
    paper = paper_of(exp_id)
    return SOURCE_CODE.get(source) or (paper.code if paper else ())


def walkthrough(exp_id: str) -> str | None:
    """The walkthrough notebook of `exp_id`'s paper, relative to the repository root; None off the reading list."""
    paper = paper_of(exp_id)
    return paper.walkthrough if paper else None
