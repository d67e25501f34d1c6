"""The row generator: what the LLM is weak at, code guarantees (label, region, schema), and
every synthetic row carries its provenance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from synthloop.agents.generator import HARD_FLOOR, PROVENANCE, generate_batch, pick_exemplars
from synthloop.agents.prompts import INITIAL_INSTRUCTION, PromptVersion
from synthloop.data import infer_schema
from synthloop.llm import LLMClient
from synthloop.tools.constraints import evaluate_region
from synthloop.tools.error_analysis import Condition, Region
from tests.fakes import (
    garbage_reply,
    jittered_rows_reply,
    loop_script,
    parse_generation_request,
    region_conditions,
    scripted,
    wrong_label_outside_region_reply,
)
from tests.support import make_spec, run

RULE = "mean_radius > 15 and worst_concave_points <= 0.2"


def the_region() -> Region:
    return Region(id="r1", rule=RULE, label="malignant", support=30, errors=10,
                  error_rate=0.3, positives=20, recall=0.5,
                  conditions=[Condition(column="mean_radius", op=">", value=15.0),
                              Condition(column="worst_concave_points", op="<=", value=0.2)])


def prompt() -> PromptVersion:
    return PromptVersion(id="gen", version=4, model="m", temperature=0.8,
                         text=INITIAL_INSTRUCTION).with_hash()


def generate(model, schema, train, n_rows=8, **kw):
    client = LLMClient(model=model)
    args = dict(n_rows=n_rows, rows_per_call=4, few_shot=3, temperature=0.8, max_tokens=600,
                columns_per_row=None, ranked_columns=schema.feature_names(), run_id="run-x",
                iteration=2, seed=7)
    args.update(kw)
    batch, stats = generate_batch(client, prompt(), [the_region()], train, schema, [], **args)
    return client, batch, stats


class TestEnforcement:
    def test_label_and_region_are_enforced(self, schema, train):
        # Setup: a model that labels every row 'benign' and puts it outside the region
        model = scripted(wrong_label_outside_region_reply("diagnosis", "benign"))

        # Run
        _, batch, stats = generate(model, schema, train)

        # Assert: the model really broke the region and the label ...
        rows = [r for c in model.calls for r in json.loads(c["reply"])["rows"]]
        assert all(r["diagnosis"] == "benign" for r in rows)
        assert all(r["mean_radius"] <= 15 and r["worst_concave_points"] > 0.2 for r in rows)
        # ... and code moved every row back
        assert stats["calls"] == 2 and stats["llm_failures"] == 0
        assert len(batch) == 8
        assert (batch["diagnosis"] == "malignant").all()
        assert evaluate_region(RULE, batch).all()
        assert (batch["_sl_region"] == RULE).all()
        # ... onto its exemplar's values, which lie inside, not onto the region's edge
        for col in ("mean_radius", "worst_concave_points"):
            assert batch[col].isin(set(train[col])).all()

    def test_request_tells_columns_class_region_and_exemplars(self, schema, train):
        model = scripted(jittered_rows_reply)

        generate(model, schema, train, n_rows=4)

        (call,) = model.calls
        req = parse_generation_request(call["user"])
        assert [c.name for c in req.columns] == schema.feature_names()
        assert req.label == "malignant"
        assert req.region == RULE
        assert req.n == 4
        assert len(req.exemplars) == 3
        # exemplars are real training rows of that class inside the region
        ex = pd.DataFrame(req.exemplars, columns=[c.name for c in req.columns])
        assert evaluate_region(RULE, ex).all()
        assert call["system"] == INITIAL_INSTRUCTION
        assert call["params"]["response_format"]["type"] == "json_schema"

    def test_provenance_columns(self, schema, train):
        model = scripted(jittered_rows_reply)

        client, batch, _ = generate(model, schema, train)

        assert set(PROVENANCE) <= set(batch.columns)
        assert batch[PROVENANCE].notna().all().all()
        assert (batch["_sl_origin"] == "synthetic").all()
        assert (batch["_sl_run_id"] == "run-x").all()
        assert (batch["_sl_iteration"] == 2).all()
        assert (batch["_sl_prompt_id"] == "gen").all()
        assert (batch["_sl_prompt_version"] == 4).all()
        assert (batch["_sl_prompt_sha256"] == prompt().sha256).all()
        assert (batch["_sl_generator"] == client.model_id).all()
        # the seed of each row is the seed its call was made with
        seeds = sorted({c["params"]["seed"] for c in model.calls})
        assert sorted(batch["_sl_seed"].unique()) == seeds
        assert batch["_sl_row_id"].is_unique

    def test_garbage_reply_counts_as_failure_not_rows(self, schema, train):
        model = scripted(garbage_reply)

        _, batch, stats = generate(model, schema, train)

        assert batch.empty
        assert stats["calls"] == 2
        assert stats["llm_failures"] == 2
        assert "not JSON" in stats["failure_reasons"][0]

    def test_columns_per_row_takes_the_rest_from_the_exemplar(self, schema, train):
        # Setup: ask the LLM for 3 columns only; region columns come first
        model = scripted(jittered_rows_reply)

        _, batch, _ = generate(model, schema, train, n_rows=4, columns_per_row=3)

        req = parse_generation_request(model.calls[0]["user"])
        asked = [c.name for c in req.columns]
        assert len(asked) == 3
        assert {"mean_radius", "worst_concave_points"} <= set(asked)
        assert batch[schema.feature_names()].notna().all().all()

    def test_an_echo_of_an_exemplar_is_not_a_copy_of_it(self, schema, train):
        # Setup: a model that writes its exemplars back verbatim, 3 of the columns
        def echo(messages, params):
            req = parse_generation_request(messages[-1].content)
            return json.dumps({"rows": [req.exemplars[i % len(req.exemplars)]
                                        for i in range(req.n)]})

        model = scripted(echo)

        # Run
        _, batch, _ = generate(model, schema, train, n_rows=4, columns_per_row=3)

        # Assert: the other columns come from another exemplar, so no row equals a real row
        names = schema.feature_names()
        real = {tuple(np.round(r, 6)) for r in train[names].to_numpy(float)}
        assert not any(tuple(np.round(r, 6)) in real for r in batch[names].to_numpy(float))

    def test_contrast_share_writes_the_other_class_inside_the_region(self, schema, train):
        model = scripted(jittered_rows_reply)

        _, batch, _ = generate(model, schema, train, n_rows=8, contrast_share=0.5)

        assert batch["diagnosis"].value_counts().to_dict() == {"malignant": 4, "benign": 4}
        assert evaluate_region(RULE, batch).all()
        # counter-examples are asked for with exemplars of their own class
        labels = [parse_generation_request(c["user"]).label for c in model.calls]
        assert sorted(labels) == ["benign", "malignant"]
        assert batch.groupby("diagnosis")["_sl_counterexample"].all().to_dict() == {
            "benign": True, "malignant": False}


class TestPlausibleRange:
    """A number the column's range allows but no real row of the class comes near (a value
    written in the wrong position) is repaired from the exemplar."""

    @staticmethod
    def wrong_position_reply(messages, params):
        # the exemplars' rows, with mean_area set to 150: inside the column's range (benign
        # tumours go that low) but far below any malignant tumour in the data
        req = parse_generation_request(messages[-1].content)
        names = [c.name for c in req.columns]
        rows = [list(req.exemplars[i % len(req.exemplars)]) for i in range(req.n)]
        for r in rows:
            r[names.index("mean_area")] = 150.0
        return json.dumps({"rows": rows})

    def test_a_value_outside_its_class_is_repaired(self, schema, train):
        malignant = train.loc[train["diagnosis"] == "malignant", "mean_area"]
        assert schema.column("mean_area").min <= 150 < malignant.min()

        _, batch, stats = generate(scripted(self.wrong_position_reply), schema, train,
                                   repair=True, plausible_quantile=0.005)

        # every written 150 was replaced by a real malignant value
        assert stats["cells_repaired"] == len(batch) == 8
        assert batch["mean_area"].isin(set(malignant)).all()

    def test_quantile_zero_keeps_the_column_range_only(self, schema, train):
        _, batch, stats = generate(scripted(self.wrong_position_reply), schema, train,
                                   repair=True, plausible_quantile=0.0)

        assert stats["cells_repaired"] == 0
        assert (batch["mean_area"] == 150.0).all()

    def test_bounds_come_from_the_class_and_skip_small_classes(self, schema, train):
        from synthloop.agents.generator import plausible_bounds

        small = pd.concat([train[train["diagnosis"] == "benign"],
                           train[train["diagnosis"] == "malignant"].head(10)])
        bounds = plausible_bounds(small, schema, ["mean_area"], 0.01)

        benign = small.loc[small["diagnosis"] == "benign", "mean_area"]
        assert bounds[("benign", "mean_area")] == pytest.approx(
            tuple(np.quantile(benign, [0.01, 0.99])))
        # 10 malignant rows are too few for quantiles
        assert set(bounds) == {("benign", "mean_area")}


class TestProvenanceInTheLoop:
    def test_every_kept_row_carries_provenance(self, spec_dict, tmp_path):
        # Setup: the generator claims the wrong label and leaves the region
        spec = make_spec(spec_dict, budget={"max_iterations": 2})
        model = scripted(loop_script(
            generate=wrong_label_outside_region_reply("diagnosis", "benign")))

        # Run
        summary = run(spec, tmp_path, model, run_id="prov")

        # Assert
        kept = pd.read_parquet(tmp_path / "prov/data/synthetic.parquet")
        assert len(kept) == summary["synthetic_rows"] > 0
        assert set(PROVENANCE) <= set(kept.columns)
        assert kept[PROVENANCE].notna().all().all()
        assert (kept["_sl_origin"] == "synthetic").all()
        assert (kept["_sl_run_id"] == "prov").all()
        assert (kept["_sl_generator"] == summary["llm"]).all()
        for (version, sha), _ in kept.groupby(["_sl_prompt_version", "_sl_prompt_sha256"]):
            saved = yaml.safe_load(
                (tmp_path / f"prov/prompts/cancer-gen.v{version:03d}.yaml").read_text())
            assert saved["sha256"] == sha
        # label and region come from the prompt's focus regions, not the model's text
        prompts = {v: yaml.safe_load((tmp_path / f"prov/prompts/cancer-gen.v{v:03d}.yaml")
                                     .read_text()) for v in kept["_sl_prompt_version"].unique()}
        for _, row in kept.iterrows():
            focus = {r["rule"]: r["label"] for r in prompts[row["_sl_prompt_version"]]
                     ["focus_regions"]}
            if row["_sl_counterexample"]:  # written for the other class, inside the region
                assert row["diagnosis"] != focus[row["_sl_region"]]
            else:
                assert row["diagnosis"] == focus[row["_sl_region"]]
            assert evaluate_region(row["_sl_region"], row.to_frame().T.infer_objects()).all()
        # (the model did claim another label, and did leave a region with bounds)
        replies = [json.loads(c["reply"]) for c in model.calls_of("generate")]
        assert all(r["diagnosis"] == "benign" for rep in replies for r in rep["rows"])
        assert any(region_conditions(r) for r in kept["_sl_region"])
        assert (kept["diagnosis"] != "benign").any()
        assert np.isin(kept["_sl_iteration"], [1, 2]).all()


class TestHardExemplars:
    """``generator.exemplars: hard`` draws each call's exemplars in proportion to how wrong the
    model is on them out of fold: the rows the model misses seed the rows written for it."""

    def region_rows(self, schema, train) -> np.ndarray:
        same = np.flatnonzero((train[schema.target] == "malignant").to_numpy())
        return same[evaluate_region(RULE, train.iloc[same])]

    def test_the_hard_rows_are_drawn_far_more_often_than_the_rest(self, schema, train):
        # Setup: three rows of the region the model misses, the rest it gets right
        inside = self.region_rows(schema, train)
        assert len(inside) >= 15  # (the fixture's region holds enough rows to tell)
        hard = inside[:3]
        hardness = np.zeros(len(train))
        hardness[hard] = 0.9

        # Run: 300 one-exemplar draws each way
        def share_hard(h):
            picks = [pick_exemplars(train, schema, the_region(), 1,
                                    np.random.default_rng(i), h).index[0] for i in range(300)]
            return np.isin(picks, train.index[hard]).mean()

        # Assert: uniform draws hit them at about their share of the region; hard draws at
        # about 3 * 0.91 / (3 * 0.91 + the rest * 0.01)
        expected = 3 * 0.91 / (3 * 0.91 + (len(inside) - 3) * HARD_FLOOR)
        assert share_hard(None) < 0.1 + 3 / len(inside)
        assert abs(share_hard(hardness) - expected) < 0.1

    def test_a_region_the_model_gets_all_right_still_yields_distinct_rows_inside_it(
            self, schema, train):
        ex = pick_exemplars(train, schema, the_region(), 3, np.random.default_rng(0),
                            np.zeros(len(train)))
        assert len(ex) == 3 and ex.index.is_unique
        assert (ex[schema.target] == "malignant").all()
        assert evaluate_region(RULE, ex).all()

    def test_in_the_loop_the_prompts_show_the_rows_the_model_misses(self, spec_dict, tmp_path):
        # Setup: the same one-iteration run (48 rows, 12 calls) with uniform and hard exemplars
        from synthloop.tools.training import make_estimator, out_of_fold_proba

        shown = {}
        for kind in ("random", "hard"):
            spec = make_spec(spec_dict, generator={"exemplars": kind},
                             budget={"rows_per_iteration": 48, "max_synthetic_share": 0.5})
            model = scripted(loop_script())

            # Run
            run(spec, tmp_path / kind, model, run_id="r")
            shown[kind] = [parse_generation_request(c["user"])
                           for c in model.calls_of("generate")]

        # Assert: each exemplar shown is a real training row of the call's class inside its
        # region; uniform draws are about as hard for the run's model out of fold
        # (1 - p(their class)) as the rows they are drawn from, hard draws much harder
        real = pd.read_parquet(tmp_path / "hard/r/data/real_train.parquet")
        s = make_spec(spec_dict)
        sch = infer_schema(real, s)
        oof = out_of_fold_proba(make_estimator(s.model, s.seed), sch, real, s.seed)
        y = real["diagnosis"].astype(str).to_numpy()
        hardness = 1 - oof[np.arange(len(y)), [sch.classes.index(v) for v in y]]
        X = real[[c.name for c in shown["hard"][0].columns]].to_numpy(float)

        def excess(requests):
            """Mean hardness of the exemplars shown minus that of the rows they came from."""
            out = []
            for req in requests:
                pool = (y == req.label) & evaluate_region(req.region, real)
                for row in req.exemplars:
                    d = np.abs(X - np.asarray(row, float)).max(axis=1)
                    assert d.min() < 1e-3 and pool[d.argmin()]
                    out.append(hardness[d.argmin()] - hardness[pool].mean())
            return float(np.mean(out))

        assert len(shown["hard"]) >= 10
        uniform, hard = excess(shown["random"]), excess(shown["hard"])
        assert abs(uniform) < 0.05
        assert hard > 0.07 and hard > uniform + 0.03


class TestExploreShare:
    """``generator.explore_share`` asks for that share of each batch for the whole class (rule
    ``True``), with the initial prompt, beside the error regions: coverage of the class as
    well as its errors."""

    def test_the_share_is_counted_in_rows_not_in_error_weights(self):
        from synthloop.graphs.components import explore_split

        assert explore_split(48, 0.5) == (24, 24)
        assert explore_split(48, 0.1) == (43, 5)  # whatever the regions' error counts
        assert explore_split(40, 1.0) == (0, 40)
        assert explore_split(40, 0.0) == (40, 0)

    def run_batch(self, spec_dict, tmp_path, share):
        spec = make_spec(spec_dict, generator={"explore_share": share},
                         budget={"max_iterations": 1, "rows_per_iteration": 48,
                                 "max_synthetic_share": 0.5})
        model = scripted(loop_script())
        run(spec, tmp_path / str(share), model, run_id="r")
        batch = pd.read_parquet(tmp_path / f"{share}/r/data/batches/iter_001_generated.parquet")
        return batch, model

    def test_in_the_loop_half_of_each_batch_is_written_for_the_whole_class(
            self, spec_dict, tmp_path):
        # Setup / Run: the same one-iteration run (48 rows) without and with exploration
        plain, _ = self.run_batch(spec_dict, tmp_path, 0.0)
        batch, model = self.run_batch(spec_dict, tmp_path, 0.5)

        # Assert: with 0.5, half the rows are the whole class's, of both classes (its
        # counter-examples), written from the initial prompt (version 1); the rest lie in the
        # error regions, written from the rewritten one; with 0, none is the whole class's
        assert not (plain["_sl_region"] == "True").any()
        explored = batch[batch["_sl_region"] == "True"]
        assert len(explored) == 24 and len(batch) == 48
        assert set(explored["diagnosis"]) == {"benign", "malignant"}
        assert (explored["_sl_prompt_version"] == 1).all()
        aimed = batch[batch["_sl_region"] != "True"]
        assert aimed["_sl_region"].map(region_conditions).all()
        assert (aimed["_sl_prompt_version"] == 2).all()
        calls = model.calls_of("generate")
        whole = [c for c in calls if parse_generation_request(c["user"]).region is None]
        assert whole and all(c["system"].startswith(INITIAL_INSTRUCTION) for c in whole)
        assert all(not c["system"].startswith(INITIAL_INSTRUCTION)
                   for c in calls if c not in whole)

    def test_a_small_share_stays_small_when_the_regions_hold_few_errors(
            self, spec_dict, tmp_path):
        batch, _ = self.run_batch(spec_dict, tmp_path, 0.1)
        assert (batch["_sl_region"] == "True").sum() == 5


class TestTableOnlyOptions:
    @pytest.mark.parametrize("generator, key", [({"exemplars": "hard"}, "generator.exemplars"),
                                                ({"explore_share": 0.3},
                                                 "generator.explore_share")])
    def test_a_text_loop_refuses_them_in_one_line(self, spec_dict, generator, key):
        from synthloop.errors import SpecError

        with pytest.raises(SpecError) as err:
            make_spec(spec_dict, data={**spec_dict["data"], "text_column": "text"},
                      generator=generator)
        assert key in str(err.value) and f"remove {key}" in str(err.value)
        assert "\n" not in str(err.value).strip()
