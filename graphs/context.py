"""What nodes need besides the state: the spec, the run store, the LLM client, the registry.

Nothing here is checkpointed; everything is either configuration or derived from files in the
run store, so a resumed process rebuilds the same context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from synthloop.data import TableSchema
from synthloop.errors import HoldoutAccessError
from synthloop.llm import LLMClient
from synthloop.spec import LoopSpec
from synthloop.store import RunStore

TRAIN = "data/real_train.parquet"
VALIDATION = "data/real_validation.parquet"
HOLDOUT = "data/real_holdout.parquet"
SCHEMA = "schema.json"
LEAKAGE = "data/leakage_index.joblib"
CONSISTENCY = "data/consistency_model.joblib"
LABEL_CRITIC = "data/label_critic.joblib"
TEACHER = "data/teacher.joblib"
TEACHER_FINAL = "data/teacher_final.joblib"
SYNTHETIC = "data/synthetic.parquet"
# the text loop
REAL_TEXTS = "data/real_texts.joblib"  # real texts and embeddings for the grounding gate
CHROMA = "chroma"  # the persistent Chroma collection of real training texts
EMBEDDINGS = "embeddings"  # the on-disk embedding cache


@dataclass
class LoopContext:
    spec: LoopSpec
    store: RunStore
    client: LLMClient | None
    registry: Any = None
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    # accept_on: cross_validation: out-of-fold probabilities per set of synthetic batches
    decisions: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.registry is None:  # the installed components (built-ins and plugins)
            from synthloop.tools.registry import default_registry

            self.registry = default_registry()

    @cached_property
    def schema(self) -> TableSchema:
        return TableSchema.model_validate(self.store.read_json(SCHEMA))

    @cached_property
    def train_oof(self) -> np.ndarray:
        """Out-of-fold probabilities of the spec's model over the real training rows (3 folds,
        seeded by the spec): the same for every iteration of a run, so computed once."""
        from synthloop.tools.training import make_estimator, out_of_fold_proba

        est = make_estimator(self.spec.model, self.spec.seed, self.registry)
        return out_of_fold_proba(est, self.schema, self.frame(TRAIN), self.spec.seed)

    def train_hardness(self) -> np.ndarray:
        """Per real training row, how wrong the model is on it out of fold: 1 - p(its class)."""
        y = self.frame(TRAIN)[self.schema.target].astype(str).to_numpy()
        col = np.array([self.schema.classes.index(v) for v in y])
        return 1.0 - self.train_oof[np.arange(len(y)), col]

    @cached_property
    def embedder(self):
        """The sentence embedder (the text loop's, and the label critic's), caching on disk in
        the run folder."""
        from synthloop.tools.text import Embedder

        return Embedder(cache_dir=self.store.root / EMBEDDINGS)

    @cached_property
    def corpus(self):
        """The Chroma collection of the real training texts (text loop only)."""
        from synthloop.tools.text import TrainingCorpus

        return TrainingCorpus(self.store.root / CHROMA, self.embedder)

    def frame(self, rel: str) -> pd.DataFrame:
        if rel == HOLDOUT:
            raise HoldoutAccessError(
                "The holdout is read by the report node only; use holdout_for_report() there."
            )
        if rel not in self._frames:
            self._frames[rel] = self.store.read_frame(rel)
        return self._frames[rel]

    def holdout_for_report(self) -> pd.DataFrame:
        return self.store.read_frame(HOLDOUT)

    def synthetic(self, paths: list[str]) -> pd.DataFrame | None:
        if not paths:
            return None
        return pd.concat([self.frame(p) for p in paths], ignore_index=True)
