"""Coverage: does synthetic data fill the region real data occupies, and stay inside it?

Both metrics work in a feature space where distances mean something: with a
``synthloop.data.TableSchema`` rows go through ``synthloop.tools.validation.FeatureSpace``
(numbers scaled by the schema's range, categories one-hot); plain numeric arrays (or
all-numeric frames) are min-max scaled by the real data's range. In both cases the Manhattan
distance is the mean per-column difference, so 0 is an exact copy (``synthloop.evals.features``).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from synthloop.data import TableSchema
from synthloop.errors import DataError, SpecError
from synthloop.evals.base import Metric
from synthloop.evals.features import DISTANCE, feature_matrices


def _subsample(X: np.ndarray, max_rows: int | None, rng: np.random.Generator) -> np.ndarray:
    if max_rows is None or len(X) <= max_rows:
        return X
    return X[rng.choice(len(X), size=max_rows, replace=False)]


def _knn_radii(X: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    if len(X) <= k:
        raise DataError(f"Coverage with k={k} needs more than {k} rows per side; got {len(X)}.")
    d, _ = NearestNeighbors(n_neighbors=k + 1, metric=DISTANCE).fit(X).kneighbors(X)
    return d[:, k]


def _inside_manifold(points: np.ndarray, support: np.ndarray, radii: np.ndarray,
                     chunk: int = 1024) -> np.ndarray:
    """For each point, whether it lies within the k-NN ball of some support row."""
    inside = np.zeros(len(points), dtype=bool)
    for start in range(0, len(points), chunk):
        d = pairwise_distances(points[start:start + chunk], support, metric=DISTANCE)
        inside[start:start + chunk] = (d <= radii[None, :] + 1e-12).any(axis=1)
    return inside


class CoverageMetric(Metric):

    @classmethod
    def _validate(cls, k: int) -> None:
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise SpecError(f"The 'k' parameter of {cls.__name__} must be an integer >= 1. "
                            f"Got {k!r} instead.")

    @classmethod
    def _matrices(cls, real, synthetic, schema, k, max_rows, seed):
        cls._validate(k)
        X_real, X_syn = feature_matrices(real, synthetic, schema=schema)
        rng = np.random.default_rng(seed)
        return _subsample(X_real, max_rows, rng), _subsample(X_syn, max_rows, rng)


class ManifoldPrecision(CoverageMetric):
    """Share of synthetic rows that fall inside the real data's manifold (fidelity of samples).

    The real manifold is the union of balls around each real row with radius its distance to
    its k-th nearest real neighbour (Kynkäänniemi et al., 2019, "Improved precision and recall
    metric for assessing generative models"). 1.0 means every synthetic row looks like it
    could be real; a low value means many synthetic rows land where no real rows are
    (implausible or out-of-distribution samples). Precision says nothing about variety: a
    generator that repeats a few real-looking rows scores 1.0, which ``ManifoldRecall``
    exposes. Inputs larger than ``max_rows`` are subsampled with ``seed``.
    """

    name = "knn_precision"

    @classmethod
    def compute(cls, real, synthetic, schema: TableSchema | None = None, k: int = 3,
                max_rows: int | None = 5000, seed: int = 0) -> float:
        X_real, X_syn = cls._matrices(real, synthetic, schema, k, max_rows, seed)
        return float(_inside_manifold(X_syn, X_real, _knn_radii(X_real, k)).mean())


class ManifoldRecall(CoverageMetric):
    """Share of real rows that fall inside the synthetic data's manifold (coverage of modes).

    The mirror of ``ManifoldPrecision``: balls of k-th-nearest-neighbour radius are drawn
    around the synthetic rows, and recall is the share of real rows inside their union. 1.0
    means the synthetic data reaches every part of the real distribution; a low value means
    whole regions of real data (rare classes, tails, minority categories) have no synthetic
    counterpart, the signature of mode collapse. Read it together with precision: high
    precision and low recall is a faithful but narrow generator.
    """

    name = "knn_recall"

    @classmethod
    def compute(cls, real, synthetic, schema: TableSchema | None = None, k: int = 3,
                max_rows: int | None = 5000, seed: int = 0) -> float:
        X_real, X_syn = cls._matrices(real, synthetic, schema, k, max_rows, seed)
        return float(_inside_manifold(X_real, X_syn, _knn_radii(X_syn, k)).mean())


COVERAGE_METRICS: dict[str, type[CoverageMetric]] = {
    m.name: m for m in (ManifoldPrecision, ManifoldRecall)
}
