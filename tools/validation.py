"""Validating candidate rows: schema, rules, region membership, and leakage of real rows.

Each check removes rows and says how many; the batch's violation rate (rows failing schema,
rule or region checks over rows generated) decides whether the batch is rejected outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """Nearest real rows (train, validation and holdout features, never their labels).

    ``n_train``: the first ``n_train`` rows of ``real`` are the training split; the others
    (validation and holdout) get an index of their own, for ``nearest_held_out``.
    """

    def __init__(self, space: FeatureSpace, real: pd.DataFrame, n_train: int | None = None):
        self.space = space
        X = space.transform(real)
        self.nn_ = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(X)
        self.held_nn_ = (NearestNeighbors(n_neighbors=1, metric="manhattan").fit(X[n_train:])
                         if n_train is not None and n_train < len(real) else None)
        self.n_train_ = n_train

    def nearest(self, df: pd.DataFrame) -> np.ndarray:
        if df.empty:
            return np.zeros(0)
        d, _ = self.nn_.kneighbors(self.space.transform(df))
        return d[:, 0]

    @property
    def splits_known(self) -> bool:
        """Whether the index knows which real rows are training rows (runs started before it
        did have one index over all real rows)."""
        return getattr(self, "n_train_", None) is not None

    def nearest_held_out(self, df: pd.DataFrame) -> np.ndarray:
        """Distance to the nearest validation or holdout row (inf when there is none)."""
        if not self.splits_known:
            raise ValueError("this leakage index does not know the training split")
        if df.empty:
            return np.zeros(0)
        if self.held_nn_ is None:
            return np.full(len(df), np.inf)
        d, _ = self.held_nn_.kneighbors(self.space.transform(df))
        return d[:, 0]


CHECKS = ("type", "range", "category", "null")


def _column_violations(s: pd.Series, c) -> dict[str, np.ndarray]:
    """Per check, the mask of the cells of column ``c`` (values ``s``) that fail it."""
    null = s.isna().to_numpy()
    out = {check: np.zeros(len(s), bool) for check in CHECKS}
    if not c.nullable:
        out["null"] = null
    if c.type in ("float", "int"):
        v = pd.to_numeric(s, errors="coerce")
        out["type"] = v.isna().to_numpy() & ~null
        if c.min is not None:
            out["range"] |= (v < c.min).fillna(False).to_numpy()
        if c.max is not None:
            out["range"] |= (v > c.max).fillna(False).to_numpy()
    elif c.type == "category" and c.categories:
        out["category"] = ~s.astype(str).isin(c.categories).to_numpy() & ~null
    return out


def schema_violations(df: pd.DataFrame, schema: TableSchema) -> dict[str, np.ndarray]:
    """Per check, the mask of rows that fail it."""
    out = {check: np.zeros(len(df), bool) for check in CHECKS}
    for c in schema.columns:
        for check, mask in _column_violations(df[c.name], c).items():
            out[check] |= mask
    return out


def schema_problem(row: pd.Series, schema: TableSchema) -> str | None:
    """What is wrong with one row for the schema, naming the column and what it allows
    (None when nothing is): the words for a person, where ``schema_violations`` counts."""
    for c in schema.columns:
        if c.name not in row.index:
            continue
        v = row[c.name]
        failed = {k for k, m in _column_violations(pd.Series([v], dtype=object), c).items()
                  if m[0]}
        if "null" in failed:
            return f"'{c.name}' is empty, and the column has no missing values"
        if "type" in failed:
            return f"'{c.name}' = {v!r} is not a number"
        if "range" in failed:
            num = float(pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0])
            # repr-exact numbers: a value just past a large bound must not print as the bound
            low = "" if c.min is None else f"{c.min!r}"
            high = "" if c.max is None else f"{c.max!r}"
            allowed = f" (the column holds {low} to {high})" if low and high else ""
            if c.min is not None and num < c.min:
                return f"'{c.name}' = {num!r} is below its minimum {low}{allowed}"
            return f"'{c.name}' = {num!r} is above its maximum {high}{allowed}"
        if "category" in failed:
            shown = ", ".join(c.categories[:8]) + (", ..." if len(c.categories) > 8 else "")
            return f"'{c.name}' = {str(v)!r} is not one of its categories ({shown})"
    return None


@dataclass
class ValidationContext:
    """What validators may look at besides the batch: the schema, the spec's rules, the
    leakage index of real rows (features only), the synthetic rows accepted before, and the
    near-copy distance."""

    schema: TableSchema
    rules: list[str] = field(default_factory=list)
    leakage: LeakageIndex | None = None
    previous: pd.DataFrame | None = None
    near_distance: float = 0.01
    space: FeatureSpace | None = None
    keep_training_copies: bool = False

    def __post_init__(self):
        if self.space is None:
            self.space = FeatureSpace(self.schema)


class SchemaCheck:
    """Types, ranges, categories and nulls, as the schema says."""

    name = "schema"
    violation = True

    def check(self, batch: pd.DataFrame, ctx: ValidationContext) -> dict[str, np.ndarray]:
        return schema_violations(batch, ctx.schema)


class RuleCheck:
    """Every rule of the spec (rows where a named column is null pass)."""

    name = "rules"
    violation = True

    def check(self, batch: pd.DataFrame, ctx: ValidationContext) -> dict[str, np.ndarray]:
        return {f"rule: {text}": ~evaluate(text, batch) for text in ctx.rules}


class RegionCheck:
    """Each row lies in the region it was written for (its ``_sl_region``)."""

    name = "region"
    violation = True

    def check(self, batch: pd.DataFrame, ctx: ValidationContext) -> dict[str, np.ndarray]:
        region_ok = np.ones(len(batch), bool)
        if "_sl_region" in batch.columns:
            for rule, idx in batch.groupby("_sl_region").groups.items():
                if rule != "True":
                    sub = batch.loc[idx]
                    region_ok[batch.index.get_indexer(idx)] = evaluate_region(rule, sub)
        return {"region": ~region_ok}


class LeakageCheck:
    """Exact and near copies of real rows (train, validation or holdout features); with
    ``ctx.keep_training_copies``, of validation and holdout rows only."""

    name = "leakage"
    violation = False

    def check(self, batch: pd.DataFrame, ctx: ValidationContext) -> dict[str, np.ndarray]:
        if ctx.leakage is None:
            dist = np.full(len(batch), np.inf)
        elif ctx.keep_training_copies and ctx.leakage.splits_known:
            dist = ctx.leakage.nearest_held_out(batch)
        else:
            dist = ctx.leakage.nearest(batch)
        return {"exact_copy_of_real": dist <= 1e-12, "near_copy_of_real": dist < ctx.near_distance}


class DuplicateCheck:
    """Duplicates of earlier synthetic rows, and of other rows of the batch."""

    name = "duplicates"
    violation = False

    def check(self, batch: pd.DataFrame, ctx: ValidationContext) -> dict[str, np.ndarray]:
        X = ctx.space.transform(batch)
        dup = np.zeros(len(batch), bool)
        if ctx.previous is not None and not ctx.previous.empty:
            nn = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(
                ctx.space.transform(ctx.previous))
            d, _ = nn.kneighbors(X)
            dup |= d[:, 0] < max(ctx.near_distance, 1e-12)
        seen: set[bytes] = set()
        for i, row in enumerate(np.round(X, 9)):
            key = row.tobytes()
            dup[i] |= key in seen
            seen.add(key)
        return {"duplicate_synthetic": dup}


# the checks every batch gets, in order; each registers as a ``validator`` (a spec's
# ``validators`` adds registered ones after them)
BUILTIN_VALIDATORS = (SchemaCheck(), RuleCheck(), RegionCheck(), LeakageCheck(), DuplicateCheck())

_REASONS = {"exact_copy_of_real": "exact copy of a real row",
            "near_copy_of_real": "near copy of a real row",
            "duplicate_synthetic": "duplicate of a synthetic row"}


def run_validators(batch: pd.DataFrame, validators, ctx: ValidationContext
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(valid rows, rejected rows with a ``_sl_reject`` reason, counts per check).

    A row is rejected for the first check it fails. Checks of validators with ``violation``
    (schema, rules, region and any such extra) come first and make the batch's violation rate;
    the others (leakage, duplicates) follow.
    """
    if batch.empty:
        return batch, batch.assign(_sl_reject=pd.Series(dtype=str)), {"generated": 0}
    reason = pd.Series([""] * len(batch), index=batch.index, dtype=object)
    counts: dict = {"generated": int(len(batch))}

    def run(v) -> None:
        for check, mask in v.check(batch, ctx).items():
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (len(batch),):
                from synthloop.errors import PluginError

                raise PluginError(f"Validator '{v.name}' returned a mask of shape {mask.shape} "
                                  f"for check '{check}'; it must hold one bool per row "
                                  f"({len(batch)}).")
            fresh = mask & (reason.to_numpy() == "")
            reason[fresh] = _REASONS.get(check, check)
            counts[check] = int(fresh.sum())

    validators = list(validators)
    for v in validators:
        if v.violation:
            run(v)
    counts["violation_rate"] = round(int((reason != "").sum()) / len(batch), 4)
    for v in validators:
        if not v.violation:
            run(v)
    ok = (reason == "").to_numpy()
    rejected = batch.loc[~ok].assign(_sl_reject=reason[~ok].to_numpy())
    return batch.loc[ok], rejected, counts


def validate_batch(
    batch: pd.DataFrame,
    schema: TableSchema,
    rules: list[str],
    leakage: LeakageIndex,
    previous: pd.DataFrame | None,
    near_distance: float,
    space: FeatureSpace,
    extra=(),
    keep_training_copies: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(valid rows, rejected rows with a ``_sl_reject`` reason, counts per check): the
    built-in checks, then the ``extra`` validators."""
    ctx = ValidationContext(schema=schema, rules=list(rules), leakage=leakage, previous=previous,
                            near_distance=near_distance, space=space,
                            keep_training_copies=keep_training_copies)
    return run_validators(batch, [*BUILTIN_VALIDATORS, *extra], ctx)
