"""Fork (time travel from the checkpoint at the end of an iteration) and runs diff.

A fork gets the parent's files up to iteration K and its state at the end of K; the parent's
folder stays byte-for-byte the same. With no override a fork replays the parent exactly; with
one it diverges from K on, and 'runs diff' says how."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from synthloop.agents.prompts import INITIAL_INSTRUCTION
from synthloop.checkpoints import history
from synthloop.cli import Progress, app
from synthloop.errors import RunStoreError, SpecError
from synthloop.evals import report as report_mod
from synthloop.fork import create_fork, fork_run
from synthloop.graphs import nodes
from synthloop.graphs.loop import NODES
from synthloop.inspect import diff_runs
from synthloop.runner import resume_run
from synthloop.store import RunStore
from tests.test_cli import assert_one_error_line
from tests.test_trace import folder_hashes
from tests.trace_support import TRACED, traced_model

runner = CliRunner()


@pytest.fixture(scope="module")
def home(traced_run, tmp_path_factory) -> Path:
    """A copy of the traced run's folder, to fork from."""
    runs = tmp_path_factory.mktemp("fork") / "runs"
    runs.mkdir()
    shutil.copytree(traced_run[0] / TRACED, runs / TRACED)
    return runs


@pytest.fixture(scope="module")
def parent_hashes(home) -> dict[str, str]:
    return folder_hashes(home / TRACED)


def skip_report_figures(mp: pytest.MonkeyPatch) -> None:
    """The forks below skip the HTML report and the holdout lift's bootstrap CI (both tested
    on their own, and most of a small run's time): these tests are about state and files."""
    mp.setattr(report_mod, "write_report", lambda *a, **k: None)
    mp.setattr(nodes.HoldoutLift, "compute",
               classmethod(lambda cls, *a, **k: {"ci_low": 0.0, "ci_high": 0.0}))


@pytest.fixture(scope="module")
def no_report():
    with pytest.MonkeyPatch.context() as mp:
        skip_report_figures(mp)
        yield


@pytest.fixture(scope="module")
def replay(home, parent_hashes, capsys_module, no_report):
    """A fork at the end of iteration 1 with no override, run with JSON progress events."""
    progress = Progress(as_json=True, run_id="replay", run_dir=home / "replay")
    summary = fork_run(TRACED, home, from_iteration=1, new_run_id_="replay",
                       chat_model=traced_model(), cache_dir=None, on_update=progress)
    progress.finished(summary)
    return summary, capsys_module.readouterr().out


@pytest.fixture(scope="module")
def capsys_module():
    """capsys for a module-scoped fixture: stdout captured in a pipe of our own."""
    import io
    import sys

    class Capture:
        def __init__(self):
            self.buf = io.StringIO()

        def readouterr(self):
            class R:
                out = self.buf.getvalue()
            return R

    cap = Capture()
    real = sys.stdout
    sys.stdout = cap.buf
    try:
        yield cap
    finally:
        sys.stdout = real


@pytest.fixture(scope="module")
def cooler(home, replay, no_report):
    """A fork at the end of iteration 2 with another temperature and one more iteration."""
    return fork_run(TRACED, home, from_iteration=2, new_run_id_="cooler",
                    overrides={"generator.temperature": 0.3, "budget.max_iterations": 4},
                    chat_model=traced_model(), cache_dir=None)


