"""Fitting the user's model on real + synthetic rows, and scoring it.

A model is named in the spec (``lightgbm`` by default, a short name from the registry, or any
scikit-learn classifier by import path). ``TabularModel`` wraps it with the encoding it needs,
so every model sees the same columns whatever its kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from synthloop.data import TableSchema
from synthloop.errors import SpecError
from synthloop.spec import ModelSpec


def lightgbm_factory(seed: int, **params):
    from lightgbm import LGBMClassifier

    defaults = dict(
        n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10,
        subsample=0.9, subsample_freq=1, colsample_bytree=0.9, reg_lambda=1.0,
        random_state=seed, n_jobs=1, deterministic=True, force_col_wise=True, verbose=-1,
    )
    defaults.update(params)
    return LGBMClassifier(**defaults)


def _sk(path: str, known: list[str] | None = None, **fixed):
    def factory(seed: int, **params):
        cls = _import(path, known)
        kw = dict(fixed)
        if "random_state" in cls().get_params():
            kw["random_state"] = seed
        kw.update(params)
        return cls(**kw)
    return factory


BUILTIN_MODELS = {
    "lightgbm": lightgbm_factory,
    "logistic_regression": _sk("sklearn.linear_model.LogisticRegression", max_iter=2000),
    "random_forest": _sk("sklearn.ensemble.RandomForestClassifier", n_estimators=100, n_jobs=1),
    "gradient_boosting": _sk("sklearn.ensemble.GradientBoostingClassifier"),
}


def _import(path: str, known: list[str] | None = None):
    module, _, name = path.rpartition(".")
    if not module:
        raise SpecError(
            f"model.kind {path!r} is neither a known model ({', '.join(known or BUILTIN_MODELS)}) nor an "
            "import path like 'sklearn.ensemble.ExtraTreesClassifier'."
        )
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise SpecError(f"model.kind {path!r} cannot be imported; check the import path.") from None


def make_estimator(spec: ModelSpec, seed: int, registry=None):
    """An unfitted classifier: a registered model (built-in or from a plugin) by name, or a
    scikit-learn-style class by import path."""
    models = registry.components("model") if registry is not None else dict(BUILTIN_MODELS)
    factory = models.get(spec.kind) or _sk(spec.kind, known=sorted(models))
    try:
        est = factory(seed, **spec.params)
    except TypeError as exc:
        raise SpecError(f"model.params do not fit {spec.kind!r}: {exc}") from None
    if not hasattr(est, "predict_proba"):
        raise SpecError(f"model.kind {spec.kind!r} has no predict_proba; pick a classifier.")
    return est


def _is_lightgbm(est) -> bool:
    return type(est).__module__.startswith("lightgbm")


@dataclass
class TabularModel:
    """A classifier plus the encoding of the schema's columns.

    ``fit`` validates and learns; learned attributes end in ``_``.
    """

    estimator: Any
    schema: TableSchema
    classes_: list[str] = field(default_factory=list)
    pipeline_: Any = None

    def _features(self) -> list[str]:
        return [c.name for c in self.schema.columns if c.type != "text"]

    def _frame(self, df: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=df.index)
        for col in self.schema.columns:
            if col.type == "text":
                continue
            s = df[col.name] if col.name in df.columns else pd.Series(np.nan, index=df.index)
            if col.type in ("float", "int"):
                out[col.name] = pd.to_numeric(s, errors="coerce").astype(float)
            elif col.type == "bool":
                out[col.name] = s.map(lambda v: np.nan if v is None else float(bool(v)))
            else:
                cats = col.categories or sorted(s.dropna().astype(str).unique())
                out[col.name] = pd.Categorical(s.astype(object).where(s.notna(), None),
                                               categories=cats)
        return out

    def _pipeline(self):
        if _is_lightgbm(self.estimator):
            return clone(self.estimator)
        cat = [c.name for c in self.schema.columns if c.type == "category"]
        num = [c.name for c in self.schema.columns if c.type in ("float", "int", "bool")]
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
                ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                      OneHotEncoder(handle_unknown="ignore")), cat),
            ]
        )
        return Pipeline([("pre", pre), ("model", clone(self.estimator))])

    def fit(self, df: pd.DataFrame, sample_weight: np.ndarray | None = None) -> TabularModel:
        X = self._frame(df)
        y = df[self.schema.target].astype(str).to_numpy()
        self.pipeline_ = self._pipeline()
        if not _is_lightgbm(self.estimator):
            X = X.astype({c.name: object for c in self.schema.columns if c.type == "category"})
        self.classes_ = fit_weighted(self.pipeline_, X, y, sample_weight)
        return self

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        X = self._frame(df)
        if not _is_lightgbm(self.estimator):
            X = X.astype({c.name: object for c in self.schema.columns if c.type == "category"})
        return align_proba(self.pipeline_.predict_proba(X), self.classes_, self.schema.classes)


def fit_weighted(pipeline, X, y, sample_weight: np.ndarray | None) -> list[str]:
    """Fit an estimator or a Pipeline whose last step is named ``model``, with optional
    sample weights; returns the classes it saw, as strings."""
    if sample_weight is None:
        pipeline.fit(X, y)
    elif isinstance(pipeline, Pipeline):
        pipeline.fit(X, y, model__sample_weight=sample_weight)
    else:
        pipeline.fit(X, y, sample_weight=sample_weight)
    return [str(c) for c in pipeline.classes_]


def align_proba(proba: np.ndarray, seen: list[str], classes: list[str]) -> np.ndarray:
    """Probabilities in the schema's class order, whatever classes the fit saw."""
    out = np.zeros((len(proba), len(classes)))
    for j, c in enumerate(seen):
        out[:, classes.index(c)] = proba[:, j]
    return out


def stratified_folds(y, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, held-out) positions of shuffled stratified folds: ``folds`` of them, fewer when
    the smallest class has fewer rows (never fewer than 2)."""
    y = np.asarray(y).astype(str)
    n_splits = max(2, min(folds, int(pd.Series(y).value_counts().min())))
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(y)), y))


def out_of_fold_proba(estimator, schema: TableSchema, df: pd.DataFrame, seed: int,
                      folds: int = 3) -> np.ndarray:
    """Out-of-fold predicted probabilities for real training rows."""
    y = df[schema.target].astype(str).to_numpy()
    out = np.zeros((len(df), len(schema.classes)))
    for tr, te in stratified_folds(y, folds, seed):
        m = TabularModel(estimator, schema).fit(df.iloc[tr])
        out[te] = m.predict_proba(df.iloc[te])
    return out
