"""The loop's graph state: small things only (ids, paths, hashes, metrics, prompt versions).

Frames and models live in the run store and are referenced here by path relative to the run
folder, which keeps checkpoints small and resume exact. History fields are append-only.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class LoopState(TypedDict, total=False):
    run_id: str
    status: str  # running | finished
    iteration: int
    # prepare
    classes: list[str]
    positive: str
    n_train: int
    n_validation: int
    n_holdout: int
    ranked_columns: list[str]
    # models and metrics (validation only until the report)
    baseline_model: str
    current_model: str
    baseline_validation: float
    best_validation: float
    no_improvement: int
    # analysis
    regions: list[dict]
    analysis: dict[str, Any]
    confidence_floors: dict[str, float]
    region_floors: dict[str, dict[str, float]]
    # prompt and the batch in flight
    prompt: dict[str, Any]
    batch: dict[str, Any]
    # accepted synthetic data
    synthetic_batches: list[str]
    synthetic_rows: int
    synthetic_sha256: str
    # budgets and stop
    tokens_used: int
    stop_reason: str | None
    # histories
    iterations: Annotated[list[dict], operator.add]
    usage: Annotated[list[dict], operator.add]
    timings: Annotated[list[dict], operator.add]
    events: Annotated[list[dict], operator.add]
