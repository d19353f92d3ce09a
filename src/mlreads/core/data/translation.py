"""A seeded synthetic translation task ("pseudo-French"), and user-supplied parallel text.

Bahdanau et al. 2015 (arXiv:1409.0473) translate English to French; what their Fig 2 and Fig 3 need from the data
is (1) sentences up to length 50 and beyond, so that a fixed-size context vector must compress a lot, (2) a
vocabulary large enough that the sentence cannot be memorised as a pattern, and (3) a local word-order change
between the languages: French puts most adjectives after the noun ("the European Economic Area" -> "la zone
économique européenne"), so the alignment is mostly monotonic with local inversions.

The generator below has all three, and a known ground-truth alignment:

- Source words come in classes: determiners (F), adjectives (A), nouns (N), verbs (V) and connectives (C).
  A sentence is a chain of clauses `NP V NP` joined by connectives; a noun phrase is `F A* N` with 0-2 adjectives.
- The target uses its own vocabulary: a fixed random bijection maps each source word to one target word.
- Noun phrases are reordered the French way: `F A1 A2 N` -> `F' N' A2' A1'`; everything else keeps its order.
- `alignment[j]` is the source position that target position j translates (a permutation: no fertility).
- Options (each off by default, which leaves the task above unchanged, draw for draw): Zipfian word frequencies within
  each class (`zipf`), log-uniform source lengths (`lengths`), target synonyms (`synonym_probs`: each source word
  has several target words, one drawn per occurrence, so a sentence has many correct translations), and two of
  German's harder rules: grammatical gender (`genders`: every noun has one, lexically, and the target determiners and
  adjectives take their noun's gender, the verb its subject's, as agreement does) and verb-final subordinate clauses
  (`verb_final`: a clause after a connective puts its verb after its object, `C NP V NP` -> `C' NP' NP' V'`).

Token ids: 0 PAD, 1 BOS, 2 EOS, 3 UNK, then words. Sentences are returned without BOS/EOS; `pad_batch` adds EOS
to sources and BOS/EOS to targets.

A user file (`--set data.path=FILE`) holds one tab-separated `source<TAB>target` pair per line, whitespace tokenised;
it has no alignment.

What experiments need around a task: `make_task(cfg)` (the synthetic pair, or the user's file), `batch_fn` (fresh
pairs for `fit` at every step) and `test_bins` (held-out pairs per source-length bin). Greedy translation and BLEU are
in `mlreads.core.nn.decoding`.

Deviations: a synthetic language pair instead of WMT'14 English-French (no parallel corpus is available offline).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from mlreads.core.errors import DataMissing
from mlreads.core.fields import SEED_MAX, filepath, in_range, nonnegative, positive

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
CLASSES = ("F", "A", "N", "V", "C")


@dataclass(frozen=True)
class TranslationConfig:
    path: str | None = filepath(None)  # a tab-separated parallel text file; None = the synthetic generator
    task: Literal["pseudo-french", "copy"] = "pseudo-french"  # copy: the target is the source itself
    n_determiners: int = positive(6)
    n_adjectives: int = positive(60)
    n_nouns: int = positive(120)
    n_verbs: int = positive(60)
    n_connectives: int = positive(10)
    max_adjectives: int = nonnegative(2)  # per noun phrase
    # the vocabulary bijection (the "language"), fixed across runs of an experiment
    language_seed: int = nonnegative(0, le=SEED_MAX)
    min_len: int = positive(5)
    max_len: int = positive(50)
    # Word frequencies within each class: 0 = uniform; s > 0 = Zipfian, the k-th word of a class drawn with
    # probability proportional to 1 / k^s, as words are in real text.
    zipf: float = nonnegative(0.0)
    # Source lengths: "uniform" on [min_len, max_len], or "log-uniform" (P(L) proportional to log((L + 1) / L)),
    # which gives short sentences more weight, as a corpus does.
    lengths: Literal["uniform", "log-uniform"] = "uniform"
    # Target synonyms: each source word has len(synonym_probs) target words, one drawn per occurrence with these
    # probabilities, so references are multi-modal as in real translation. (1.0,) = one target word per source word.
    synonym_probs: tuple[float, ...] = in_range((1.0,), 0.0, 1.0, lo_open=True, hi_open=False)  # and they sum to 1
    # Agreement: each noun has one of `genders` genders (drawn once per language); a target determiner or adjective
    # takes the gender of its noun phrase's noun, a verb that of its subject (the noun before it): one target form per
    # (word, gender). 1 = no agreement.
    genders: int = positive(1)
    verb_final: bool = False  # clauses after a connective put the verb after the object (German subordinate clauses)

    def __post_init__(self):
        if not self.synonym_probs or any(q <= 0 for q in self.synonym_probs) or abs(sum(self.synonym_probs) - 1) > 1e-6:
            raise ValueError(f"synonym_probs must be positive and sum to 1, got {self.synonym_probs}")
        if self.genders > 1 and len(self.synonym_probs) > 1:
            raise ValueError("genders > 1 and target synonyms cannot be combined (one target form per word and gender)")
        if self.task == "copy" and (self.genders > 1 or self.verb_final):
            raise ValueError("the copy task has no agreement and no reordering: leave genders=1, verb_final=False")


@dataclass
class Pair:
    src: list[int]
    tgt: list[int]
    alignment: list[int] = field(default_factory=list)  # alignment[j]: the source position of target word j


class Vocabularies:
    """What both translation sources share: their two vocabularies (`src_itos`, `tgt_itos`) and decoding."""

    src_itos: list[str]
    tgt_itos: list[str]

    @property
    def src_vocab(self) -> int:
        return len(self.src_itos)

    @property
    def tgt_vocab(self) -> int:
        return len(self.tgt_itos)

    def decode(self, ids, side: str = "tgt") -> str:
        itos = self.tgt_itos if side == "tgt" else self.src_itos
        return " ".join(itos[i] for i in ids if i not in (PAD, BOS, EOS))


class SyntheticTranslation(Vocabularies):
    """The pseudo-French generator. `sample(n, gen, min_len, max_len)` draws sentence pairs with source lengths
    uniform in [min_len, max_len]."""

    def __init__(self, cfg: TranslationConfig):
        sizes = dict(zip(CLASSES, (cfg.n_determiners, cfg.n_adjectives, cfg.n_nouns, cfg.n_verbs,
                                   cfg.n_connectives)))  # fmt: skip
        self.cfg = cfg
        self.words: dict[str, list[int]] = {}
        self.src_itos = list(SPECIALS)
        for cls in CLASSES:
            self.words[cls] = list(range(len(self.src_itos), len(self.src_itos) + sizes[cls]))
            self.src_itos += [f"{cls.lower()}{i}" for i in range(sizes[cls])]
        n_words = len(self.src_itos) - len(SPECIALS)
        perm = torch.randperm(n_words, generator=torch.Generator().manual_seed(cfg.language_seed))
        if cfg.task == "copy":
            perm = torch.arange(n_words)
        self.to_tgt = {len(SPECIALS) + i: len(SPECIALS) + int(perm[i]) for i in range(n_words)}  # the bijection
        self.tgt_itos = list(SPECIALS) + [""] * n_words
        for s, t in self.to_tgt.items():
            self.tgt_itos[t] = self.src_itos[s] if cfg.task == "copy" else self.src_itos[s].upper()
        # Synonyms k = 1, 2, ... of a source word are further target words, named after the first with k primes.
        self.synonyms = {s: [t] for s, t in self.to_tgt.items()}
        for k in range(1, len(cfg.synonym_probs)):
            for s in self.to_tgt:
                self.synonyms[s].append(len(self.tgt_itos))
                self.tgt_itos.append(self.tgt_itos[self.to_tgt[s]] + "'" * k)
        self._synonym_cdf = torch.tensor(cfg.synonym_probs, dtype=torch.float64).cumsum(0)
        # Gendered forms of determiners, adjectives and verbs: form 0 is the word's own target word, form g > 0 a
        # further target word named after it ("A12-1"); nouns get their genders from a generator of their own, so
        # the draws above (and every sentence) are those of the task without agreement.
        self.gender: dict[int, int] = {}
        self.forms: dict[int, list[int]] = {}
        if cfg.genders > 1:
            g = torch.Generator().manual_seed(cfg.language_seed + 1)
            self.gender = dict(zip(self.words["N"], torch.randint(cfg.genders, (sizes["N"],), generator=g).tolist()))
            for s in (w for cls in ("F", "A", "V") for w in self.words[cls]):
                self.forms[s] = [self.to_tgt[s]] + list(range(len(self.tgt_itos), len(self.tgt_itos) + cfg.genders - 1))
                self.tgt_itos += [f"{self.tgt_itos[self.to_tgt[s]]}-{k}" for k in range(1, cfg.genders)]
        self.word_class = {w: cls for cls, ws in self.words.items() for w in ws}
        # Zipfian frequencies within each class, as cumulative weights for random.choices (zipf = 0: uniform)
        self._cum_weights = {cls: list(itertools.accumulate(1.0 / k**cfg.zipf for k in range(1, len(ws) + 1)))
                             for cls, ws in self.words.items()}  # fmt: skip

    def _draws(self, gen: torch.Generator) -> tuple[Callable[[int], int], Callable[[str], int]]:
        """(an integer below n, a word of a class) drawn from `gen`. Uniform words are drawn one torch call at a time,
        as they always were; Zipfian ones by a Python RNG seeded from `gen` once per sentence (about 10x faster)."""
        if self.cfg.zipf == 0:
            def below(n: int) -> int:
                return int(torch.randint(n, (1,), generator=gen))

            return below, lambda cls: self.words[cls][below(len(self.words[cls]))]
        rng = random.Random(int(torch.randint(2**62, (1,), generator=gen)))
        return rng.randrange, lambda cls: rng.choices(self.words[cls], cum_weights=self._cum_weights[cls])[0]

    def token_probs(self, pair: Pair) -> list[float]:
        """The probability of each reference token (and the final EOS) under the generator given the source: the
        chosen synonym's probability (1.0 with one target word per source word). Their maximum over synonyms,
        `max(synonym_probs)`, is the best any model can do per token, which bounds token accuracy."""
        if len(self.cfg.synonym_probs) == 1:  # a deterministic translation (with or without agreement)
            return [1.0] * (len(pair.tgt) + 1)
        return [self.cfg.synonym_probs[self.synonyms[pair.src[a]].index(t)] if pair.src[a] in self.synonyms else 1.0
                for a, t in zip(pair.alignment, pair.tgt, strict=True)] + [1.0]  # fmt: skip

    def sentence(self, length: int, gen: torch.Generator) -> list[int]:
        """A source sentence of exactly `length` words: clauses `NP V NP` joined by connectives, cut to length
        (a cut never splits a noun phrase's adjectives from its noun: the last phrase is shortened instead)."""
        below, pick = self._draws(gen)

        def noun_phrase() -> list[int]:
            n_adj = below(self.cfg.max_adjectives + 1)
            return [pick("F")] + [pick("A") for _ in range(n_adj)] + [pick("N")]

        words: list[int] = []
        while len(words) < length:
            if words:
                words.append(pick("C"))
            words += noun_phrase() + [pick("V")] + noun_phrase()
        words = words[:length]
        if self.word_class[words[-1]] in ("F", "A"):  # a cut noun phrase: end it with a noun
            words[-1] = pick("N")
        return words

    def translate(self, src: list[int], gen: torch.Generator | None = None) -> Pair:
        """The target sentence and its alignment: word-by-word, with `F A1 .. Ak N` -> `F' N' Ak' .. A1'`. With
        synonyms, each target word is drawn from its source word's synonyms with `gen`."""
        order: list[int] = []
        i = 0
        while i < len(src) and self.cfg.task != "copy":
            if self.word_class.get(src[i]) == "A":
                j = i
                while j < len(src) and self.word_class.get(src[j]) == "A":
                    j += 1
                if j < len(src) and self.word_class.get(src[j]) == "N":  # adjectives then their noun
                    order += [j] + list(range(j - 1, i - 1, -1))
                    i = j + 1
                    continue
            order.append(i)
            i += 1
        if self.cfg.task == "copy":
            order = list(range(len(src)))
        if self.cfg.verb_final:
            order = self._verb_final(src, order)
        if self.cfg.genders > 1:
            agree = self._agreement(src)
            tgt = [self.forms[w][agree[p]] if (w := src[p]) in self.forms else self.to_tgt.get(w, UNK) for p in order]
            return Pair(src=list(src), tgt=tgt, alignment=order)
        if len(self.cfg.synonym_probs) == 1:
            return Pair(src=list(src), tgt=[self.to_tgt.get(src[p], UNK) for p in order], alignment=order)
        if gen is None:
            raise ValueError("translate: a task with synonyms draws them from a generator; pass gen=")
        pick = torch.searchsorted(self._synonym_cdf, torch.rand(len(order), generator=gen, dtype=torch.float64))
        pick = pick.clamp(max=len(self.cfg.synonym_probs) - 1).tolist()
        tgt = [self.synonyms[src[p]][k] if src[p] in self.synonyms else UNK for p, k in zip(order, pick, strict=True)]
        return Pair(src=list(src), tgt=tgt, alignment=order)

    def _verb_final(self, src: list[int], order: list[int]) -> list[int]:
        """`order` with the verb of every clause after a connective moved to the end of its clause (noun phrases never
        span a connective, so the clauses of `order` are its runs between connectives)."""
        out: list[int] = []
        clause: list[int] = []
        subordinate = False
        for p in order + [-1]:  # -1: the end of the sentence closes the last clause
            if p >= 0 and self.word_class.get(src[p]) != "C":
                clause.append(p)
                continue
            if subordinate:
                clause = [q for q in clause if self.word_class.get(src[q]) != "V"] + \
                         [q for q in clause if self.word_class.get(src[q]) == "V"]  # fmt: skip
            out += clause + ([p] if p >= 0 else [])
            clause, subordinate = [], True
        return out

    def _agreement(self, src: list[int]) -> list[int]:
        """The gender each source position's target form takes: a determiner's or adjective's is that of the next noun
        (its noun phrase's), a verb's that of the noun before it (its subject's); 0 where there is none."""
        nxt, prev = [0] * len(src), [0] * len(src)
        g = 0
        for i in range(len(src) - 1, -1, -1):
            g = self.gender.get(src[i], g)
            nxt[i] = g
        g = 0
        for i, w in enumerate(src):
            prev[i] = g
            g = self.gender.get(w, g)
        return [prev[i] if self.word_class.get(w) == "V" else nxt[i] for i, w in enumerate(src)]

    def sample(self, n: int, gen: torch.Generator, min_len: int | None = None, max_len: int | None = None) -> list[Pair]:
        lo = self.cfg.min_len if min_len is None else min_len
        hi = self.cfg.max_len if max_len is None else max_len
        if self.cfg.lengths == "uniform":
            lengths = torch.randint(lo, hi + 1, (n,), generator=gen).tolist()
        else:  # log-uniform: exp(U(log lo, log(hi + 1))), floored, so P(L) is proportional to log((L + 1) / L)
            u = torch.rand(n, generator=gen, dtype=torch.float64)
            lengths = torch.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo))).floor().clamp(lo, hi).long().tolist()
        return [self.translate(self.sentence(L, gen), gen) for L in lengths]



