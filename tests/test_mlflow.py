"""Optional MLflow logging: a finished run's spec, per-iteration metrics, prompt versions and
synthetic data land in a local MLflow file store; without mlflow installed, one line says how
to install it."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml
from typer.testing import CliRunner

from synthloop.cli import app
from synthloop.errors import SynthloopError
from synthloop.mlflow_log import INSTALL_HINT, log_run, require_mlflow
from tests.test_cli import assert_one_error_line
from tests.trace_support import TRACED

runner = CliRunner()


@pytest.fixture
def run_dir(traced_run, tmp_path):
    """A copy of the traced run (logging writes mlflow.json into the run folder)."""
    shutil.copytree(traced_run[0] / TRACED, tmp_path / "runs" / TRACED)
    return tmp_path / "runs" / TRACED


class TestMlflowLogging:
    def test_params_metrics_and_artifacts_in_a_local_file_store(self, run_dir, monkeypatch):
        pytest.importorskip("mlflow")
        from mlflow.tracking import MlflowClient

        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        summary = json.loads((run_dir / "summary.json").read_text())

        rec = log_run(run_dir)

        # Assert: the default store is RUNS_DIR/mlruns, and mlflow.json says where it went
        assert rec["tracking_uri"] == (run_dir.parent / "mlruns").resolve().as_uri()
        assert json.loads((run_dir / "mlflow.json").read_text()) == rec
        client = MlflowClient(rec["tracking_uri"])
        run = client.get_run(rec["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert run.info.run_name == TRACED
        assert run.data.params["generator.temperature"] == "0.8"
        assert run.data.params["data.target"] == "diagnosis"
        assert run.data.tags["synthloop.run_id"] == TRACED
        assert run.data.tags["synthloop.prompt.v002.sha256"] == yaml.safe_load(
            (run_dir / "prompts/cancer-gen.v002.yaml").read_text())["sha256"]
        hist = client.get_metric_history(rec["mlflow_run_id"], "validation_metric")
        assert sorted((m.step, m.value) for m in hist) == [
            (r["iteration"], r["validation_metric"]) for r in summary["iterations"]
            if r["validation_metric"] is not None]
        assert run.data.metrics["lift_holdout"] == summary["lift"]["holdout"]
        assert run.data.metrics["lift_validation_se"] == summary["lift"]["validation_se"]
        assert run.data.metrics["total_tokens"] == summary["total_tokens"]
        top = {a.path for a in client.list_artifacts(rec["mlflow_run_id"])}
        assert {"prompts", "data", "iterations", "analysis", "spec.yaml", "summary.json",
                "report.html"} <= top
        prompts = {a.path for a in client.list_artifacts(rec["mlflow_run_id"], "prompts")}
        assert prompts == {f"prompts/{p.name}" for p in (run_dir / "prompts").glob("*.yaml")}
        data = {a.path for a in client.list_artifacts(rec["mlflow_run_id"], "data")}
        assert "data/synthetic.parquet" in data

    def test_cli_logs_to_the_given_store(self, run_dir, tmp_path):
        pytest.importorskip("mlflow")
        uri = (tmp_path / "elsewhere").as_uri()

        result = runner.invoke(app, ["runs", "mlflow", TRACED, "--runs-dir", str(run_dir.parent),
                                     "--tracking-uri", uri, "--experiment", "trace-test"])

        assert result.exit_code == 0, result.output
        assert "mlflow: logged run" in result.stderr and "trace-test" in result.stderr
        assert (tmp_path / "elsewhere").is_dir()


class TestWithoutMlflow:
    @pytest.fixture(autouse=True)
    def no_mlflow(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
        monkeypatch.setitem(sys.modules, "mlflow.tracking", None)

    def test_library_says_how_to_install(self):
        with pytest.raises(SynthloopError, match=r"pip install 'synthloop\[mlflow\]'"):
            require_mlflow()

    def test_runs_mlflow_is_one_line(self, run_dir):
        result = runner.invoke(app, ["runs", "mlflow", TRACED, "--runs-dir", str(run_dir.parent)])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, INSTALL_HINT)

    def test_run_with_mlflow_fails_before_running(self, cancer_csv, tmp_path):
        spec = cancer_csv.parent / "spec.yaml"
        spec.write_text(yaml.safe_dump({"data": {"source": "cancer.csv", "target": "diagnosis"}}))

        result = runner.invoke(app, ["run", str(spec), "--runs-dir", str(tmp_path / "runs"),
                                     "--mlflow"])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, INSTALL_HINT)
        assert not (tmp_path / "runs").exists()
