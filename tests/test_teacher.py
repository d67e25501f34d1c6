"""curation.teacher: synthetic rows labelled softly by models fitted on real rows."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from synthloop.errors import SpecError
from synthloop.tools.curation import training_frame
from synthloop.tools.teacher import PREFIX, Teacher, expand_soft
from tests.fakes import loop_script, rows_from_frame_reply, scripted
from tests.support import make_spec, run

KINDS = ["logistic_regression", "random_forest"]


class TestExpandSoft:
    def test_a_labelled_row_counts_once_per_class_at_its_probability(self, schema, cancer_df):
        rows = cancer_df.head(3).assign(**{f"{PREFIX}benign": [0.9, 0.2, 1.0],
                                           f"{PREFIX}malignant": [0.1, 0.8, 0.0]})

        out, w = expand_soft(rows, schema, weight=0.5)

        # rows 0 and 1 twice (once per class), row 2 once: its other class is under MIN_WEIGHT
        assert len(out) == len(w) == 5
        by_class = {(lab, round(wt, 6)) for lab, wt in zip(out[schema.target], w)}
        assert by_class == {("benign", 0.45), ("benign", 0.1), ("benign", 0.5),
                            ("malignant", 0.05), ("malignant", 0.4)}
        assert np.isclose(w.sum(), 0.5 * 3)  # each row's weight is shared, not multiplied

    def test_three_classes(self):
        from synthloop.data import ColumnSchema, TableSchema

        schema = TableSchema(target="y", classes=["a", "b", "c"], positive_class="a",
                             columns=[ColumnSchema(name="x", type="float")])
        rows = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "c"],
                             f"{PREFIX}a": [0.5, 0.0], f"{PREFIX}b": [0.3, 0.1],
                             f"{PREFIX}c": [0.2, 0.9]})

        out, w = expand_soft(rows, schema, weight=1.0)

        got = sorted(zip(out["x"], out["y"], np.round(w, 6)))
        assert got == [(1.0, "a", 0.5), (1.0, "b", 0.3), (1.0, "c", 0.2),
                       (2.0, "b", 0.1), (2.0, "c", 0.9)]

    def test_rows_without_teacher_probabilities_keep_their_label(self, schema, cancer_df):
        plain = cancer_df.head(4)
        out, w = expand_soft(plain, schema, weight=2.0)
        assert out.equals(plain) and w.tolist() == [2.0] * 4
        # a reviewer's row beside labelled ones: NaN probabilities, its own label at `weight`
        mixed = pd.concat([cancer_df.head(1).assign(**{f"{PREFIX}benign": 0.3,
                                                       f"{PREFIX}malignant": 0.7}),
                           cancer_df.iloc[[5]]], ignore_index=True)
        out, w = expand_soft(mixed, schema, weight=1.0)
        assert len(out) == 3 and np.isclose(w.sum(), 2.0)
        assert out.iloc[0][schema.target] == cancer_df.iloc[5][schema.target] and w[0] == 1.0

    def test_training_frame_expands_synthetic_rows_only(self, schema, cancer_df):
        real = cancer_df.head(10)
        syn = cancer_df.iloc[10:12].assign(**{f"{PREFIX}benign": [0.5, 0.25],
                                               f"{PREFIX}malignant": [0.5, 0.75]})

        X, w = training_frame(real, syn, schema, 1.0)

        assert len(X) == 14 and w[:10].tolist() == [1.0] * 10
        assert sorted(w[10:].tolist()) == [0.25, 0.5, 0.5, 0.75]
        assert not any(str(c).startswith(PREFIX) for c in X.columns)


class TestTeacher:
    def test_probabilities_are_the_mean_of_its_models(self, schema, cancer_df):
        teacher = Teacher(KINDS, seed=0).fit(cancer_df, schema)
        frame = cancer_df.sample(20, random_state=1)

        labelled = teacher.label(frame, schema)

        p = np.mean([m.predict_proba(frame) for m in teacher.models_], axis=0)
        cols = [f"{PREFIX}{c}" for c in schema.classes]
        assert np.allclose(labelled[cols].to_numpy(), p, atol=1e-6)
        assert np.allclose(labelled[cols].sum(axis=1), 1.0, atol=1e-5)
        assert teacher.n_rows == len(cancer_df)
        # it knows the label: right on most training rows
        y = frame[schema.target].to_numpy()
        assert (np.array(schema.classes)[p.argmax(axis=1)] == y).mean() > 0.9


class TestTeacherInTheLoop:
    def test_rows_with_the_wrong_label_are_relabelled_and_the_delivered_rows_use_every_seen_row(
            self, spec_dict, cancer_df, tmp_path):
        # every row copied from a malignant tumour, whatever class was asked for
        malignant = cancer_df[cancer_df.diagnosis == "malignant"]
        spec = make_spec(spec_dict, curation={"teacher": KINDS, "confidence_percentile": 0},
                         budget={"max_iterations": 2})

        summary = run(spec, tmp_path, scripted(loop_script(
            generate=rows_from_frame_reply(malignant))), run_id="taught")

        folder = tmp_path / "taught"
        summary_seed = spec.seed
        cand = pd.read_parquet(folder / "data" / "batches" / "iter_001_candidate.parquet")
        assert len(cand) and (cand["diagnosis"] == "benign").any()  # the generator's labels
        # the training-split teacher calls the copies malignant, whatever they were written as
        assert (cand[f"{PREFIX}malignant"] > 0.5).mean() > 0.7
        in_loop = Teacher(KINDS, summary_seed).fit(pd.read_parquet(folder / "data" / "real_train.parquet"),
                                        _schema(folder))
        assert np.allclose(cand[f"{PREFIX}malignant"],
                           in_loop.proba(cand)[:, _schema(folder).classes.index("malignant")],
                           atol=1e-6)
        assert summary["teacher"] == {"kinds": KINDS, "rows_in_loop": summary["split"]["train"],
                                      "rows_final": summary["split"]["train"]
                                      + summary["split"]["validation"],
                                      "final_rows": "training_and_validation"}
        assert summary["synthetic_rows"] > 0  # the delivered rows: the teacher of train + validation
        syn = pd.read_parquet(folder / "data" / "synthetic.parquet")
        seen = pd.concat([pd.read_parquet(folder / "data" / f"real_{p}.parquet")
                          for p in ("train", "validation")], ignore_index=True)
        final = Teacher(KINDS, summary_seed).fit(seen, _schema(folder))
        saved = joblib.load(folder / "data" / "teacher_final.joblib")
        assert saved.n_rows == len(seen) and np.allclose(saved.proba(syn), final.proba(syn))
        assert np.allclose(syn[f"{PREFIX}malignant"],
                           final.proba(syn)[:, _schema(folder).classes.index("malignant")],
                           atol=1e-6)

    def test_runs_show_gives_the_teacher_probabilities_of_kept_rows(self, spec_dict, cancer_df,
                                                                    tmp_path):
        from typer.testing import CliRunner

        from synthloop.cli import app
        from synthloop.inspect import show_run

        malignant = cancer_df[cancer_df.diagnosis == "malignant"]
        spec = make_spec(spec_dict, curation={"teacher": KINDS, "confidence_percentile": 0},
                         budget={"max_iterations": 1})
        run(spec, tmp_path, scripted(loop_script(generate=rows_from_frame_reply(malignant))),
            run_id="shown")
        cand = pd.read_parquet(tmp_path / "shown" / "data" / "batches" /
                               "iter_001_candidate.parquet").set_index("_sl_row_id")

        sample = show_run("shown", tmp_path, rows=3)["rows"][1]

        assert sample["kept"], "the batch was kept"
        for row in sample["kept"]:
            assert set(row["teacher"]) == {"benign", "malignant"}
            assert row["teacher"]["malignant"] == pytest.approx(
                cand.loc[row["_sl_row_id"], f"{PREFIX}malignant"])
        assert all("teacher" not in row for row in sample["rejected"])
        shown = CliRunner().invoke(app, ["runs", "show", "shown", "--runs-dir", str(tmp_path)])
        assert shown.exit_code == 0 and "teacher" in shown.stdout
        first = sample["kept"][0]["teacher"]["malignant"]
        assert f"{first:.3f}" in shown.stdout

    def test_the_final_teacher_may_see_the_holdout_and_the_holdout_scores_do_not_move(
            self, spec_dict, cancer_df, tmp_path):
        malignant = cancer_df[cancer_df.diagnosis == "malignant"]
        runs = {}
        for rows in ("training_and_validation", "all"):
            spec = make_spec(spec_dict, curation={"teacher": KINDS, "confidence_percentile": 0,
                                                  "final_teacher_rows": rows},
                             budget={"max_iterations": 2})
            runs[rows] = run(spec, tmp_path, scripted(loop_script(
                generate=rows_from_frame_reply(malignant))), run_id=rows)
        inner, every = runs["training_and_validation"], runs["all"]
        split = every["split"]
        assert every["teacher"]["final_rows"] == "all"
        assert every["teacher"]["rows_final"] == split["train"] + split["validation"] + split["holdout"]
        # the loop's decisions and its holdout scores come before the final teacher
        for key in ("baseline", "final", "lift"):
            assert every[key] == inner[key]
        folder = tmp_path / "all"
        syn = assert_labelled_by_a_teacher_on_every_real_row(folder, spec.seed)
        # the report says whose labels the delivered rows carry
        html = {r: (tmp_path / r / "report.html").read_text() for r in runs}
        assert "the holdout&#x27;s too" in html["all"] or "the holdout's too" in html["all"]
        assert "on the training and validation rows" in html["training_and_validation"]
        report = json.loads((folder / "report.json").read_text())
        assert report["run"]["teacher"]["final_rows"] == "all"
        before = pd.read_parquet(tmp_path / "training_and_validation" / "data" / "synthetic.parquet")
        assert len(syn) == len(before) and not np.allclose(syn[f"{PREFIX}malignant"],
                                                           before[f"{PREFIX}malignant"])

    def test_a_fork_may_let_the_final_teacher_see_the_holdout(self, spec_dict, cancer_df,
                                                              tmp_path, capsys):
        # Setup: a two-iteration teacher run with its checkpoints on disk, as 'synthloop run'
        from synthloop.cli import print_summary
        from synthloop.fork import fork_run

        malignant = cancer_df[cancer_df.diagnosis == "malignant"]
        spec = make_spec(spec_dict, curation={"teacher": KINDS, "confidence_percentile": 0},
                         budget={"max_iterations": 2})
        parent = run(spec, tmp_path, scripted(loop_script(
            generate=rows_from_frame_reply(malignant))), checkpointer=None)

        # Run: fork at the end of the last iteration, the final teacher on every real row
        fork = fork_run("run", tmp_path, from_iteration=2, new_run_id_="every",
                        overrides={"curation.final_teacher_rows": "all"},
                        chat_model=scripted(loop_script(
                            generate=rows_from_frame_reply(malignant))), cache_dir=None)

        # Assert: the same decisions and scores, the delivered rows relabelled by that teacher
        assert fork["status"] == "finished"
        for key in ("baseline", "final", "lift", "synthetic_rows"):
            assert fork[key] == parent[key]
        split = fork["split"]
        assert fork["teacher"]["final_rows"] == "all"
        assert fork["teacher"]["rows_final"] == sum(split.values())
        assert_labelled_by_a_teacher_on_every_real_row(tmp_path / "every", spec.seed)
        # and the summary a run prints at its end says whose labels they are
        capsys.readouterr()
        print_summary(parent)
        print_summary(fork)
        printed = capsys.readouterr().out
        assert (f"delivered rows labelled by logistic_regression + random_forest on the "
                f"training and validation rows ({split['train'] + split['validation']} rows)"
                in " ".join(printed.split()))
        assert "on every real row, the holdout's too" in " ".join(printed.split())

    def test_off_by_default(self, spec_dict, tmp_path):
        summary = run(make_spec(spec_dict, budget={"max_iterations": 1}), tmp_path, scripted(),
                      run_id="plain")
        cand = pd.read_parquet(tmp_path / "plain" / "data" / "batches"
                               / "iter_001_candidate.parquet")
        assert not any(str(c).startswith(PREFIX) for c in cand.columns)
        assert "teacher" not in summary
        from synthloop.inspect import teacher_label
        assert teacher_label(summary) is None  # and the printed summary has no teacher line


def assert_labelled_by_a_teacher_on_every_real_row(folder: Path, seed: int) -> pd.DataFrame:
    """The run's delivered rows carry the labels of a teacher fitted on all its real rows,
    the holdout's too; returns those rows."""
    real = pd.concat([pd.read_parquet(folder / "data" / f"real_{p}.parquet")
                      for p in ("train", "validation", "holdout")], ignore_index=True)
    syn = pd.read_parquet(folder / "data" / "synthetic.parquet")
    schema = _schema(folder)
    final = Teacher(KINDS, seed).fit(real, schema)
    assert np.allclose(syn[f"{PREFIX}malignant"],
                       final.proba(syn)[:, schema.classes.index("malignant")], atol=1e-6)
    return syn


