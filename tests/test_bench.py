"""The benchmark harness reproduces the published sick rows with the same protocol."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthloop.errors import SpecError
from synthloop.evals.bench import run_bench

BENCH_DATA = Path(os.environ.get(
    "SYNTHLOOP_BENCH_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "bench-data"))
needs_data = pytest.mark.skipif(not (BENCH_DATA / "sick").is_dir(),
                                reason="shared/bench-data is not beside the repository")


@needs_data
class TestSickProtocol:
    def test_real_only_and_provided_reproduce_the_published_rows(self, tmp_path):
        # Setup / Run: GradientBoosting on label-encoded, standardised features, 2 seeds
        res = run_bench("sick", BENCH_DATA, tmp_path, seeds=2,
                        methods=["real_only", "provided"])

        # Assert: the published anchor (README of bench-data): real only F1 84.09 / balanced
        # accuracy 89.86; + EPIC (GPT-3.5) rows 91.95 / 93.41 — within one positive (~2 points)
        gb = res[res.model == "gradient_boosting"].set_index(["method", "metric"])["mean"]
        assert gb[("real_only", "f1")] == pytest.approx(84.09, abs=2.2)
        assert gb[("real_only", "balanced_accuracy")] == pytest.approx(89.86, abs=2.2)
        assert gb[("provided", "f1")] == pytest.approx(91.95, abs=2.2)
        assert gb[("provided", "balanced_accuracy")] == pytest.approx(93.41, abs=2.2)
        # ... and the files a user reads
        assert {"suite", "method", "model", "metric", "mean", "std", "seeds", "seconds",
                "tokens"} <= set(res.columns)
        assert (tmp_path / "results.csv").is_file() and (tmp_path / "results.md").is_file()
        settings = json.loads((tmp_path / "bench.json").read_text())
        assert settings["suite"] == "sick" and settings["seeds"] == 2
        assert settings["methods"] == ["real_only", "provided"]


    def test_provided_rows_take_the_budget_of_the_other_methods(self):
        from synthloop.evals.bench import BenchSplit, m_provided, sick_suite

        suite = sick_suite(BENCH_DATA)
        train = next(suite.splits([0])).train

        small = [m_provided(suite, BenchSplit(train, train, seed), 100, {}).train
                 for seed in (0, 1)]
        full = m_provided(suite, BenchSplit(train, train, 0), 1000, {}).train

        # a random 100 of the 1,000 published rows per seed, and all of them at the default
        assert [len(t) - len(train) for t in small] == [100, 100]
        assert not small[0].iloc[len(train):].equals(small[1].iloc[len(train):])
        assert len(full) - len(train) == 1000

    def test_provided_bootstrap_draws_the_given_rows_with_replacement_per_seed(self):
        from synthloop.evals.bench import BenchSplit, m_provided_bootstrap, sick_suite

        suite = sick_suite(BENCH_DATA)
        train = next(suite.splits([0])).train
        cols = list(train.columns)

        def drawn(seed: int, n: int = 1000) -> pd.DataFrame:
            out = m_provided_bootstrap(suite, BenchSplit(train, train, seed), n, {}).train
            assert out.iloc[:len(train)].equals(train)  # the real rows come first, unchanged
            return out.iloc[len(train):].reset_index(drop=True)

        first, again, other = drawn(0), drawn(0), drawn(1)
        given = suite.provided[cols].round(6).astype(str).agg("|".join, axis=1)
        keys = first[cols].round(6).astype(str).agg("|".join, axis=1)

        # as many rows as the budget, every one a given row, some drawn twice (with
        # replacement), the same draw for the same seed and another for another seed
        assert len(first) == 1000 and len(drawn(0, 300)) == 300
        assert keys.isin(set(given)).all()
        assert keys.duplicated().sum() > keys.size // 10 + given.duplicated().sum()
        assert first.equals(again) and not first.equals(other)


@needs_data
class TestAdultProtocol:
    def test_headline_averages_the_models_and_reports_the_oracle(self, tmp_path):
        res = run_bench("adult-lowdata", BENCH_DATA, tmp_path, seeds=1, methods=["real_only"],
                        variants=["n=20"])

        auc = res[res.metric == "roc_auc"].set_index(["method", "model"])["mean"]
        models = ["lightgbm", "random_forest", "logistic_regression"]
        for method in ("real_only", "oracle"):
            assert auc[(method, "mean of models")] == pytest.approx(
                sum(auc[(method, m)] for m in models) / 3, abs=0.01)
        # 20 rows per class sit well under the oracle (all real training rows)
        assert auc[("real_only", "mean of models")] < auc[("oracle", "mean of models")]
        assert (res["suite"] == "adult-lowdata n=20").all()
        assert "| method | lightgbm | random_forest | logistic_regression | mean of models |" in \
            (tmp_path / "results.md").read_text()


    def test_the_mean_of_models_counts_the_methods_own_seconds_once(self, tmp_path,
                                                                      monkeypatch):
        import time

        from synthloop.evals import bench

        # 5 s of data preparation, then the real rows: far above the three small fits, so a
        # slow or busy machine cannot blur the bounds below
        def slow(suite, split, n, ctx):
            time.sleep(5.0)
            return bench.Augmented(split.train)

        monkeypatch.setitem(bench.METHODS, "slow", slow)
        res = run_bench("adult-lowdata", BENCH_DATA, tmp_path, seeds=1, methods=["slow"],
                        variants=["n=20"])

        secs = res[(res.method == "slow") & (res.metric == "roc_auc")].set_index("model")["seconds"]
        per_model = secs.drop("mean of models")
        assert (per_model >= 5.0).all()  # each model's row: the preparation plus its fit
        # preparation once plus the three fits: under two preparations, not over three
        assert 5.0 <= secs["mean of models"] < 10.0 < per_model.sum()


class TestBadInput:
    def test_zero_seeds_is_one_clear_error(self, tmp_path, monkeypatch):
        from synthloop.evals import bench

        monkeypatch.setitem(bench.SUITES, "toy", _toy_suite)
        with pytest.raises(SpecError, match="--seeds 0 runs nothing; give 1 or more"):
            run_bench("toy", tmp_path, tmp_path / "out", seeds=0)

    def test_ctrl_c_says_where_the_finished_methods_are(self, tmp_path, monkeypatch):
        from typer.testing import CliRunner

        from synthloop.cli import app
        from synthloop.evals import bench

        def interrupted(suite, split, n, ctx):
            raise KeyboardInterrupt

        monkeypatch.setitem(bench.SUITES, "toy", _toy_suite)
        monkeypatch.setitem(bench.METHODS, "smote", interrupted)
        result = CliRunner().invoke(app, ["bench", "toy", "--data-dir", str(tmp_path), "--out",
                                          str(tmp_path / "out"), "--methods", "real_only,smote"])

        assert result.exit_code == 130
        assert "stopped: " in result.stderr and "holds the methods it finished" in result.stderr
        assert set(pd.read_csv(tmp_path / "out" / "raw.csv")["method"]) == {"real_only"}

    def test_a_wrong_data_folder_is_one_line_naming_it_in_the_bench_and_the_scripts(
            self, tmp_path):
        import subprocess
        import sys

        from typer.testing import CliRunner

        from synthloop.cli import app
        from tests.test_cli import assert_one_error_line

        result = CliRunner().invoke(app, ["bench", "sick", "--data-dir", str(tmp_path),
                                          "--out", str(tmp_path / "out")])
        assert result.exit_code == 2
        assert_one_error_line(result.stderr, f"'{tmp_path}' should be shared/bench-data",
                              "X_train.csv")
        # a script taking the folder as its argument fails the same way, not with a traceback
        script = Path(__file__).resolve().parents[1] / "scripts" / "sick_diagnostics.py"
        ran = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                             text=True, timeout=300)
        assert ran.returncode == 2
        assert_one_error_line(ran.stderr, f"'{tmp_path}' should be shared/bench-data")

    def test_unknown_suite_and_method_are_one_clear_error(self, tmp_path):
        with pytest.raises(SpecError, match="Unknown suite 'nope'; suites are: sick"):
            run_bench("nope", tmp_path, tmp_path)
        if (BENCH_DATA / "sick").is_dir():
            with pytest.raises(SpecError, match="Unknown method"):
                run_bench("sick", BENCH_DATA, tmp_path, methods=["magic"])
            with pytest.raises(SpecError, match="No split of suite 'sick' matches"):
                run_bench("sick", BENCH_DATA, tmp_path, seeds=1, methods=["real_only"],
                          variants=["n=7"])


def _toy_suite(data_dir=None):
    """An imbalanced two-class suite from scikit-learn's generator: no bench-data needed."""
    from sklearn.datasets import make_classification

    from synthloop.evals import bench

    X, y = make_classification(n_samples=600, n_features=5, n_informative=3, weights=[0.9],
                               flip_y=0.05, random_state=0)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    df["label"] = np.where(y == 1, "yes", "no")
    train, test = df.iloc[:400].reset_index(drop=True), df.iloc[400:].reset_index(drop=True)

    def splitter(seeds):
        for s in seeds:
            yield bench.BenchSplit(train.copy(), test.copy(), s)

    return bench.Suite(name="toy", target="label", positive="yes", metrics=["f1", "roc_auc"],
                       primary="f1", models={"lightgbm": bench._lgbm}, splitter=splitter)


