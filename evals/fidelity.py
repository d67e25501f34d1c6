"""Fidelity: how closely synthetic rows follow the real data's distribution.

Single-column shapes (KS and total-variation complements, the same definitions SDMetrics
uses), pairwise correlation similarity, and a classifier two-sample (detection) test. All
scores lie in [0, 1] and 1 is best. Column kinds come from a ``TableSchema`` when given
(float/int are numeric; category/bool are categorical; text is skipped), else from dtypes.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from synthloop.data import TableSchema
from synthloop.errors import DataError, SpecError
from synthloop.evals.base import Metric
from synthloop.evals.features import feature_matrices

_NULL = "<null>"


class FidelityMetric(Metric):
    """Similarity of synthetic to real data: 1 is indistinguishable."""


def _column_kinds(real: pd.DataFrame, synthetic: pd.DataFrame,
                  schema: TableSchema | None) -> dict[str, str]:
    """Column name -> 'numeric' | 'categorical', for columns both frames must hold."""
    if schema is not None:
        kinds = {c.name: ("numeric" if c.type in ("float", "int") else "categorical")
                 for c in schema.columns if c.type != "text"}
    else:
        kinds = {}
        for c in real.columns:
            s = real[c]
            numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
            kinds[c] = "numeric" if numeric else "categorical"
    for name, frame in (("real", real), ("synthetic", synthetic)):
        missing = [c for c in kinds if c not in frame.columns]
        if missing:
            raise DataError(f"The {name} rows lack column(s) {missing}.")
    return kinds


class KSComplement(FidelityMetric):
    """One minus the Kolmogorov-Smirnov statistic between a real and a synthetic numeric column.

    The KS statistic is the largest gap between the two empirical CDFs, so the complement is
    1.0 when the marginal distributions coincide and falls toward 0 as they separate (0 means
    the two samples do not overlap at all). It ignores missing values and looks at one column
    at a time: a perfect score says nothing about relations between columns.
    """

    name = "ks_complement"

    @classmethod
    def compute(cls, real, synthetic) -> float:
        r = pd.to_numeric(pd.Series(np.asarray(real)), errors="coerce").dropna().to_numpy(float)
        s = pd.to_numeric(pd.Series(np.asarray(synthetic)), errors="coerce").dropna().to_numpy(float)
        if len(r) == 0 or len(s) == 0:
            return float("nan") if len(r) == len(s) else 0.0
        return float(1.0 - ks_2samp(r, s).statistic)


class TVComplement(FidelityMetric):
    """One minus the total-variation distance between category frequencies of two columns.

    TV distance is half the sum of absolute differences of category shares (missing values
    count as a category of their own), i.e. the share of synthetic rows that would have to
    change category to match the real frequencies. 1.0 means identical frequencies; 0 means
    the two columns share no category at all.
    """

    name = "tv_complement"

    @classmethod
    def compute(cls, real, synthetic) -> float:
        r = pd.Series(np.asarray(real, dtype=object)).astype(object)
        s = pd.Series(np.asarray(synthetic, dtype=object)).astype(object)
        if len(r) == 0 or len(s) == 0:
            return float("nan") if len(r) == len(s) else 0.0
        p = r.where(r.notna(), _NULL).astype(str).value_counts(normalize=True)
        q = s.where(s.notna(), _NULL).astype(str).value_counts(normalize=True)
        p, q = p.align(q, fill_value=0.0)
        return float(1.0 - 0.5 * np.abs(p - q).sum())


class ColumnShapes(FidelityMetric):
    """Mean per-column shape similarity: KS complement on numeric, TV complement on categorical.

    A summary of how well each single column's distribution is reproduced, averaged over the
    columns (``compute_breakdown`` gives the per-column scores, the first place to look when
    the mean drops). 1.0 means every marginal matches; 0.9 typically means small shifts;
    values well below 0.8 point at columns the generator gets wrong.
    """

    name = "column_shapes"

    @classmethod
    def compute_breakdown(cls, real: pd.DataFrame, synthetic: pd.DataFrame,
                          schema: TableSchema | None = None) -> dict[str, float]:
        kinds = _column_kinds(real, synthetic, schema)
        return {
            c: (KSComplement if kind == "numeric" else TVComplement).compute(real[c], synthetic[c])
            for c, kind in kinds.items()
        }

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame,
                schema: TableSchema | None = None) -> float:
        scores = [v for v in cls.compute_breakdown(real, synthetic, schema).values()
                  if not np.isnan(v)]
        return float(np.mean(scores)) if scores else float("nan")


class CorrelationSimilarity(FidelityMetric):
    """How well pairwise linear correlations between numeric columns are reproduced.

    For every pair of numeric columns, the score is 1 - |r_real - r_synthetic| / 2 with
    Pearson's r (pairwise-complete rows), so 1.0 means the same correlation and 0 means
    opposite perfect correlations; the metric is the mean over pairs
    (``compute_breakdown`` gives each pair). Pairs where either side has a constant column
    are skipped; with no usable pair the result is NaN. It only sees linear, numeric
    relations.
    """

    name = "correlation_similarity"

    @classmethod
    def compute_breakdown(cls, real: pd.DataFrame, synthetic: pd.DataFrame,
                          schema: TableSchema | None = None) -> dict[tuple[str, str], float]:
        numeric = [c for c, k in _column_kinds(real, synthetic, schema).items() if k == "numeric"]
        r = real[numeric].apply(pd.to_numeric, errors="coerce").astype(float).corr()
        s = synthetic[numeric].apply(pd.to_numeric, errors="coerce").astype(float).corr()
        out = {}
        for a, b in combinations(numeric, 2):
            if np.isfinite(r.loc[a, b]) and np.isfinite(s.loc[a, b]):
                out[(a, b)] = float(1.0 - abs(r.loc[a, b] - s.loc[a, b]) / 2.0)
        return out

    @classmethod
    def compute(cls, real: pd.DataFrame, synthetic: pd.DataFrame,
                schema: TableSchema | None = None) -> float:
        scores = list(cls.compute_breakdown(real, synthetic, schema).values())
        return float(np.mean(scores)) if scores else float("nan")


class DetectionScore(FidelityMetric):
    """Can a classifier tell real rows from synthetic ones? 1.0 means it cannot.

    A classifier (a random forest by default; any scikit-learn classifier can be passed) is
    trained to separate real from synthetic rows in the shared feature space, and its
    out-of-fold ROC AUC over stratified folds is turned into 1 - 2 * max(AUC - 0.5, 0): 1.0
    when the classifier does no better than chance, 0 when it separates the two perfectly.
    An out-of-fold AUC below 0.5 counts as chance (the SDMetrics detection convention): it is
    noise, or the sign of copying (a copied row's real twin sits in the other folds with the
    opposite label, which drives the AUC toward 0), and copying is for the privacy metrics to
    flag, not this one. Unlike the column metrics it sees joint structure, so it catches rows
    whose columns are each plausible but whose combination is not. ``auc`` gives the raw AUC.
    """

    name = "detection"

    @classmethod
    def compute(cls, real, synthetic, schema: TableSchema | None = None, classifier=None,
                folds: int = 5, seed: int = 0) -> float:
        return float(1.0 - 2.0 * max(cls.auc(real, synthetic, schema, classifier, folds, seed) - 0.5,
                                     0.0))

    @classmethod
    def auc(cls, real, synthetic, schema: TableSchema | None = None, classifier=None,
            folds: int = 5, seed: int = 0) -> float:
        """The out-of-fold AUC of the real-vs-synthetic classifier (0.5 = chance)."""
        if not isinstance(folds, (int, np.integer)) or folds < 2:
            raise SpecError(f"The 'folds' parameter of {cls.__name__} must be an integer >= 2. "
                            f"Got {folds!r} instead.")
        X_real, X_syn = feature_matrices(real, synthetic, schema=schema)
        X = np.vstack([X_real, X_syn])
        y = np.r_[np.zeros(len(X_real), int), np.ones(len(X_syn), int)]
        n_splits = min(folds, len(X_real), len(X_syn))
        if n_splits < 2:
            raise DataError("Detection needs at least two real and two synthetic rows.")
        model = classifier if classifier is not None else RandomForestClassifier(
            n_estimators=100, min_samples_leaf=3, random_state=seed, n_jobs=1)
        scores = np.zeros(len(y))
        skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for tr, te in skf.split(X, y):
            fitted = clone(model).fit(X[tr], y[tr])
            scores[te] = fitted.predict_proba(X[te])[:, list(fitted.classes_).index(1)]
        return float(roc_auc_score(y, scores))


FIDELITY_METRICS: dict[str, type[FidelityMetric]] = {
    m.name: m
    for m in (KSComplement, TVComplement, ColumnShapes, CorrelationSimilarity, DetectionScore)
}
