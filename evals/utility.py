"""Utility: does synthetic data make a model better on *real* data?

``HoldoutLift`` compares two sets of predicted probabilities on the real holdout (baseline
model vs the final model) with a paired bootstrap confidence interval. ``TSTR`` and ``TRTR``
fit a model and score it on real test rows; they only need a factory returning an object with
``fit`` and ``predict_proba``, so they work with ``synthloop.tools.training.TabularModel``
(labels read from the frame) and with plain scikit-learn classifiers (labels passed as
``y_train``) alike. Metric names are those of ``synthloop.evals.classification.PRIMARY_METRICS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from synthloop.errors import DataError, SpecError
from synthloop.evals.base import Metric
from synthloop.evals.classification import PRIMARY_METRICS, ClassificationMetric


def _metric(owner: str, name: str) -> type[ClassificationMetric]:
    if name in PRIMARY_METRICS:
        return PRIMARY_METRICS[name]
    from synthloop.tools.registry import default_registry  # a metric a plugin registered

    reg = default_registry()
    if not reg.has("metric", name):
        raise SpecError(f"The 'metric' parameter of {owner} must be one of "
                        f"{set(reg.names('metric'))}. Got {name!r} instead.")
    return reg.get("metric", name)


class HoldoutLift(Metric):
    """Gain of the primary metric on the real holdout, final model minus baseline, with a CI.

    Both models are scored on the same real holdout rows; ``lift`` is final minus baseline
    (e.g. +0.05 F1). The confidence interval comes from a paired, class-stratified bootstrap:
    the same resampled rows score both models, so the interval reflects the uncertainty of the
    *difference*, which is much narrower than that of either score. Read it as: a ``ci_low``
    above 0 means the gain is unlikely to be holdout noise; an interval straddling 0 means the
    holdout cannot tell the two models apart. ``goal``, ``min_value`` and ``max_value`` refer
    to ``lift`` for metrics bounded in [0, 1].
    """

    name: ClassVar[str] = "holdout_lift"
    min_value: ClassVar[float] = -1.0

    @classmethod
    def compute(cls, y_true, proba_baseline, proba_final, classes, positive, metric: str,
                n_boot: int = 1000, seed: int = 0, confidence: float = 0.95,
                **params) -> dict[str, float]:
        m = _metric(cls.__name__, metric)
        if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
            raise SpecError(f"The 'n_boot' parameter of {cls.__name__} must be an integer >= 1. "
                            f"Got {n_boot!r} instead.")
        if not 0.0 < confidence < 1.0:
            raise SpecError(f"The 'confidence' parameter of {cls.__name__} must be in (0, 1). "
                            f"Got {confidence!r} instead.")
        y = np.asarray(y_true).astype(str)
        base = np.asarray(proba_baseline, dtype=float)
        final = np.asarray(proba_final, dtype=float)
        for label, p in (("proba_baseline", base), ("proba_final", final)):
            if p.shape != (len(y), len(classes)):
                raise DataError(f"{label} must have shape ({len(y)}, {len(classes)}) (rows x "
                                f"classes); got {p.shape}.")
        if len(y) == 0:
            raise DataError("HoldoutLift needs at least one holdout row.")

        def score(idx, p):
            return m.compute(y[idx], p[idx], classes, positive, **params)

        everything = np.arange(len(y))
        base_score, final_score = score(everything, base), score(everything, final)
        diffs = _paired_diffs(y, score, base, final, n_boot, seed)
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(diffs, [tail, 1.0 - tail])
        return {
            "baseline": float(base_score),
            "final": float(final_score),
            "lift": float(final_score - base_score),
            "ci_low": float(low),
            "ci_high": float(high),
            "confidence": float(confidence),
        }


def _paired_diffs(y: np.ndarray, score: Callable, base: np.ndarray, final: np.ndarray,
                  n_boot: int, seed: int) -> np.ndarray:
    """``score(final) - score(base)`` on ``n_boot`` class-stratified resamples of the rows."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    diffs = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        diffs[b] = score(idx, final) - score(idx, base)
    return diffs