class TestClassWeightTuned:
    def test_it_keeps_the_weight_with_the_best_cross_validated_metric(self, monkeypatch):
        from synthloop.evals import bench

        suite = _toy_suite()
        split = next(suite.splits([0]))
        seen = []

        def fake_fit_and_score(suite, model, seed, train, weights, test):
            seen.append(test)
            w = float(weights[(train["label"] == "yes").to_numpy()].mean())
            return {"f1": -(w - 3.0) ** 2, "roc_auc": 0.5}  # best at a weight of 3

        monkeypatch.setattr(bench, "fit_and_score", fake_fit_and_score)
        aug = bench.m_class_weight_tuned(suite, split, 0, {})

        yes = (aug.train["label"] == "yes").to_numpy()
        assert set(aug.weights[yes]) == {3.0} and set(aug.weights[~yes]) == {1.0}
        assert aug.detail.startswith("yes weight 3.0 (cv f1 1.0: -4.000")
        # every candidate on every fold, scored on held-out training rows: the test split unseen
        assert len(seen) == len(bench.CLASS_WEIGHT_GRID) * 3
        scored = pd.concat(seen).drop_duplicates()
        cols = list(split.train.columns)
        assert len(scored.merge(split.train, on=cols)) == len(split.train)  # each row once
        assert scored.merge(split.test, on=cols).empty

    def test_the_bench_records_the_weight_it_chose_per_seed(self, tmp_path, monkeypatch):
        from synthloop.evals import bench

        monkeypatch.setitem(bench.SUITES, "toy", _toy_suite)
        lines = []
        res = run_bench("toy", tmp_path, tmp_path / "out", seeds=2,
                        methods=["real_only", "class_weight_tuned"], progress=lines.append)

        details = json.loads((tmp_path / "out" / "bench.json").read_text())["method_details"]
        assert [(d["seed"], d["method"]) for d in details] == [(0, "class_weight_tuned"),
                                                               (1, "class_weight_tuned")]
        chosen = [d["detail"].split(" (")[0] for d in details]
        assert all(c.split("weight ")[1] in {str(w) for w in bench.CLASS_WEIGHT_GRID}
                   for c in chosen)
        assert any("class_weight_tuned" in line and "yes weight" in line for line in lines)
        f1 = res[(res.metric == "f1")].set_index("method")["mean"]
        assert set(f1.index) == {"real_only", "class_weight_tuned"}


