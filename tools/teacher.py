"""Teacher labels: synthetic rows labelled by models fitted on real rows (``curation.teacher``).

A small generator writes plausible rows but does not know their label: on adult, the embedded
SmolLM2-135M ranks real rows by "earns more than $50,000" at AUC 0.60, a random forest on 40
real rows at 0.77. The rows are still useful *inputs*. The teacher (the average probability of
a few model kinds fitted on real rows) labels each one softly: a synthetic row counts once per
class, weighted by the teacher's probability of that class. The model then learns the
teacher's smoother decision function where the real rows are few (knowledge distillation with
a synthetic transfer set, as in Bucila et al., "Model compression", 2006).

The row's own label column keeps what the generator wrote, for inspection; the probabilities
sit in ``_sl_teacher:<class>`` columns, and ``expand_soft`` turns them into weighted rows
wherever a model is fitted. A row without them (a reviewer's row) keeps its hard label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthloop.data import TableSchema

PREFIX = "_sl_teacher:"
MIN_WEIGHT = 1e-3  # a class the teacher gives less than this adds no row


def soft_columns(schema: TableSchema) -> list[str]:
    return [f"{PREFIX}{c}" for c in schema.classes]


def teacher_columns(frame: pd.DataFrame) -> list[str]:
    """The teacher's probability columns ``frame`` has (none when no teacher labelled it)."""
    return [c for c in frame.columns if str(c).startswith(PREFIX)]


@dataclass
class Teacher:
    """The mean predicted probability of ``kinds`` (model names from the registry), each fitted
    on the same real rows."""

    kinds: list[str]
    seed: int
    n_rows: int = 0
    models_: list = field(default_factory=list)

    def fit(self, real: pd.DataFrame, schema: TableSchema, registry=None) -> Teacher:
        from synthloop.spec import ModelSpec
        from synthloop.tools.training import TabularModel, make_estimator

        self.models_ = [TabularModel(make_estimator(ModelSpec(kind=k), self.seed, registry),
                                     schema).fit(real) for k in self.kinds]
        self.n_rows = len(real)
        return self

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.mean([m.predict_proba(frame) for m in self.models_], axis=0)

    def label(self, frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
        """``frame`` with the teacher's probability of each class in its soft columns. A row
        that already has soft columns left empty (a reviewer's row: a person's label) keeps
        them empty."""
        cols = soft_columns(schema)
        hard = (frame[cols].isna().any(axis=1).to_numpy() if all(c in frame for c in cols)
                else np.zeros(len(frame), bool))
        out = frame.drop(columns=teacher_columns(frame))
        if not len(out):
            return out.assign(**{c: pd.Series(dtype=float) for c in cols})
        p = np.round(self.proba(out), 6)
        p[hard] = np.nan
        return out.assign(**{c: p[:, j] for j, c in enumerate(cols)})


def expand_soft(synthetic: pd.DataFrame, schema: TableSchema,
                weight: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic rows ready to fit on, and their sample weights: a row with teacher
    probabilities becomes one row per class, weighted ``weight`` × the class's probability
    (classes under ``MIN_WEIGHT`` left out); a row without them stays as it is, at ``weight``."""
    cols = soft_columns(schema)
    if not all(c in synthetic.columns for c in cols):
        return synthetic, np.full(len(synthetic), weight)
    p = synthetic[cols].to_numpy(dtype=float)
    hard = np.isnan(p).any(axis=1)
    parts, weights = [synthetic[hard]], [np.full(int(hard.sum()), weight)]
    soft = synthetic[~hard]
    for j, c in enumerate(schema.classes):
        w = p[~hard, j]
        on = w >= MIN_WEIGHT
        parts.append(soft[on].assign(**{schema.target: c}))
        weights.append(weight * w[on])
    return pd.concat(parts, ignore_index=True), np.concatenate(weights)
