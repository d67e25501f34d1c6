"""Calibration of predicted probabilities, and how often rows break the spec's rules.

``ExpectedCalibrationError`` follows the classification metrics' signature
(``y_true, proba, classes, positive``); ``ConstraintViolationRate`` takes a frame of rows and
the rule expressions of ``synthloop.tools.constraints``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from synthloop.errors import DataError, SpecError
from synthloop.evals.base import Metric
from synthloop.tools.constraints import violation_rate


class ExpectedCalibrationError(Metric):
    """Expected calibration error of the positive class's probability: 0 is perfectly calibrated.

    Predicted probabilities for ``positive`` are put in ``n_bins`` equal-width bins over
    [0, 1]; in each bin the gap between the mean predicted probability and the observed share
    of positives is weighted by the bin's share of rows, and the gaps are summed. An ECE of
    0.03 means predictions are off by about 3 percentage points on average; a model trained on
    synthetic rows whose class balance differs from the real one typically shows a large ECE
    even when its ranking (AUC) is good. With few rows per bin the estimate is biased upward,
    so compare ECEs computed on the same rows and bins.
    """

    name: ClassVar[str] = "ece"
    goal: ClassVar[str] = "minimize"

    @classmethod
    def compute(cls, y_true, proba, classes, positive, n_bins: int = 10, **_) -> float:
        if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise SpecError(f"The 'n_bins' parameter of {cls.__name__} must be an integer >= 1. "
                            f"Got {n_bins!r} instead.")
        y = np.asarray(y_true).astype(str) == str(positive)
        proba = np.asarray(proba, dtype=float)
        if proba.ndim != 2 or proba.shape[0] != len(y) or proba.shape[1] != len(classes):
            raise DataError(
                f"proba must have one row per label and one column per class ({len(y)} x "
                f"{len(classes)}); got shape {proba.shape}."
            )
        if len(y) == 0:
            return float("nan")
        p = proba[:, [str(c) for c in classes].index(str(positive))]
        bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
        count = np.bincount(bins, minlength=n_bins)
        gap = np.abs(np.bincount(bins, weights=p, minlength=n_bins)
                     - np.bincount(bins, weights=y.astype(float), minlength=n_bins))
        # sum over bins of (n_b / n) * |mean p - mean y| == sum |sum p - sum y| / n
        return float(gap[count > 0].sum() / len(y))


class ConstraintViolationRate(Metric):
    """Share of rows that break at least one rule: 0 means every row satisfies the spec.

    Rules are the spec's row rules (``price > 50 if category == "Electronics"``), evaluated by
    ``synthloop.tools.constraints``; rows with a null in a rule's column pass it, as in
    validation. Measured on the final synthetic rows it shows what the validator let through
    (should be 0); on raw generator output it shows how much the LLM needed policing.
    ``compute_breakdown`` gives the share of rows each rule fails. An empty frame gives NaN.
    """

    name: ClassVar[str] = "constraint_violation_rate"
    goal: ClassVar[str] = "minimize"

    @classmethod
    def compute(cls, rows: pd.DataFrame, rules: list[str]) -> float:
        if len(rows) == 0:
            return float("nan")
        ok, _ = violation_rate(list(rules), rows)
        return float(1.0 - ok.mean())

    @classmethod
    def compute_breakdown(cls, rows: pd.DataFrame, rules: list[str]) -> dict[str, float]:
        if len(rows) == 0:
            return {rule: float("nan") for rule in rules}
        _, counts = violation_rate(list(rules), rows)
        return {rule: n / len(rows) for rule, n in counts.items()}


CALIBRATION_METRICS = {m.name: m for m in (ExpectedCalibrationError, ConstraintViolationRate)}
