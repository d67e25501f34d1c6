"""The copula generator: rows for the loop's regions from a Gaussian copula of the real rows,
no LLM; label, region and schema held by code as for the LLM's rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from synthloop.agents.generator import GenerationRequest, plan_jobs
from synthloop.agents.prompts import INITIAL_INSTRUCTION, PromptVersion
from synthloop.errors import SpecError
from synthloop.spec import GeneratorSpec, validate_spec
from synthloop.tools.constraints import evaluate_region
from synthloop.tools.copula import CopulaRowGenerator, sample_copula
from synthloop.tools.error_analysis import Condition, Region
from synthloop.tools.validation import schema_violations
from tests.fakes import scripted
from tests.support import make_spec, run

pytest.importorskip("copulas")

RULE = "mean_radius > 15 and worst_concave_points <= 0.2"


def region(rule=RULE, conditions=None) -> Region:
    conditions = conditions if conditions is not None else [
        Condition(column="mean_radius", op=">", value=15.0),
        Condition(column="worst_concave_points", op="<=", value=0.2)]
    return Region(id="r1", rule=rule, label="malignant", support=30, errors=10,
                  error_rate=0.3, positives=20, recall=0.5, conditions=conditions)


def request(schema, train, regions, n_rows=20, iteration=2, **settings) -> GenerationRequest:
    prompt = PromptVersion(id="gen", version=1, model="m", temperature=0.8,
                           text=INITIAL_INSTRUCTION).with_hash()
    return GenerationRequest(client=None, prompt=prompt, regions=regions, train=train,
                             schema=schema, rules=[], n_rows=n_rows,
                             settings=GeneratorSpec(**settings),
                             ranked_columns=schema.feature_names(), run_id="run-x",
                             iteration=iteration, seed=7)


class TestCopulaRows:
    def test_rows_lie_in_the_region_with_the_asked_labels_and_no_schema_violation(
            self, schema, train):
        # Run: 20 rows, a quarter of them counter-examples
        rows, stats = CopulaRowGenerator().generate(
            request(schema, train, [region()], n_rows=20, contrast_share=0.25))

        # Assert
        assert len(rows) == stats["rows_returned"] == 20
        assert evaluate_region(RULE, rows).all()
        assert (rows.loc[~rows["_sl_counterexample"], "diagnosis"] == "malignant").sum() == 15
        assert (rows.loc[rows["_sl_counterexample"], "diagnosis"] == "benign").sum() == 5
        assert not any(mask.any() for mask in schema_violations(rows, schema).values())
        assert "_sl_generator" not in rows  # the loop stamps "generator:copula"
        assert rows["_sl_exemplars"].str.fullmatch(r"train:\d+").all()
        # sampled, not copied: most rows match no real row
        feats = schema.feature_names()
        copies = rows[feats].merge(train[feats].drop_duplicates(), how="inner")
        assert len(copies) < len(rows) / 2

    def test_same_seed_same_rows_another_iteration_other_rows(self, schema, train):
        gen = CopulaRowGenerator()

        first, _ = gen.generate(request(schema, train, [region()]))
        again, _ = gen.generate(request(schema, train, [region()]))
        later, _ = gen.generate(request(schema, train, [region()], iteration=3))

        pd.testing.assert_frame_equal(first, again)
        assert not first["mean_area"].equals(later["mean_area"])

    def test_a_region_with_few_real_rows_fits_on_the_whole_class(self, schema, train):
        # Setup: a region that holds a handful of malignant rows at most
        narrow = "mean_radius > 20"
        few = region(narrow, [Condition(column="mean_radius", op=">", value=20.0)])
        inside = (evaluate_region(narrow, train) & (train["diagnosis"] == "malignant")).sum()
        assert 0 < inside < 20

        rows, stats = CopulaRowGenerator(min_rows=20).generate(
            request(schema, train, [few], n_rows=12, contrast_share=0))
        local, local_stats = CopulaRowGenerator(min_rows=2).generate(
            request(schema, train, [few], n_rows=12, contrast_share=0))

        # Assert: fitted on the class, then moved into the region; with min_rows=2 fitted there
        assert stats["fitted_on_class"] == 1 and local_stats["fitted_on_class"] == 0
        assert evaluate_region(narrow, rows).all() and evaluate_region(narrow, local).all()
        assert len(rows) == len(local) == 12

    def test_a_class_with_too_few_rows_is_a_failure_reason_not_an_error(self, schema, train):
        one = pd.concat([train[train["diagnosis"] == "benign"],
                         train[train["diagnosis"] == "malignant"].head(1)])

        rows, stats = CopulaRowGenerator().generate(
            request(schema, one, [region("True", [])], n_rows=6, contrast_share=0))

        assert rows.empty
        assert stats["failure_reasons"] == ["class 'malignant' has fewer than 2 real training "
                                            "rows to fit a copula on"]

    def test_clip_holds_numbers_in_the_fitted_range_and_whole_numbers_whole(self):
        rows = pd.DataFrame({"age": [20, 25, 30, 35, 40, 45, 50, 55] * 3,
                             "x": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8, 0.6] * 3,
                             "kind": list("abcabcab") * 3, "const": [1.0] * 24})

        out = sample_copula(rows, 200, seed=0, clip=True)

        assert list(out.columns) == list(rows.columns)
        assert out["age"].between(20, 55).all() and (out["age"] == out["age"].round()).all()
        assert out["x"].between(0.1, 0.9).all()
        assert set(out["kind"]) <= {"a", "b", "c"} and (out["const"] == 1.0).all()

    @pytest.mark.parametrize("bad", [1, 0, -3])
    def test_min_rows_below_two_is_one_line(self, bad):
        with pytest.raises(SpecError, match=r"^generator.params.min_rows must be at least 2, "
                                            rf"not {bad}\.$"):
            CopulaRowGenerator(min_rows=bad)


class TestCopulaLoop:
    def test_a_loop_with_the_copula_generator_keeps_region_rows_and_calls_no_llm(
            self, spec_dict, tmp_path):
        spec = make_spec(spec_dict, budget={"max_iterations": 2},
                         generator={"kind": "copula"})
        model = scripted()

        summary = run(spec, tmp_path, model, run_id="cop")

        generated = pd.read_parquet(tmp_path / "cop/data/batches/iter_001_generated.parquet")
        assert len(generated) == summary["iterations"][0]["rows_generated"] > 0
        assert set(generated["_sl_generator"]) == {"generator:copula"}
        for rule, part in generated.groupby("_sl_region"):
            assert evaluate_region(rule, part).all()
        # the copula reads no prompt: no LLM call at all, the prompt versions are the template's
        assert model.calls == [] and summary["total_tokens"] == 0
        assert {it["prompt_author"] for it in summary["iterations"]} == {"template"}
        assert summary["status"] == "finished"

    def test_a_bad_param_stops_the_run_before_it_starts_with_one_line(self, spec_dict,
                                                                      tmp_path):
        spec = validate_spec({**spec_dict,
                              "generator": {"kind": "copula", "params": {"min_rows": 1}}})

        with pytest.raises(SpecError, match="min_rows must be at least 2, not 1"):
            run(spec, tmp_path, scripted(), run_id="bad")
        assert not (tmp_path / "bad").exists()


def test_jobs_share_rows_by_errors_and_give_the_contrast_to_the_other_class():
    big = region().model_copy(update={"id": "a", "errors": 30})
    small = region().model_copy(update={"id": "b", "errors": 10})

    jobs = plan_jobs([big, small], 40, 0.25, ["benign", "malignant"])

    assert [(r.id, r.label, n, c) for r, n, c in jobs] == [
        ("a", "malignant", 22, False), ("a-benign", "benign", 8, True),
        ("b", "malignant", 8, False), ("b-benign", "benign", 2, True)]


def test_hard_exemplars_fill_the_forced_cells_from_the_rows_the_model_misses(schema, train):
    # Setup: three of the region's real rows the model misses, the rest it gets right
    same = np.flatnonzero((train["diagnosis"] == "malignant").to_numpy())
    inside = same[evaluate_region(RULE, train.iloc[same])]
    hard = inside[:3]
    hardness = np.zeros(len(train))
    hardness[hard] = 0.9
    ask = request(schema, train, [region()], n_rows=4, contrast_share=0.0)

    # Run: four rows, so four exemplars, drawn uniformly and by hardness
    uniform, _ = CopulaRowGenerator().generate(ask)
    weighted, _ = CopulaRowGenerator().generate(dataclasses.replace(ask, hardness=hardness))

    # Assert: by hardness, the three missed rows are among the four; uniformly, not all
    named = {f"train:{i}" for i in train.index[hard]}
    assert named <= set(weighted["_sl_exemplars"])
    assert len(inside) > 12 and not named <= set(uniform["_sl_exemplars"])
