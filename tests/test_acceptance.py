"""Batch rejection: a batch is kept only if it passes validation and the validation metric does
not drop; a rejected batch leaves no row in runs/<id>/data/synthetic.parquet."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd

from synthloop.graphs.context import SYNTHETIC
from synthloop.graphs.nodes import refused_since_accepted
from synthloop.inspect import show_run
from tests.fakes import (
    by_revision,
    jittered_rows_reply,
    loop_script,
    out_of_range_reply,
    rows_from_frame_reply,
    scripted,
)
from tests.support import make_spec, run

# these tests are about rejecting bad rows, so out-of-range numbers are not repaired
NO_REPAIR = {"repair_out_of_range": False}


def synthetic_rows(runs_dir, run_id: str) -> pd.DataFrame:
    return pd.read_parquet(runs_dir / run_id / SYNTHETIC)


class TestViolationRate:
    def test_out_of_range_batch_is_rejected_and_not_kept(self, spec_dict, tmp_path):
        # Setup: iteration 1 gets valid rows, iteration 2 rows far outside every range
        spec = make_spec(spec_dict, budget={"max_iterations": 2},
                         curation={"max_violation_rate": 0.5}, generator=NO_REPAIR)
        model = scripted(loop_script(generate=by_revision(jittered_rows_reply,
                                                          out_of_range_reply)))

        # Run
        summary = run(spec, tmp_path, model, run_id="viol")

        # Assert: the second batch is rejected for its violation rate
        first, second = summary["iterations"]
        assert first["accepted"] is True
        assert second["accepted"] is False
        assert second["checks"]["violation_rate"] == 1.0
        assert second["checks"]["range"] == second["rows_generated"] > 0
        assert second["reason"] == "violation rate 1.00 over 0.50"
        assert second["rows_accepted"] == 0
        assert second["validation_metric"] is None  # never refitted on it
        # ... and none of its rows is in the kept synthetic data
        kept = synthetic_rows(tmp_path, "viol")
        assert len(kept) == first["rows_accepted"] == summary["synthetic_rows"]
        assert set(kept["_sl_iteration"]) == {1}

    def test_batch_over_the_rate_with_some_valid_rows_is_rejected_whole(self, spec_dict, tmp_path):
        # Setup: every other call writes rows far out of range, so about half the batch is bad
        calls = []

        def half_bad(messages, params):
            calls.append(1)
            reply = out_of_range_reply if len(calls) % 2 else jittered_rows_reply
            return reply(messages, params)

        spec = make_spec(spec_dict, curation={"max_violation_rate": 0.3}, generator=NO_REPAIR)

        summary = run(spec, tmp_path, scripted(loop_script(generate=half_bad)), run_id="half")

        # Assert: the valid half is not blended in on its own
        (record,) = summary["iterations"]
        assert 0.3 < record["checks"]["violation_rate"] < 1.0
        assert record["accepted"] is False
        assert record["reason"].startswith("violation rate")
        assert record["rows_accepted"] == 0
        assert summary["synthetic_rows"] == 0

    def test_violation_rate_at_the_limit_is_not_rejected_for_it(self, spec_dict, tmp_path):
        # Setup: a limit of 1.0 lets even a batch of only bad rows through the rate check
        spec = make_spec(spec_dict, curation={"max_violation_rate": 1.0}, generator=NO_REPAIR)
        model = scripted(loop_script(generate=out_of_range_reply))

        summary = run(spec, tmp_path, model)

        # Assert: still rejected (nothing valid is left), but for that reason instead
        (record,) = summary["iterations"]
        assert record["accepted"] is False
        assert record["reason"] == "no row passed validation"


class TestMetricDrop:
    def test_batch_that_lowers_validation_metric_is_rejected(self, spec_dict, cancer_df,
                                                             tmp_path):
        # Setup: iteration 1 gets good rows; iteration 2 gets benign-looking rows that the
        # generator labels as the requested class (malignant): label noise, heavily weighted,
        # with curation off so only the metric check can stop it (and every row of the
        # requested class, no counter-examples)
        benign = cancer_df[cancer_df.diagnosis == "benign"]
        spec = make_spec(spec_dict, budget={"max_iterations": 2},
                         curation={"confidence_percentile": 0},
                         blend={"synthetic_weight": 10}, generator={"contrast_share": 0})
        model = scripted(loop_script(generate=by_revision(jittered_rows_reply,
                                                          rows_from_frame_reply(benign))))

        # Run
        summary = run(spec, tmp_path, model, run_id="drop")

        # Assert
        first, second = summary["iterations"]
        assert first["accepted"] is True
        assert second["accepted"] is False
        assert second["validation_metric"] < first["best_validation"]
        assert second["reason"] == (f"validation dropped from {first['best_validation']:.4f} "
                                    f"to {second['validation_metric']:.4f}")
        assert second["rows_accepted"] == 0
        assert second["best_validation"] == first["best_validation"]
        kept = synthetic_rows(tmp_path, "drop")
        assert set(kept["_sl_iteration"]) == {1}
        assert len(kept) == first["rows_accepted"]
        # the rejected rows were real candidates: they reached the refit
        candidate = pd.read_parquet(tmp_path / "drop" / "data/batches/iter_002_candidate.parquet")
        assert len(candidate) > 0
        assert not set(candidate["_sl_row_id"]) & set(kept["_sl_row_id"])
        assert summary["final"]["validation"] == first["best_validation"]

    def test_a_drop_within_the_tolerance_is_kept_and_the_best_stays(self, spec_dict, cancer_df,
                                                                    tmp_path):
        # Setup: the same label-noise batch, with a tolerance larger than any possible drop
        benign = cancer_df[cancer_df.diagnosis == "benign"]
        spec = make_spec(spec_dict, budget={"max_iterations": 2},
                         curation={"confidence_percentile": 0},
                         blend={"synthetic_weight": 10, "max_validation_drop": 1.0},
                         generator={"contrast_share": 0})
        model = scripted(loop_script(generate=by_revision(jittered_rows_reply,
                                                          rows_from_frame_reply(benign))))

        summary = run(spec, tmp_path, model, run_id="tol")

        # Assert: kept, the reason says by how much it dropped, and the best is not lowered
        first, second = summary["iterations"]
        assert second["accepted"] is True
        assert second["validation_metric"] < first["best_validation"]
        drop = first["best_validation"] - second["validation_metric"]
        assert second["reason"] == f"validation dropped {drop:.4f}, within 1"
        assert second["best_validation"] == first["best_validation"]
        assert set(synthetic_rows(tmp_path, "tol")["_sl_iteration"]) == {1, 2}

    def test_auto_tolerance_is_the_measured_standard_error(self, spec_dict, cancer_df,
                                                           tmp_path):
        # Setup: the same label-noise batch, tolerance measured from the validation split
        benign = cancer_df[cancer_df.diagnosis == "benign"]
        spec = make_spec(spec_dict, budget={"max_iterations": 2},
                         curation={"confidence_percentile": 0},
                         blend={"synthetic_weight": 10, "max_validation_drop": "auto"},
                         generator={"contrast_share": 0})
        model = scripted(loop_script(generate=by_revision(jittered_rows_reply,
                                                          rows_from_frame_reply(benign))))

        summary = run(spec, tmp_path, model, run_id="auto")

        # Assert: a positive, recorded tolerance decides, and the reason names it
        first, second = summary["iterations"]
        assert first["tolerance"] > 0 and second["tolerance"] > 0
        drop = first["best_validation"] - second["validation_metric"]
        assert second["accepted"] is (drop <= second["tolerance"] + 1e-12)
        if second["accepted"]:
            assert second["reason"] == (f"validation dropped {drop:.4f}, within one standard "
                                        f"error ({second['tolerance']:.4f})")
        else:
            assert second["reason"].startswith("validation dropped from")


class TestSetAsideRefusedRegions:
    """A region whose batch was refused is not targeted again while the model is unchanged."""

    @staticmethod
    def harmful_run(spec_dict, cancer_df, tmp_path, run_id, **analysis):
        # every batch is benign rows labelled malignant, heavily weighted: each one is refused
        benign = cancer_df[cancer_df.diagnosis == "benign"]
        spec = make_spec(spec_dict, budget={"max_iterations": 3},
                         curation={"confidence_percentile": 0}, blend={"synthetic_weight": 10},
                         generator={"contrast_share": 0}, analysis=analysis)
        model = scripted(loop_script(generate=rows_from_frame_reply(benign)))
        return run(spec, tmp_path, model, run_id=run_id)

    def test_the_next_batches_target_other_regions_then_the_whole_class(self, spec_dict,
                                                                         cancer_df, tmp_path):
        summary = self.harmful_run(spec_dict, cancer_df, tmp_path, "aside")

        # Assert: every batch refused, and no rule is targeted twice
        its = summary["iterations"]
        assert [r["accepted"] for r in its] == [False, False, False]
        focus = [r["focus_regions"] for r in its]
        assert all(focus)
        assert not set(focus[0]) & set(focus[1])
        assert not (set(focus[0]) | set(focus[1])) & set(focus[2]) or focus[2] == ["True"]
        # the analysis after each refusal says what it set aside
        for k in (1, 2):
            doc = json.loads((tmp_path / "aside" / f"analysis/iter_{k:03d}.json").read_text())
            assert doc["summary"]["set_aside"] == sorted(set().union(*focus[:k]))
            assert not {r["rule"] for r in doc["regions"]} & set(doc["summary"]["set_aside"]) \
                or [r["rule"] for r in doc["regions"]] == ["True"]
        # and the trace shows it
        shown = show_run("aside", tmp_path)
        assert shown["set_aside"][1] == sorted(focus[0])

    def test_switched_off_the_same_region_is_targeted_again(self, spec_dict, cancer_df, tmp_path):
        summary = self.harmful_run(spec_dict, cancer_df, tmp_path, "again",
                                   set_aside_refused=False)

        its = summary["iterations"]
        assert [r["accepted"] for r in its] == [False, False, False]
        assert its[0]["focus_regions"] == its[1]["focus_regions"] == its[2]["focus_regions"]
        doc = json.loads((tmp_path / "again" / "analysis/iter_001.json").read_text())
        assert "set_aside" not in doc["summary"]

    def test_only_refusals_since_the_last_accepted_batch_count(self):
        history = [
            {"accepted": False, "focus_regions": ["a > 1"]},
            {"accepted": True, "focus_regions": ["b > 1"]},
            {"accepted": False, "focus_regions": ["c > 1", "d > 1"]},
            {"accepted": False, "focus_regions": ["e > 1"]},
        ]
        assert refused_since_accepted(history) == {"c > 1", "d > 1", "e > 1"}
        assert refused_since_accepted(history[:2]) == frozenset()
        assert refused_since_accepted([]) == frozenset()


class TestBlendCapInTheLoop:
    def test_synthetic_share_cap_binds_then_blocks(self, spec_dict, tmp_path):
        # Setup: a 2% share cap on ~170 real training rows leaves room for 3 synthetic rows
        spec = make_spec(spec_dict, budget={"max_iterations": 2, "max_synthetic_share": 0.02})
        model = scripted()

        # Run
        summary = run(spec, tmp_path, model, run_id="cap")

        # Assert: the first batch is cut to the cap, the second finds no room
        first, second = summary["iterations"]
        n_train = summary["split"]["train"]
        room = int(0.02 * n_train / 0.98)
        assert first["accepted"] is True
        assert first["rows_accepted"] == room
        assert first["checks"]["over_cap"] > 0
        assert second["accepted"] is False
        assert second["reason"] == "the synthetic-share cap is reached"
        assert summary["synthetic_rows"] == room
        assert len(synthetic_rows(tmp_path, "cap")) == room


class TestRepair:
    def test_out_of_range_numbers_are_repaired_and_counted(self, spec_dict, tmp_path):
        # Setup: every number far above its column's maximum, categories still invalid
        spec = make_spec(spec_dict, curation={"max_violation_rate": 1.0})
        model = scripted(loop_script(generate=out_of_range_reply))

        summary = run(spec, tmp_path, model, run_id="rep")

        # Assert: no row fails the range check; every written number was counted as repaired
        (record,) = summary["iterations"]
        numeric = [c for c in spec_dict_numeric(tmp_path / "rep")]
        assert record["checks"]["range"] == 0
        assert record["cells_repaired"] == record["rows_generated"] * len(numeric)


def spec_dict_numeric(run_dir) -> list[str]:
    import json

    schema = json.loads((run_dir / "schema.json").read_text())
    return [c["name"] for c in schema["columns"]
            if c["type"] in ("float", "int") and (c["min"] is not None or c["max"] is not None)]


class TestRejectedRows:
    def test_every_row_is_either_curated_or_rejected_once_with_a_reason(self, spec_dict,
                                                                        tmp_path):
        # Setup: a mix of valid and invalid rows in one batch
        spec = make_spec(spec_dict, budget={"max_iterations": 1},
                         curation={"max_violation_rate": 1.0}, generator=NO_REPAIR)
        model = scripted(loop_script(generate=out_of_range_reply))

        # Run
        run(spec, tmp_path, model, run_id="rej")

        # Assert: generated = curated + rejected, no row twice, every reject has a reason
        batches = tmp_path / "rej" / "data" / "batches"
        generated = pd.read_parquet(batches / "iter_001_generated.parquet")
        curated = pd.read_parquet(batches / "iter_001_curated.parquet")
        rejected = pd.read_parquet(batches / "iter_001_rejected.parquet")
        assert len(generated) == len(curated) + len(rejected) > 0
        assert rejected["_sl_row_id"].is_unique
        assert set(rejected["_sl_row_id"]).isdisjoint(curated["_sl_row_id"])
        assert (rejected["_sl_reject"].str.len() > 0).all()


def pooled_out_of_fold_pr_auc(real: pd.DataFrame, folds: int, seed: int) -> float:
    """The cancer spec's score (PR-AUC of malignant, logistic regression) on out-of-fold
    predictions over ``real``, each fold's model fitted on the other real rows only."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = real.drop(columns=["diagnosis"]).to_numpy(dtype=float)
    y = (real["diagnosis"] == "malignant").to_numpy()
    p = np.zeros(len(real))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X[tr], y[tr])
        p[te] = m.predict_proba(X[te])[:, 1]
    return average_precision_score(y, p)