class TestLoopMethodsAreScoredAsTheLoopTrained:
    @staticmethod
    def _augment(tmp_path, monkeypatch, overrides, kept=5):
        import synthloop.runner as runner
        from synthloop.evals import bench

        suite = _toy_suite()
        split = next(suite.splits([0]))

        def fake_run_loop(spec, runs_dir, **kw):  # the loop kept `kept` rows (lineage columns
            syn = split.train.head(kept).assign(_sl_origin="synthetic")  # are not features)
            (Path(runs_dir) / "r" / "data").mkdir(parents=True)
            syn.to_parquet(Path(runs_dir) / "r" / "data" / "synthetic.parquet")
            return {"run_id": "r", "total_tokens": 7}

        monkeypatch.setattr(runner, "run_loop", fake_run_loop)
        aug = bench.m_synthloop(suite, split, 40, {"runs_dir": tmp_path,
                                                   "loop_overrides": overrides})
        return split, aug

    def test_synthetic_rows_keep_the_loops_sample_weight(self, tmp_path, monkeypatch):
        split, aug = self._augment(tmp_path, monkeypatch, {"blend.synthetic_weight": 0.25})

        n = len(split.train)
        assert len(aug.train) == n + 5 and aug.tokens == 7
        assert aug.weights.tolist() == [1.0] * n + [0.25] * 5

    def test_at_the_default_weight_the_rows_are_unweighted(self, tmp_path, monkeypatch):
        split, aug = self._augment(tmp_path, monkeypatch, {})

        assert len(aug.train) == len(split.train) + 5 and aug.weights is None
        assert list(aug.train.columns) == list(split.train.columns)

    def test_rows_a_teacher_labelled_count_once_per_class_even_without_a_runs_dir(
            self, monkeypatch):
        import synthloop.runner as runner
        from synthloop.evals import bench

        suite = _toy_suite()
        split = next(suite.splits([0]))

        def fake_run_loop(spec, runs_dir, **kw):  # two rows a teacher labelled (yes 0.8, 0.3)
            folder = Path(runs_dir) / "r"
            (folder / "data").mkdir(parents=True)
            syn = split.train.head(2).assign(**{"_sl_teacher:no": [0.2, 0.7],
                                                "_sl_teacher:yes": [0.8, 0.3]})
            syn.to_parquet(folder / "data" / "synthetic.parquet")
            (folder / "schema.json").write_text(json.dumps({
                "target": "label", "classes": ["no", "yes"], "positive_class": "yes",
                "columns": [{"name": f"x{i}", "type": "float"} for i in range(5)]}))
            return {"run_id": "r", "total_tokens": 3}

        monkeypatch.setattr(runner, "run_loop", fake_run_loop)
        # no runs_dir: the run sits in a temporary folder, gone once the loop returns
        aug = bench.m_synthloop(suite, split, 40, {"loop_overrides": {
            "blend.synthetic_weight": 0.5}})

        n = len(split.train)
        assert len(aug.train) == n + 4
        extra = aug.train.iloc[n:].assign(w=aug.weights[n:])
        assert sorted(zip(extra["label"], extra["w"].round(6))) == [
            ("no", 0.1), ("no", 0.35), ("yes", 0.15), ("yes", 0.4)]

    def test_a_loop_that_kept_nothing_scores_the_real_rows_and_counts_its_tokens(
            self, tmp_path, monkeypatch):
        split, aug = self._augment(tmp_path, monkeypatch, {"blend.synthetic_weight": 0.25},
                                   kept=0)

        assert aug.train.equals(split.train) and aug.weights is None and aug.tokens == 7


