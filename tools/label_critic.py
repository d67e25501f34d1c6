"""Does a synthetic row's label agree with what its class means? A check that knows the domain.

A small generator does not know the label: on adult-lowdata, SmolLM2-135M asked whether a
person earns more than $50,000 ranks real rows at AUC 0.60, and the rows it writes for an
error region carry noisier labels than real rows. The embedded sentence encoder
(all-MiniLM-L6-v2) knows more: a row written as "age 52, education Masters, occupation
Exec-managerial, ..." lies nearer "This person earns more than $50,000 a year." than "... less
than ..." often enough to rank 2,000 real test rows at AUC 0.72, with no label at all.

The user gives one sentence per class (``curation.label_critic``). Each row, as "column value,
..." text without its label, is embedded with the sentences; its cosines to them (for two
classes, the difference) are the critic's features. A logistic regression on those features,
fitted on the real training rows (classes balanced), turns them into a class: a synthetic row
is dropped when the critic gives another class than its label. The regression learns which way
each sentence points from the real rows, so a sentence set the wrong way round is read the
right way. Text columns are left out of the row's text. Before it is trusted the critic is scored on the
real training rows out of fold (ROC-AUC, one-vs-rest for more classes); under ``min_auc`` it
is switched off for the run, since sentences the encoder cannot read against the rows (lab
values, codes) would only drop rows at random. Nothing is fitted on anything but the real
training rows (a stratified sample of 5,000 when there are more), and the fitted critic is
stored in the run folder like the other checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from synthloop.data import TableSchema
from synthloop.errors import SpecError

MAX_FIT_ROWS = 5000  # a seeded, stratified sample of larger training splits is embedded


def _cell(value) -> str:
    """A number as a person writes it (52, not 52.0; 0.3, not 0.30000000000000004)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    return np.format_float_positional(float(value), precision=4, trim="-")


def row_texts(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Each row as "column value, column value, ..." (missing values left out)."""
    return [", ".join(f"{c} {_cell(row[c])}" for c in columns if not pd.isna(row[c]))
            for _, row in frame[columns].iterrows()]


def check_sentences(sentences: dict[str, str], schema: TableSchema) -> None:
    """One sentence for each class of the target, and none for anything else."""
    missing = [c for c in schema.classes if c not in sentences]
    unknown = [c for c in sentences if c not in schema.classes]
    if missing or unknown:
        wrong = "; ".join(([f"missing: {', '.join(missing)}"] if missing else [])
                          + ([f"not a class: {', '.join(unknown)}"] if unknown else []))
        raise SpecError(f"curation.label_critic needs one sentence for each class of "
                        f"'{schema.target}' ({', '.join(schema.classes)}); {wrong}. Give it as "
                        "{CLASS: SENTENCE, ...}.")


class LabelCritic:
    """Fitted on real training rows; ``contradicted(batch)`` flags rows whose label the class
    sentences contradict (none while ``active`` is False)."""

    def __init__(self, sentences: dict[str, str], min_auc: float, seed: int = 0,
                 embedder=None):
        self.sentences = dict(sentences)
        self.min_auc = min_auc
        self.seed = seed
        self.embedder = embedder

    def _embedder(self):
        if self.embedder is None:
            from synthloop.tools.text import Embedder

            self.embedder = Embedder()
        return self.embedder

    def _features(self, frame: pd.DataFrame) -> np.ndarray:
        cos = self._embedder().embed(row_texts(frame, self.columns_)) @ self.class_vectors_.T
        return cos[:, :1] - cos[:, 1:] if cos.shape[1] == 2 else cos

    def fit(self, train: pd.DataFrame, schema: TableSchema) -> LabelCritic:
        check_sentences(self.sentences, schema)
        if len(train) > MAX_FIT_ROWS:
            train = train.groupby(schema.target, group_keys=False).sample(
                frac=MAX_FIT_ROWS / len(train), random_state=self.seed)
        self.classes_ = list(schema.classes)
        self.target_ = schema.target
        self.columns_ = [c.name for c in schema.columns if c.type != "text"]
        self.class_vectors_ = self._embedder().embed([self.sentences[c] for c in self.classes_])
        X = self._features(train)
        y = train[schema.target].astype(str).to_numpy()
        # balanced: a plain fit on imbalanced rows would call most minority rows wrong
        self.model_ = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
        folds = min(5, int(pd.Series(y).value_counts().min()))
        self.auc_ = None
        if folds >= 2:
            oof = cross_val_predict(
                self.model_, X, y, method="predict_proba",
                cv=StratifiedKFold(folds, shuffle=True, random_state=self.seed))
            labels = sorted(set(y))  # cross_val_predict's column order
            self.auc_ = float(roc_auc_score(y, oof[:, 1]) if len(labels) == 2 else
                              roc_auc_score(y, oof, multi_class="ovr", labels=labels))
        self.model_.fit(X, y)
        self.active = self.min_auc == 0 or (self.auc_ is not None and self.auc_ >= self.min_auc)
        self.rows_ = len(train)
        # the share of real rows of each class it would drop: what it costs real-looking rows
        said = self.model_.predict(X)
        self.real_contradicted_ = {c: round(float(np.mean(said[y == c] != c)), 4)
                                   for c in self.classes_ if (y == c).any()}
        return self

    def contradicted(self, batch: pd.DataFrame) -> np.ndarray:
        if not self.active or batch.empty:
            return np.zeros(len(batch), bool)
        said = self.model_.predict(self._features(batch))
        return said != batch[self.target_].astype(str).to_numpy()

    def describe(self) -> dict:
        return {"sentences": self.sentences, "real_rows": self.rows_,
                "out_of_fold_auc": None if self.auc_ is None else round(self.auc_, 4),
                "min_auc": self.min_auc, "active": self.active,
                "real_rows_contradicted": self.real_contradicted_}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "embedder": None}  # the encoder comes back on first use