class TestCrossValidatedAccept:
    """blend.accept_on: cross_validation judges a batch on out-of-fold predictions over every
    real training and validation row instead of on the validation split."""

    def test_the_score_is_out_of_fold_over_all_real_rows(self, spec_dict, tmp_path):
        spec = make_spec(spec_dict, blend={"accept_on": "cross_validation", "accept_folds": 4})

        summary = run(spec, tmp_path, scripted(loop_script(generate=jittered_rows_reply)),
                      run_id="cv")

        # the baseline's score is the metric of the 4-fold out-of-fold predictions over the
        # real training and validation rows together (the holdout is not among them)
        data = tmp_path / "cv" / "data"
        real = pd.concat([pd.read_parquet(data / "real_train.parquet"),
                          pd.read_parquet(data / "real_validation.parquet")], ignore_index=True)
        expected = pooled_out_of_fold_pr_auc(real, folds=4, seed=spec.seed)
        assert abs(summary["baseline"]["validation"] - expected) < 1e-4
        (record,) = summary["iterations"]
        assert record["decided_on"] == "cross_validation"
        assert record["reason"].startswith("cross-validated score")
        # the report names the scores for what they are
        n_real = len(real)
        label = f"cross-validated (4 folds, {n_real} real rows)"
        assert summary["decided_on"] == {"rule": "cross_validation", "folds": 4, "rows": n_real}
        page = (tmp_path / "cv" / "report.html").read_text()
        assert f"{label}: baseline" in page
        assert f"<th>{label}</th>" in page and "<th>validation</th>" not in page
        report = json.loads((tmp_path / "cv" / "report.json").read_text())
        assert report["iterations"]["decided_on"] == label
        # so does `runs diff` (the run against itself: both runs decided the same way)
        from synthloop.inspect import diff_runs

        assert diff_runs("cv", "cv", tmp_path)["decided_on"] == {"a": label, "b": label}

    def test_a_batch_that_lowers_the_cross_validated_score_is_refused(self, spec_dict,
                                                                      cancer_df, tmp_path):
        # the label-noise batch of TestMetricDrop (benign rows labelled malignant, heavily
        # weighted, curation off), judged by cross-validation
        benign = cancer_df[cancer_df.diagnosis == "benign"]
        spec = make_spec(spec_dict, curation={"confidence_percentile": 0},
                         blend={"synthetic_weight": 10, "accept_on": "cross_validation"},
                         generator={"contrast_share": 0})
        model = scripted(loop_script(generate=rows_from_frame_reply(benign)))

        summary = run(spec, tmp_path, model, run_id="cvdrop")

        (record,) = summary["iterations"]
        baseline = summary["baseline"]["validation"]
        assert record["accepted"] is False and record["rows_accepted"] == 0
        assert record["validation_metric"] < baseline
        assert record["reason"] == (f"cross-validated score dropped from {baseline:.4f} to "
                                    f"{record['validation_metric']:.4f}")
        assert summary["synthetic_rows"] == 0

    def test_auto_tolerance_is_measured_on_the_out_of_fold_predictions(self, spec_dict,
                                                                       monkeypatch, tmp_path):
        from synthloop.graphs import nodes

        seen = []
        real_se = nodes.difference_standard_error

        def spy(y_true, proba_a, proba_b, *args, **kw):
            se = real_se(y_true, proba_a, proba_b, *args, **kw)
            seen.append((len(y_true), not np.array_equal(proba_a, proba_b), se))
            return se

        monkeypatch.setattr(nodes, "difference_standard_error", spy)
        spec = make_spec(spec_dict, blend={"accept_on": "cross_validation",
                                           "max_validation_drop": "auto"})

        summary = run(spec, tmp_path, scripted(loop_script(generate=jittered_rows_reply)),
                      run_id="cvauto")

        # measured over every real training and validation row, between the baseline's and
        # the batch's out-of-fold predictions; that standard error is the tolerance. The
        # report measures it again between baseline and final: with the one batch kept, the
        # same figure, the validation lift's standard error
        data = tmp_path / "cvauto" / "data"
        n_real = (len(pd.read_parquet(data / "real_train.parquet"))
                  + len(pd.read_parquet(data / "real_validation.parquet")))
        (record,) = summary["iterations"]
        assert record["accepted"] is True
        assert [(n, differ) for n, differ, _ in seen] == [(n_real, True)] * 2
        assert record["tolerance"] == round(seen[0][2], 6) > 0
        assert summary["lift"]["validation_se"] == record["tolerance"]
        assert summary["decided_on"] == {"rule": "cross_validation", "folds": 5, "rows": n_real}

    def test_a_synthetic_row_never_helps_score_its_own_exemplar(self, spec_dict, monkeypatch,
                                                                 tmp_path):
        # the fake generator writes jittered copies of its exemplars: a fold that predicts an
        # exemplar must not learn from its copies
        from synthloop.graphs import nodes

        folds = []
        real_frame = nodes.training_frame

        def spy(real, synthetic, schema, weight):
            if synthetic is not None and len(synthetic):
                folds.append((set(real.index), nodes.exemplar_rows(synthetic)))
            return real_frame(real, synthetic, schema, weight)

        monkeypatch.setattr(nodes, "training_frame", spy)
        spec = make_spec(spec_dict, blend={"accept_on": "cross_validation"})

        run(spec, tmp_path, scripted(loop_script(generate=jittered_rows_reply)), run_id="leak")

        n_train = len(pd.read_parquet(tmp_path / "leak" / "data" / "real_train.parquet"))
        candidate = pd.read_parquet(tmp_path / "leak" / "data/batches/iter_001_candidate.parquet")
        assert len(folds) == 5  # the batch's folds (the baseline's have no synthetic rows)
        for fitted_on, sources in folds:
            held_out = set(range(n_train)) - fitted_on
            assert sources and all(not (src & held_out) for src in sources)
        # ... and some fold did hold out an exemplar, so rows were left out of it
        assert min(len(sources) for _, sources in folds) < len(candidate)


