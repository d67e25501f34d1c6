"""Is each number of a row consistent with the rest of the row, as real rows are?

A small LLM shown three exemplars tends to mix their cells: one row takes its TT4 from one
patient, its T4U from another and its FTI from a third, where real rows have FTI = TT4 / T4U.
Every value lies in a plausible range and the row sits in its region, so the schema, range and
region checks pass it; yet such chimeras teach the model relations no real row has. On the
sick benchmark a quarter of the loop's kept rows broke that one relation (3% of GPT-3.5's
rows).

For up to ``max_columns`` numeric columns (the most informative first), a regression predicts
the column from the row's other columns and its label, fitted on real training rows: a small
LightGBM or a ridge, whichever has the smaller out-of-fold errors. A row's score is its largest
error, each column's scaled by that column's ``quantile`` of real out-of-fold errors; the bound
is the ``quantile`` of the real rows' scores, so about ``1 - quantile`` of real rows would fail
however many columns are checked. The column furthest past the bound is named. No knowledge of
the domain is needed: the relations are whatever the real rows hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from synthloop.data import TableSchema

LABEL = "__label__"


def _regressor(seed: int, n_rows: int):
    from lightgbm import LGBMRegressor

    return LGBMRegressor(n_estimators=50, learning_rate=0.2, num_leaves=7, max_bin=63,
                         min_child_samples=max(5, min(20, n_rows // 50)), random_state=seed,
                         n_jobs=1, deterministic=True, force_col_wise=True, verbose=-1)


class _Linear:
    """A ridge regression on the same frame (numbers median-filled, categories one-hot): trees
    predict a near-linear relation (a radius from its perimeter) in coarse steps, and on a few
    hundred rows their errors would hide every mixed row."""

    def __init__(self):
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.pipe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 7)))

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        return pd.get_dummies(X.fillna(self.medians_), dtype=float).to_numpy(float)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> _Linear:
        self.medians_ = X.select_dtypes("number").median()
        self.pipe.fit(self._matrix(X), y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipe.predict(self._matrix(X))


def _out_of_fold(make, X: pd.DataFrame, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    oof = np.empty(len(y))
    for tr_idx, te_idx in KFold(folds, shuffle=True, random_state=seed).split(X):
        oof[te_idx] = make(len(tr_idx)).fit(X.iloc[tr_idx], y[tr_idx]).predict(X.iloc[te_idx])
    return oof


class ConsistencyModel:
    """The check the module describes, fitted on real training rows. ``skipped`` says why no
    column is checked, if none is."""

    def __init__(self, quantile: float = 0.99, seed: int = 0, folds: int = 3,
                 max_columns: int = 8, min_rows: int = 100, min_distinct: int = 10):
        self.quantile = quantile
        self.seed = seed
        self.folds = folds
        self.max_columns = max_columns
        self.min_rows = min_rows
        self.min_distinct = min_distinct
        self.models_: dict[str, tuple[object, float]] = {}
        self.bound_ = np.inf
        self.skipped: str | None = None

    def _frame(self, df: pd.DataFrame) -> pd.DataFrame:
        X = pd.DataFrame(index=df.index)
        for name in self.features_:
            c = self.schema_.column(name)
            if c.type in ("float", "int"):
                X[name] = pd.to_numeric(df[name], errors="coerce").astype(float)
            elif c.type == "bool":
                X[name] = pd.to_numeric(df[name].map(lambda v: None if v is None else float(v)),
                                        errors="coerce")
            else:  # a category with its schema's categories: the same codes at fit and check
                X[name] = pd.Categorical(df[name].map(lambda v: str(v) if pd.notna(v) else None),
                                         categories=c.categories)
        X[LABEL] = pd.Categorical(df[self.schema_.target].astype(str),
                                  categories=self.schema_.classes)
        return X

    def fit(self, train: pd.DataFrame, schema: TableSchema,
            ranked: list[str] | None = None) -> ConsistencyModel:
        """Fit on real training rows; ``ranked`` orders the columns by importance (the first
        ``max_columns`` numeric ones are checked), else the schema's order."""
        self.schema_ = schema
        self.models_ = {}
        self.skipped = None
        if self.quantile <= 0:
            self.skipped = "switched off (curation.consistency_quantile is 0)"
            return self
        if len(train) < self.min_rows:
            self.skipped = (f"{len(train)} real training rows, fewer than {self.min_rows}: too "
                            "few to learn how the columns relate")
            return self
        self.features_ = [c.name for c in schema.columns if c.type in ("float", "int", "bool")
                          or (c.type == "category" and c.categories)]
        X = self._frame(train)
        order = [c for c in (ranked or []) if c in self.features_] + self.features_
        checked = [c for c in dict.fromkeys(order) if schema.column(c).type in ("float", "int")
                   and X[c].notna().sum() >= self.min_rows
                   and X[c].nunique() >= self.min_distinct][:self.max_columns]
        ratios = []
        for col in checked:
            known = X[col].notna().to_numpy()
            Xc, yc = X.loc[known].drop(columns=[col]), X.loc[known, col].to_numpy()
            # per column, whichever of trees and a linear fit predicts it more tightly
            best = None
            for make in (lambda n: _regressor(self.seed, n), lambda n: _Linear()):
                err = np.abs(yc - _out_of_fold(make, Xc, yc, self.folds, self.seed))
                scale = max(float(np.quantile(err, self.quantile)), 1e-12)
                if best is None or scale < best[1]:
                    best = (make, scale, err)
            make, scale, err = best
            self.models_[col] = (make(len(yc)).fit(Xc, yc), scale)
            ratio = np.zeros(len(X))
            ratio[known] = err / scale
            ratios.append(ratio)
        if not self.models_:
            self.skipped = (f"no numeric column with {self.min_distinct}+ distinct values in "
                            f"{self.min_rows}+ real rows")
            return self
        self.bound_ = max(1.0, float(np.quantile(np.max(ratios, axis=0), self.quantile)))
        return self

    def check(self, df: pd.DataFrame) -> tuple[np.ndarray, list[str | None]]:
        """(mask of inconsistent rows, per row the column furthest past its scale, or None)."""
        which: list[str | None] = [None] * len(df)
        if not self.models_ or df.empty:
            return np.zeros(len(df), bool), which
        X = self._frame(df)
        worst = np.zeros(len(df))
        for col, (model, scale) in self.models_.items():
            err = np.abs(X[col].to_numpy(float) - model.predict(X.drop(columns=[col])))
            ratio = np.nan_to_num(err / scale, nan=0.0)
            for i in np.flatnonzero(ratio > np.maximum(worst, self.bound_)):
                which[i] = col
            worst = np.maximum(worst, ratio)
        return worst > self.bound_, which

    def describe(self) -> dict:
        """What the run records: the columns checked and their error scales, or why none is."""
        return {"quantile": self.quantile, "skipped": self.skipped,
                "row_bound": None if self.skipped else round(self.bound_, 4),
                "scales": {c: round(b, 6) for c, (_, b) in self.models_.items()}}