def _schema(folder: Path):
    from synthloop.data import TableSchema

    return TableSchema.model_validate(json.loads((folder / "schema.json").read_text()))


class TestTeacherSpec:
    def test_an_unknown_model_is_one_line_naming_the_known_ones(self, spec_dict):
        with pytest.raises(SpecError) as err:
            make_spec(spec_dict, curation={"teacher": ["logistic_regresion"]})
        assert "logistic_regresion" in str(err.value) and "logistic_regression" in str(err.value)
        assert "\n" not in str(err.value).strip()

    def test_cross_validated_acceptance_refuses_it(self, spec_dict):
        # each held-out row would be scored by a model taught its own label by the teacher
        with pytest.raises(SpecError, match="accept_on: validation with the teacher"):
            make_spec(spec_dict, blend={"accept_on": "cross_validation"},
                      curation={"teacher": KINDS})

    def test_final_teacher_rows_without_a_teacher_is_one_line(self, spec_dict):
        with pytest.raises(SpecError) as err:
            make_spec(spec_dict, curation={"final_teacher_rows": "all"})
        assert "set curation.teacher" in str(err.value)
        assert "\n" not in str(err.value).strip()

    def test_a_text_loop_refuses_it(self, spec_dict):
        with pytest.raises(SpecError, match="curation.teacher labels table rows"):
            make_spec(spec_dict, data={**spec_dict["data"], "text_column": "text"},
                      curation={"teacher": KINDS})