class ParallelText(Vocabularies):
    """A user-supplied tab-separated parallel file, whitespace-tokenised, with its own vocabularies. The last
    `test_frac` of the pairs is held out (`train`, `test`)."""

    def __init__(self, path: str | Path, test_frac: float = 0.1):
        p = Path(path).expanduser()
        if not p.is_file():
            raise DataMissing(f"data.path={path}: no such file (give a tab-separated parallel text file)")
        pairs = []
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            if line.count("\t") != 1:
                raise DataMissing(f"data.path={path}: line {n} is not one 'source<TAB>target' pair")
            s, t = (x.split() for x in line.split("\t"))
            pairs.append((s, t))
        if len(pairs) < 10:
            raise DataMissing(f"data.path={path}: {len(pairs)} pairs; at least 10 are needed")
        self.src_itos = list(SPECIALS) + sorted({w for s, _ in pairs for w in s})
        self.tgt_itos = list(SPECIALS) + sorted({w for _, t in pairs for w in t})
        s_stoi = {w: i for i, w in enumerate(self.src_itos)}
        t_stoi = {w: i for i, w in enumerate(self.tgt_itos)}
        self.pairs = [Pair([s_stoi[w] for w in s], [t_stoi[w] for w in t]) for s, t in pairs]
        n_test = max(1, int(len(self.pairs) * test_frac))
        self.train, self.test = self.pairs[:-n_test], self.pairs[-n_test:]

    def sample(self, n: int, gen: torch.Generator, min_len: int | None = None, max_len: int | None = None) -> list[Pair]:
        """n training pairs drawn uniformly (the length arguments are ignored: user data keeps its lengths)."""
        return [self.train[i] for i in torch.randint(len(self.train), (n,), generator=gen).tolist()]