def _raw(values: dict[str, list[float]], model: str = "lightgbm") -> pd.DataFrame:
    """Per-seed rows of a bench (raw.csv) for one model and metric: method -> value by seed."""
    return pd.DataFrame([{"suite": "toy", "method": m, "model": model, "metric": "f1",
                          "value": v, "seed": s, "seconds": 1.0, "prep_seconds": 0.5,
                          "tokens": 0}
                         for m, vals in values.items() for s, v in enumerate(vals)])


class TestGaussianCopulaTeacher:
    def test_the_copulas_rows_carry_the_loops_teacher_labels(self):
        from synthloop.evals import bench
        from synthloop.tools.teacher import Teacher

        suite = _toy_suite()
        split = next(suite.splits([0]))
        n = len(split.train)
        plain = bench.m_gaussian_copula(suite, split, 60, {}).train.iloc[n:]

        aug = bench.m_gaussian_copula_teacher(suite, split, 60, {"loop_overrides": {
            "curation.teacher": ["logistic_regression"]}})

        # the same copula rows, each once per class at the teacher's probability; the real
        # rows at weight 1
        extra = aug.train.iloc[n:].assign(w=aug.weights[n:])
        assert (aug.weights[:n] == 1.0).all() and aug.detail == "teacher logistic_regression"
        assert len(extra) == 2 * len(plain)
        yes = extra[extra["label"] == "yes"].reset_index(drop=True)
        feats = [f"x{i}" for i in range(5)]
        assert np.allclose(yes[feats].to_numpy(), plain[feats].to_numpy())
        schema = bench_schema(split.train)
        teacher = Teacher(["logistic_regression"], 0).fit(split.train, schema)
        j = schema.classes.index("yes")
        assert np.allclose(yes["w"], teacher.proba(plain)[:, j], atol=1e-5)
        # the labels it replaced were the copula's per-class draws: some now lean the other way
        assert ((teacher.proba(plain)[:, j] > 0.5) != (plain["label"] == "yes")).any()

    def test_without_a_teacher_in_the_overrides_it_uses_the_measured_one(self):
        from synthloop.evals import bench

        suite = _toy_suite()
        split = next(suite.splits([0]))
        aug = bench.m_gaussian_copula_teacher(suite, split, 30, {})
        assert aug.detail == "teacher logistic_regression+random_forest"


