"""The human review gate: with review: {mode: batch} the graph pauses (LangGraph interrupt,
SQLite checkpoints) before accepting each batch; a decision resumes it. Approve, reject and
edit all replay nothing: the same LLM calls, batch files and iteration records as a run
without the gate."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synthloop.cli import app
from synthloop.errors import ReviewError, ReviewPending, SynthloopError
from synthloop.graphs import loop
from synthloop.review import _same, candidate_rows, export_rows, pending_review, review_run
from synthloop.runner import resume_run, run_loop
from tests.fakes import scripted
from tests.plugin_support import fast_report, no_report  # noqa: F401  (fixture)
from tests.support import FEATURES, base_spec, make_spec

COLS = [c.replace(" ", "_") for c in FEATURES] + ["diagnosis"]
GATE = {"mode": "batch"}
# max_validation_drop 1: every batch passes the metric test, so what the reviewer decides is
# what decides
LOOSE = {"max_validation_drop": 1.0}


def counting(counts: Counter):
    """loop.NODES and the review node, each wrapped to count its runs per iteration."""
    def wrap(name, fn):
        def run(state, ctx):
            counts[(name, state.get("iteration", 0))] += 1
            return fn(state, ctx)
        return run
    return [(n, wrap(n, f)) for n, f in loop.NODES], wrap("review", loop.review_node)


@pytest.fixture(scope="module")
def home(tmp_path_factory, cancer_df):
    home = tmp_path_factory.mktemp("review")
    cancer_df.to_csv(home / "cancer.csv", index=False)
    return home


def _spec(home: Path, **sections):
    return make_spec(base_spec(home / "cancer.csv", blend=LOOSE, **sections),
                     budget={"max_iterations": 2, "patience": 5})


def _run_counted(fn):
    counts: Counter = Counter()
    with pytest.MonkeyPatch.context() as mp:
        fast_report(mp)
        nodes, review = counting(counts)
        mp.setattr(loop, "NODES", nodes)
        mp.setattr(loop, "review_node", review)
        return fn(), counts


@pytest.fixture(scope="module")
def plain(home):
    """A run without the gate."""
    model = scripted()
    summary, counts = _run_counted(lambda: run_loop(_spec(home), home / "plain",
                                                    chat_model=model, run_id="r",
                                                    cache_dir=None))
    return summary, model, counts


@pytest.fixture(scope="module")
def reviewed(home):
    """The same run with the gate: paused at iteration 1 (approved), paused at iteration 2
    (rejected)."""
    model = scripted()
    runs = home / "reviewed"
    seen = {}

    def go():
        with pytest.raises(ReviewPending) as first:
            run_loop(_spec(home, review=GATE), runs, chat_model=model, run_id="r",
                     cache_dir=None)
        seen["first"] = first.value.pending
        seen["calls_at_first_pause"] = len(model.calls)
        seen["records_at_first_pause"] = sorted(p.name for p in (runs / "r/iterations").glob("*"))
        seen["pending_1"] = pending_review("r", runs)
        with pytest.raises(ReviewPending) as second:
            review_run("r", runs, action="approve", reviewer="ana", chat_model=model,
                       cache_dir=None)
        seen["second"] = second.value.pending
        return review_run("r", runs, action="reject", reason="too close to the exemplars",
                          chat_model=model, cache_dir=None)

    summary, counts = _run_counted(go)
    return summary, model, counts, seen


def texts(model) -> list[tuple[str, str]]:
    return [(c["system"], c["user"]) for c in model.calls]


def without(record: dict, *keys: str) -> dict:
    return {k: v for k, v in record.items() if k not in ("seconds", *keys)}


class TestApproveAndReject:
    def test_the_run_pauses_before_accepting_with_the_batch_figures(self, reviewed, home):
        _, _, _, seen = reviewed
        pending = seen["first"]
        cand = pd.read_parquet(home / "reviewed/r" / pending["candidate"])

        assert pending["iteration"] == 1 and pending["rows"] == len(cand) > 0
        assert pending["by_class"] == cand["diagnosis"].value_counts().sort_index().to_dict()
        assert pending["checks"]["generated"] == 12
        assert seen["records_at_first_pause"] == []  # nothing accepted yet
        assert seen["pending_1"] == pending  # read back from the checkpoint
        assert seen["second"]["iteration"] == 2

    def test_nothing_is_redone_across_the_interrupts(self, plain, reviewed):
        _, plain_model, plain_counts = plain
        _, model, counts, seen = reviewed

        # the same LLM calls, in the same order: none repeated by a replay; the first pause
        # came right after iteration 1's calls (before iteration 2's rewrite)
        assert texts(model) == texts(plain_model)
        rewrites = [i for i, c in enumerate(plain_model.calls)
                    if c["system"].startswith("You improve")]
        assert seen["calls_at_first_pause"] == rewrites[1]
        # every node ran as often as without the gate; the review node twice per batch
        # (the interrupt, then the replay that returns the decision)
        assert {k: v for k, v in counts.items() if k[0] != "review"} == plain_counts
        assert {k: v for k, v in counts.items() if k[0] == "review"} == \
            {("review", 1): 2, ("review", 2): 2}

    def test_batch_files_and_records_match_the_run_without_the_gate(self, plain, reviewed, home):
        plain_summary = plain[0]
        summary = reviewed[0]
        files = sorted(p.name for p in (home / "plain/r/data/batches").glob("*.parquet"))

        assert files == sorted(p.name for p in (home / "reviewed/r/data/batches").glob("*"))
        for name in files:
            pd.testing.assert_frame_equal(
                pd.read_parquet(home / "reviewed/r/data/batches" / name),
                pd.read_parquet(home / "plain/r/data/batches" / name))
        # each iteration recorded once
        assert [r["iteration"] for r in summary["iterations"]] == [1, 2]
        assert len(list((home / "reviewed/r/iterations").glob("*.json"))) == 2
        first, second = summary["iterations"]
        assert without(first, "review") == without(plain_summary["iterations"][0], "review")
        assert first["review"] == {"iteration": 1, "action": "approve", "reviewer": "ana"}
        assert plain_summary["iterations"][1]["accepted"] is True

        # reject: refused whole, the reviewer's reason recorded, no rows kept
        assert second["accepted"] is False and second["validation_metric"] is None
        assert second["reason"] == "rejected in review: too close to the exemplars"
        assert second["review"]["action"] == "reject"
        assert json.loads((home / "reviewed/r/reviews/iter_002.json").read_text()) == \
            second["review"]

    def test_only_approved_rows_are_kept_and_none_twice(self, plain, reviewed, home):
        summary = reviewed[0]
        syn = pd.read_parquet(home / "reviewed/r/data/synthetic.parquet")
        first = pd.read_parquet(home / "reviewed/r/data/batches/iter_001_candidate.parquet")

        assert summary["synthetic_rows"] == len(syn) == len(first)
        assert syn["_sl_row_id"].is_unique and set(syn["_sl_iteration"]) == {1}
        assert summary["synthetic_rows"] < plain[0]["synthetic_rows"]
        assert [e["action"] for e in summary["events"] if e["kind"] == "review"] == \
            ["approve", "reject"]

    def test_nothing_waits_after_the_end(self, reviewed, home):
        with pytest.raises(ReviewError, match="Run 'r' has no batch waiting for review: it "
                                              "is finished"):
            pending_review("r", home / "reviewed")

    def test_a_stopped_run_names_the_resume_command_with_its_runs_folder(self, home, tmp_path):
        # Setup: a run that stopped before its first checkpoint, in a folder of its own
        from synthloop.spec import dump_spec

        (tmp_path / "elsewhere" / "half").mkdir(parents=True)
        (tmp_path / "elsewhere" / "half" / "spec.yaml").write_text(dump_spec(make_spec(
            base_spec(home / "cancer.csv", review=GATE))))

        # Run / Assert: the hint, pasted as it is, finds the run
        with pytest.raises(ReviewError, match="not paused for review; continue it with: "
                                              "synthloop resume half --runs-dir "
                                              + str(tmp_path / "elsewhere")):
            pending_review("half", tmp_path / "elsewhere")


class TestEdit:
    @pytest.fixture(scope="class")
    def paused(self, home):
        model = scripted()
        runs = home / "edited"
        with pytest.raises(ReviewPending) as info:
            with pytest.MonkeyPatch.context() as mp:
                fast_report(mp)
                run_loop(make_spec(base_spec(home / "cancer.csv", blend=LOOSE, review=GATE),
                                   budget={"max_iterations": 1}),
                         runs, chat_model=model, run_id="e", cache_dir=None)
        return runs, model, info.value.pending

    def _export(self, paused, tmp_path) -> pd.DataFrame:
        runs, _, pending = paused
        path = export_rows(candidate_rows("e", runs, pending), COLS, tmp_path / "batch.csv")
        return pd.read_csv(path)

    @pytest.mark.parametrize("edit, fragment", [
        (lambda df, real: df.assign(mean_radius=[1e6] + list(df.mean_radius[1:])),
         "breaks 1 of {n} row(s): row 1 ("),
        (lambda df, real: df.assign(mean_radius=[1e6] + list(df.mean_radius[1:])),
         "'mean_radius' = 1000000.0 is above its maximum"),
        (lambda df, real: df.assign(note="x"), "has column(s) ['note'] the data does not have"),
        (lambda df, real: df.drop(columns=["mean_area"]), "lacks column(s) ['mean_area']"),
        (lambda df, real: df.assign(diagnosis="unsure"), "has class 'unsure' in 'diagnosis'"),
        (lambda df, real: pd.concat([df, real.head(1).assign(_sl_row_id=None)[df.columns]],
                                    ignore_index=True), "exact copy of a real row"),
        (lambda df, real: df.iloc[:0], "holds no rows; to refuse the batch use --reject"),
        (lambda df, real: df.assign(_sl_row_id="someone-else:1:0").head(1),
         "is not a row of this batch"),
    ])
    def test_a_bad_edit_is_one_clear_error_and_changes_nothing(self, paused, tmp_path, edit,
                                                               fragment, cancer_df):
        runs, model, pending = paused
        calls = len(model.calls)
        df = edit(self._export(paused, tmp_path), cancer_df[COLS])
        df.to_csv(tmp_path / "bad.csv", index=False)

        with pytest.raises(ReviewError) as info:
            review_run("e", runs, action="edit", edit=tmp_path / "bad.csv", chat_model=model,
                       cache_dir=None)

        message = str(info.value)
        assert fragment.format(n=len(df)) in message and "\n" not in message
        assert pending_review("e", runs) == pending  # still waiting, as it was
        assert not (runs / "e/data/batches/iter_001_reviewed.parquet").exists()
        assert len(model.calls) == calls

    def test_export_into_a_missing_folder_creates_it_and_under_a_file_is_refused(
            self, paused, tmp_path):
        runs, _, pending = paused
        rows = candidate_rows("e", runs, pending)
        (tmp_path / "a_file").write_text("keep me\n")

        written = export_rows(rows, COLS, tmp_path / "new" / "batch.csv")
        with pytest.raises(SynthloopError, match="'.*a_file' is a file, not a folder"):
            export_rows(rows, COLS, tmp_path / "a_file" / "batch.csv")

        assert len(pd.read_csv(written)) == len(rows)
        assert (tmp_path / "a_file").read_text() == "keep me\n"

    def test_a_missing_edited_file_is_named_and_changes_nothing(self, paused, tmp_path):
        runs, model, pending = paused

        with pytest.raises(ReviewError) as info:
            review_run("e", runs, action="edit", edit=tmp_path / "nothere.csv",
                       chat_model=model, cache_dir=None)

        message = str(info.value)
        assert "'" + str(tmp_path / "nothere.csv") + "' does not exist" in message
        assert "--export" in message and "spec" not in message
        assert pending_review("e", runs) == pending

    @pytest.mark.usefixtures("no_report")
    def test_an_edit_replaces_the_batch(self, paused, tmp_path, cancer_df):
        # Setup: change a value of the first row, drop the last, add a row of one's own
        runs, model, pending = paused
        df = self._export(paused, tmp_path)
        first_id, last_id = df["_sl_row_id"].iloc[0], df["_sl_row_id"].iloc[-1]
        df.loc[0, "mean_texture"] = round(float(df.loc[0, "mean_texture"]) + 0.5, 4)
        new = df.iloc[[1]].assign(_sl_row_id=None, mean_texture=27.3)
        edited = pd.concat([df.iloc[:-1], new], ignore_index=True)
        edited.to_csv(tmp_path / "edited.csv", index=False)
        calls = len(model.calls)

        # Run
        summary = review_run("e", runs, action="edit", edit=tmp_path / "edited.csv",
                             chat_model=model, cache_dir=None)

        # Assert: the reviewer's rows are the batch, their provenance kept or marked
        (record,) = summary["iterations"]
        assert record["accepted"] and record["rows_accepted"] == len(edited)
        edits = record["review"]["edits"]
        assert edits["changed"] == [first_id] and edits["removed"] == [last_id]
        assert edits["added"] == 1 and edits["rows"] == len(edited)
        syn = pd.read_parquet(runs / "e/data/synthetic.parquet")
        assert len(syn) == len(edited) and syn["_sl_row_id"].is_unique
        assert syn.loc[syn._sl_row_id == first_id, "mean_texture"].item() == \
            edited.loc[0, "mean_texture"]
        added = syn[syn._sl_generator == "human:review"]
        assert len(added) == 1 and added["mean_texture"].item() == 27.3
        assert added["_sl_row_id"].item() == "e:1:review0"
        kept = syn[syn._sl_row_id == first_id].iloc[0]
        original = candidate_rows("e", runs, pending).set_index("_sl_row_id").loc[first_id]
        assert kept["_sl_generator"] == original["_sl_generator"] == "scripted-scripted"
        assert len(model.calls) == calls  # the review made no LLM call


class TestCommandLine:
    def test_run_pauses_cleanly_then_review_shows_exports_and_approves(self, home, tmp_path,
                                                                      monkeypatch):
        import synthloop.runner as runner_mod

        monkeypatch.setattr(runner_mod, "make_chat_model", lambda *a, **k: scripted())
        fast_report(monkeypatch)
        spec = tmp_path / "spec.yaml"
        data = base_spec(home / "cancer.csv", review=GATE, blend=LOOSE)
        data["budget"]["max_iterations"] = 1
        spec.write_text(json.dumps(data))
        runs = tmp_path / "runs"
        cli = CliRunner()

        ran = cli.invoke(app, ["run", str(spec), "--runs-dir", str(runs), "--run-id", "c"])
        again = cli.invoke(app, ["resume", "c", "--runs-dir", str(runs)])
        shown = cli.invoke(app, ["review", "c", "--runs-dir", str(runs)])
        exported = cli.invoke(app, ["review", "c", "--runs-dir", str(runs), "--export",
                                    str(tmp_path / "b.csv")])
        both = cli.invoke(app, ["review", "c", "--runs-dir", str(runs), "--approve", "--reject"])
        approved = cli.invoke(app, ["review", "c", "--runs-dir", str(runs), "--approve"])
        after = cli.invoke(app, ["review", "c", "--runs-dir", str(runs)])

        assert ran.exit_code == 0, ran.output
        assert "Run 'c' paused: iteration 1's batch of" in ran.output
        assert f"see it with 'synthloop review c --runs-dir {runs}'" in ran.output
        assert f"next: synthloop review c --runs-dir {runs}" in ran.output
        assert again.exit_code == 0 and "Run 'c' paused" in again.output
        assert shown.exit_code == 0
        assert "iteration 1:" in shown.output and "wait for review" in shown.output
        assert "c:1:0" in shown.output and "--approve | --reject" in shown.output
        assert exported.exit_code == 0 and len(pd.read_csv(tmp_path / "b.csv")) > 0
        assert both.exit_code == 2 and "Choose one of --approve, --reject and --edit" in both.output
        assert approved.exit_code == 0, approved.output
        assert "approved: iteration 1's batch" in approved.output
        assert "stop reason: max_iterations" in approved.output
        assert after.exit_code == 2
        assert "has no batch waiting for review: it is finished" in after.output
        summary = json.loads((runs / "c/summary.json").read_text())
        assert summary["iterations"][0]["review"]["action"] == "approve"

    @pytest.mark.usefixtures("no_report")
    def test_resuming_a_paused_run_pauses_again_without_calls(self, home, tmp_path):
        model = scripted()
        spec = make_spec(base_spec(home / "cancer.csv", review=GATE), budget={"max_iterations": 1})
        with pytest.raises(ReviewPending):
            run_loop(spec, tmp_path, chat_model=model, run_id="p", cache_dir=None)
        calls = len(model.calls)

        with pytest.raises(ReviewPending) as info:
            resume_run("p", tmp_path, chat_model=model, cache_dir=None)

        assert info.value.pending["iteration"] == 1 and len(model.calls) == calls


class TestNothingToReview:
    @pytest.mark.usefixtures("no_report")
    def test_a_batch_refused_whole_goes_straight_on(self, home, tmp_path):
        # Setup: every generated number far out of range, repair off: the batch is blocked
        from tests.fakes import loop_script, out_of_range_reply

        spec = make_spec(base_spec(home / "cancer.csv", review=GATE,
                                   generator={"repair_out_of_range": False}),
                         budget={"max_iterations": 1})

        # Run: no pause
        summary = run_loop(spec, tmp_path, chat_model=scripted(loop_script(out_of_range_reply)),
                           run_id="b", cache_dir=None)

        (record,) = summary["iterations"]
        assert record["reason"].startswith("violation rate 1.00 over")
        assert record["review"] is None
        assert not (tmp_path / "b/reviews").exists()


def test_a_csv_round_trip_of_a_float_is_not_a_reviewers_change():
    # Setup: the value the trial's export wrote, and what pandas read back from the CSV
    written, read_back = 457.71678414400725, float("457.7167841440073")
    assert written != read_back  # the round trip moved the last digit

    # Assert: the row counts as unedited; a real edit, a label or a missing cell still count
    assert _same(pd.Series([written, "malignant"]), pd.Series([read_back, "malignant"]))
    assert not _same(pd.Series([written]), pd.Series([written + 1e-6]))
    assert not _same(pd.Series(["malignant"]), pd.Series(["benign"]))
    assert not _same(pd.Series([written]), pd.Series([None]))
