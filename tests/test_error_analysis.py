"""Error analysis: a shallow tree finds where the model is wrong, as readable regions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.data import ColumnSchema, TableSchema
from synthloop.tools.constraints import evaluate_region
from synthloop.tools.error_analysis import analysis_threshold, find_regions

SCHEMA = TableSchema(
    target="y", classes=["neg", "pos"], positive_class="pos",
    columns=[ColumnSchema(name="a", type="float", min=0, max=10),
             ColumnSchema(name="b", type="float", min=0, max=10),
             ColumnSchema(name="c", type="category", categories=["x", "y"])],
)


def planted(n: int = 800, seed: int = 0):
    """Rows where the model is confidently right, except that it misses every positive with
    a > 7 and c == "y"."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.uniform(0, 10, n), "b": rng.uniform(0, 10, n),
                       "c": rng.choice(["x", "y"], n)})
    df["y"] = np.where(rng.random(n) < 0.3, "pos", "neg")
    inside = (df.a > 7) & (df.c == "y")
    p_pos = np.where(df.y == "pos", 0.95, 0.05)
    p_pos = np.where(inside & (df.y == "pos"), 0.05, p_pos)
    return df, np.column_stack([1 - p_pos, p_pos]), inside.to_numpy()


def regions_of(df, proba, **kw):
    args = dict(threshold=0.5, margin=0.15, max_regions=3, max_depth=3, min_support=8, seed=0)
    args.update(kw)
    return find_regions(df, proba, SCHEMA, **args)


class TestFindRegions:
    def test_finds_the_planted_region(self):
        # Setup
        df, proba, inside = planted()

        # Run
        regions, summary = regions_of(df, proba)

        # Assert: the top region is the planted one, as a rule over a and c
        top = regions[0]
        assert top.id == "r1"
        conds = {(c.column, c.op): c.value for c in top.conditions}
        assert 6.8 <= conds[("a", ">")] <= 7.2
        assert conds.get(("c", "==")) == "y" or conds.get(("c", "!=")) == "x"
        assert "b" not in {c.column for c in top.conditions}
        found = evaluate_region(top.rule, df)
        assert (found & inside).sum() / found.sum() > 0.95  # the region is the planted one
        assert (found & inside).sum() / inside.sum() > 0.8  # ... and most of it
        assert top.label == "pos"
        assert top.recall == 0.0
        assert top.errors == int((found & (df.y == "pos")).sum())
        assert summary["misclassified"] == int((inside & (df.y == "pos")).sum())
        assert summary["unsure"] == 0

    def test_regions_are_ranked_and_capped(self):
        df, proba, _ = planted()

        regions, _ = regions_of(df, proba, max_regions=1)

        assert len(regions) == 1

    def test_no_errors_no_regions(self):
        df, _, _ = planted()
        p_pos = np.where(df.y == "pos", 0.99, 0.01)

        regions, summary = regions_of(df, np.column_stack([1 - p_pos, p_pos]))

        assert regions == []
        assert summary["errors"] == 0

    def test_unsure_rows_count_as_errors(self):
        # Setup: right everywhere, but unsure (close to the threshold) where b > 8
        df, _, _ = planted()
        p_pos = np.where(df.y == "pos", 0.95, 0.05)
        p_pos = np.where(df.b > 8, np.where(df.y == "pos", 0.55, 0.45), p_pos)

        regions, summary = regions_of(df, np.column_stack([1 - p_pos, p_pos]))

        assert summary["misclassified"] == 0
        assert summary["unsure"] == int((df.b > 8).sum())
        conds = {(c.column, c.op): c.value for c in regions[0].conditions}
        assert 7.8 <= conds[("b", ">")] <= 8.2

    def test_deterministic_for_a_seed(self):
        df, proba, _ = planted()

        assert regions_of(df, proba)[0] == regions_of(df, proba)[0]


class TestAnalysisThreshold:
    def test_threshold_metrics_use_their_own(self):
        assert analysis_threshold(np.array([0.1, 0.9]), np.array([False, True]), 0.3, True) == 0.3

    def test_ranking_metrics_flag_as_many_rows_as_positives(self):
        scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
        y = np.array([True, False, True, False, False])

        thr = analysis_threshold(scores, y, 0.5, False)

        assert thr == pytest.approx(0.8)
        assert (scores >= thr).sum() == y.sum()
