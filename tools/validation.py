"""Validating candidate rows: schema, rules, region membership, and leakage of real rows.

Each check removes rows and says how many; the batch's violation rate (rows failing schema,
rule or region checks over rows generated) decides whether the batch is rejected outright.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from synthloop.data import TableSchema
from synthloop.tools.constraints import evaluate, evaluate_region


class FeatureSpace:
    """Rows as vectors: numbers as their rank in the real data (0..1, from the schema's
    quantiles; by the schema's range when there are none), categories one-hot.

    ``distance`` is the mean per-column difference, so 0 is an exact copy and 0.01 means the
    rows sit about 1% of the population apart per column on average. Ranks, not ranges: one
    outlier (an age of 455) would otherwise squeeze every real difference towards zero.
    """

    def __init__(self, schema: TableSchema):
        self.schema = schema

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        for c in self.schema.columns:
            if c.type in ("float", "int"):
                v = pd.to_numeric(df[c.name], errors="coerce").astype(float).to_numpy()
                q = getattr(c, "quantiles", None)
                if q and q[-1] > q[0]:
                    ranks = np.interp(v, q, np.linspace(0, 1, len(q)))
                else:
                    lo, hi = c.min or 0.0, c.max if c.max is not None else 1.0
                    ranks = (v - lo) / ((hi - lo) or 1.0)
                parts.append(np.where(np.isnan(v), -1.0, ranks)[:, None])
            elif c.type == "bool":
                parts.append(df[c.name].map(lambda x: -1.0 if x is None else float(x))
                             .to_numpy(float)[:, None])
            elif c.type == "category":
                cats = c.categories or []
                vals = df[c.name].astype(str).to_numpy()
                parts.append(np.stack([(vals == k) for k in cats], axis=1).astype(float) * 0.5
                             if cats else np.zeros((len(df), 0)))
        n_cols = max(1, sum(1 for c in self.schema.columns if c.type != "text"))
        X = np.hstack(parts) if parts else np.zeros((len(df), 0))
        return X / n_cols


class LeakageIndex:
    """Nearest real rows (train, validation and holdout features, never their labels)."""

    def __init__(self, space: FeatureSpace, real: pd.DataFrame):
        self.space = space
        self.nn_ = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(space.transform(real))

    def nearest(self, df: pd.DataFrame) -> np.ndarray:
        if df.empty:
            return np.zeros(0)
        d, _ = self.nn_.kneighbors(self.space.transform(df))
        return d[:, 0]


def schema_violations(df: pd.DataFrame, schema: TableSchema) -> dict[str, np.ndarray]:
    """Per check, the mask of rows that fail it."""
    n = len(df)
    bad_type = np.zeros(n, bool)
    bad_range = np.zeros(n, bool)
    bad_cat = np.zeros(n, bool)
    bad_null = np.zeros(n, bool)
    for c in schema.columns:
        s = df[c.name]
        null = s.isna().to_numpy()
        if not c.nullable:
            bad_null |= null
        if c.type in ("float", "int"):
            v = pd.to_numeric(s, errors="coerce")
            bad_type |= v.isna().to_numpy() & ~null
            if c.min is not None:
                bad_range |= (v < c.min).fillna(False).to_numpy()
            if c.max is not None:
                bad_range |= (v > c.max).fillna(False).to_numpy()
        elif c.type == "category" and c.categories:
            bad_cat |= ~s.astype(str).isin(c.categories).to_numpy() & ~null
    return {"type": bad_type, "range": bad_range, "category": bad_cat, "null": bad_null}


def validate_batch(
    batch: pd.DataFrame,
    schema: TableSchema,
    rules: list[str],
    leakage: LeakageIndex,
    previous: pd.DataFrame | None,
    near_distance: float,
    space: FeatureSpace,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(valid rows, rejected rows with a ``_sl_reject`` reason, counts per check)."""
    if batch.empty:
        return batch, batch.assign(_sl_reject=pd.Series(dtype=str)), {"generated": 0}
    reason = pd.Series([""] * len(batch), index=batch.index, dtype=object)

    def mark(mask: np.ndarray, why: str) -> int:
        fresh = mask & (reason.to_numpy() == "")
        reason[fresh] = why
        return int(fresh.sum())

    counts: dict[str, int] = {"generated": int(len(batch))}
    for check, mask in schema_violations(batch, schema).items():
        counts[check] = mark(mask, check)
    for text in rules:
        counts[f"rule: {text}"] = mark(~evaluate(text, batch), f"rule: {text}")
    region_ok = np.ones(len(batch), bool)
    for rule, idx in batch.groupby("_sl_region").groups.items():
        if rule != "True":
            sub = batch.loc[idx]
            region_ok[batch.index.get_indexer(idx)] = evaluate_region(rule, sub)
    counts["region"] = mark(~region_ok, "region")
    violations = int((reason != "").sum())
    counts["violation_rate"] = round(violations / len(batch), 4)

    dist = leakage.nearest(batch)
    counts["exact_copy_of_real"] = mark(dist <= 1e-12, "exact copy of a real row")
    counts["near_copy_of_real"] = mark(dist < near_distance, "near copy of a real row")
    X = space.transform(batch)
    dup = np.zeros(len(batch), bool)
    if previous is not None and not previous.empty:
        nn = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(space.transform(previous))
        d, _ = nn.kneighbors(X)
        dup |= d[:, 0] < max(near_distance, 1e-12)
    seen: set[bytes] = set()
    for i, row in enumerate(np.round(X, 9)):
        key = row.tobytes()
        dup[i] |= key in seen
        seen.add(key)
    counts["duplicate_synthetic"] = mark(dup, "duplicate of a synthetic row")
    ok = (reason == "").to_numpy()
    rejected = batch.loc[~ok].assign(_sl_reject=reason[~ok].to_numpy())
    return batch.loc[ok], rejected, counts
