"""The feature space the distance-based evals share (coverage, fidelity, privacy).

With a ``synthloop.data.TableSchema`` rows go through ``synthloop.tools.validation.FeatureSpace``
(numbers scaled by the schema's range, categories one-hot); plain numeric arrays (or
all-numeric frames) are min-max scaled by the real data's range. In both cases the Manhattan
distance is the mean per-column difference, so 0 is an exact copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthloop.data import TableSchema
from synthloop.errors import DataError
from synthloop.tools.validation import FeatureSpace

DISTANCE = "manhattan"


def feature_matrices(reference, *others, schema: TableSchema | None = None) -> list[np.ndarray]:
    """Encode ``reference`` (real rows) and ``others`` into one comparable feature space.

    With ``schema``, every input must be a DataFrame holding the schema's feature columns.
    Without it, inputs are numeric arrays or all-numeric DataFrames (aligned to the
    reference's column names), scaled by the reference's per-column min and max.
    """
    if schema is not None:
        return [_schema_matrix(x, schema, i) for i, x in enumerate((reference, *others))]
    ref = _numeric_matrix(reference, None, 0)
    columns = list(reference.columns) if isinstance(reference, pd.DataFrame) else None
    mats = [ref] + [_numeric_matrix(x, columns, i + 1) for i, x in enumerate(others)]
    for i, m in enumerate(mats[1:], start=1):
        if m.shape[1] != ref.shape[1]:
            raise DataError(
                f"Input {i} has {m.shape[1]} feature columns but the real data has "
                f"{ref.shape[1]}; pass the same columns in the same order."
            )
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    n_cols = max(1, ref.shape[1])
    return [(m - lo) / span / n_cols for m in mats]


def _schema_matrix(x, schema: TableSchema, i: int) -> np.ndarray:
    if not isinstance(x, pd.DataFrame):
        raise DataError(
            f"Input {i} is a {type(x).__name__}; with a schema, pass DataFrames holding the "
            "schema's columns (or drop schema= and pass numeric arrays)."
        )
    missing = [c.name for c in schema.columns if c.type != "text" and c.name not in x.columns]
    if missing:
        raise DataError(f"Input {i} lacks the schema's column(s) {missing}.")
    return FeatureSpace(schema).transform(x)


def _numeric_matrix(x, columns: list[str] | None, i: int) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        if columns is not None:
            missing = [c for c in columns if c not in x.columns]
            if missing:
                raise DataError(f"Input {i} lacks the real data's column(s) {missing}.")
            x = x[columns]
        non_numeric = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
        if non_numeric:
            raise DataError(
                f"Column(s) {non_numeric} are not numeric; pass schema=TableSchema so categories "
                "are one-hot encoded."
            )
        x = x.to_numpy(dtype=float)
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or len(arr) == 0:
        raise DataError(f"Input {i} must be a non-empty 2-D table of rows; got shape {arr.shape}.")
    if np.isnan(arr).any():
        raise DataError(
            f"Input {i} has missing values; impute them or pass DataFrames with schema= "
            "(the schema's feature space encodes missing numbers)."
        )
    return arr
