"""Test helpers: a small real data set (sklearn's bundled breast cancer data, made
imbalanced), a loop spec small enough to run in seconds, and a runner with a fake LLM."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer

from synthloop.runner import run_loop
from synthloop.spec import LoopSpec, validate_spec

FEATURES = ["mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness",
            "mean concavity", "worst radius", "worst concave points"]


def cancer_frame(n_benign: int = 240, n_malignant: int = 48, seed: int = 0) -> pd.DataFrame:
    """Real rows: 8 features (snake_case names), label 'malignant' (the minority) or 'benign'."""
    data = load_breast_cancer(as_frame=True)
    df = data.frame[[*FEATURES, "target"]].copy()
    df.columns = [c.replace(" ", "_") for c in FEATURES] + ["diagnosis"]
    df["diagnosis"] = df["diagnosis"].map({0: "malignant", 1: "benign"})
    benign = df[df.diagnosis == "benign"].sample(n_benign, random_state=seed)
    malignant = df[df.diagnosis == "malignant"].sample(n_malignant, random_state=seed)
    return pd.concat([benign, malignant]).sample(frac=1, random_state=seed).reset_index(drop=True)


def base_spec(source: str | Path, **sections: Any) -> dict:
    """A spec dict for the cancer data; ``sections`` merge into its sections."""
    spec = {
        "name": "cancer",
        "data": {"source": str(source), "target": "diagnosis", "positive_class": "malignant"},
        "model": {"kind": "logistic_regression"},
        "metric": {"name": "pr_auc"},
        "budget": {"max_iterations": 1, "rows_per_iteration": 12, "patience": 5,
                   "max_synthetic_share": 0.3},
        "generator": {"rows_per_call": 4, "few_shot": 3},
        "analysis": {"max_regions": 2},
        # the fake generators move each number of a row on its own, which is what the
        # consistency check drops; tests/test_consistency.py switches it on
        "curation": {"consistency_quantile": 0},
        "llm": "embedded",
        "seed": 3,
    }
    return merge_sections(spec, sections)


def merge_sections(spec: dict, sections: dict[str, Any]) -> dict:
    """A copy of ``spec`` with ``sections`` merged in (a dict section key by key)."""
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return copy.deepcopy(spec)


def make_spec(spec: dict, **sections: Any) -> LoopSpec:
    merged = copy.deepcopy(spec)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return validate_spec(merged)


def run(spec: dict | LoopSpec, runs_dir: Path, model, run_id: str = "run", **kw) -> dict:
    """Run a loop with a fake chat model, no LLM cache and an in-memory checkpointer unless
    told otherwise."""
    from langgraph.checkpoint.memory import InMemorySaver

    s = spec if isinstance(spec, LoopSpec) else validate_spec(spec)
    kw.setdefault("cache_dir", None)
    kw.setdefault("checkpointer", InMemorySaver())
    return run_loop(s, runs_dir, chat_model=model, run_id=run_id, **kw)
