"""Curation and blending of validated rows.

Curation follows the CLLM paper's idea: keep synthetic rows the model finds plausible for
their label. A row is dropped when the current model's confidence in its label is below a low
percentile of the out-of-fold confidence of *real* training rows of that label: less plausible
than almost every real row of its class. Blending sets weights and caps the synthetic share.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthloop.data import TableSchema


def confidence_floors(y: np.ndarray, oof_proba: np.ndarray, classes: list[str],
                      percentile: float) -> dict[str, float]:
    floors = {}
    for j, c in enumerate(classes):
        conf = oof_proba[np.asarray(y) == c, j]
        floors[c] = float(np.percentile(conf, percentile)) if len(conf) and percentile > 0 else 0.0
    return floors


def region_confidence_floors(train: pd.DataFrame, oof_proba: np.ndarray, schema: TableSchema,
                             rules: list[str], percentile: float,
                             min_support: int = 5) -> dict[str, dict[str, float]]:
    """Per region rule and label: the percentile of the out-of-fold confidence of the real
    training rows of that label *inside the region* (labels with fewer than ``min_support``
    such rows are left out and fall back to the class-wide floor).

    Rows written for an error region sit where the model is wrong or unsure, by design; held to
    the class-wide floor, the counter-examples the loop asks for there look implausible to the
    very model they are meant to correct and most of them are dropped.
    """
    from synthloop.tools.constraints import evaluate_region

    if percentile <= 0:
        return {}
    y = train[schema.target].astype(str).to_numpy()
    out: dict[str, dict[str, float]] = {}
    for rule in dict.fromkeys(rules):
        inside = np.asarray(evaluate_region(rule, train), dtype=bool)
        per_label = {}
        for j, c in enumerate(schema.classes):
            conf = oof_proba[inside & (y == c), j]
            if len(conf) >= min_support:
                per_label[c] = float(np.percentile(conf, percentile))
        if per_label:
            out[rule] = per_label
    return out


def curate(batch: pd.DataFrame, proba: np.ndarray, schema: TableSchema,
           floors: dict[str, float],
           region_floors: dict[str, dict[str, float]] | None = None,
           ) -> tuple[np.ndarray, np.ndarray]:
    """(keep mask, confidence of each row in its own label).

    A row's floor is its class's floor, or, for a row written for a region listed in
    ``region_floors`` (its ``_sl_region``), the lower of that and its label's floor inside the
    region."""
    labels = batch[schema.target].astype(str).to_numpy()
    idx = np.array([schema.classes.index(lab) for lab in labels])
    conf = proba[np.arange(len(batch)), idx] if len(batch) else np.zeros(0)
    floor = np.array([floors.get(lab, 0.0) for lab in labels])
    if region_floors and "_sl_region" in batch.columns:
        for i, (rule, lab) in enumerate(zip(batch["_sl_region"].astype(str), labels)):
            local = region_floors.get(rule, {}).get(lab)
            if local is not None:
                floor[i] = min(floor[i], local)
    return conf >= floor, conf


def share_room(n_real: int, n_synthetic_before: int, max_share: float) -> int:
    """How many more synthetic rows fit under ``budget.max_synthetic_share``."""
    return int(np.floor(max_share * n_real / (1 - max_share))) - n_synthetic_before


def blend_refusal(room: int) -> str:
    """Why ``blend_cap`` kept no row of a batch, given the ``share_room`` left before it."""
    if room <= 0:
        return "the synthetic-share cap is reached"
    return ("the class balance is reached: the batch's classes already have their share of "
            "synthetic rows (blend.balance)")


def blend_cap(batch: pd.DataFrame, confidence: np.ndarray, schema: TableSchema,
              n_real: int, class_counts: dict[str, int], n_synthetic_before: int,
              synthetic_counts: dict[str, int], max_share: float, balance: bool) -> np.ndarray:
    """Mask of rows that fit under the synthetic-share cap and the class balance.

    With ``balance``, synthetic rows of a class fill the gap to the majority class; a class
    with no gap (the majority, e.g. counter-examples written for it) may have at most as many
    synthetic rows as the other classes have on average, so synthetic rows never add to the
    imbalance. Rows are taken most confident first, so a cut keeps the most plausible ones.
    """
    cap_total = share_room(n_real, n_synthetic_before, max_share)
    majority = max(class_counts.values()) if class_counts else 0
    keep = np.zeros(len(batch), bool)
    labels = batch[schema.target].astype(str).to_numpy()
    syn = {c: synthetic_counts.get(c, 0) for c in schema.classes}
    gap = {c: majority - class_counts.get(c, 0) - syn[c] for c in schema.classes}
    short = {c for c, g in gap.items() if g > 0}
    order = np.argsort(-confidence, kind="stable")

    def admissible(lab: str) -> bool:
        if not balance:
            return True
        if lab in short:
            return gap[lab] > 0
        others = [syn[c] for c in schema.classes if c != lab]
        if not others:
            return False
        if short:  # counter-examples: at most the other classes' mean
            return syn.get(lab, 0) < sum(others) / len(others)
        return syn.get(lab, 0) <= min(others)  # balanced real data: classes take turns

    taken = 0
    # first the classes short of the majority, then (repeatedly) whatever is admissible
    for phase in ("short", "rest"):
        progress = True
        while progress and taken < cap_total:
            progress = False
            for i in order:
                lab = labels[i]
                if taken >= cap_total:
                    break
                if keep[i] or (phase == "short" and lab not in short) or not admissible(lab):
                    continue
                keep[i] = True
                taken += 1
                gap[lab] = gap.get(lab, 0) - 1
                syn[lab] = syn.get(lab, 0) + 1
                progress = True
    return keep


def training_frame(real: pd.DataFrame, synthetic: pd.DataFrame | None, schema: TableSchema,
                   weight: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Real rows at weight 1 and synthetic rows at ``weight``; a synthetic row a teacher
    labelled (``curation.teacher``) counts once per class, weighted by its probability."""
    from synthloop.tools.teacher import expand_soft

    cols = [c.name for c in schema.columns] + [schema.target]
    if synthetic is None or synthetic.empty:
        return real[cols], np.ones(len(real))
    syn, w_syn = expand_soft(synthetic, schema, weight)
    both = pd.concat([real[cols], syn[cols]], ignore_index=True)
    return both, np.concatenate([np.ones(len(real)), w_syn])