class TestValidationLiftNoise:
    """The summary, the console and the report give the validation lift beside one standard
    error of it on the rows that decided: on a small split a lift the user would believe is
    within the split's own noise."""

    def test_the_standard_error_is_the_paired_bootstrap_of_baseline_and_final(
            self, spec_dict, tmp_path, capsys):
        from synthloop.cli import print_summary
        from synthloop.evals.classification import score_all
        from synthloop.evals.utility import difference_standard_error

        # F1 and heavily weighted rows, so that the batch moves the validation score (the
        # ranking metrics do not move on this easy data)
        spec = make_spec(spec_dict, metric={"name": "f1"},
                         blend={"synthetic_weight": 10, "max_validation_drop": 1})
        summary = run(spec, tmp_path, scripted(loop_script(generate=jittered_rows_reply)),
                      run_id="se")

        (record,) = summary["iterations"]
        assert record["accepted"] is True
        # recomputed from the stored models on the stored validation rows
        folder = tmp_path / "se"
        val = pd.read_parquet(folder / "data" / "real_validation.parquet")
        models = [joblib.load(folder / "models" / f"{m}.joblib") for m in ("baseline", "final")]
        schema = json.loads((folder / "schema.json").read_text())
        expected = difference_standard_error(
            val[schema["target"]].to_numpy(), *(m.predict_proba(val) for m in models),
            schema["classes"], schema["positive_class"], spec.metric.name, seed=spec.seed,
            threshold=spec.metric.threshold, precision=spec.metric.precision)
        se = summary["lift"]["validation_se"]
        # the final score is the final model's own (with a tolerance above 0 it may differ
        # from the best score a batch reached)
        final_f1 = score_all(val[schema["target"]].to_numpy(), models[1].predict_proba(val),
                             schema["classes"], schema["positive_class"],
                             threshold=spec.metric.threshold,
                             precision=spec.metric.precision)["f1"]
        assert abs(summary["final"]["validation"] - final_f1) < 1e-6
        assert summary["lift"]["validation"] != 0
        assert se > 0 and abs(se - expected) < 1e-6
        print_summary(summary)
        line = next(ln for ln in capsys.readouterr().out.splitlines() if "-> final" in ln)
        assert (f"(lift {summary['lift']['validation']:+.4f} ± {se:.4f}, one standard error "
                f"over {len(val)} rows)") in line
        report = json.loads((folder / "report.json").read_text())
        assert report["run"]["lift"]["validation_se"] == se
        assert "one standard error of the lift" in (folder / "report.html").read_text()

    def test_a_run_that_kept_nothing_has_no_lift_and_no_noise_to_report(self, spec_dict,
                                                                         tmp_path):
        from synthloop.inspect import validation_noise

        spec = make_spec(spec_dict, budget={"max_iterations": 1}, generator=NO_REPAIR)
        summary = run(spec, tmp_path, scripted(loop_script(generate=out_of_range_reply)),
                      run_id="none")

        assert summary["synthetic_rows"] == 0
        assert summary["lift"]["validation_se"] == 0.0
        assert validation_noise(summary) == ""

    def test_the_figure_is_left_out_where_there_is_none_to_give(self):
        from synthloop.inspect import validation_noise

        lift = {"validation": 0.05}
        assert validation_noise({"lift": lift}) == ""  # written before the figure existed
        assert validation_noise({"lift": {**lift, "validation_se": None}}) == ""  # not measured
        assert validation_noise({"lift": {**lift, "validation_se": float("nan")}}) == ""
        split = {"lift": {**lift, "validation_se": 0.02},
                 "decided_on": {"rule": "validation", "rows": 12}}
        assert validation_noise(split) == " (lift +0.0500 ± 0.0200, one standard error over 12 rows)"
        # a cross-validated run's label already names its rows
        cv = {**split, "decided_on": {"rule": "cross_validation", "folds": 5, "rows": 36}}
        assert validation_noise(cv) == " (lift +0.0500 ± 0.0200, one standard error)"