def pad_batch(pairs: list[Pair]) -> tuple[Tensor, Tensor, Tensor]:
    """(src (B, S) with EOS, tgt_in (B, T) = BOS + target, tgt_out (B, T) = target + EOS), PAD-padded."""
    S = max(len(p.src) for p in pairs) + 1
    T = max(len(p.tgt) for p in pairs) + 1
    src = torch.full((len(pairs), S), PAD, dtype=torch.long)
    tgt_in = torch.full((len(pairs), T), PAD, dtype=torch.long)
    tgt_out = torch.full((len(pairs), T), PAD, dtype=torch.long)
    for b, p in enumerate(pairs):
        src[b, : len(p.src) + 1] = torch.tensor(p.src + [EOS])
        tgt_in[b, : len(p.tgt) + 1] = torch.tensor([BOS] + p.tgt)
        tgt_out[b, : len(p.tgt) + 1] = torch.tensor(p.tgt + [EOS])
    return src, tgt_in, tgt_out


# the task as experiments use it: a synthetic pair or user text, batches for fit, length-binned test sets

Task = SyntheticTranslation | ParallelText


def make_task(cfg: TranslationConfig) -> Task:
    return ParallelText(cfg.path) if cfg.path else SyntheticTranslation(cfg)


def batch_fn(task: Task, batch_size: int, min_len: int, max_len: int) -> Callable[[int, torch.Generator], tuple]:
    """`fit`'s batch_fn: fresh sentence pairs every step, drawn from fit's generator."""
    return lambda step, gen: pad_batch(task.sample(batch_size, gen, min_len, max_len))