def difference_standard_error(y_true, proba_a, proba_b, classes, positive, metric: str,
                              n_boot: int = 200, seed: int = 0, **params) -> float:
    """Standard error of ``metric(b) - metric(a)`` on the same rows (paired bootstrap).

    The loop's accept rule uses it as the tolerance of ``blend.max_validation_drop: auto``:
    a batch is refused only when the validation metric drops by more than the noise of the
    split itself would move it.
    """
    m = _metric("difference_standard_error", metric)
    y = np.asarray(y_true).astype(str)
    a, b = np.asarray(proba_a, dtype=float), np.asarray(proba_b, dtype=float)

    def score(idx, p):
        return m.compute(y[idx], p[idx], classes, positive, **params)

    return float(np.std(_paired_diffs(y, score, a, b, n_boot, seed), ddof=1))


def _aligned_proba(proba, model, classes: list[str]) -> np.ndarray:
    """Columns in ``classes`` order. Models whose columns follow their own ``classes_`` (sklearn)
    are realigned; models that already return one column per class (TabularModel) are not."""
    proba = np.asarray(proba, dtype=float)
    fitted = [str(c) for c in getattr(model, "classes_", [])]
    if fitted and proba.shape[1] == len(fitted) and fitted != classes:
        unknown = [c for c in fitted if c not in classes]
        if unknown:
            raise DataError(f"The model learned class(es) {unknown} that are not in {classes}.")
        out = np.zeros((len(proba), len(classes)))
        for j, c in enumerate(fitted):
            out[:, classes.index(c)] = proba[:, j]
        return out
    if proba.shape[1] != len(classes):
        raise DataError(f"predict_proba returned {proba.shape[1]} column(s) for "
                        f"{len(classes)} classes and the model has no usable classes_.")
    return proba


class _TrainTestReal(Metric):

    @classmethod
    def compute(cls, train, test, model_factory: Callable[[], Any], classes, positive,
                metric: str = "roc_auc", target: str | None = None, y_train=None, y_test=None,
                **params) -> float:
        """Fit ``model_factory()`` on ``train``, score it on the real ``test`` rows.

        With ``y_train`` the model is fit as ``fit(train, y_train)`` (scikit-learn); without
        it as ``fit(train)``, the frame carrying its labels (TabularModel). ``y_test``
        defaults to ``test[target]``; ``target`` defaults to ``model.schema.target`` when the
        model has a schema. ``params`` go to the metric (``threshold``, ``precision``).
        """
        m = _metric(cls.__name__, metric)
        classes = [str(c) for c in classes]
        model = model_factory()
        target = target or getattr(getattr(model, "schema", None), "target", None)
        if y_test is None:
            if target is None or not isinstance(test, pd.DataFrame) or target not in test.columns:
                raise DataError(f"{cls.__name__} needs y_test, or test rows holding the "
                                f"target column (target={target!r}).")
            y_test = test[target]
        if len(train) == 0 or len(test) == 0:
            raise DataError(f"{cls.__name__} needs training and test rows; got {len(train)} "
                            f"and {len(test)}.")
        if y_train is None:
            model.fit(train)
        else:
            model.fit(train, np.asarray(y_train).astype(str))
        proba = _aligned_proba(model.predict_proba(test), model, classes)
        return float(m.compute(np.asarray(y_test).astype(str), proba, classes, str(positive),
                               **params))


class TSTR(_TrainTestReal):
    """Train on synthetic, test on real: the primary metric of a model fit on synthetic rows only.

    Pass the synthetic rows as ``train`` and real rows (the holdout, or a real test split) as
    ``test``. It measures whether the synthetic data alone carries the signal a model needs
    to predict real outcomes. Read it against ``TRTR`` on the same test rows and model: a
    TSTR close to TRTR means the synthetic data is a usable substitute for the real training
    data; a large gap means it misses or distorts the relation between features and label.
    """

    name = "tstr"


class TRTR(_TrainTestReal):
    """Train on real, test on real: the reference score that TSTR is compared with.

    Pass the real training rows as ``train`` and the same real test rows as for ``TSTR``.
    It is the score the model reaches on the real data it has, so TSTR / TRTR is the share of
    real-data utility the synthetic rows recover (about 1.0 is a faithful substitute; above
    1.0 happens when synthetic rows are more numerous or better balanced than scarce real
    ones).
    """

    name = "trtr"


UTILITY_METRICS: dict[str, type] = {m.name: m for m in (HoldoutLift, TSTR, TRTR)}
