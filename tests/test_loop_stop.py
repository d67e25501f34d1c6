"""Each stop reason of the loop, recorded in summary['stop_reason']."""

from __future__ import annotations

from sklearn.datasets import load_iris

from synthloop.spec import METRICS
from tests.fakes import garbage_reply, loop_script, scripted
from tests.support import make_spec, run


class TestStopReasons:
    def test_target_reached_stops_before_any_llm_call(self, spec_dict, tmp_path):
        # Setup: a target the baseline already beats
        spec = make_spec(spec_dict, metric={"target": 0.3}, budget={"max_iterations": 3})
        model = scripted()

        # Run
        summary = run(spec, tmp_path, model)

        # Assert
        assert summary["stop_reason"] == "target_reached"
        assert summary["baseline"]["validation"] >= 0.3
        assert summary["iterations"] == []
        assert model.calls == []

    def test_max_iterations(self, spec_dict, tmp_path):
        spec = make_spec(spec_dict, budget={"max_iterations": 2, "patience": 10})
        model = scripted()

        summary = run(spec, tmp_path, model)

        assert summary["stop_reason"] == "max_iterations"
        assert [r["iteration"] for r in summary["iterations"]] == [1, 2]
        assert len(model.calls_of("rewrite")) == 2

    def test_zero_iterations_is_max_iterations(self, spec_dict, tmp_path):
        spec = make_spec(spec_dict, budget={"max_iterations": 0})
        model = scripted()

        summary = run(spec, tmp_path, model)

        assert summary["stop_reason"] == "max_iterations"
        assert summary["iterations"] == []
        assert model.calls == []

    def test_no_improvement_after_patience_rejected_batches(self, spec_dict, tmp_path):
        # Setup: the generator never returns a usable row, so no batch improves anything
        spec = make_spec(spec_dict, budget={"max_iterations": 5, "patience": 2})
        model = scripted(loop_script(generate=garbage_reply))

        # Run
        summary = run(spec, tmp_path, model)

        # Assert: two iterations without improvement, then the stop
        assert summary["stop_reason"] == "no_improvement"
        assert len(summary["iterations"]) == 2
        assert not any(r["accepted"] for r in summary["iterations"])

    def test_token_budget(self, spec_dict, tmp_path):
        spec = make_spec(spec_dict, budget={"max_iterations": 5, "max_llm_tokens": 50})
        model = scripted()

        summary = run(spec, tmp_path, model)

        assert summary["stop_reason"] == "token_budget"
        # one iteration spends far more than 50 tokens; the loop stops right after it
        assert len(summary["iterations"]) == 1
        assert summary["total_tokens"] >= 50

    def test_wall_clock(self, spec_dict, tmp_path):
        # Setup: a wall-clock budget that preparing and training alone exceed
        spec = make_spec(spec_dict, budget={"max_iterations": 5, "max_wall_seconds": 0.001})
        model = scripted()

        summary = run(spec, tmp_path, model)

        assert summary["stop_reason"] == "wall_clock"
        assert summary["iterations"] == []
        assert model.calls == []

    def test_no_errors_on_separable_data(self, tmp_path):
        # Setup: iris setosa vs the rest is linearly separable: no error region is left
        df = load_iris(as_frame=True).frame
        df.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
        df["species"] = df["species"].map({0: "setosa", 1: "other", 2: "other"})
        df.to_csv(tmp_path / "iris.csv", index=False)
        spec = make_spec({
            "data": {"source": str(tmp_path / "iris.csv"), "target": "species",
                     "positive_class": "setosa"},
            "model": {"kind": "logistic_regression"}, "metric": {"name": "f1"},
            "budget": {"max_iterations": 3},
        })
        model = scripted()

        # Run
        summary = run(spec, tmp_path / "runs", model)

        # Assert
        assert summary["stop_reason"] == "no_errors"
        assert summary["iterations"] == []
        assert model.calls == []


class TestSummary:
    def test_summary_is_complete(self, spec_dict, tmp_path):
        spec = make_spec(spec_dict, budget={"max_iterations": 1})

        summary = run(spec, tmp_path, scripted(), run_id="complete")

        assert summary["run_id"] == "complete"
        assert summary["status"] == "finished"
        assert summary["metric"] in METRICS
        for key in ("baseline", "final"):
            assert set(summary[key]) == {"validation", "holdout"}
        assert set(summary["holdout_all_metrics"]) == {"baseline", "final"}
        assert summary["split"]["train"] + summary["split"]["validation"] + \
            summary["split"]["holdout"] == 288
        assert (tmp_path / "complete" / "summary.json").is_file()
        assert (tmp_path / "complete" / "models" / "final.joblib").is_file()


class TestColumnNames:
    def test_columns_that_are_not_identifiers_run_end_to_end(self, tmp_path):
        # Setup: the cancer data with sklearn's own names ("mean radius", ...), which error
        # regions must quote as `mean radius` to stay parseable
        from tests.support import FEATURES, base_spec, cancer_frame

        df = cancer_frame()
        df.columns = [*FEATURES, "diagnosis"]
        df.to_csv(tmp_path / "cancer.csv", index=False)
        spec = make_spec(base_spec(tmp_path / "cancer.csv"), budget={"max_iterations": 1})

        # Run
        summary = run(spec, tmp_path / "runs", scripted(loop_script()))

        # Assert: the loop finished its iteration, and regions name the columns in backticks
        assert summary["status"] == "finished"
        assert len(summary["iterations"]) == 1
        rules = summary["iterations"][0]["focus_regions"]
        assert rules and any("`" in r for r in rules)


class TestPerfectValidation:
    """A perfect validation score stops the loop unless budget.stop_on_perfect_validation is
    off; then it goes on while the analysis still names regions (from the out-of-fold training
    rows) and stops with no_errors when it names none."""

    @staticmethod
    def decide_with(spec_dict, stop: bool, regions: list) -> str | None:
        from types import SimpleNamespace

        from synthloop.graphs.nodes import decide
        from synthloop.tools.registry import default_registry

        spec = make_spec(spec_dict, metric={"name": "roc_auc"},
                         budget={"max_iterations": 5, "stop_on_perfect_validation": stop})
        state = {"best_validation": 1.0, "iteration": 1, "no_improvement": 0,
                 "tokens_used": 0, "timings": [], "regions": regions}
        return decide(state, SimpleNamespace(spec=spec, registry=default_registry()))["stop_reason"]

    def test_perfect_score_stops_by_default(self, spec_dict):
        assert self.decide_with(spec_dict, True, [{"rule": "x > 1"}]) == "no_errors"

    def test_off_goes_on_while_regions_remain(self, spec_dict):
        assert self.decide_with(spec_dict, False, [{"rule": "x > 1"}]) is None

    def test_off_stops_when_no_region_is_left(self, spec_dict):
        assert self.decide_with(spec_dict, False, []) == "no_errors"