def corpus_batch_fn(corpus: Sequence[Pair], batch_size: int) -> Callable[[int, torch.Generator], tuple]:
    """`fit`'s batch_fn over a fixed, finite training corpus (drawn once, as a real one is): pairs drawn uniformly
    with replacement from `corpus` with fit's generator."""
    return lambda step, gen: pad_batch([corpus[i] for i in torch.randint(len(corpus), (batch_size,), generator=gen)])


def length_bins(edges: Sequence[int]) -> list[tuple[int, int]]:
    """(5, 10, 20) -> [(5, 10), (11, 20)]: inclusive source-length bins from increasing edges."""
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"bin_edges={tuple(edges)}: give at least two increasing lengths")
    return [(edges[0], edges[1])] + [(a + 1, b) for a, b in zip(edges[1:], edges[2:])]


def test_bins(task: Task, bins: Sequence[tuple[int, int]], n_per_bin: int, gen: torch.Generator) -> dict[str, list[Pair]]:
    """Held-out pairs per source-length bin ("21-30": pairs with 21 <= length <= 30). For user data, the held-out
    pairs are sorted into the bins."""
    if isinstance(task, ParallelText):
        return {f"{lo}-{hi}": [p for p in task.test if lo <= len(p.src) <= hi] for lo, hi in bins}
    return {f"{lo}-{hi}": task.sample(n_per_bin, gen, lo, hi) for lo, hi in bins}
