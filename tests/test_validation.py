"""Leakage guard: exact and near copies of real rows are rejected; distinct rows are not, even
when an outlier stretches a column's range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.data import infer_schema
from synthloop.spec import validate_spec
from synthloop.tools.validation import FeatureSpace, LeakageIndex, validate_batch


@pytest.fixture
def real() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "tsh": np.round(rng.lognormal(0.5, 0.8, n), 3),
        "sex": rng.choice(["F", "M"], n),
        # ten mostly-"f" flags, as in the thyroid data: rows agree on most columns
        **{f"flag{i}": rng.choice(["f", "t"], n, p=[0.95, 0.05]) for i in range(10)},
        "y": rng.choice(["a", "b"], n),
    })
    df.loc[0, "age"] = 455  # a data-entry outlier, as in the thyroid data
    return df


def check(real, batch):
    spec = validate_spec({"data": {"source": "x.csv", "target": "y"}})
    schema = infer_schema(real, spec)
    space = FeatureSpace(schema)
    index = LeakageIndex(space, real)
    batch = batch.assign(_sl_region="True")
    return validate_batch(batch, schema, [], index, None, 0.01, space)


def test_exact_and_near_copies_are_rejected(real):
    exact = real.iloc[[5]].copy()
    near = real.iloc[[6]].copy()
    near["tsh"] = near["tsh"] * 1.001

    _, rejected, counts = check(real, pd.concat([exact, near], ignore_index=True))

    assert counts["exact_copy_of_real"] == 1
    assert counts["near_copy_of_real"] == 1
    assert sorted(rejected["_sl_reject"]) == ["exact copy of a real row", "near copy of a real row"]


def test_an_outlier_does_not_make_distinct_rows_copies(real):
    # Setup: a real row with its age moved by 10 years and its TSH up by half
    row = real.iloc[[7]].copy()
    row["age"] = row["age"] + 10 if int(row["age"].iloc[0]) < 70 else row["age"] - 10
    row["tsh"] = row["tsh"] * 1.5

    valid, _, counts = check(real, row)

    # Assert: in ranks this row is far from every real row; in a 18..455 range it would not be
    assert counts["near_copy_of_real"] == 0
    assert len(valid) == 1