def bench_schema(train):
    from synthloop.data import infer_schema
    from synthloop.spec import validate_spec

    return infer_schema(train, validate_spec({"name": "t", "data": {
        "source": "x.csv", "target": "label", "positive_class": "yes"}}))


class TestPairedTable:
    def test_each_rival_is_paired_with_the_loop_seed_by_seed(self):
        from synthloop.evals.bench import paired

        df = _raw({"real_only": [0.80, 0.70, 0.90], "synthloop": [0.82, 0.70, 0.86],
                   "smote": [0.70, 0.60, 0.80], "oracle": [0.99, 0.99, 0.99]})

        pairs = paired(df, "f1").set_index("method")

        # synthloop - real_only = +2, 0, -4 points: mean -0.67, se std/sqrt(3), 1 win, 1 tie
        d = np.array([2.0, 0.0, -4.0])
        assert pairs.at["real_only", "mean_diff"] == pytest.approx(d.mean(), abs=0.01)
        assert pairs.at["real_only", "se"] == pytest.approx(d.std(ddof=1) / np.sqrt(3), abs=0.01)
        assert pairs.loc["real_only", ["wins", "ties", "losses", "seeds"]].tolist() == [1, 1, 1, 3]
        assert pairs.at["smote", "mean_diff"] == pytest.approx(
            np.mean([12.0, 10.0, 6.0]), abs=0.01)
        assert pairs.loc["smote", ["wins", "ties", "losses"]].tolist() == [3, 0, 0]
        # the oracle is a ceiling, not a rival; the reference is not paired with itself
        assert set(pairs.index) == {"real_only", "smote"}
        assert (pairs["reference"] == "synthloop").all()

    def test_only_seeds_both_methods_ran_are_paired(self):
        from synthloop.evals.bench import paired

        df = _raw({"real_only": [0.80, 0.70, 0.90], "open_loop": [0.90, 0.75]})

        pairs = paired(df, "f1").set_index("method")

        # no synthloop: open_loop is the reference, over the two seeds it ran
        assert pairs.at["real_only", "reference"] == "open_loop"
        assert pairs.at["real_only", "seeds"] == 2
        assert pairs.at["real_only", "mean_diff"] == pytest.approx(7.5, abs=0.01)

    def test_models_keep_their_order_when_seeds_differ(self):
        from synthloop.evals.bench import paired

        df = pd.concat([_raw({"real_only": [0.8, 0.7], "synthloop": [0.9]}, model=m)
                        for m in ("zeta", "alpha", "mean of models")])

        pairs = paired(df, "f1")

        assert pairs["model"].tolist() == ["zeta", "alpha", "mean of models"]
        assert (pairs["seeds"] == 1).all()

    def test_no_loop_method_gives_no_pairs(self):
        from synthloop.evals.bench import paired

        assert paired(_raw({"real_only": [0.8], "smote": [0.7]}), "f1").empty

    def test_the_bench_writes_the_paired_table(self, tmp_path, monkeypatch):
        from synthloop.evals import bench

        # a stand-in for the loop with no LLM: the class-weighted rows
        monkeypatch.setitem(bench.SUITES, "toy", _toy_suite)
        monkeypatch.setitem(bench.METHODS, "synthloop", bench.m_class_weight)
        run_bench("toy", tmp_path, tmp_path / "out", seeds=2,
                  methods=["real_only", "smote", "synthloop"])

        pairs = pd.read_csv(tmp_path / "out" / "paired.csv")
        raw = pd.read_csv(tmp_path / "out" / "raw.csv")
        f1 = raw[raw.metric == "f1"].pivot(index="seed", columns="method", values="value")
        assert set(pairs["method"]) == {"real_only", "smote"}
        row = pairs.set_index("method").loc["real_only"]
        assert row["mean_diff"] == pytest.approx(
            ((f1["synthloop"] - f1["real_only"]) * 100).mean(), abs=0.01)
        md = (tmp_path / "out" / "results.md").read_text()
        assert "### toy — synthloop minus each method, paired by seed (f1 ×100)" in md
        settings = json.loads((tmp_path / "out" / "bench.json").read_text())
        assert settings["primary"] == "f1" and settings["finished"] is True


