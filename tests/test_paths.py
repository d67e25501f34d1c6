"""Paths and names a user hands the CLI: a wrong one is one 'error:' line that names it, exit
code 2, and nothing written (``synthloop.paths``); a missing parent folder of an output file
is created."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from typer.testing import CliRunner

from synthloop.cli import app
from tests.test_cli import assert_one_error_line, run_folders, write_spec

runner = CliRunner()


@pytest.fixture
def spec_file(cancer_csv):
    return write_spec(cancer_csv.parent, {"data": {"source": "cancer.csv",
                                                   "target": "diagnosis"}})


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me\n")
    return path


class TestRun:
    def test_runs_dir_that_is_a_file(self, spec_file, a_file):
        result = runner.invoke(app, ["run", str(spec_file), "--runs-dir", str(a_file)])

        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, f"--runs-dir '{a_file}' is a file, not a folder")
        assert a_file.read_text() == "keep me\n"

    def test_runs_dir_under_a_file(self, spec_file, a_file):
        result = runner.invoke(app, ["run", str(spec_file), "--runs-dir", str(a_file / "runs")])

        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, f"'{a_file}' is a file, not a folder")

    @pytest.mark.parametrize("run_id", ["a/b", "..", "../escape", " padded", "my fork", "-x",
                                        ".hidden"])
    def test_a_run_id_is_one_folder_name(self, spec_file, tmp_path, run_id):
        runs = tmp_path / "runs"

        result = runner.invoke(app, ["run", str(spec_file), "--runs-dir", str(runs),
                                     "--run-id", run_id])

        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, f"run id {run_id!r} must be one folder name")
        assert run_folders(runs) == []
        assert not (tmp_path / "escape").exists()


def test_the_resume_hint_pastes_into_a_shell(tmp_path):
    import shlex

    from synthloop.store import resume_command

    runs = tmp_path / "my runs"

    hint = resume_command("r1", runs)

    assert shlex.split(hint) == ["synthloop", "resume", "r1", "--runs-dir", str(runs)]


@pytest.mark.parametrize("command", [["runs", "list"], ["runs", "show", "r1"], ["resume", "r1"],
                                     ["report", "r1"]])
def test_a_runs_folder_that_is_a_file_is_named_as_one(command, a_file):
    result = runner.invoke(app, [*command, "--runs-dir", str(a_file)])

    assert result.exit_code == 2, result.output
    assert_one_error_line(result.stderr, f"'{a_file}' is a file, not a runs folder")


def test_a_missing_runs_folder_names_the_run_asked_for(tmp_path):
    result = runner.invoke(app, ["report", "ghost", "--runs-dir", str(tmp_path / "nothing")])

    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "No run 'ghost': The runs folder", "does not exist")


def test_no_such_run_names_the_newest_runs_and_how_to_list_them(traced_run, tmp_path):
    runs_dir, summary = traced_run

    result = runner.invoke(app, ["resume", "ghost", "--runs-dir", str(runs_dir)])

    assert result.exit_code == 2
    assert_one_error_line(result.stderr, "No run 'ghost'", summary["run_id"],
                          f"synthloop runs list --runs-dir {runs_dir}")


class TestOutputFiles:
    def test_schema_into_a_missing_folder_creates_it(self, tmp_path):
        target = tmp_path / "new" / "deeper" / "schema.json"

        result = runner.invoke(app, ["schema", "--out", str(target)])

        assert result.exit_code == 0, result.output
        assert "data" in json.loads(target.read_text())["properties"]

    def test_schema_under_a_file(self, a_file):
        result = runner.invoke(app, ["schema", "--out", str(a_file / "schema.json")])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, f"'{a_file}' is a file, not a folder")
        assert a_file.read_text() == "keep me\n"

    def test_graph_into_a_missing_folder_creates_it(self, tmp_path):
        target = tmp_path / "docs" / "loop.mmd"

        result = runner.invoke(app, ["graph", "--out", str(target)])

        assert result.exit_code == 0, result.output
        assert "generate" in target.read_text()

    def test_graph_onto_a_folder(self, tmp_path):
        result = runner.invoke(app, ["graph", "--out", str(tmp_path)])

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, f"--out '{tmp_path}' is a folder; give a file path")


class TestReport:
    @pytest.fixture
    def runs(self, traced_run, tmp_path):
        runs_dir, summary = traced_run
        copy = tmp_path / "runs"
        shutil.copytree(runs_dir / summary["run_id"], copy / "kept")
        return copy

    def test_out_that_is_a_file(self, runs, a_file):
        result = runner.invoke(app, ["report", "kept", "--runs-dir", str(runs),
                                     "--out", str(a_file)])

        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, f"--out '{a_file}' is a file, not a folder")
        assert a_file.read_text() == "keep me\n"

    def test_html_out_under_a_file(self, runs, a_file):
        result = runner.invoke(app, ["report", "kept", "--runs-dir", str(runs),
                                     "--out", str(a_file / "r.html")])

        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, f"'{a_file}' is a file, not a folder")

    def test_a_json_out_path_is_refused_with_the_html_path_to_give(self, runs, tmp_path):
        result = runner.invoke(app, ["report", "kept", "--runs-dir", str(runs),
                                     "--out", str(tmp_path / "rep" / "my.json")])

        assert result.exit_code == 2, result.output
        assert_one_error_line(result.stderr, "give a folder, or a .html path",
                              str(tmp_path / "rep" / "my.html"))
        assert not (tmp_path / "rep").exists()

    def test_html_out_in_a_missing_folder_creates_it(self, runs, tmp_path):
        target = tmp_path / "shared" / "reports" / "kept.html"

        result = runner.invoke(app, ["report", "kept", "--runs-dir", str(runs),
                                     "--out", str(target)])

        assert result.exit_code == 0, result.output
        assert target.is_file() and target.with_suffix(".json").is_file()


class TestEntryPoint:
    def test_an_unforeseen_os_error_names_the_path_without_a_traceback(
            self, monkeypatch, capsys):
        # Setup: a file system error from deep inside a command, with the path it concerns
        from synthloop import cli
        from synthloop.spec import LoopSpec

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", "/srv/locked/spec.json")

        monkeypatch.setattr(LoopSpec, "model_json_schema", classmethod(refuse))
        monkeypatch.setattr(sys, "argv", ["synthloop", "schema"])

        # Run
        with pytest.raises(SystemExit) as info:
            cli.main()

        # Assert
        assert info.value.code == 2
        captured = capsys.readouterr()
        assert_one_error_line(captured.err, "cannot use '/srv/locked/spec.json'",
                              "Permission denied")
        assert "Traceback" not in captured.err + captured.out