class TestFork:
    def test_replay_reaches_the_parents_result(self, replay, traced_run):
        summary, _ = replay
        parent = traced_run[1]

        assert summary["synthetic_sha256"] == parent["synthetic_sha256"]
        assert summary["final"] == parent["final"]
        strip = ("seconds",)
        assert [{k: v for k, v in r.items() if k not in strip} for r in summary["iterations"]] == \
            [{k: v for k, v in r.items() if k not in strip} for r in parent["iterations"]]

    def test_the_parent_folder_is_byte_for_byte_unchanged(self, home, parent_hashes, replay,
                                                          cooler):
        assert folder_hashes(home / TRACED) == parent_hashes

    def test_the_fork_names_its_parent(self, home, replay):
        summary, _ = replay
        record = json.loads((home / "replay" / "fork.json").read_text())

        assert summary["parent"] == record["parent"]
        assert record["parent"]["run_id"] == TRACED and record["parent"]["iteration"] == 1
        spec_text = (home / "replay" / "spec.yaml").read_text()
        assert spec_text.startswith(f"# forked from run {TRACED} at the end of iteration 1")
        fork_events = [e for e in summary["events"] if e["kind"] == "fork"]
        assert fork_events == [{"kind": "fork", "node": "fork", "iteration": 1,
                                "parent_run_id": TRACED,
                                "parent_checkpoint_id": record["parent"]["checkpoint_id"],
                                "overrides": {}}]

    def test_the_fork_makes_new_rows_under_its_own_id(self, home, replay):
        syn = pd.read_parquet(home / "replay" / "data/synthetic.parquet")

        by_iter = syn.groupby("_sl_iteration")["_sl_run_id"].agg(set).to_dict()
        assert by_iter[1] == {TRACED}  # inherited
        assert by_iter[2] == {"replay"}  # made by the fork

    def test_progress_events_one_json_per_line(self, replay):
        summary, out = replay

        events = [json.loads(line) for line in out.splitlines()]
        assert events[0] == {"event": "started", "run_id": "replay",
                             "run_dir": str(Path(summary["parent"]["run_dir"]).parent / "replay")}
        assert events[-1]["event"] == "finished"
        assert events[-1]["synthetic_sha256"] == summary["synthetic_sha256"]
        nodes = [e for e in events if e["event"] == "node"]
        assert {e["node"] for e in nodes} <= {n for n, _ in NODES}
        assert nodes[0]["node"] == "analyse"  # the fork continues after iteration 1's accept
        gen = [e for e in nodes if e["node"] == "generate"]
        assert [e["rows"]["generated"] for e in gen] == \
            [r["rows_generated"] for r in summary["iterations"][1:]]
        assert sum(e["tokens"] for e in nodes) == \
            sum(r["tokens"] for r in summary["iterations"][1:])
        acc = [e for e in nodes if e["node"] == "accept"]
        assert [e["rows"]["accepted"] for e in acc] == \
            [r["rows_accepted"] for r in summary["iterations"][1:]]

    def test_overrides_apply_from_the_fork_point(self, cooler, home):
        assert [r["iteration"] for r in cooler["iterations"]] == [1, 2, 3, 4]
        v4 = (home / "cooler" / "prompts" / "cancer-gen.v004.yaml").read_text()
        assert "temperature: 0.3" in v4
        v3 = (home / "cooler" / "prompts" / "cancer-gen.v003.yaml").read_text()
        assert "temperature: 0.8" in v3  # inherited, as the parent made it

    def test_a_fork_may_write_its_prompts_with_the_template(self, home, no_report):
        model = traced_model()
        summary = fork_run(TRACED, home, from_iteration=1, new_run_id_="tpl",
                           overrides={"agent.rewrite": "template"}, chat_model=model,
                           cache_dir=None)

        authors = [r["prompt_author"] for r in summary["iterations"]]
        assert authors[0] == "llm"  # inherited, as the parent made it
        assert len(authors) > 1 and set(authors[1:]) == {"template"}
        v3 = yaml.safe_load((home / "tpl" / "prompts" / "cancer-gen.v003.yaml").read_text())
        assert v3["text"].startswith(INITIAL_INSTRUCTION) and "Write rows of class" in v3["text"]

    def test_a_fork_with_initial_goes_back_to_the_first_instruction(self, home, no_report):
        model = traced_model()
        summary = fork_run(TRACED, home, from_iteration=1, new_run_id_="ini",
                           overrides={"agent.rewrite": "initial"}, chat_model=model,
                           cache_dir=None)

        parent_v2 = yaml.safe_load((home / TRACED / "prompts" / "cancer-gen.v002.yaml").read_text())
        assert parent_v2["text"] != INITIAL_INSTRUCTION  # the parent's LLM rewrite
        assert set(r["prompt_author"] for r in summary["iterations"][1:]) == {"initial"}
        assert {c["system"] for c in model.calls_of("generate")} == {INITIAL_INSTRUCTION}
        assert model.calls_of("rewrite") == []

    def test_only_files_up_to_the_fork_point_are_copied(self, home):
        store, _ = create_fork(TRACED, home, from_iteration=1, new_run_id_="at1")

        files = {str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file()}
        assert not any("iter_002" in f or "iter_003" in f for f in files)
        assert {"iterations/iter_001.json", "models/iter_001.joblib",
                "data/batches/iter_001_candidate.parquet", "analysis/iter_000.json",
                "prompts/cancer-gen.v002.yaml", "data/synthetic.parquet", "fork.json",
                "checkpoint.sqlite", "data/consistency_model.joblib"} <= files
        assert "analysis/iter_001.json" not in files  # the fork redoes it
        assert "summary.json" not in files and "report.html" not in files
        syn = pd.read_parquet(store.root / "data/synthetic.parquet")
        assert set(syn["_sl_iteration"]) == {1}

    def test_a_fork_that_changes_a_fitted_check_refits_it(self, home, no_report):
        # the parent ran with the consistency check off (quantile 0); the fork turns it on
        # from iteration 2, whose batch reaches curation (iteration 3's is blocked before it)
        fork_run(TRACED, home, from_iteration=1, new_run_id_="checked",
                 overrides={"curation.consistency_quantile": 0.99},
                 chat_model=traced_model(), cache_dir=None)

        parent = json.loads((home / TRACED / "data" / "consistency.json").read_text())
        fork = json.loads((home / "checked" / "data" / "consistency.json").read_text())
        assert parent["quantile"] == 0 and fork["quantile"] == 0.99

    def test_no_start_then_resume(self, home, traced_run):
        result = runner.invoke(app, ["fork", TRACED, "--from-iteration", "2", "--run-id", "later",
                                     "--runs-dir", str(home), "--no-start"])

        assert result.exit_code == 0, result.output
        assert "synthloop resume later" in result.stdout
        listed = runner.invoke(app, ["runs", "list", "--runs-dir", str(home), "--json"])
        (row,) = [r for r in json.loads(listed.stdout) if r["run_id"] == "later"]
        assert row["status"] == "unfinished" and row["iterations"] == 2
        assert row["parent"]["run_id"] == TRACED
        # its one checkpoint: the parent's state at the end of iteration 2, under the new id
        (start,) = history(RunStore(home / "later"))
        assert start["source"] == "update" and start["next"] == ["analyse"]
        assert start["iteration"] == 2 and start["fork_iteration"] == 2
        parent_end = next(r for r in history(RunStore(home / TRACED)) if r["fork_iteration"] == 2)
        assert start["synthetic_rows"] == parent_end["synthetic_rows"]
        assert start["tokens_used"] == parent_end["tokens_used"]
        # and 'synthloop resume' continues it like any stopped run
        with pytest.MonkeyPatch.context() as mp:
            skip_report_figures(mp)
            summary = resume_run("later", home, chat_model=traced_model(), cache_dir=None)
        assert summary["synthetic_sha256"] == traced_run[1]["synthetic_sha256"]
        assert summary["parent"]["iteration"] == 2

    @pytest.mark.parametrize("sets,fragments", [
        (["data.target=label"], ["A fork cannot change 'data.target'", "synthloop run",
                                 "generator.*"]),
        (["model.kind=random_forest"], ["A fork cannot change 'model.kind'"]),
        (["seed=4"], ["A fork cannot change 'seed'"]),
        (["blend.accept_on=cross_validation"], ["A fork cannot change 'blend.accept_on'",
                                                "synthloop run"]),
        # a whole section at once cannot slip an unforkable key in
        (["blend={accept_on: cross_validation}"], ["A fork cannot change 'blend.accept_on' "
                                                   "(here through 'blend')", "synthloop run"]),
        (["curation={teacher: [logistic_regression]}"], ["A fork cannot change "
                                                         "'curation.teacher'"]),
        (["generator.temperature=9"], ["generator.temperature"]),
        (["generator.tempreature=0.5"], ["Unknown key 'generator.tempreature'",
                                         "Did you mean 'temperature'?"]),
        (["generator.kind=copula", "generator.params={min_rows: 1}"],
         ["generator.params.min_rows must be at least 2, not 1."]),
        (["generator.params={depth: 3}"], ["The params of generator 'llm' (generator.params) "
                                           "do not fit it", "takes no arguments"]),
        (["budget.patience"], ["must look like key=value"]),
        # the fork's LLM is built when it runs: a bad one is refused before its folder exists
        (["llm=bogus"], ["Unknown LLM 'bogus'; use 'embedded'"]),
        (["llm=bogus:x"], ["'bogus' is not a provider LangChain knows"]),
        (["llm=embedded:/nowhere/model.gguf"], ["no model file '/nowhere/model.gguf'"]),
        (["curation.label_critic={benign: Benign.}"], ["curation.label_critic needs one "
                                                       "sentence for each class",
                                                       "missing: malignant"]),
    ])
    def test_refused_overrides_are_one_line_and_leave_nothing(self, home, sets, fragments):
        before = sorted(p.name for p in home.iterdir())
        args = ["fork", TRACED, "-k", "1", "--runs-dir", str(home), "--no-start"]
        for s in sets:
            args += ["--set", s]

        result = runner.invoke(app, args)

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, *fragments)
        assert sorted(p.name for p in home.iterdir()) == before

    def test_iteration_out_of_range(self, home):
        with pytest.raises(RunStoreError, match="no checkpoint at the end of iteration 7: "
                                                "iterations 0..3 are finished"):
            create_fork(TRACED, home, from_iteration=7)
        with pytest.raises(SpecError):
            create_fork(TRACED, home, from_iteration=1, overrides={"split.holdout": 0.3})

    def test_a_run_without_checkpoints_cannot_be_forked(self, home, tmp_path):
        shutil.copytree(home / TRACED, tmp_path / "copy")
        (tmp_path / "copy" / "checkpoint.sqlite").unlink()

        with pytest.raises(RunStoreError, match="has no checkpoint.sqlite"):
            create_fork("copy", tmp_path, from_iteration=1)


