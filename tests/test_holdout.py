"""The holdout never reaches generation, curation, acceptance or stopping: only the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthloop.graphs import loop, nodes
from synthloop.graphs.context import HOLDOUT, TRAIN, LoopContext
from synthloop.store import RunStore
from tests.fakes import scripted
from tests.support import make_spec, run

RUN_ID = "same-id"


def permuting_holdout_labels(real_split):
    """A split_real that returns the same split with the holdout's labels shuffled."""
    def split(df, spec, schema):
        train, val, holdout = real_split(df, spec, schema)
        holdout = holdout.copy()
        rng = np.random.default_rng(12345)
        holdout[schema.target] = rng.permutation(holdout[schema.target].to_numpy())
        return train, val, holdout
    return split


def decisions(runs_dir) -> dict:
    """Everything the loop decided, read back from its run folder."""
    root = runs_dir / RUN_ID
    summary = json.loads((root / "summary.json").read_text())
    return {
        "stop_reason": summary["stop_reason"],
        "iterations": [{k: v for k, v in r.items() if k != "seconds"}
                       for r in summary["iterations"]],
        "analysis": [json.loads(p.read_text()) for p in sorted((root / "analysis").glob("*.json"))],
        "prompts": [p.read_text() for p in sorted((root / "prompts").glob("*.yaml"))],
        "validation": (summary["baseline"]["validation"], summary["final"]["validation"]),
        "synthetic_sha256": summary["synthetic_sha256"],
        "events": summary["events"],
    }


class TestHoldoutIsolation:
    def test_permuted_holdout_labels_change_only_the_report(self, spec_dict, tmp_path,
                                                            monkeypatch):
        # Setup: one run on the real split, one where only the holdout's labels are shuffled
        spec = make_spec(spec_dict, budget={"max_iterations": 2})
        plain_model, permuted_model = scripted(), scripted()
        plain = run(spec, tmp_path / "plain", plain_model, run_id=RUN_ID)
        monkeypatch.setattr(nodes, "split_real", permuting_holdout_labels(nodes.split_real))

        # Run
        permuted = run(spec, tmp_path / "permuted", permuted_model, run_id=RUN_ID)

        # Assert: the two holdouts differ in their labels only
        h1 = pd.read_parquet(tmp_path / "plain" / RUN_ID / HOLDOUT)
        h2 = pd.read_parquet(tmp_path / "permuted" / RUN_ID / HOLDOUT)
        features = [c for c in h1.columns if c != "diagnosis"]
        pd.testing.assert_frame_equal(h1[features], h2[features])
        assert (h1["diagnosis"] != h2["diagnosis"]).sum() > 5
        # every prompt sent to the LLM is identical
        assert len(plain_model.calls) == len(permuted_model.calls) > 0
        assert [(c["system"], c["user"], c["params"]) for c in plain_model.calls] == \
            [(c["system"], c["user"], c["params"]) for c in permuted_model.calls]
        # every decision and the synthetic data are identical
        assert decisions(tmp_path / "plain") == decisions(tmp_path / "permuted")
        assert plain["synthetic_rows"] > 0
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "plain" / RUN_ID / "data/synthetic.parquet"),
            pd.read_parquet(tmp_path / "permuted" / RUN_ID / "data/synthetic.parquet"))
        # only the report's holdout figures change
        assert plain["baseline"]["holdout"] != permuted["baseline"]["holdout"]
        assert plain["final"]["holdout"] != permuted["final"]["holdout"]
        assert plain["holdout_all_metrics"] != permuted["holdout_all_metrics"]

    def test_holdout_is_read_once_by_the_report(self, spec_dict, tmp_path, monkeypatch):
        # Setup: record every frame the run store reads
        reads: list[str] = []
        real_read = RunStore.read_frame

        def spy(self, rel):
            reads.append(rel)
            return real_read(self, rel)

        monkeypatch.setattr(RunStore, "read_frame", spy)
        report_reads: list[int] = []
        real_report = nodes.report

        def report(state, ctx):
            report_reads.append(len(reads))
            return real_report(state, ctx)

        monkeypatch.setattr(loop, "NODES",
                            [(n, report if n == "report" else f) for n, f in loop.NODES])

        # Run
        run(make_spec(spec_dict, budget={"max_iterations": 1}), tmp_path, scripted())

        # Assert: no node before the report read the holdout; the report read it once
        (start,) = report_reads
        assert HOLDOUT not in reads[:start]
        assert reads[start:].count(HOLDOUT) == 1


class TestLoopContext:
    def test_frame_refuses_the_holdout(self, tmp_path, cancer_df):
        # Setup
        store = RunStore(tmp_path / "r")
        store.write_frame(HOLDOUT, cancer_df)
        store.write_frame(TRAIN, cancer_df)
        ctx = LoopContext(spec=make_spec({"data": {"source": "x.csv", "target": "diagnosis"}}),
                          store=store, client=None)

        # Run / Assert
        with pytest.raises(PermissionError, match="report node only"):
            ctx.frame(HOLDOUT)
        assert len(ctx.frame(TRAIN)) == len(cancer_df)
        assert len(ctx.holdout_for_report()) == len(cancer_df)
