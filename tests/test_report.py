"""The run report: every finished run gets report.html (plots, one self-contained file) and
report.json (the same numbers); ``synthloop report RUN_ID`` writes them again, anywhere."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from synthloop.cli import app
from synthloop.errors import RunStoreError
from synthloop.evals import report as report_mod
from synthloop.evals.report import MAX_COLUMNS, NO_SYNTHETIC, build_report, write_report
from synthloop.store import RunStore
from synthloop.tools.constraints import evaluate_region
from tests.fakes import garbage_reply, loop_script, scripted
from tests.support import base_spec, cancer_frame, make_spec, run

RULES = ["mean_area > 0", "worst_radius >= mean_radius"]
SECTIONS = {"report_version", "run", "iterations", "regions", "distributions", "fidelity",
            "coverage", "privacy", "diversity", "calibration", "notes"}
runner = CliRunner()


def _spec(folder: Path, **sections):
    path = folder / "cancer.csv"
    cancer_frame().to_csv(path, index=False)
    return make_spec(base_spec(path, rules=RULES), **sections)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A run of two iterations whose batches (jittered real rows) are kept."""
    root = tmp_path_factory.mktemp("report")
    spec = _spec(root, budget={"max_iterations": 2, "patience": 5})
    summary = run(spec, root / "runs", scripted(), run_id="kept")
    assert summary["synthetic_rows"] > 0  # the premise of the tests below
    return root / "runs" / "kept"


@pytest.fixture(scope="module")
def empty(tmp_path_factory) -> Path:
    """A run whose only batch is garbage, so no synthetic row is kept."""
    root = tmp_path_factory.mktemp("report_empty")
    spec = _spec(root, budget={"max_iterations": 1})
    summary = run(spec, root / "runs", scripted(loop_script(generate=garbage_reply)),
                  run_id="empty")
    assert summary["synthetic_rows"] == 0
    return root / "runs" / "empty"


def load(run_dir: Path) -> dict:
    def no_nan(token):
        raise AssertionError(f"report.json holds {token}")
    return json.loads((run_dir / "report.json").read_text(), parse_constant=no_nan)


def numbers_in_html(page: str) -> set[str]:
    """Number tokens a reader sees: the page text without CSS, tags and embedded images."""
    text = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return set(re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])", text))


def numbers_in_json(obj) -> set[str]:
    """Every number of the report as the page may print it (and numbers inside its strings)."""
    found: set[str] = set()

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, bool) or v is None:
            return
        elif isinstance(v, int):
            found.add(str(v))
        elif isinstance(v, float):
            found.update({f"{v:.4f}", f"{v:.6g}", f"{v:.0f}"})
        elif isinstance(v, str):
            found.update(re.findall(r"-?\d+(?:\.\d+)?", v))
    walk(obj)
    return found