class TestTeacherAndReview:
    def test_a_row_the_reviewer_changed_or_added_keeps_the_persons_label(
            self, cancer_df, tmp_path, monkeypatch):
        from synthloop.errors import ReviewPending
        from synthloop.review import candidate_rows, export_rows, review_run
        from synthloop.runner import run_loop
        from tests.plugin_support import fast_report
        from tests.support import FEATURES, base_spec

        fast_report(monkeypatch)
        cancer_df.to_csv(tmp_path / "cancer.csv", index=False)
        spec = make_spec(base_spec(tmp_path / "cancer.csv", blend={"max_validation_drop": 1.0},
                                   review={"mode": "batch"},
                                   curation={"teacher": KINDS, "consistency_quantile": 0}),
                         budget={"max_iterations": 1})
        model = scripted()
        with pytest.raises(ReviewPending) as info:
            run_loop(spec, tmp_path / "runs", chat_model=model, run_id="t", cache_dir=None)
        cols = [c.replace(" ", "_") for c in FEATURES] + ["diagnosis"]
        rows = candidate_rows("t", tmp_path / "runs", info.value.pending)
        assert rows[f"{PREFIX}malignant"].notna().all()
        df = pd.read_csv(export_rows(rows, cols, tmp_path / "batch.csv"))
        # the reviewer sees what each row counts as; the import ignores those columns
        soft = [f"{PREFIX}{c}" for c in _schema(tmp_path / "runs" / "t").classes]
        assert list(df.columns) == ["_sl_row_id", *cols, *soft]
        assert np.allclose(df[soft].to_numpy(), rows[soft].to_numpy())
        first = df["_sl_row_id"].iloc[0]
        df.loc[0, "diagnosis"] = "benign" if df.loc[0, "diagnosis"] == "malignant" else "malignant"
        # row 2: a cell changed, its label not: the teacher labels it again, as it now reads
        moved = df["_sl_row_id"].iloc[2]
        df.loc[2, "worst_radius"] = 30.0  # far into malignant tumours
        new = df.iloc[[1]].assign(_sl_row_id=None, mean_texture=27.3)
        pd.concat([df, new], ignore_index=True).to_csv(tmp_path / "edited.csv", index=False)

        review_run("t", tmp_path / "runs", action="edit", edit=tmp_path / "edited.csv",
                   chat_model=model, cache_dir=None)

        syn = pd.read_parquet(tmp_path / "runs" / "t" / "data" / "synthetic.parquet")
        person = (syn["_sl_row_id"] == first) | (syn["_sl_generator"] == "human:review")
        assert person.sum() == 2
        # the changed and the added row: no teacher probabilities, so their own label counts,
        # even after the final teacher relabelled the rest
        assert syn.loc[person, f"{PREFIX}malignant"].isna().all()
        assert syn.loc[~person, f"{PREFIX}malignant"].notna().all()
        final = joblib.load(tmp_path / "runs" / "t" / "data" / "teacher_final.joblib")
        row = syn[syn["_sl_row_id"] == moved]
        j = _schema(tmp_path / "runs" / "t").classes.index("malignant")
        assert row["worst_radius"].item() == 30.0
        assert np.isclose(row[f"{PREFIX}malignant"].item(), final.proba(row)[0, j], atol=1e-6)
        out, w = expand_soft(syn, _schema(tmp_path / "runs" / "t"), 1.0)
        once = out[out["_sl_row_id"] == first]
        assert len(once) == 1 and once["diagnosis"].item() == df.loc[0, "diagnosis"]
        assert np.isclose(w.sum(), len(syn))  # the others shared out over the classes
