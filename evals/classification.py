"""Classification metrics on real data: the loop's primary metric and the report's figures.

One class per metric (SDMetrics style): ``name``, ``goal``, ``min_value``, ``max_value`` and
``compute(y_true, proba, classes, positive, **params)``. ``y_true`` holds class labels (str),
``proba`` is an (n, k) array whose columns follow ``classes``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn import metrics as skm

from synthloop.evals.base import Metric


class ClassificationMetric(Metric):
    needs_threshold: ClassVar[bool] = False

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **params) -> float:
        raise NotImplementedError


def _positive_scores(proba, classes, positive) -> np.ndarray:
    return np.asarray(proba)[:, list(classes).index(positive)]


def predict_labels(proba, classes, positive, threshold: float = 0.5) -> np.ndarray:
    proba = np.asarray(proba)
    classes = np.asarray(classes, dtype=object)
    if len(classes) == 2:
        pos = list(classes).index(positive)
        neg = 1 - pos
        return np.where(proba[:, pos] >= threshold, classes[pos], classes[neg])
    return classes[np.argmax(proba, axis=1)]


class F1(ClassificationMetric):
    name = "f1"
    needs_threshold = True

    @classmethod
    def compute(cls, y_true, proba, classes, positive, threshold=0.5, **_):
        pred = predict_labels(proba, classes, positive, threshold)
        return float(skm.f1_score(np.asarray(y_true) == positive, pred == positive,
                                  zero_division=0))


class BalancedAccuracy(ClassificationMetric):
    name = "balanced_accuracy"
    needs_threshold = True

    @classmethod
    def compute(cls, y_true, proba, classes, positive, threshold=0.5, **_):
        pred = predict_labels(proba, classes, positive, threshold)
        return float(skm.balanced_accuracy_score(np.asarray(y_true, dtype=object), pred))


class MacroF1(ClassificationMetric):
    name = "macro_f1"
    needs_threshold = True

    @classmethod
    def compute(cls, y_true, proba, classes, positive, threshold=0.5, **_):
        pred = predict_labels(proba, classes, positive, threshold).astype(str)
        return macro_f1(np.asarray(y_true).astype(str), pred)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean F1 over the labels in either array: scikit-learn's ``f1_score(average=
    'macro', zero_division=0)``, in numpy (a bootstrap calls it thousands of times)."""
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    t, p = codes[:len(y_true)], codes[len(y_true):]
    k = len(labels)
    tp = np.bincount(t[t == p], minlength=k)
    denom = np.bincount(t, minlength=k) + np.bincount(p, minlength=k)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1.mean()) if k else 0.0


class PRAUC(ClassificationMetric):
    name = "pr_auc"

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **_):
        y = np.asarray(y_true) == positive
        if not y.any():
            return 0.0
        return float(skm.average_precision_score(y, _positive_scores(proba, classes, positive)))


class ROCAUC(ClassificationMetric):
    name = "roc_auc"

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **_):
        y = np.asarray(y_true) == positive
        if y.all() or not y.any():
            return 0.5
        return float(skm.roc_auc_score(y, _positive_scores(proba, classes, positive)))


class RecallAtPrecision(ClassificationMetric):
    name = "recall_at_precision"

    @classmethod
    def compute(cls, y_true, proba, classes, positive, precision=0.5, **_):
        y = np.asarray(y_true) == positive
        if not y.any():
            return 0.0
        p, r, _ = skm.precision_recall_curve(y, _positive_scores(proba, classes, positive))
        ok = p >= precision
        return float(r[ok].max()) if ok.any() else 0.0


class Recall(ClassificationMetric):
    name = "recall"
    needs_threshold = True

    @classmethod
    def compute(cls, y_true, proba, classes, positive, threshold=0.5, **_):
        pred = predict_labels(proba, classes, positive, threshold)
        y = np.asarray(y_true) == positive
        return float((pred[y] == positive).mean()) if y.any() else 0.0


PRIMARY_METRICS: dict[str, type[ClassificationMetric]] = {
    m.name: m for m in (F1, BalancedAccuracy, MacroF1, PRAUC, ROCAUC, RecallAtPrecision)
}
ALL_METRICS = {**PRIMARY_METRICS, Recall.name: Recall}


def score_all(y_true, proba, classes, positive, threshold=0.5, precision=0.5) -> dict[str, float]:
    """Every classification metric, for reports."""
    return {
        name: round(m.compute(y_true, proba, classes, positive, threshold=threshold,
                              precision=precision), 6)
        for name, m in ALL_METRICS.items()
    }