class TestRunsDiff:
    def test_a_replay_differs_from_its_parent_in_nothing_that_matters(self, home, replay):
        d = diff_runs(TRACED, "replay", home)

        assert d["relation"] == f"replay is a fork of {TRACED} at iteration 1"
        assert d["spec"] == []
        assert all(p["same"] for p in d["prompts"])
        assert d["same_synthetic_data"] is True

    def test_spec_prompt_and_metric_differences(self, home, cooler, traced_run):
        d = diff_runs(TRACED, "cooler", home)

        assert {(s["key"], s["a"], s["b"]) for s in d["spec"]} == {
            ("generator.temperature", 0.8, 0.3), ("budget.max_iterations", 3, 4)}
        same = {p["version"]: p["same"] for p in d["prompts"]}
        assert same == {1: True, 2: True, 3: True, 4: False, 5: False} or \
            same == {1: True, 2: True, 3: True, 4: False}
        v4 = next(p for p in d["prompts"] if p["version"] == 4)
        assert "diff" in v4 and v4["b"]["sha256"] != v4["a"]["sha256"]
        assert v4["diff"] == "(same instruction; differs in temperature 0.8 → 0.3)"
        metrics = {m["metric"]: m for m in d["metrics"]}
        assert metrics["iterations"]["a"] == 3 and metrics["iterations"]["b"] == 4
        assert metrics["tokens"]["delta"] == cooler["total_tokens"] - traced_run[1]["total_tokens"]
        se = metrics["lift_validation_se"]  # listed right after the lift it qualifies
        assert (se["a"], se["b"]) == (traced_run[1]["lift"]["validation_se"],
                                      cooler["lift"]["validation_se"])
        names = [m["metric"] for m in d["metrics"]]
        assert names.index("lift_validation_se") == names.index("lift_validation") + 1
        assert [r["iteration"] for r in d["per_iteration"]] == [1, 2, 3, 4]
        assert d["per_iteration"][3]["a"] is None

    def test_cli(self, home, cooler):
        result = runner.invoke(app, ["runs", "diff", TRACED, "cooler", "--runs-dir", str(home)],
                               env={"COLUMNS": "200"})

        assert result.exit_code == 0, result.output
        for fragment in ("cooler is a fork of traced at iteration 2", "generator.temperature",
                         "budget.max_iterations", "B − A", "synthetic data: "):
            assert fragment in result.stdout, fragment
