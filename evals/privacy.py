"""Privacy: do synthetic rows copy, or give away, the real training rows?

Every metric compares synthetic rows with the real *training* rows the generator could have
seen, using a real *holdout* the generator never saw as the yardstick: a fresh sample from the
real distribution is as close to the training rows as honest synthetic data should be.
Distances are Manhattan distances in the shared feature space (see
``synthloop.evals.features.feature_matrices``): the mean per-column difference, 0 for a copy.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from synthloop.data import TableSchema
from synthloop.errors import DataError
from synthloop.evals.base import Metric
from synthloop.evals.features import DISTANCE, feature_matrices

_COPY = 1e-12


def _nearest(reference: np.ndarray, queries: np.ndarray, k: int = 1,
             what: str = "real training") -> np.ndarray:
    """Distances from each query row to its k nearest reference rows, shape (n, k)."""
    if len(reference) < k:
        raise DataError(f"Need at least {k} {what} row(s); got {len(reference)}.")
    d, _ = NearestNeighbors(n_neighbors=k, metric=DISTANCE).fit(reference).kneighbors(queries)
    return d


class PrivacyMetric(Metric):
    """Every privacy metric states its own ``goal``."""


class DCR(PrivacyMetric):
    """Distance to closest record: are synthetic rows closer to the training rows than new real rows are?

    For each synthetic row, the distance to its nearest real training row (DCR); for each real
    holdout row, the same distance to the training rows as the baseline. ``compute`` returns
    ``synthetic_median`` and ``holdout_median`` (a synthetic median well below the holdout's
    means the generator sits on top of training rows), ``exact_copies`` (share of synthetic
    rows at distance 0) and the headline ``share_closer``: the share of synthetic rows closer
    to a training row than the holdout's 5th percentile DCR. A generator that samples the real
    distribution without memorising scores about 0.05; values far above 0.05 flag copying.
    ``goal``, ``min_value`` and ``max_value`` refer to ``share_closer``. When the real data
    holds duplicate rows the holdout's 5th percentile can be 0, and ``share_closer`` then
    misses exact copies: read ``exact_copies`` too.
    """

    name = "dcr"
    goal = "minimize"

    @classmethod
    def compute(cls, real_train, synthetic, real_holdout, schema: TableSchema | None = None,
                quantile: float = 0.05) -> dict[str, float]:
        X_train, X_syn, X_hold = feature_matrices(real_train, synthetic, real_holdout,
                                                  schema=schema)
        d_syn = _nearest(X_train, X_syn)[:, 0]
        d_hold = _nearest(X_train, X_hold)[:, 0]
        threshold = float(np.quantile(d_hold, quantile))
        return {
            "synthetic_median": float(np.median(d_syn)),
            "holdout_median": float(np.median(d_hold)),
            "holdout_quantile": threshold,
            "share_closer": float((d_syn < threshold).mean()),
            "exact_copies": float((d_syn <= _COPY).mean()),
        }


class NNDR(PrivacyMetric):
    """Nearest-neighbour distance ratio: does each synthetic row stand out as one real row's twin?

    For each synthetic row, the distance to its nearest real training row divided by the
    distance to its second nearest; the metric is the median ratio over synthetic rows. A
    ratio near 0 means the row is far closer to one particular real record than to any other,
    the mark of a copy or a lightly perturbed copy (exact copies score 0); a ratio near 1
    means it sits among several real rows, as a genuinely new row does. Compare with the
    same statistic for a real holdout (``compute(real_train, real_holdout)``) for a baseline.
    """

    name = "nndr"
    goal = "maximize"

    @classmethod
    def compute(cls, real_train, synthetic, schema: TableSchema | None = None) -> float:
        X_train, X_syn = feature_matrices(real_train, synthetic, schema=schema)
        d = _nearest(X_train, X_syn, k=2)
        ratio = np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > _COPY)
        return float(np.median(ratio))


class MembershipInference(PrivacyMetric):
    """AUC of a distance attack telling training members from non-members: 0.5 means no leakage.

    The attacker holds the synthetic rows and a candidate real record, and guesses "this
    record was in the training data" when the record lies close to some synthetic row. The
    score is the ROC AUC of that guess (negative distance to the nearest synthetic row) over
    real training rows (members) and real holdout rows (non-members). 0.5 means synthetic
    rows are no closer to training rows than to unseen real rows, so releasing them reveals
    nothing about membership; 1.0 means every training record can be picked out. Values
    clearly above 0.5 (say 0.6) deserve a look. Pass a training sample of about the holdout's
    size when the training set is large: the AUC does not depend on the ratio, only the cost
    does.
    """

    name = "membership_inference_auc"
    goal = "minimize"

    @classmethod
    def compute(cls, real_train, synthetic, real_holdout,
                schema: TableSchema | None = None) -> float:
        X_train, X_syn, X_hold = feature_matrices(real_train, synthetic, real_holdout,
                                                  schema=schema)
        d_members = _nearest(X_syn, X_train, what="synthetic")[:, 0]
        d_outsiders = _nearest(X_syn, X_hold, what="synthetic")[:, 0]
        y = np.r_[np.ones(len(d_members)), np.zeros(len(d_outsiders))]
        return float(roc_auc_score(y, -np.r_[d_members, d_outsiders]))


PRIVACY_METRICS: dict[str, type[PrivacyMetric]] = {
    m.name: m for m in (DCR, NNDR, MembershipInference)
}
