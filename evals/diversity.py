"""Diversity of generated text and of embedded rows: is the generator repeating itself?

Self-BLEU is implemented here (no nltk): sentence BLEU with clipped n-gram precision, the
closest-reference-length brevity penalty, uniform weights, and Chen & Cherry's method 1
smoothing (a zero n-gram match count becomes ``epsilon``). Each text is scored against all the
others as references, in time linear in the total number of n-grams.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import ClassVar

import numpy as np

from synthloop.errors import DataError, SpecError
from synthloop.evals.base import Metric

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _TOKEN.findall(str(text).lower())


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


class DiversityMetric(Metric):
    goal: ClassVar[str] = "minimize"


class SelfBLEU(DiversityMetric):
    """Mean BLEU of each text against all the other texts: 1.0 means the texts repeat each other.

    Every text is taken in turn as the hypothesis and the rest of the set as its references,
    and the sentence BLEU-``order`` scores (``order`` in 2, 3, 4; uniform weights, method-1
    smoothing) are averaged (Zhu et al., 2018, "Texygen"). Identical texts score 1.0;
    paraphrases sharing many phrases score high; texts with no words in common score near 0.
    Lower is more diverse, but compare sets of similar size and length only: more texts give
    each hypothesis more references and push Self-BLEU up. ``compute_breakdown`` returns
    BLEU-2, -3 and -4 at once.
    """

    name = "self_bleu"
    orders: ClassVar[tuple[int, ...]] = (2, 3, 4)

    @classmethod
    def compute(cls, texts: list[str], order: int = 4, epsilon: float = 0.1) -> float:
        if order not in cls.orders:
            raise SpecError(f"The 'order' parameter of {cls.__name__} must be one of "
                            f"{set(cls.orders)}. Got {order!r} instead.")
        return cls.compute_breakdown(texts, epsilon=epsilon, max_order=order)[f"self_bleu_{order}"]

    @classmethod
    def compute_breakdown(cls, texts: list[str], epsilon: float = 0.1,
                          max_order: int = 4) -> dict[str, float]:
        if max_order not in cls.orders:
            raise SpecError(f"The 'max_order' parameter of {cls.__name__} must be one of "
                            f"{set(cls.orders)}. Got {max_order!r} instead.")
        tokens = [tokenize(t) for t in texts]
        if len(tokens) < 2:
            raise DataError(f"Self-BLEU needs at least two texts; got {len(tokens)}.")
        orders = range(1, max_order + 1)
        counts = {n: [_ngrams(t, n) for t in tokens] for n in orders}
        ref_max = {n: _top_two(counts[n]) for n in orders}
        ref_len = _closest_other_lengths(np.array([len(t) for t in tokens]))
        scores = {k: [] for k in cls.orders if k <= max_order}
        for i, toks in enumerate(tokens):
            log_p, unigram_matches = [], 0
            for n in orders:
                hyp = counts[n][i]
                matched = sum(min(c, _max_excluding(ref_max[n][g], i)) for g, c in hyp.items())
                total = max(1, sum(hyp.values()))
                unigram_matches = matched if n == 1 else unigram_matches
                log_p.append(math.log((matched if matched else epsilon) / total))
            c = len(toks)
            if c == 0 or unigram_matches == 0:
                # no tokens, or not a single unigram in common: BLEU is 0 by definition
                for k in scores:
                    scores[k].append(0.0)
                continue
            bp = 1.0 if c > ref_len[i] else math.exp(1.0 - ref_len[i] / c)
            for k in scores:
                scores[k].append(bp * math.exp(sum(log_p[:k]) / k))
        return {f"self_bleu_{k}": float(np.mean(v)) for k, v in scores.items()}


def _top_two(counters: list[Counter]) -> dict[tuple, list]:
    """n-gram -> [best count, index of the text holding it, second best count]."""
    top: dict[tuple, list] = {}
    for i, counter in enumerate(counters):
        for g, c in counter.items():
            entry = top.get(g)
            if entry is None:
                top[g] = [c, i, 0]
            elif c > entry[0]:
                top[g] = [c, i, entry[0]]
            elif c > entry[2]:
                entry[2] = c
    return top


def _max_excluding(entry: list, i: int) -> int:
    return entry[2] if entry[1] == i else entry[0]


def _closest_other_lengths(lengths: np.ndarray) -> np.ndarray:
    """For each text, the length of the closest-length other text (ties go to the shorter)."""
    uniq, cnt = np.unique(lengths, return_counts=True)
    out = np.empty(len(lengths), dtype=float)
    for i, c in enumerate(lengths):
        j = int(np.searchsorted(uniq, c))
        if cnt[j] >= 2:
            out[i] = c
            continue
        cands = [uniq[k] for k in (j - 1, j + 1) if 0 <= k < len(uniq)]
        out[i] = min(cands, key=lambda r: (abs(r - c), r))
    return out


class MeanPairwiseCosine(DiversityMetric):
    """Mean cosine similarity over all pairs of embedding vectors: lower is more diverse.

    Pass one vector per generated item (a sentence embedding of a text, or an encoded row).
    1.0 means every vector points the same way (the generator says the same thing over and
    over); 0 means, on average, unrelated directions. Sentence-embedding models rarely give
    negative similarities, so in practice the scale is 0 to 1, and values are only comparable
    between sets embedded by the same model. Computed in O(n * d) from the sum of the
    normalised vectors.
    """

    name = "mean_pairwise_cosine"
    min_value = -1.0

    @classmethod
    def compute(cls, embeddings) -> float:
        E = np.asarray(embeddings, dtype=float)
        if E.ndim != 2 or len(E) < 2:
            raise DataError(f"Need a 2-D array of at least two embeddings; got shape {E.shape}.")
        norms = np.linalg.norm(E, axis=1)
        if (norms == 0).any():
            raise DataError(f"{int((norms == 0).sum())} embedding(s) are all zeros; "
                            "cosine similarity is undefined for them.")
        U = E / norms[:, None]
        s = U.sum(axis=0)
        n = len(U)
        return float((s @ s - n) / (n * (n - 1)))


DIVERSITY_METRICS: dict[str, type[DiversityMetric]] = {
    m.name: m for m in (SelfBLEU, MeanPairwiseCosine)
}
