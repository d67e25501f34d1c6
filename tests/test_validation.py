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


def schema_and_space(real):
    schema = infer_schema(real, validate_spec({"data": {"source": "x.csv", "target": "y"}}))
    return schema, FeatureSpace(schema)


def check(real, batch, n_train=None, keep_training_copies=False):
    """validate_batch with the real rows as the leakage index (the first n_train of them the
    training split)."""
    schema, space = schema_and_space(real)
    index = LeakageIndex(space, real, n_train=n_train)
    batch = batch.assign(_sl_region="True")
    return validate_batch(batch, schema, [], index, None, 0.01, space,
                          keep_training_copies=keep_training_copies)


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


def test_keep_training_copies_keeps_copies_of_training_rows_only(real):
    # Setup: the first 300 real rows are the training split, the last 100 held out; two
    # training rows far from every held-out row (some real rows are near copies of others)
    _, space = schema_and_space(real)
    held_out = LeakageIndex(space, real.iloc[300:])
    far = [i for i in range(300) if held_out.nearest(real.iloc[[i]])[0] > 0.05][:2]
    of_train = real.iloc[[far[0]]].copy()
    near_train = real.iloc[[far[1]]].copy()
    near_train["tsh"] = near_train["tsh"] * 1.001
    of_held_out = real.iloc[[350]].copy()
    batch = pd.concat([of_train, near_train, of_held_out], ignore_index=True)

    kept, rejected, counts = check(real, batch, n_train=300, keep_training_copies=True)
    refused_all = check(real, batch, n_train=300)[1]

    # Assert: the two copies of training rows are kept, the held-out row's copy is not
    assert kept.index.tolist() == [0, 1]
    assert rejected.index.tolist() == [2]
    assert counts["exact_copy_of_real"] == 1
    assert len(refused_all) == 3


def test_keep_training_copies_on_an_index_without_splits_refuses_every_copy(real):
    # (runs built their index before it knew the training split: n_train None)
    kept, rejected, _ = check(real, real.iloc[[10, 350]], keep_training_copies=True)

    assert kept.empty and len(rejected) == 2
