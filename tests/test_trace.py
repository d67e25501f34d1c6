"""Inspecting a finished run: runs list, runs show, runs history, lineage, and the live
progress events. Everything is read from a real (scripted-LLM) run's folder and checkpoints,
and checked against the files the loop wrote."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from synthloop.checkpoints import history
from synthloop.cli import app
from synthloop.events import node_event, progress_event, rule_text
from synthloop.graphs.loop import NODES
from synthloop.inspect import lineage, prompt_diffs, row_fates, show_run
from synthloop.store import RunStore
from tests.test_cli import assert_one_error_line
from tests.trace_support import TRACED

runner = CliRunner()


def folder_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def cli(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def runs(traced_run) -> Path:
    return traced_run[0]


@pytest.fixture(scope="module")
def summary(traced_run) -> dict:
    return traced_run[1]


@pytest.fixture(scope="module")
def store(runs) -> RunStore:
    return RunStore(runs / TRACED)


class TestTheTracedRun:
    def test_premise(self, summary):
        # the run the tests below read: kept, partly kept, and blocked batches
        first, second, third = summary["iterations"]
        assert first["accepted"] and first["checks"]["low_confidence"] > 0
        assert second["accepted"] and second["checks"]["over_cap"] > 0
        assert not third["accepted"] and third["reason"].startswith("violation rate")


class TestRunsList:
    def test_json_has_status_stop_reason_lift_and_cost(self, runs, summary):
        result = cli("runs", "list", "--runs-dir", str(runs), "--json")

        assert result.exit_code == 0, result.output
        (row,) = [r for r in json.loads(result.stdout) if r["run_id"] == TRACED]
        assert row["status"] == "finished"
        assert row["stop_reason"] == summary["stop_reason"] == "max_iterations"
        assert row["lift_holdout"] == summary["lift"]["holdout"]
        assert row["final_holdout"] == summary["final"]["holdout"]
        assert row["tokens"] == summary["total_tokens"] > 0
        assert row["seconds"] == summary["wall_seconds"]
        assert row["synthetic_rows"] == summary["synthetic_rows"]
        assert row["iterations"] == 3

    def test_table_on_a_wide_terminal(self, runs, summary):
        result = cli("runs", "list", "--runs-dir", str(runs))

        assert result.exit_code == 0
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"│ {TRACED} "))
        for text in ("finished", "max_iterations", str(summary["total_tokens"]),
                     f"{summary['lift']['holdout']:+.4f}"):
            assert text in line
        assert "…" not in result.stdout

    def test_three_short_lines_per_run_at_80_columns(self, runs, summary):
        # a table of eleven columns would cut every cell to '…' at 80 columns
        result = runner.invoke(app, ["runs", "list", "--runs-dir", str(runs)],
                               env={"COLUMNS": "80"})

        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        at = next(i for i, x in enumerate(lines) if x.startswith(f"{TRACED}  "))
        assert "finished (max_iterations) after 3 iteration(s)" in lines[at]
        assert f"(lift {summary['lift']['holdout']:+.4f}); {summary['synthetic_rows']} " \
            "synthetic rows" in lines[at + 1]
        assert lines[at + 2].startswith(f"    {summary['total_tokens']} tokens, ")
        assert all(len(x) <= 80 for x in lines if TRACED not in x)
        assert "…" not in result.stdout

    def test_missing_runs_dir_is_one_error_line(self, tmp_path):
        result = cli("runs", "list", "--runs-dir", str(tmp_path / "nope"))

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, "does not exist", "--runs-dir")


class TestRowFates:
    def test_every_generated_row_has_one_fate_matching_the_batch_files(self, store, summary):
        kept_all = pd.read_parquet(store.root / "data/synthetic.parquet")
        for record in summary["iterations"]:
            k = record["iteration"]
            gen = pd.read_parquet(store.root / f"data/batches/iter_{k:03d}_generated.parquet")

            fates = row_fates(store, k, record)

            # one row per generated row, each kept or rejected
            assert fates["_sl_row_id"].tolist() == gen["_sl_row_id"].tolist()
            assert set(fates["_sl_status"]) <= {"kept", "rejected"}
            kept = fates[fates["_sl_status"] == "kept"]
            rejected = fates[fates["_sl_status"] == "rejected"]
            # kept rows are exactly this iteration's rows in synthetic.parquet
            assert set(kept["_sl_row_id"]) == set(
                kept_all.loc[kept_all["_sl_iteration"] == k, "_sl_row_id"])
            assert len(kept) == record["rows_accepted"]
            assert len(rejected) == record["rows_rejected"]
            assert rejected["_sl_reason"].notna().all()
            # a reason per check, with the counts of the iteration record
            checks = record["checks"]
            assert (rejected["_sl_reason"] == "low confidence in its label").sum() == \
                checks.get("low_confidence", 0)
            assert rejected["_sl_reason"].str.startswith(
                "inconsistent with its other columns: ").sum() == checks.get("inconsistent", 0)
            assert (rejected["_sl_stage"] == "blend").sum() == checks.get("over_cap", 0)
            assert (rejected["_sl_reason"] == "range").sum() == checks["range"]

    def test_validation_rejects_keep_the_validators_reason(self, store):
        rejected = pd.read_parquet(store.root / "data/batches/iter_003_rejected.parquet")

        fates = row_fates(store, 3, store.read_json("iterations/iter_003.json")).set_index(
            "_sl_row_id")

        for rid, reason in zip(rejected["_sl_row_id"], rejected["_sl_reject"]):
            assert fates.loc[rid, "_sl_reason"] == reason
            assert fates.loc[rid, "_sl_stage"] == "validation"


    @pytest.mark.parametrize("verdict,stage,reason", [
        ({"validation_metric": 0.5, "reason": "validation dropped from 0.9000 to 0.5000"},
         "acceptance", "batch refused: validation dropped from 0.9000 to 0.5000"),
        ({"validation_metric": None, "reason": "violation rate 0.70 over 0.50"},
         "batch blocked", "batch blocked: violation rate 0.70 over 0.50"),
    ])
    def test_rows_of_a_batch_that_was_not_kept(self, store, summary, verdict, stage, reason):
        # Setup: iteration 1's batch files, as if its batch had been refused or blocked
        record = {**summary["iterations"][0], "accepted": False, **verdict}
        cand = pd.read_parquet(store.root / "data/batches/iter_001_candidate.parquet")

        fates = row_fates(store, 1, record).set_index("_sl_row_id")

        # Assert: the rows that reached the batch's verdict carry it; earlier rejects keep theirs
        assert (fates["_sl_status"] == "rejected").all()
        assert (fates.loc[cand["_sl_row_id"], "_sl_stage"] == stage).all()
        assert (fates.loc[cand["_sl_row_id"], "_sl_reason"] == reason).all()
        assert (fates["_sl_reason"] == "low confidence in its label").sum() == \
            record["checks"]["low_confidence"]


class TestRunsShow:
    def test_json_sections(self, runs, store, summary):
        result = cli("runs", "show", TRACED, "--runs-dir", str(runs), "--json")

        assert result.exit_code == 0, result.output
        d = json.loads(result.stdout)
        assert d["spec"] == (store.root / "spec.yaml").read_text()
        assert d["iterations"] == summary["iterations"]
        for k, regions in d["regions"].items():
            assert regions == store.read_json(f"analysis/iter_{int(k):03d}.json")["regions"]
        assert [p["version"] for p in d["prompts"]] == [1, 2, 3, 4]
        assert [(x["from_version"], x["to_version"]) for x in d["prompt_diffs"]] == \
            [(1, 2), (2, 3), (3, 4)]
        assert set(d["rows"]) == {"1", "2", "3"}
        assert d["rows"]["3"]["reasons"] == {"range": 12}

    def test_a_fallback_says_why_even_for_runs_written_before_versions_kept_it(self):
        versions = [{"file": "v1", "version": 1, "text": "a", "author": "initial"},
                    {"file": "v2", "version": 2, "text": "b", "author": "fallback", "iteration": 1,
                     "fallback_reason": "not JSON"},
                    {"file": "v3", "version": 3, "text": "c", "author": "fallback", "iteration": 2},
                    {"file": "v4", "version": 4, "text": "d", "author": "llm", "iteration": 3}]

        diffs = prompt_diffs(versions, {1: "ignored", 2: "from the summary", 3: "not a fallback"})

        assert [x["fallback_reason"] for x in diffs] == ["not JSON", "from the summary", None]

    def test_prompt_diff_shows_the_new_instruction(self, store):
        d = show_run(TRACED, store.root.parent)

        first = d["prompt_diffs"][0]
        new_text = store.read_yaml("prompts/cancer-gen.v002.yaml")["text"]
        added = " ".join(line[1:] for line in first["diff"].splitlines()
                         if line.startswith("+") and not line.startswith("+++"))
        assert added.split() == new_text.split()
        assert first["focus_before"] == []
        assert first["focus_after"] == [r["rule"] for r in store.read_yaml(
            "prompts/cancer-gen.v002.yaml")["focus_regions"]]

    def test_tokens_by_node_add_up(self, store, summary):
        whole = show_run(TRACED, store.root.parent)["cost_by_node"]
        one = show_run(TRACED, store.root.parent, iteration=2)["cost_by_node"]

        assert sum(r["tokens"] for r in whole) == summary["total_tokens"]
        assert {r["node"] for r in whole} == {n for n, _ in NODES}
        assert sum(r["tokens"] for r in one) == summary["iterations"][1]["tokens"]
        assert {r["node"]: r["tokens"] for r in whole} == {
            n: u["tokens"] for n, u in summary["usage_by_node"].items()} | {
            n: 0 for n, _ in NODES if n not in summary["usage_by_node"]}

    def test_text_shows_reasons_diffs_and_rows(self, runs, summary):
        result = cli("runs", "show", TRACED, "--runs-dir", str(runs))

        assert result.exit_code == 0, result.output
        text = result.stdout
        for fragment in ("spec (resolved)", "error regions", "[r1]", "prompt v1 → v2",
                         "rows of iteration 3: 0 kept, 12 rejected", "12 × range",
                         "low confidence in its label", "class balance",
                         "tokens and seconds by node", summary["iterations"][2]["reason"]):
            assert fragment in text, fragment

    def test_one_iteration(self, runs):
        result = cli("runs", "show", TRACED, "--runs-dir", str(runs), "--iteration", "2", "--json")

        d = json.loads(result.stdout)
        assert [r["iteration"] for r in d["iterations"]] == [2]
        assert sorted(d["regions"]) == ["1", "2"]  # the analysis before it and after it
        assert [x["to_version"] for x in d["prompt_diffs"]] == [3]
        assert list(d["rows"]) == ["2"]

    @pytest.mark.parametrize("args,fragments", [
        (["runs", "show", "ghost"], ["No run 'ghost'", "synthloop runs list"]),
        (["runs", "show", TRACED, "--iteration", "9"], ["has no iteration 9"]),
        (["runs", "history", "ghost"], ["No run 'ghost'"]),
        (["lineage", "ghost", "x:1:0"], ["No run 'ghost'"]),
        (["lineage", TRACED, "nope:1:0"], ["No synthetic row 'nope:1:0'", f"'{TRACED}:1:0'"]),
        (["runs", "diff", TRACED, "ghost"], ["No run 'ghost'"]),
    ])
    def test_bad_input_is_one_line(self, runs, args, fragments):
        result = cli(*args, "--runs-dir", str(runs))

        assert result.exit_code == 2
        assert_one_error_line(result.stderr, *fragments)
        assert "Traceback" not in result.output


class TestHistory:
    def test_every_checkpoint_oldest_first_with_the_fork_points(self, store, summary):
        rows = history(store)

        steps = [r["step"] for r in rows]
        assert steps == sorted(steps) and steps[0] == -1
        assert rows[0]["source"] == "input" and rows[-1]["next"] == []
        for before, after in zip(rows, rows[1:]):  # each checkpoint says which node made it
            assert after["parent_checkpoint_id"] == before["checkpoint_id"]
            if after["source"] == "loop":
                assert after["ran"] == ",".join(before["next"])
        ends = [r for r in rows if r["fork_iteration"] is not None]
        assert [r["fork_iteration"] for r in ends] == [0, 1, 2, 3]
        assert all(r["next"] == ["analyse"] for r in ends)
        assert [r["ran"] for r in ends] == ["evaluate", "accept", "accept", "accept"]
        assert rows[-1]["tokens_used"] == summary["total_tokens"]

    def test_reading_leaves_the_run_folder_byte_for_byte(self, runs, store):
        before = folder_hashes(store.root)

        result = cli("runs", "history", TRACED, "--runs-dir", str(runs))

        assert result.exit_code == 0, result.output
        assert "--from-iteration 2" in result.stdout
        assert folder_hashes(store.root) == before  # no -wal/-shm files, nothing rewritten

    def test_at_60_columns_the_notes_still_show(self, runs):
        result = runner.invoke(app, ["runs", "history", TRACED, "--runs-dir", str(runs)],
                               env={"COLUMNS": "60"})

        assert result.exit_code == 0, result.output
        assert all(f"fork -k {k}" in result.stdout for k in range(4))

    def test_at_80_columns_the_ids_and_times_give_way(self, runs, summary):
        result = runner.invoke(app, ["runs", "history", TRACED, "--runs-dir", str(runs)],
                               env={"COLUMNS": "80"})

        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert max(len(x) for x in lines) <= 80
        assert all(f"fork -k {k}" in result.stdout for k in range(4))
        header = next(x for x in lines if "step" in x and "ran" in x)
        assert "checkpoint" not in header and "…" not in result.stdout  # nothing cut short


class TestLineage:
    def test_a_kept_row(self, runs, store):
        syn = pd.read_parquet(store.root / "data/synthetic.parquet")
        row = syn.iloc[0]
        train = pd.read_parquet(store.root / "data/real_train.parquet")

        d = lineage(TRACED, row["_sl_row_id"], runs)

        assert d["status"] == "kept" and d["in_synthetic_parquet"] is True
        assert d["iteration"] == int(row["_sl_iteration"])
        assert d["prompt"]["version"] == int(row["_sl_prompt_version"])
        assert d["prompt"]["file_sha256_matches"] is True
        assert d["prompt"]["text"] == store.read_yaml(d["prompt"]["file"])["text"]
        analysis = store.read_json(f"analysis/iter_{d['iteration'] - 1:03d}.json")
        assert d["region"]["rule"] == row["_sl_region"]
        assert d["region"]["stats"] in analysis["regions"]
        ids = row["_sl_exemplars"].split(",")
        assert [e["id"] for e in d["exemplars"]] == ids
        for e in d["exemplars"]:
            real = train.iloc[int(e["id"].split(":")[1])]
            assert e["values"] == pytest.approx({c: real[c] for c in train.columns
                                                 if c != "diagnosis"} | {"diagnosis": real["diagnosis"]})
        assert d["values"]["mean_radius"] == pytest.approx(row["mean_radius"])

    def test_a_rejected_row_says_why(self, runs, store):
        rejected = pd.read_parquet(store.root / "data/batches/iter_001_rejected.parquet")
        rid = rejected["_sl_row_id"].iloc[0]

        d = lineage(TRACED, rid, runs)

        assert d["status"] == "rejected"
        assert d["reason"] == rejected["_sl_reject"].iloc[0] == "low confidence in its label"
        assert d["in_synthetic_parquet"] is False

    def test_cli_shows_the_row_beside_its_exemplars(self, runs, store):
        syn = pd.read_parquet(store.root / "data/synthetic.parquet")
        row = syn.iloc[0]

        result = cli("lineage", TRACED, row["_sl_row_id"], "--runs-dir", str(runs))

        assert result.exit_code == 0, result.output
        text = result.stdout
        assert "kept (in data/synthetic.parquet)" in text
        assert f"v{int(row['_sl_prompt_version'])}" in text
        for ex in row["_sl_exemplars"].split(","):
            assert ex in text
        assert "region: " + row["_sl_region"] in text


class TestProgressEvents:
    def test_node_event_carries_rows_and_tokens(self):
        update = {"iteration": 2, "batch": {"stats": {"rows_returned": 7, "calls": 2,
                                                      "llm_failures": 0}},
                  "usage": [{"node": "generate", "iteration": 2, "tokens": 120}],
                  "tokens_used": 900, "timings": [{"node": "generate", "iteration": 2,
                                                   "seconds": 1.5}]}

        ev = node_event("generate", update, run_id="r", elapsed=3.0)

        assert ev == {"event": "node", "run_id": "r", "node": "generate", "iteration": 2,
                      "seconds": 1.5, "elapsed": 3.0, "tokens": 120, "tokens_used": 900,
                      "rows": {"generated": 7}, "message": "7 rows from 2 calls (0 failed)"}

    def test_each_llm_call_inside_a_node_is_a_progress_update(self, spec_dict, tmp_path):
        # Setup: collect what the loop hands on_update
        from tests.fakes import scripted
        from tests.support import make_spec, run

        seen: list[tuple[str, dict]] = []

        # Run
        summary = run(make_spec(spec_dict), tmp_path, scripted(),
                      on_update=lambda node, update: seen.append((node, update)))

        # Assert: the generate node's calls arrive one by one before its update, counting up
        # to the calls its update reports
        gen_at = next(i for i, (n, u) in enumerate(seen)
                      if n == "generate" and "progress" not in u)
        progress = [u["progress"] for n, u in seen[:gen_at] if n == "generate" and
                    "progress" in u]
        (usage,) = [u for u in seen[gen_at][1]["usage"] if u["node"] == "generate"]
        assert [p["llm_calls"] for p in progress] == list(range(1, usage["calls"] + 1))
        assert {n for n, u in seen if "progress" in u} <= {n for n, _ in NODES}
        assert progress[-1]["tokens"] == usage["tokens"] > 0
        assert summary["iterations"][0]["llm_calls"] >= usage["calls"]
        ev = progress_event("generate", progress[-1], run_id="r", elapsed=2.0)
        assert ev["event"] == "progress" and ev["message"] == (
            f"… {usage['calls']} LLM call(s), {usage['tokens']} tokens so far")

    def test_text_progress_speaks_only_after_a_silence(self, capsys):
        from synthloop.cli import Progress

        p = Progress(False, run_id="r", run_dir=Path("runs/r"))
        call = {"node": "generate", "llm_calls": 1, "tokens": 90}
        p("generate", {"progress": call})  # the first line of a run says where it is
        capsys.readouterr()

        p("generate", {"progress": {**call, "llm_calls": 2}})  # right away: quiet
        quiet = capsys.readouterr().err
        p.start -= p.PROGRESS_EVERY + 1  # ... then after a silence of PROGRESS_EVERY seconds
        p("generate", {"progress": {**call, "llm_calls": 3, "tokens": 270}})
        spoke = capsys.readouterr().err

        assert quiet == ""
        assert "generate" in spoke and "3 LLM call(s), 270 tokens so far" in spoke

    def test_a_region_without_conditions_reads_as_all_rows(self):
        # the rule 'True' (every row, when no smaller region stood out) is shown as words
        update = {"iteration": 0, "regions": [{"id": "r1", "rule": "True"}]}

        ev = node_event("analyse", update, run_id="r", elapsed=1.0)

        assert ev["message"] == "1 region(s); top: all rows"
        assert rule_text("mean_radius > 15") == "mean_radius > 15"

    @pytest.mark.parametrize("accepted,message", [
        (True, "31 rows accepted: validation did not drop"),
        (False, "batch refused, no row kept: validation dropped from 0.7381 to 0.7208"),
    ])
    def test_accept_says_what_was_kept(self, accepted, message):
        record = {"iteration": 3, "accepted": accepted, "rows_accepted": 31 if accepted else 0,
                  "rows_rejected": 9 if accepted else 40, "validation_metric": 0.7,
                  "best_validation": 0.7381, "reason": message.split(": ", 1)[1]}

        ev = node_event("accept", {"iterations": [record], "timings": []})

        assert ev["message"] == message
        assert ev["accepted"] is accepted
        assert ev["rows"] == {"accepted": record["rows_accepted"],
                              "rejected": record["rows_rejected"]}

    def test_validate_counts_valid_and_invalid_rows(self):
        update = {"batch": {"checks": {"generated": 10, "range": 3, "rule: a > 0": 1,
                                       "violation_rate": 0.4, "near_copy_of_real": 1}},
                  "timings": [{"node": "validate", "iteration": 1, "seconds": 0.1}]}

        ev = node_event("validate", update)

        assert ev["rows"] == {"valid": 5, "invalid": 5}
        assert ev["iteration"] == 1
