"""Bad input through the CLI: exit code 2, one line on stderr starting with 'error:', no
traceback, and no run folder left behind (a run that failed on its input has nothing to
resume, so ``runs/`` holds nothing for it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthloop.cli import app

runner = CliRunner()


def write_spec(folder: Path, spec: dict, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


def run_folders(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir()) if runs.exists() else []


def assert_one_error_line(stderr: str, *fragments: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    (line,) = lines
    assert line.startswith("error: ")
    for fragment in fragments:
        assert fragment in line
    return line


BAD_INPUTS = {
    # case: (spec edits, fragments the error line must show)
    "missing data file": (
        {"data": {"source": "nothere.csv", "target": "diagnosis"}},
        ["nothere.csv", "does not exist", "data.source"]),
    "unknown target": (
        {"data": {"source": "cancer.csv", "target": "label"}},
        ["Target column 'label' is not in the data", "diagnosis"]),
    "positive class never occurs": (
        {"data": {"source": "cancer.csv", "target": "diagnosis", "positive_class": "cancer"}},
        ["Class 'cancer' never occurs", "benign, malignant"]),
    "unknown spec key": (
        {"data": {"source": "cancer.csv", "target": "diagnosis"}, "budgett": {}},
        ["Unknown key 'budgett'", "Did you mean 'budget'?"]),
    "unknown nested key": (
        {"data": {"source": "cancer.csv", "target": "diagnosis"},
         "budget": {"max_iteration": 2}},
        ["Unknown key 'budget.max_iteration'", "Did you mean 'max_iterations'?"]),
    "rule that does not parse": (
        {"data": {"source": "cancer.csv", "target": "diagnosis"}, "rules": ["mean_radius >"]},
        ["Rule 'mean_radius >' does not parse", "in backticks: `annual income` > 0"]),
    "rule naming an unknown column": (
        {"data": {"source": "cancer.csv", "target": "diagnosis"}, "rules": ["radius > 1"]},
        ["Rule 'radius > 1' names column(s) ['radius']"]),
    "rule naming the target": (
        {"data": {"source": "cancer.csv", "target": "diagnosis"},
         "rules": ["diagnosis == 'malignant'"]},
        ["names the target column 'diagnosis'", "feature columns only"]),
    "positive class written as a float": (
        {"data": {"source": "cancer.csv", "target": "diagnosis", "positive_class": 1.5}},
        ["data.positive_class", "in quotes", 'positive_class: "1.5"']),
    "bad metric name": (
        {"data": {"source": "cancer.csv", "target": "diagnosis"}, "metric": {"name": "f2"}},
        ["The spec's 'metric.name' must be one of", "Got 'f2' instead."]),
}


class TestBadInput:
    @pytest.mark.parametrize("case", list(BAD_INPUTS))
    def test_one_clear_line_exit_2_no_run_folder(self, case, cancer_csv, tmp_path):
        # Setup: the spec sits next to the data, as users write it
        edits, fragments = BAD_INPUTS[case]
        spec = write_spec(cancer_csv.parent, edits)
        runs = tmp_path / "runs"

        # Run
        result = runner.invoke(app, ["run", str(spec), "--runs-dir", str(runs),
                                     "--llm", "embedded"])

        # Assert
        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, *fragments)
        assert "Traceback" not in result.output
        assert result.stdout == ""
        assert not runs.exists()  # not even an empty runs folder

    def test_a_stray_text_cell_in_a_numeric_column_is_named(self, cancer_df, tmp_path):
        # Setup: one '?' among 288 numbers, as exported spreadsheets have
        df = cancer_df.astype({"mean_radius": object})
        df.loc[7, "mean_radius"] = "?"
        df.to_csv(tmp_path / "stray.csv", index=False)
        spec = write_spec(tmp_path, {"data": {"source": "stray.csv", "target": "diagnosis"}})

        # Run
        result = runner.invoke(app, ["run", str(spec), "--runs-dir", str(tmp_path / "runs")])

        # Assert: named, with both ways out, instead of a silent text column
        assert result.exit_code == 2
        assert_one_error_line(result.stderr, "Column 'mean_radius' holds numbers but for 1 "
                              "cell(s) ('?')", "{mean_radius: {type: float}}")
        assert run_folders(tmp_path / "runs") == []

    def test_missing_spec_file(self, tmp_path):
        result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, "nope.yaml", "does not exist")

    def test_a_folder_given_as_the_spec(self, tmp_path):
        result = runner.invoke(app, ["run", str(tmp_path)])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, f"'{tmp_path}' is a folder, not a spec file")

    def test_spec_that_is_not_yaml(self, tmp_path):
        spec = tmp_path / "bad.yaml"
        spec.write_text("data: [unclosed\n")

        result = runner.invoke(app, ["run", str(spec)])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, "is not valid YAML at line")

    def test_bad_set_override(self, cancer_csv, tmp_path):
        spec = write_spec(cancer_csv.parent, {"data": {"source": "cancer.csv",
                                                       "target": "diagnosis"}})

        result = runner.invoke(app, ["run", str(spec), "--runs-dir", str(tmp_path / "runs"),
                                     "--set", "budget.patience"])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, "must look like key=value")
        assert run_folders(tmp_path / "runs") == []

    def test_unknown_run_on_resume(self, tmp_path):
        result = runner.invoke(app, ["resume", "ghost", "--runs-dir", str(tmp_path)])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, "No run 'ghost'")

    def test_an_interrupted_run_says_how_to_resume_it_from_its_runs_folder(
            self, cancer_csv, tmp_path, monkeypatch):
        # Setup: the loop is interrupted (Ctrl-C) as soon as it starts
        import synthloop.runner as runner_module

        def interrupt(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(runner_module, "run_loop", interrupt)
        spec = write_spec(cancer_csv.parent, {"data": {"source": "cancer.csv",
                                                       "target": "diagnosis"}})
        runs = tmp_path / "elsewhere"

        # Run
        result = runner.invoke(app, ["run", str(spec), "--runs-dir", str(runs),
                                     "--run-id", "r1"])

        # Assert: the hint, pasted as it is, finds the run in its own folder
        assert result.exit_code == 130
        assert_one_error_line(result.stderr,
                              f"resume with 'synthloop resume r1 --runs-dir {runs}'")

    def test_brackets_in_a_message_are_shown_as_text(self, cancer_csv, tmp_path):
        # a rich console would read '[bold]' as markup and drop it
        spec = write_spec(cancer_csv.parent, {"data": {"source": "rows[bold].csv",
                                                       "target": "diagnosis"}})

        result = runner.invoke(app, ["run", str(spec), "--runs-dir", str(tmp_path / "r")])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, "rows[bold].csv")

    def test_long_message_is_not_wrapped_at_the_console_width(self, cancer_csv, tmp_path):
        spec = write_spec(cancer_csv.parent, {"data": {"source": "cancer.csv",
                                                       "target": "no_such_column"}})

        result = runner.invoke(app, ["run", str(spec), "--runs-dir", str(tmp_path / "r")])

        line = assert_one_error_line(result.stderr, "worst_concave_points, diagnosis.")
        assert len(line) > 160  # twice rich's default width for a non-terminal


class TestEntryPoint:
    def test_real_process_prints_one_line(self, cancer_csv, tmp_path):
        # Setup
        spec = write_spec(cancer_csv.parent, {"data": {"source": "cancer.csv",
                                                       "target": "diagnosis",
                                                       "positive_class": "cancer"}})
        runs = tmp_path / "runs"

        # Run: the installed console script's module, in its own process
        proc = subprocess.run([sys.executable, "-m", "synthloop", "run", str(spec),
                               "--runs-dir", str(runs)], capture_output=True, text=True,
                              timeout=120)

        # Assert
        assert proc.returncode == 2
        assert_one_error_line(proc.stderr, "Class 'cancer' never occurs")
        assert "Traceback" not in proc.stderr + proc.stdout
        assert run_folders(runs) == []

    @pytest.mark.parametrize("args, fragments", [
        (["run", "spec.yaml", "--bogus"],
         ["No such option: --bogus", "(see 'python -m synthloop run --help')"]),
        (["run", "spec.yaml", "--seed", "abc"], ["Invalid value for '--seed'"]),
        (["nosuch"], ["No such command 'nosuch'"]),
        (["runs", "show", "r1", "--rows", "-2"], ["Invalid value for '--rows'"]),
    ])
    def test_a_usage_error_is_one_line_not_a_panel(self, args, fragments, tmp_path):
        proc = subprocess.run([sys.executable, "-m", "synthloop", *args], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)

        assert proc.returncode == 2
        assert_one_error_line(proc.stderr, *fragments)
        assert proc.stdout == ""

    def test_schema_command_prints_json_schema(self):
        import json

        result = runner.invoke(app, ["schema"])

        assert result.exit_code == 0
        schema = json.loads(result.stdout)
        assert "data" in schema["properties"]
        assert schema["additionalProperties"] is False
