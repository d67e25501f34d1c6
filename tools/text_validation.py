"""Validation of a batch of generated texts: form, duplicates, grounding and diversity.

In order, each generated text is checked for

1. form: at least ``min_words`` words, at most ``max_chars`` characters, mostly letters, and
   not stuck in a loop (a small model repeating one phrase: a word trigram 5 times, or 3 times
   in a text with few distinct trigrams);
2. duplicates: the same text (case, HTML and punctuation aside) as an earlier text of the batch
   or of an accepted synthetic batch;
3. the grounding gate (``synthloop.tools.text.grounding_check``): a text must be close enough
   to a real training text of its label (in domain) and must not be a near copy of any real
   text, train, validation or holdout (memorisation or leakage);
4. near duplicates of synthetic texts: a cosine of ``near_copy_similarity`` or more to an
   earlier text of the batch or an accepted synthetic text.

The batch as a whole is blocked when too many texts are malformed (``max_violation_rate``),
when more than ``max_ungrounded`` of its well-formed texts are ungrounded, or when its diversity
(Self-BLEU-4 and mean pairwise cosine of its well-formed texts, as written) has collapsed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthloop.tools.text import RealTexts, batch_diversity, grounding_check, normalize_text

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


@dataclass(frozen=True)
class TextGates:
    """The thresholds of a batch's checks (the spec's ``text`` and ``curation`` sections)."""

    min_words: int = 5
    max_chars: int = 600
    in_domain_similarity: float = 0.35
    near_copy_similarity: float = 0.95
    max_ungrounded: float = 0.02
    max_self_bleu: float = 0.5
    max_mean_cosine: float = 0.6
    max_violation_rate: float = 0.6


def malformed_reason(text: str, min_words: int, max_chars: int) -> str | None:
    """Why ``text`` is not a usable text, or None."""
    t = str(text).strip()
    words = _WORD.findall(t)
    if len(words) < min_words:
        return f"malformed: {len(words)} word(s), fewer than {min_words}"
    if len(t) > max_chars:
        return f"malformed: {len(t)} characters, more than {max_chars}"
    visible = [c for c in t if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if visible and letters / len(visible) < 0.6:
        return f"malformed: only {letters / len(visible):.0%} letters"
    lower = [w.lower() for w in words]
    if len(lower) >= 12:
        grams = Counter(zip(lower, lower[1:], lower[2:]))
        top, n = grams.most_common(1)[0]
        distinct = len(grams) / (len(lower) - 2)
        if n >= 5 or (n >= 3 and distinct < 0.75):
            return f"malformed: repeats '{' '.join(top)}' {n} times"
    return None


@dataclass
class TextBatchResult:
    valid: pd.DataFrame
    rejected: pd.DataFrame
    checks: dict[str, Any]
    blocked: str | None


def validate_texts(
    batch: pd.DataFrame,
    text_column: str,
    target: str,
    real: RealTexts,
    embed: Callable[[Sequence[str]], np.ndarray],
    previous_texts: Sequence[str] = (),
    gates: TextGates = TextGates(),
) -> TextBatchResult:
    """Split ``batch`` into valid and rejected texts (with ``_sl_reject`` reasons) and say
    whether the batch is blocked. Valid texts carry ``_sl_grounding`` (cosine to the nearest
    real text of their label) and ``_sl_nearest_real`` (the id of the nearest real text)."""
    n = len(batch)
    checks: dict[str, Any] = {"generated": n}
    if n == 0:
        checks.update(valid=0, violation_rate=0.0)
        empty = batch.copy()
        return TextBatchResult(empty, empty, checks, "the generator returned no text")
    df = batch.reset_index(drop=True).copy()
    texts = df[text_column].astype(str).tolist()
    labels = df[target].astype(str).tolist()
    reason: list[str | None] = [malformed_reason(t, gates.min_words, gates.max_chars)
                                for t in texts]
    n_malformed = sum(r is not None for r in reason)
    ok = [i for i in range(n) if reason[i] is None]

    # duplicates (normalised) of an earlier text of the batch or of accepted synthetic texts
    seen = {normalize_text(t) for t in previous_texts}
    n_dup = 0
    for i in ok:
        key = normalize_text(texts[i])
        if key in seen:
            reason[i] = "duplicate of a synthetic text"
            n_dup += 1
        seen.add(key)

    sims = np.full(n, np.nan)
    nearest = [""] * n
    if ok:
        E = embed([texts[i] for i in ok])
        div = batch_diversity([texts[i] for i in ok], E, max_self_bleu=gates.max_self_bleu,
                              max_mean_cosine=gates.max_mean_cosine)
        g = grounding_check([texts[i] for i in ok], [labels[i] for i in ok], E, real,
                            in_domain_min_similarity=gates.in_domain_similarity,
                            near_copy_max_similarity=gates.near_copy_similarity,
                            max_ungrounded=gates.max_ungrounded)
        for j, i in enumerate(ok):
            sims[i] = round(float(g.class_similarity[j]), 4)
            nearest[i] = g.nearest_id[j]
            if g.near_copy[j]:  # a copy of real data outranks every other reason
                reason[i] = f"near copy: {g.copy_reason[j]}"
            elif not g.grounded[j] and reason[i] is None:
                reason[i] = (f"ungrounded: cosine {g.class_similarity[j]:.3f} to the nearest "
                             f"real '{labels[i]}' text, under {gates.in_domain_similarity:g}")
        n_near_dup = _near_duplicates(ok, E, texts, reason, previous_texts, embed,
                                      gates.near_copy_similarity)
        grounding = g.summary()
        checks.update(
            ungrounded=int((~g.grounded).sum()), grounded_share=grounding["grounded_share"],
            ungrounded_share=grounding["ungrounded_share"], near_copies=int(g.near_copy.sum()),
            near_duplicates=n_near_dup, **div.summary(),
        )
        blocked = _blocked(g.blocked, g.ungrounded_share, div, gates)
    else:
        checks.update(ungrounded=0, grounded_share=None, ungrounded_share=None, near_copies=0,
                      near_duplicates=0, self_bleu=None, mean_cosine=None,
                      diversity_collapsed=False)
        blocked = None
    violation = n_malformed / n
    checks.update(malformed=n_malformed, duplicates=n_dup, violation_rate=round(violation, 4),
                  max_ungrounded=gates.max_ungrounded)
    if violation > gates.max_violation_rate:
        blocked = (f"{n_malformed} of {n} texts malformed (violation rate {violation:.2f} over "
                   f"{gates.max_violation_rate:.2f})")
    df["_sl_grounding"] = sims
    df["_sl_nearest_real"] = nearest
    keep = np.array([r is None for r in reason])
    valid = df.loc[keep].reset_index(drop=True)
    rejected = df.loc[~keep].assign(_sl_reject=[r for r in reason if r is not None])
    checks["valid"] = int(keep.sum())
    if blocked is None and valid.empty:
        blocked = "no text passed validation"
    return TextBatchResult(valid, rejected.reset_index(drop=True), checks, blocked)


def _blocked(grounding_blocked: bool, ungrounded_share: float, div, gates: TextGates) -> str | None:
    parts = []
    if grounding_blocked:
        parts.append(f"grounding: {ungrounded_share:.1%} of the well-formed texts ungrounded, "
                     f"over {gates.max_ungrounded:.1%}")
    if div.collapsed:
        parts.append(f"diversity collapsed: {div.reason}")
    return "; ".join(parts) or None


def _near_duplicates(ok: list[int], E: np.ndarray, texts: list[str], reason: list[str | None],
                     previous_texts: Sequence[str], embed, threshold: float) -> int:
    """Mark texts whose cosine to an earlier kept text of the batch, or to an accepted synthetic
    text, reaches ``threshold``; returns how many."""
    P = embed(list(previous_texts)) if len(previous_texts) else np.zeros((0, E.shape[1]))
    kept: list[int] = []  # rows of E of texts still valid
    count = 0
    for j, i in enumerate(ok):
        if reason[i] is not None:
            continue
        best = max([float(E[j] @ E[m]) for m in kept] + ([float((P @ E[j]).max())]
                                                         if len(P) else []), default=-1.0)
        if best >= threshold:
            reason[i] = f"near duplicate of a synthetic text (cosine {best:.3f})"
            count += 1
        else:
            kept.append(j)
    return count