class TestBenchTableCommand:
    @staticmethod
    def _two_runs(tmp_path, monkeypatch):
        from synthloop.evals import bench

        monkeypatch.setitem(bench.SUITES, "toy", _toy_suite)
        monkeypatch.setitem(bench.METHODS, "synthloop", bench.m_class_weight)
        monkeypatch.setitem(bench.METHODS, "open_loop", bench.m_smote)
        run_bench("toy", tmp_path, tmp_path / "a", seeds=2, methods=["real_only", "synthloop"])
        run_bench("toy", tmp_path, tmp_path / "b", seeds=2, methods=["real_only", "open_loop"])
        return tmp_path / "a", tmp_path / "b"

    def test_it_merges_runs_made_apart_and_pairs_them(self, tmp_path, monkeypatch):
        from typer.testing import CliRunner

        from synthloop.cli import app

        a, b = self._two_runs(tmp_path, monkeypatch)

        result = CliRunner().invoke(app, ["bench-table", str(a), str(b), "--out",
                                          str(tmp_path / "merged")])

        assert result.exit_code == 0, result.output
        assert "synthloop minus each method" in result.stdout
        pairs = pd.read_csv(tmp_path / "merged" / "paired.csv")
        assert pairs["method"].tolist() == ["real_only", "open_loop"]  # real_only once
        assert (tmp_path / "merged" / "results.md").read_text() in result.stdout
        # the two runs measured real_only identically; the merged raw.csv holds it once
        merged = pd.read_csv(tmp_path / "merged" / "raw.csv")
        assert len(merged[merged.method == "real_only"]) == len(
            pd.read_csv(a / "raw.csv").query("method == 'real_only'"))
        # and reads back like a bench's own output
        again = CliRunner().invoke(app, ["bench-table", str(tmp_path / "merged")])
        assert again.exit_code == 0 and again.stdout == result.stdout

    def test_a_later_first_seed_extends_a_bench_as_one_longer_bench(self, tmp_path,
                                                                     monkeypatch):
        from typer.testing import CliRunner

        from synthloop.cli import app
        from synthloop.evals import bench

        monkeypatch.setitem(bench.SUITES, "toy", _toy_suite)
        methods = ["real_only", "smote"]
        run_bench("toy", tmp_path, tmp_path / "all", seeds=3, methods=methods)
        run_bench("toy", tmp_path, tmp_path / "first", seeds=2, methods=methods)
        cli = CliRunner().invoke(app, ["bench", "toy", "--data-dir", str(tmp_path), "--out",
                                       str(tmp_path / "later"), "--seeds", "1",
                                       "--first-seed", "2", "--methods", "smote,real_only"])
        merged = CliRunner().invoke(app, ["bench-table", str(tmp_path / "first"),
                                          str(tmp_path / "later"), "--out",
                                          str(tmp_path / "merged")])

        assert cli.exit_code == 0, cli.output
        later = json.loads((tmp_path / "later" / "bench.json").read_text())
        assert later["first_seed"] == 2 and later["seeds"] == 1
        assert set(pd.read_csv(tmp_path / "later" / "raw.csv")["seed"]) == {2}
        assert merged.exit_code == 0, merged.output
        cols = ["method", "model", "metric", "seed", "value"]
        one = pd.read_csv(tmp_path / "all" / "raw.csv")[cols].sort_values(cols[:4])
        two = pd.read_csv(tmp_path / "merged" / "raw.csv")[cols].sort_values(cols[:4])
        assert len(one) == len(two) and set(two["seed"]) == {0, 1, 2}
        assert np.allclose(one["value"].to_numpy(), two["value"].to_numpy())
        bad = CliRunner().invoke(app, ["bench", "toy", "--data-dir", str(tmp_path), "--out",
                                       str(tmp_path / "neg"), "--first-seed", "-1"])
        assert bad.exit_code == 2 and "--first-seed -1 is negative" in bad.output

    def test_a_label_keeps_a_baseline_run_with_other_options_apart(self, tmp_path,
                                                                    monkeypatch):
        from typer.testing import CliRunner

        from synthloop.cli import app
        from synthloop.evals import bench

        monkeypatch.setitem(bench.SUITES, "toy", _toy_suite)
        for name, rows in (("c200", 200), ("c50", 50)):
            run_bench("toy", tmp_path, tmp_path / name, seeds=2,
                      methods=["real_only", "gaussian_copula"], ctx={"synthetic_rows": rows})

        refused = CliRunner().invoke(app, ["bench-table", str(tmp_path / "c200"),
                                           str(tmp_path / "c50")])
        result = CliRunner().invoke(app, ["bench-table", str(tmp_path / "c200"),
                                          f"{tmp_path / 'c50'}:50rows"])

        assert refused.exit_code == 2 and "gaussian_copula scored differently" in refused.output
        assert result.exit_code == 0, result.output
        # real_only agreed and is kept once; the copula at 50 rows sits beside the one at 200
        md = result.stdout
        assert md.count("| real_only |") == 2  # the headline and the lightgbm table
        assert "| gaussian_copula |" in md and "| gaussian_copula 50rows |" in md
        assert "no loop method (synthloop or open_loop) in these folders" in result.stderr
        assert "| seconds | tokens | seeds |" in md

    def test_a_label_keeps_two_loop_runs_apart(self, tmp_path, monkeypatch):
        from typer.testing import CliRunner

        from synthloop.cli import app

        a, _ = self._two_runs(tmp_path, monkeypatch)

        result = CliRunner().invoke(app, ["bench-table", str(a), f"{a}:again",
                                          "--versus", "synthloop again"])

        assert result.exit_code == 0, result.output
        assert "synthloop again minus each method" in result.stdout
        assert "| synthloop | +0.00 ± 0.00 (0–2–0) |" in result.stdout
        # one labelled loop run is the reference; two need --versus, and the user is told
        one = CliRunner().invoke(app, ["bench-table", f"{a}:x"])
        assert "synthloop x minus each method" in one.stdout
        two = CliRunner().invoke(app, ["bench-table", f"{a}:x", f"{a}:y"])
        assert two.exit_code == 0 and "minus each method" not in two.stdout
        assert "pass --versus, one of synthloop x, synthloop y" in two.stderr

    def test_bad_folders_are_one_line_errors(self, tmp_path, monkeypatch):
        from typer.testing import CliRunner

        from synthloop.cli import app

        a, _ = self._two_runs(tmp_path, monkeypatch)
        other = tmp_path / "other"
        other.mkdir()
        (other / "raw.csv").write_text((a / "raw.csv").read_text())
        (other / "bench.json").write_text(json.dumps({"suite": "sick"}))

        changed = tmp_path / "changed"
        changed.mkdir()
        raw = pd.read_csv(a / "raw.csv")
        raw.loc[raw.method == "synthloop", "value"] += 0.01  # the loop run again, other options
        raw.to_csv(changed / "raw.csv", index=False)
        (changed / "bench.json").write_text((a / "bench.json").read_text())
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "raw.csv").write_text("")
        (broken / "bench.json").write_text("{not json")

        cut = tmp_path / "cut"
        cut.mkdir()
        (cut / "raw.csv").write_text((a / "raw.csv").read_text()[:-40])  # cut mid-line
        (cut / "bench.json").write_text((a / "bench.json").read_text())
        started = tmp_path / "started"
        started.mkdir()
        (started / "bench.json").write_text((a / "bench.json").read_text())

        cases = [([str(tmp_path / "nope")], "has no bench.json"),
                 ([str(started)], "holds a bench that finished no method yet"),
                 ([str(cut)], "bench.json or raw.csv cannot be read (ValueError: raw.csv has "
                              "empty cells)"),
                 ([str(a), "--out", str(tmp_path / "b")], "holds a bench's own output"),
                 ([str(a), str(other)], "different suites or primary metrics (sick by f1, "
                                        "toy by f1)"),
                 ([str(a), "--versus", "magic"], "--versus 'magic' did not run"),
                 ([str(a), str(changed)], f"synthloop scored differently in {changed} than in "
                                          "an earlier folder; give one of them a label"),
                 ([str(broken)], "bench.json or raw.csv cannot be read (JSONDecodeError"),
                 ([str(a), "--out", str(a)], "is one of the folders read")]
        for args, fragment in cases:
            result = CliRunner().invoke(app, ["bench-table", *args])
            assert result.exit_code == 2
            assert fragment in result.output and "Traceback" not in result.output
            assert len(result.output.strip().splitlines()) == 1

    def test_a_stopped_bench_can_still_be_tabulated(self, tmp_path, monkeypatch):
        import dataclasses

        from typer.testing import CliRunner

        from synthloop.cli import app
        from synthloop.evals import bench

        def two_models(data_dir=None):  # the adult protocol's shape: models averaged
            return dataclasses.replace(_toy_suite(), average_models=True,
                                       models={"lightgbm": bench._lgbm, "logistic": bench._lr})

        def stopped_on_seed_1(suite, split, n, ctx):
            if split.seed == 1:
                raise KeyboardInterrupt  # the user pressed Ctrl-C during the second seed
            return bench.m_class_weight(suite, split, n, ctx)

        monkeypatch.setitem(bench.SUITES, "toy", two_models)
        monkeypatch.setitem(bench.METHODS, "synthloop", stopped_on_seed_1)
        with pytest.raises(KeyboardInterrupt):
            run_bench("toy", tmp_path, tmp_path / "out", seeds=3,
                      methods=["real_only", "synthloop"])
        assert json.loads((tmp_path / "out" / "bench.json").read_text())["finished"] is False

        result = CliRunner().invoke(app, ["bench-table", str(tmp_path / "out")])

        assert result.exit_code == 0, result.output
        # seed 0 of both methods, and seed 1 of real_only: paired on the one shared seed
        raw = pd.read_csv(tmp_path / "out" / "raw.csv")
        assert set(raw.loc[raw.method == "synthloop", "seed"]) == {0}
        assert "has not finished (stopped, or still running)" in result.stderr
        md = result.stdout
        assert "| real_only | " in md and "mean of models" in md
        from synthloop.evals.bench import load_raw, paired

        pairs = paired(load_raw([tmp_path / "out"]).raw, "f1").set_index("model")
        assert pairs["seeds"].tolist() == [1, 1, 1]  # lightgbm, logistic, mean of models
        f1 = raw[(raw.metric == "f1") & (raw.seed == 0)].pivot(index="model", columns="method",
                                                                values="value")
        want = (f1["synthloop"] - f1["real_only"]) * 100
        assert pairs.at["lightgbm", "mean_diff"] == pytest.approx(want["lightgbm"], abs=0.01)
        assert pairs.at["mean of models", "mean_diff"] == pytest.approx(want.mean(), abs=0.01)