class TestFinishedRun:
    def test_the_report_node_writes_both_files(self, finished):
        # Assert: the loop itself left the report in the run folder
        assert (finished / "report.html").is_file()
        assert set(load(finished)) == SECTIONS

    def test_header_and_iterations_are_the_summarys(self, finished):
        summary = json.loads((finished / "summary.json").read_text())

        rep = load(finished)

        assert rep["run"]["run_id"] == "kept"
        assert rep["run"]["status"] == "finished"
        assert rep["run"]["lift"] == summary["lift"]
        assert len(rep["run"]["lift"]["holdout_ci95"]) == 2
        assert rep["run"]["synthetic_rows"] == summary["synthetic_rows"]
        it = rep["iterations"]
        assert it["baseline_validation"] == summary["baseline"]["validation"]
        assert it["holdout"] == {"baseline": summary["baseline"]["holdout"],
                                 "final": summary["final"]["holdout"]}
        assert [r["validation_metric"] for r in it["rows"]] == \
            [r["validation_metric"] for r in summary["iterations"]]
        assert [r["accepted"] for r in it["rows"]] == [r["accepted"] for r in summary["iterations"]]

    def test_region_recall_before_and_after(self, finished):
        # Setup: the first analysis's regions, recomputed by hand on the validation rows
        store = RunStore(finished)
        val = store.read_frame("data/real_validation.parquet")
        analysed = store.read_json("analysis/iter_000.json")["regions"]
        y = val["diagnosis"].astype(str).to_numpy()

        rep = load(finished)["regions"]

        # Assert: one row per region, recall in [0, 1] and equal to the count by hand
        assert [r["rule"] for r in rep["regions"]] == [r["rule"] for r in analysed]
        assert rep["regions"], "the cancer run has error regions"
        for r in rep["regions"]:
            inside = evaluate_region(r["rule"], val)
            is_pos = inside & (y == "malignant")
            assert r["support"] == inside.sum() and r["positives"] == is_pos.sum()
            for name in ("baseline", "final"):
                model = store.read_model(f"models/{name}.joblib")
                p = model.predict_proba(val)[:, model.schema.classes.index("malignant")]
                flagged = p >= rep["threshold"][name]
                want = flagged[is_pos].mean() if is_pos.any() else None
                got = r[name]["recall"]
                assert (got is None) == (want is None)
                if got is not None:
                    assert 0.0 <= got <= 1.0
                    assert got == pytest.approx(want, abs=1e-6)
                assert 0.0 <= r[name]["error_rate"] <= 1.0

    def test_distributions_of_the_targeted_columns(self, finished):
        dist = load(finished)["distributions"]

        cols = dist["columns"]
        assert 0 < len(cols) <= MAX_COLUMNS
        assert cols[0]["targeted"]  # the regions' columns come first
        for c in cols:
            assert not c["name"].startswith("_sl_")
            assert 0.0 <= c["score"] <= 1.0
            assert sum(c["real_share"]) == pytest.approx(1.0, abs=1e-4)
            assert sum(c["synthetic_share"]) == pytest.approx(1.0, abs=1e-4)
            if c["kind"] == "numeric":
                assert len(c["bin_edges"]) == len(c["real_share"]) + 1

    def test_fidelity_coverage_privacy_diversity_calibration(self, finished):
        rep = load(finished)
        fid, cov, priv = rep["fidelity"], rep["coverage"], rep["privacy"]

        for v in (fid["column_shapes"], fid["detection"], cov["knn_precision"],
                  cov["knn_recall"], priv["membership_inference_auc"],
                  priv["dcr"]["share_closer"], priv["dcr"]["exact_copies"]):
            assert 0.0 <= v <= 1.0
        assert priv["dcr"]["synthetic_median"] >= 0.0
        assert priv["nndr"]["synthetic"] is not None and priv["nndr"]["real_holdout"] is not None
        cos = rep["diversity"]["mean_pairwise_cosine"]
        assert -1.0 <= cos["synthetic"] <= 1.0 and -1.0 <= cos["real_train_sample"] <= 1.0
        cal = rep["calibration"]
        assert 0.0 <= cal["ece_holdout"]["baseline"] <= 1.0
        assert 0.0 <= cal["ece_holdout"]["final"] <= 1.0
        # the validator let no rule-breaking row through
        assert cal["constraint_violation_rate"]["synthetic"] == 0.0
        assert set(cal["constraint_violation_rate"]["synthetic_by_rule"]) == set(RULES)

    def test_html_is_self_contained_with_plots(self, finished):
        page = (finished / "report.html").read_text()

        images = re.findall(r'<img alt="plot" src="data:image/png;base64,([^"]+)"', page)
        assert len(images) == 4  # metric, regions, distributions, quality
        assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
        assert not re.search(r"https?:", page)
        assert not re.search(r"<(script|link|iframe)\b", page)
        assert len(re.findall(r"\bsrc=", page)) == len(images)

    def test_every_number_on_the_page_is_in_the_json(self, finished):
        page = (finished / "report.html").read_text()
        rep = load(finished)

        # labels of the page itself: "95% CI", "holdout 5%", "about 0.05", "1 = indistinguishable"
        static = {"95", "5", "0.5", "0.05", "1", "0"}
        missing = numbers_in_html(page) - numbers_in_json(rep) - static

        assert missing == set()

    def test_write_report_elsewhere(self, finished, tmp_path):
        html_path, json_path = write_report(finished, tmp_path / "out" / "r.html")

        assert html_path == tmp_path / "out" / "r.html"
        assert json_path == tmp_path / "out" / "r.json"
        assert json.loads(json_path.read_text()) == load(finished)


