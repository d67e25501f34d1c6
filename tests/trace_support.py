"""A finished run with something to inspect, made with the scripted LLM: iteration 1 keeps
jittered real rows, iteration 2 writes benign-looking rows labelled malignant (refused: the
validation metric drops, or curation drops them), iteration 3 writes rows far out of range
(the batch is blocked for its violation rate). SQLite checkpoints, as in production."""

from __future__ import annotations

from pathlib import Path

from synthloop.runner import run_loop
from tests.fakes import (
    by_revision,
    jittered_rows_reply,
    loop_script,
    out_of_range_reply,
    rows_from_frame_reply,
    scripted,
)
from tests.support import base_spec, cancer_frame, make_spec

TRACED = "traced"


def traced_spec(folder: Path):
    path = folder / "cancer.csv"
    cancer_frame().to_csv(path, index=False)
    return make_spec(base_spec(path), budget={"max_iterations": 3, "patience": 5},
                     generator={"repair_out_of_range": False},
                     # iteration 2's label-noise rows pass the more lenient per-region floor
                     # and then fail the accept check; with the class floor curation drops them
                     # and the rest of the batch is kept, which the fork tests rely on
                     curation={"max_violation_rate": 0.5, "per_region": False},
                     # iteration 2's kept rows move validation by a hair either way (how
                     # far depends on the generator's projection into the region); a small
                     # tolerance keeps that batch accepted, partly cut by the blend cap
                     blend={"synthetic_weight": 10, "max_validation_drop": 0.01})


def traced_model():
    df = cancer_frame()
    benign = df[df.diagnosis == "benign"]
    return scripted(loop_script(generate=by_revision(
        jittered_rows_reply, rows_from_frame_reply(benign), out_of_range_reply)))


def make_traced_run(folder: Path, run_id: str = TRACED) -> tuple[Path, dict]:
    """(runs dir, summary) of the traced run in ``folder / 'runs'``."""
    runs = folder / "runs"
    summary = run_loop(traced_spec(folder), runs, chat_model=traced_model(), run_id=run_id,
                       cache_dir=None)
    return runs, summary
