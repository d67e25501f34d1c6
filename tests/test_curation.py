"""Curation (drop rows the model finds implausible for their label) and the blend cap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.data import ColumnSchema, TableSchema
from synthloop.tools.curation import (
    blend_cap,
    blend_refusal,
    confidence_floors,
    curate,
    region_confidence_floors,
    share_room,
    training_frame,
)

SCHEMA = TableSchema(target="y", classes=["maj", "min"], positive_class="min",
                     columns=[ColumnSchema(name="x", type="float", min=0, max=1)])


def batch(labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"x": np.linspace(0, 1, len(labels)), "y": labels})


def cap(labels, confidence, *, n_real=70, class_counts=None, before=0, syn_counts=None,
        max_share=0.3, balance=True):
    return blend_cap(batch(labels), np.asarray(confidence, float), SCHEMA, n_real=n_real,
                     class_counts=class_counts or {"maj": 60, "min": 10},
                     n_synthetic_before=before, synthetic_counts=syn_counts or {},
                     max_share=max_share, balance=balance)


class TestBlendCap:
    def test_share_cap_keeps_the_most_confident(self):
        # Setup: 70 real rows and a 30% cap allow 30 synthetic rows; 50 are offered
        conf = np.random.default_rng(0).random(50)

        # Run
        keep = cap(["min"] * 50, conf)

        # Assert
        assert keep.sum() == 30
        assert conf[keep].min() > conf[~keep].max()
        # the cap is a share of the blended training set
        assert keep.sum() / (70 + keep.sum()) == pytest.approx(0.3)

    def test_rows_kept_before_use_up_the_cap(self):
        keep = cap(["min"] * 50, np.ones(50), before=25)

        assert keep.sum() == 5

    def test_cap_already_reached_keeps_nothing(self):
        keep = cap(["min"] * 5, np.ones(5), before=40)

        assert not keep.any()

    def test_balance_never_lifts_a_class_above_the_majority(self):
        # Setup: the minority has 50 real + 5 synthetic rows: room for 5 more under 60
        keep = cap(["min"] * 20, np.linspace(0, 1, 20), class_counts={"maj": 60, "min": 50},
                   syn_counts={"min": 5})

        assert keep.sum() == 5
        assert keep[-5:].all()  # the five most confident

    def test_a_batch_refused_by_the_balance_is_not_called_over_the_cap(self):
        # Setup: only majority rows, while the minority has no synthetic row yet: under the
        # share cap there is room for 30 rows, and the balance lets none in
        keep = cap(["maj"] * 5, np.ones(5))
        room = share_room(n_real=70, n_synthetic_before=0, max_share=0.3)

        # Assert
        assert not keep.any() and room == 30
        assert blend_refusal(room).startswith("the class balance is reached")
        assert blend_refusal(share_room(70, 30, 0.3)) == "the synthetic-share cap is reached"

    def test_balance_off_only_applies_the_share_cap(self):
        keep = cap(["min"] * 20, np.ones(20), class_counts={"maj": 60, "min": 50},
                   syn_counts={"min": 5}, balance=False)

        assert keep.sum() == 20

    def test_majority_rows_never_outnumber_the_minoritys_synthetic_rows(self):
        # Setup: counter-examples of the majority class, more confident than the minority rows
        keep = cap(["maj", "min", "maj", "maj", "maj"], [0.9, 0.1, 0.8, 0.7, 0.6])

        # Assert: the one minority row lets in one majority row, the most confident
        assert keep.tolist() == [True, True, False, False, False]

    def test_balanced_real_data_keeps_synthetic_classes_level(self):
        keep = cap(["maj"] * 6 + ["min"] * 2, [0.9] * 6 + [0.1] * 2,
                   class_counts={"maj": 30, "min": 30})

        kept = pd.Series(["maj"] * 6 + ["min"] * 2)[keep].value_counts().to_dict()
        assert kept == {"maj": 3, "min": 2}

    def test_majority_rows_fill_up_to_synthetic_minority_count_including_earlier_batches(self):
        keep = cap(["maj"] * 6, np.linspace(0, 1, 6), syn_counts={"min": 4, "maj": 1})

        assert keep.sum() == 3
        assert keep[-3:].all()


class TestCurate:
    def test_rows_below_their_class_floor_are_dropped(self):
        # Setup: floors from out-of-fold confidence of real rows, 10th percentile
        y = np.array(["maj"] * 10 + ["min"] * 10)
        oof = np.column_stack([np.r_[np.linspace(0.6, 0.95, 10), np.linspace(0.1, 0.6, 10)],
                               np.r_[np.linspace(0.4, 0.05, 10), np.linspace(0.9, 0.4, 10)]])
        floors = confidence_floors(y, oof, SCHEMA.classes, 10)
        b = batch(["min", "min", "maj"])
        proba = np.array([[0.2, 0.8], [0.9, 0.1], [0.3, 0.7]])

        # Run
        keep, conf = curate(b, proba, SCHEMA, floors)

        # Assert: each row is judged by the confidence in its own label
        assert conf.tolist() == [0.8, 0.1, 0.3]
        assert 0.4 < floors["min"] < 0.5 and 0.6 < floors["maj"] < 0.7
        assert keep.tolist() == [True, False, False]

    def test_percentile_zero_keeps_everything(self):
        floors = confidence_floors(np.array(["maj", "min"]), np.array([[0.9, 0.1], [0.2, 0.8]]),
                                   SCHEMA.classes, 0)

        keep, _ = curate(batch(["min"]), np.array([[0.99, 0.01]]), SCHEMA, floors)

        assert floors == {"maj": 0.0, "min": 0.0}
        assert keep.all()

    def test_a_region_row_is_held_to_the_real_rows_of_its_label_in_the_region(self):
        # Setup: real "maj" rows are confident outside x > 0.8 and unsure inside it (where the
        # model errs); a counter-example written for that region is as unsure as they are
        x = np.r_[np.linspace(0, 0.7, 20), np.linspace(0.85, 1, 10)]
        train = pd.DataFrame({"x": x, "y": "maj"})
        conf_maj = np.r_[np.full(20, 0.95), np.linspace(0.3, 0.5, 10)]
        oof = np.column_stack([conf_maj, 1 - conf_maj])
        floors = confidence_floors(train["y"].to_numpy(), oof, SCHEMA.classes, 10)
        region = region_confidence_floors(train, oof, SCHEMA, ["x > 0.8"], 10)
        rows = pd.DataFrame({"x": [0.9, 0.9, 0.5], "y": ["maj"] * 3,
                             "_sl_region": ["x > 0.8", "x > 0.8", "x <= 0.8"]})
        proba = np.array([[0.45, 0.55], [0.2, 0.8], [0.45, 0.55]])

        # Run
        keep_class, _ = curate(rows, proba, SCHEMA, floors)
        keep_region, _ = curate(rows, proba, SCHEMA, floors, region)

        # Assert: the class-wide floor (about 0.33) drops nothing here but the region floor is
        # what decides: 0.45 is plausible inside the region, 0.2 is not, and a row of another
        # region keeps the class-wide floor
        assert set(region) == {"x > 0.8"} and "min" not in region["x > 0.8"]
        assert 0.3 < region["x > 0.8"]["maj"] < 0.33 < floors["maj"]
        assert keep_region.tolist() == [True, False, True]
        # with a class floor above the row's confidence, only the region floor keeps it
        strict = {"maj": 0.9, "min": 0.0}
        assert curate(rows, proba, SCHEMA, strict)[0].tolist() == [False, False, False]
        assert curate(rows, proba, SCHEMA, strict, region)[0].tolist() == [True, False, False]
        assert keep_class.tolist() == [True, False, True]

    def test_region_floors_skip_labels_with_too_few_real_rows(self):
        train = pd.DataFrame({"x": [0.9, 0.95, 0.1], "y": ["min", "min", "maj"]})
        oof = np.array([[0.5, 0.5], [0.4, 0.6], [0.9, 0.1]])

        assert region_confidence_floors(train, oof, SCHEMA, ["x > 0.8"], 10) == {}
        assert region_confidence_floors(train, oof, SCHEMA, ["x > 0.8"], 10,
                                        min_support=2)["x > 0.8"]["min"] == pytest.approx(0.51)
        assert region_confidence_floors(train, oof, SCHEMA, ["x > 0.8"], 0) == {}


class TestTrainingFrame:
    def test_synthetic_rows_get_their_weight(self):
        real = batch(["maj", "min", "maj"])
        syn = batch(["min", "min"]).assign(_sl_origin="synthetic")

        X, w = training_frame(real, syn, SCHEMA, 2.5)

        assert list(X.columns) == ["x", "y"]
        assert len(X) == 5
        assert w.tolist() == [1, 1, 1, 2.5, 2.5]

    def test_no_synthetic(self):
        X, w = training_frame(batch(["maj", "min"]), None, SCHEMA, 2.5)

        assert len(X) == 2 and w.tolist() == [1, 1]