class TestZeroSyntheticRows:
    def test_report_says_no_synthetic_rows(self, empty):
        rep = load(empty)

        assert rep["run"]["synthetic_rows"] == 0
        assert NO_SYNTHETIC in rep["notes"]
        assert rep["distributions"]["columns"] == []
        for section in ("distributions", "fidelity", "coverage", "privacy", "diversity"):
            assert rep[section]["note"] == NO_SYNTHETIC
        # what does not need synthetic rows is still there
        assert rep["regions"]["regions"]
        assert rep["calibration"]["ece_holdout"]["final"] is not None
        page = (empty / "report.html").read_text()
        assert NO_SYNTHETIC in page
        assert len(re.findall(r"data:image/png;base64,", page)) == 2  # metric and regions

    def test_zero_iterations(self, tmp_path):
        spec = _spec(tmp_path, budget={"max_iterations": 0})
        run(spec, tmp_path / "runs", scripted(), run_id="zero")

        rep = load(tmp_path / "runs" / "zero")

        assert rep["iterations"]["rows"] == []
        assert rep["run"]["synthetic_rows"] == 0


class TestReportFailure:
    def test_a_failing_report_does_not_fail_the_run(self, spec_dict, tmp_path, monkeypatch):
        # Setup: building the report raises
        def broken(*_a, **_k):
            raise ValueError("no plots today")
        monkeypatch.setattr(report_mod, "write_report", broken)
        spec = make_spec(spec_dict, budget={"max_iterations": 0})

        # Run
        summary = run(spec, tmp_path, scripted(), run_id="broken")

        # Assert: the run finished, and says why there is no report
        assert summary["status"] == "finished"
        (event,) = [e for e in summary["events"] if e["kind"] == "report_failed"]
        assert "no plots today" in event["reason"]
        assert not (tmp_path / "broken" / "report.html").exists()

    def test_unfinished_run(self, finished, tmp_path):
        shutil.copytree(finished, tmp_path / "half")
        (tmp_path / "half" / "summary.json").unlink()

        with pytest.raises(RunStoreError, match="has not finished"):
            build_report(tmp_path / "half")


class TestCli:
    def test_report_command(self, finished, tmp_path):
        runs = tmp_path / "runs"
        shutil.copytree(finished, runs / "kept")
        for name in ("report.html", "report.json"):
            (runs / "kept" / name).unlink()

        result = runner.invoke(app, ["report", "kept", "--runs-dir", str(runs)])

        assert result.exit_code == 0, result.output
        assert f"wrote {runs / 'kept' / 'report.html'}" in result.stdout
        assert f"wrote {runs / 'kept' / 'report.json'}" in result.stdout
        assert "holdout: baseline" in result.stdout and "95% CI" in result.stdout
        assert "region r1 recall of 'malignant'" in result.stdout
        assert (runs / "kept" / "report.html").is_file()

    def test_report_json_and_out(self, finished, tmp_path):
        result = runner.invoke(app, ["report", "kept", "--runs-dir", str(finished.parent),
                                     "--out", str(tmp_path / "rep"), "--json"])

        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout)
        assert printed["files"] == {"html": str(tmp_path / "rep" / "report.html"),
                                    "json": str(tmp_path / "rep" / "report.json")}
        assert SECTIONS <= set(printed)
        assert (tmp_path / "rep" / "report.html").is_file()

    def test_unknown_run_id(self, finished):
        runs = finished.parent

        result = runner.invoke(app, ["report", "ghost", "--runs-dir", str(runs)])

        assert result.exit_code == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1
        assert lines[0].startswith("error: No run 'ghost'")
        assert str(runs.resolve()) in lines[0] and "kept" in lines[0]
        assert f"synthloop runs list --runs-dir {runs}" in lines[0]
        assert result.stdout == ""

    def test_unfinished_run_id(self, finished, tmp_path):
        (tmp_path / "half").mkdir()
        shutil.copy(finished / "spec.yaml", tmp_path / "half" / "spec.yaml")

        result = runner.invoke(app, ["report", "half", "--runs-dir", str(tmp_path)])

        assert result.exit_code == 2
        assert result.stderr.startswith("error: Run 'half' has not finished")
        assert "synthloop resume half" in result.stderr


def test_json_safe_turns_nan_into_null():
    assert report_mod._json_safe({"a": float("nan"), "b": np.float32(0.25),
                                  "c": [np.int64(3), float("inf")]}) == \
        {"a": None, "b": 0.25, "c": [3, None]}
