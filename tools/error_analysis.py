"""Where the model is wrong or unsure, as a few human-readable regions.

A shallow decision tree is fitted to tell the model's errors (misclassified or low-confidence
rows of validation data and out-of-fold training data) from its successes. Each leaf with more
errors than average is a region: a conjunction such as ``int_rate > 14.2 and term == "term_60"``,
with its support, error rate and the recall of the class that matters inside it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.tree import DecisionTreeClassifier

from synthloop.data import TableSchema
from synthloop.evals.classification import predict_labels
from synthloop.tools.constraints import quote_name


class Condition(BaseModel):
    column: str
    op: str  # '<=', '>', '==', '!='
    value: float | str

    def text(self) -> str:
        col = quote_name(self.column)
        if isinstance(self.value, str):
            return f"{col} {self.op} {json.dumps(self.value)}"
        return f"{col} {self.op} {self.value:.6g}"


class Region(BaseModel):
    id: str
    rule: str
    conditions: list[Condition]
    label: str  # the class to generate rows of
    support: int
    errors: int
    error_rate: float
    positives: int
    recall: float | None  # recall of the class that matters inside the region

    def describe(self) -> str:
        rec = "n/a" if self.recall is None else f"{self.recall:.2f}"
        return (f"[{self.id}] {self.rule} — {self.support} rows, error rate "
                f"{self.error_rate:.2f}, recall of the class that matters {rec}, "
                f"generate '{self.label}'")


def analysis_threshold(proba_pos: np.ndarray, y_pos: np.ndarray, metric_threshold: float,
                       threshold_metric: bool) -> float:
    """The metric's own threshold, or for ranking metrics the one that flags as many rows as
    there are positives (so 'missed' means 'ranked below the positives' share')."""
    if threshold_metric:
        return metric_threshold
    k = max(1, int(y_pos.sum()))
    return float(np.sort(proba_pos)[::-1][min(k, len(proba_pos)) - 1])


def find_regions(
    df: pd.DataFrame,
    proba: np.ndarray,
    schema: TableSchema,
    *,
    threshold: float,
    margin: float,
    max_regions: int,
    max_depth: int,
    min_support: int,
    seed: int,
) -> tuple[list[Region], dict]:
    """Regions of ``df`` (real rows with true labels) where ``proba`` is wrong or unsure."""
    y = df[schema.target].astype(str).to_numpy()
    pos = schema.positive_class
    pred = predict_labels(proba, schema.classes, pos, threshold)
    p_pos = proba[:, schema.classes.index(pos)]
    # the margin is scaled to the threshold, so 0.15 means ±0.15 at 0.5 and ±0.03 at 0.1
    scaled = margin * 2 * min(threshold, 1 - threshold)
    unsure = np.abs(p_pos - threshold) < scaled if len(schema.classes) == 2 else (
        np.sort(proba, axis=1)[:, -1] - np.sort(proba, axis=1)[:, -2] < margin)
    error = (pred != y) | unsure
    summary = {
        "rows": int(len(y)),
        "errors": int(error.sum()),
        "misclassified": int((pred != y).sum()),
        "unsure": int(unsure.sum()),
        "threshold": float(threshold),
    }
    if error.sum() == 0:
        return [], summary

    X, encoded = _encode(df, schema)
    tree = DecisionTreeClassifier(
        max_depth=max_depth, min_samples_leaf=min_support, class_weight="balanced",
        random_state=seed,
    ).fit(X, error.astype(int))
    leaves = tree.apply(X)
    base_rate = error.mean()
    # a class's errors weigh by the inverse of its frequency, so a region is labelled by the
    # class the model is worst at there, not by the majority class's sheer numbers
    freq = pd.Series(y).value_counts(normalize=True).to_dict()
    found = []
    for leaf in np.unique(leaves):
        m = leaves == leaf
        n_err = int(error[m].sum())
        if m.sum() < min_support or n_err == 0 or error[m].mean() <= base_rate:
            continue
        conds = _path_conditions(tree, leaf, X.columns, encoded)
        wrong = pd.Series(y[m & error]).value_counts()
        label = str(max(wrong.index, key=lambda c: wrong[c] / freq[c]))
        is_pos = m & (y == pos)
        recall = float((pred[is_pos] == pos).mean()) if is_pos.any() else None
        weighted = float(sum(wrong[c] / freq[c] for c in wrong.index))
        found.append((weighted, n_err, conds, label, int(m.sum()), float(error[m].mean()),
                      int(is_pos.sum()), recall))
    found.sort(key=lambda t: (-t[0], -t[4]))
    regions = []
    for i, (_, n_err, conds, label, sup, rate, npos, rec) in enumerate(found[:max_regions]):
        rule = " and ".join(c.text() for c in conds) or "True"
        regions.append(Region(id=f"r{i + 1}", rule=rule, conditions=conds, label=label,
                              support=sup, errors=n_err, error_rate=round(rate, 4),
                              positives=npos, recall=None if rec is None else round(rec, 4)))
    if not regions:
        wrong = pd.Series(y[error]).value_counts()
        label = str(max(wrong.index, key=lambda c: wrong[c] / freq[c]))
        is_pos = y == pos
        regions.append(Region(
            id="r1", rule="True", conditions=[], label=label, support=int(len(y)),
            errors=int(error.sum()), error_rate=round(float(error.mean()), 4),
            positives=int(is_pos.sum()),
            recall=round(float((pred[is_pos] == pos).mean()), 4) if is_pos.any() else None,
        ))
    return regions, summary


def _encode(df: pd.DataFrame, schema: TableSchema):
    cols: dict[str, np.ndarray] = {}
    encoded: dict[str, tuple[str, str | None]] = {}
    for c in schema.columns:
        if c.type in ("float", "int", "bool"):
            s = pd.to_numeric(df[c.name].map(lambda v: v if not isinstance(v, bool) else float(v)),
                              errors="coerce")
            cols[c.name] = s.fillna(s.median() if s.notna().any() else 0.0).to_numpy(float)
            encoded[c.name] = (c.name, None)
        elif c.type == "category":
            for cat in (c.categories or []):
                key = f"{c.name}=={cat}"
                cols[key] = (df[c.name].astype(str) == cat).to_numpy(float)
                encoded[key] = (c.name, cat)
    return pd.DataFrame(cols, index=df.index), encoded


def _path_conditions(tree, leaf: int, names, encoded) -> list[Condition]:
    t = tree.tree_
    parent = {}
    for node in range(t.node_count):
        for child, side in ((t.children_left[node], "le"), (t.children_right[node], "gt")):
            if child != -1:
                parent[child] = (node, side)
    steps = []
    node = leaf
    while node in parent:
        p, side = parent[node]
        steps.append((names[t.feature[p]], side, float(t.threshold[p])))
        node = p
    steps.reverse()
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    eq: dict[str, str] = {}
    ne: dict[str, list[str]] = {}
    order: list[str] = []
    for feat, side, thr in steps:
        col, cat = encoded[feat]
        if col not in order:
            order.append(col)
        if cat is None:
            if side == "le":
                hi[col] = min(hi.get(col, np.inf), thr)
            else:
                lo[col] = max(lo.get(col, -np.inf), thr)
        elif side == "gt":
            eq[col] = cat
        else:
            ne.setdefault(col, []).append(cat)
    conds: list[Condition] = []
    for col in order:
        if col in eq:
            conds.append(Condition(column=col, op="==", value=eq[col]))
            continue
        for cat in ne.get(col, []):
            conds.append(Condition(column=col, op="!=", value=cat))
        if col in lo:
            conds.append(Condition(column=col, op=">", value=round(lo[col], 6)))
        if col in hi:
            conds.append(Condition(column=col, op="<=", value=round(hi[col], 6)))
    return conds


class TreeAnalyser:
    """A shallow decision tree on errors and unsure rows; its worst leaves are the regions."""

    def analyse(self, rows: pd.DataFrame, proba: np.ndarray, schema: TableSchema, *,
                threshold: float, settings, seed: int) -> tuple[list[Region], dict]:
        return find_regions(
            rows, proba, schema, threshold=threshold, margin=settings.low_confidence_margin,
            max_regions=settings.max_regions, max_depth=settings.max_depth,
            min_support=settings.min_support, seed=seed,
        )
