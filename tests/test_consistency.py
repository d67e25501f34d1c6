"""The consistency check: a synthetic row whose numbers break the relations real rows hold
(a small model mixing the cells of several exemplars) is dropped at curation, with the column
it breaks named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthloop.data import infer_schema
from synthloop.graphs.context import CONSISTENCY, SYNTHETIC
from synthloop.spec import validate_spec
from synthloop.store import RunStore
from synthloop.tools.consistency import ConsistencyModel
from tests.fakes import by_revision, jittered_rows_reply, loop_script, rows_from_frame_reply, scripted
from tests.support import make_spec, run


def thyroid_like(n: int, seed: int) -> pd.DataFrame:
    """FTI = TT4 / T4U (with a little noise), as in the sick data, plus an unrelated age."""
    rng = np.random.default_rng(seed)
    tt4 = rng.uniform(40, 200, n)
    t4u = rng.uniform(0.6, 1.6, n)
    return pd.DataFrame({
        "age": rng.integers(18, 90, n).astype(float),
        "TT4": tt4.round(1),
        "T4U": t4u.round(3),
        "FTI": (tt4 / t4u * rng.normal(1, 0.01, n)).round(1),
        "referral": rng.choice(["SVI", "other"], n),
        "Class": np.where(tt4 / t4u < 80, "sick", "negative"),
    })


def chimeras(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Each column from a different random row: every value real, every row a mixture."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    for c in df.columns:
        if c != "Class":
            out[c] = rng.permutation(df[c].to_numpy())
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    train = thyroid_like(600, 0)
    path = tmp_path_factory.mktemp("thy") / "thy.csv"
    train.to_csv(path, index=False)
    spec = validate_spec({"name": "thy", "data": {"source": str(path), "target": "Class",
                                                  "positive_class": "sick"}})
    schema = infer_schema(train, spec)
    return schema, ConsistencyModel(0.99, seed=0).fit(train, schema)


class TestConsistencyModel:
    def test_fresh_real_rows_pass_and_chimeras_fail(self, fitted):
        schema, model = fitted
        fresh = thyroid_like(400, 1)

        real_bad, _ = model.check(fresh)
        mixed_bad, column = model.check(chimeras(fresh, 2))

        # about 1 - quantile of real rows fail, whatever the number of columns checked
        assert real_bad.mean() <= 0.03
        assert mixed_bad.mean() >= 0.8
        named = {c for c, bad in zip(column, mixed_bad) if bad}
        assert named <= {"TT4", "T4U", "FTI"}  # age relates to nothing: never the culprit
        assert all(c is None for c, bad in zip(column, mixed_bad) if not bad)

    def test_records_what_it_checks(self, fitted):
        _, model = fitted

        d = model.describe()

        assert d["skipped"] is None
        assert set(d["scales"]) == {"age", "TT4", "T4U", "FTI"}
        assert d["row_bound"] >= 1.0

    def test_switched_off_checks_nothing(self, fitted):
        schema, _ = fitted
        model = ConsistencyModel(0.0).fit(thyroid_like(600, 0), schema)

        bad, column = model.check(chimeras(thyroid_like(50, 1), 2))

        assert not bad.any() and column == [None] * 50
        assert "switched off" in model.describe()["skipped"]

    def test_too_few_real_rows_checks_nothing_and_says_why(self, fitted):
        schema, _ = fitted
        model = ConsistencyModel(0.99).fit(thyroid_like(60, 0), schema)

        bad, _ = model.check(chimeras(thyroid_like(50, 1), 2))

        assert not bad.any()
        assert model.describe()["skipped"].startswith("60 real training rows, fewer than 100")


class TestInTheLoop:
    def test_chimera_rows_are_dropped_at_curation_with_the_column_named(
            self, spec_dict, cancer_df, tmp_path):
        # Setup: iteration 1 writes jittered copies of exemplars, iteration 2 rows whose every
        # value is real but comes from a different patient
        spec = make_spec(spec_dict, budget={"max_iterations": 2, "rows_per_iteration": 24},
                         curation={"confidence_percentile": 0, "consistency_quantile": 0.99})
        model = scripted(loop_script(generate=by_revision(
            jittered_rows_reply, rows_from_frame_reply(chimeras(cancer_df, 0), scale=0.0))))

        # Run
        summary = run(spec, tmp_path, model, run_id="chim")

        # Assert: the mixed rows are dropped as inconsistent, each with its column named
        first, second = summary["iterations"]
        assert second["checks"]["inconsistent"] >= 0.8 * second["rows_generated"]
        rejected = pd.read_parquet(tmp_path / "chim/data/batches/iter_002_rejected.parquet")
        reasons = rejected["_sl_reject"][rejected["_sl_reject"].str.startswith("inconsistent")]
        assert len(reasons) == second["checks"]["inconsistent"]
        columns = set(cancer_df.columns) - {"diagnosis"}
        assert {r.removeprefix("inconsistent with its other columns: ") for r in reasons} <= columns
        # no kept row fails the check the run recorded
        store = RunStore(tmp_path / "chim")
        kept = pd.read_parquet(tmp_path / "chim" / SYNTHETIC)
        assert not store.read_model(CONSISTENCY).check(kept)[0].any()
        recorded = json.loads((tmp_path / "chim/data/consistency.json").read_text())
        assert recorded["skipped"] is None and len(recorded["scales"]) == 8

    def test_switched_off_keeps_them(self, spec_dict, cancer_df, tmp_path):
        spec = make_spec(spec_dict, budget={"max_iterations": 1, "rows_per_iteration": 24},
                         curation={"confidence_percentile": 0, "consistency_quantile": 0})
        model = scripted(loop_script(generate=rows_from_frame_reply(chimeras(cancer_df, 0),
                                                                    scale=0.0)))

        summary = run(spec, tmp_path, model, run_id="off")

        assert summary["iterations"][0]["checks"]["inconsistent"] == 0
        recorded = json.loads((tmp_path / "off/data/consistency.json").read_text())
        assert "switched off" in recorded["skipped"]
