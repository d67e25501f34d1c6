"""How the spec reads what users write: numbers as class names, ``--set`` on a column, and a
numeric column with a few stray text cells."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from synthloop.data import conform, infer_schema
from synthloop.errors import DataError, SpecError
from tests.support import make_spec


def with_stray_cell(df: pd.DataFrame, column: str, value: str = "n/a") -> pd.DataFrame:
    out = df.astype({column: object})
    out.loc[3, column] = value
    return out


class TestPositiveClass:
    def test_a_number_names_the_class_written_that_way(self, spec_dict):
        # YAML reads `positive_class: 1` as an int; classes are compared as text
        spec = make_spec(spec_dict, data={**spec_dict["data"], "positive_class": 1})

        assert spec.data.positive_class == "1"

    @pytest.mark.parametrize("value", [1.0, True])
    def test_a_float_or_a_yes_no_asks_for_quotes(self, spec_dict, value):
        with pytest.raises(SpecError, match="in quotes") as info:
            make_spec(spec_dict, data={**spec_dict["data"], "positive_class": value})

        assert "data.positive_class" in str(info.value)

    def test_a_numeric_label_column_takes_a_numeric_positive_class(self, spec_dict, cancer_df):
        df = cancer_df.assign(diagnosis=(cancer_df.diagnosis == "malignant").astype(int))
        spec = make_spec(spec_dict, data={**spec_dict["data"], "positive_class": 1})

        schema = infer_schema(df, spec)

        assert schema.classes == ["0", "1"] and schema.positive_class == "1"


class TestSetOnAColumn:
    def test_set_creates_the_override_of_a_column(self, spec_dict):
        spec = make_spec(spec_dict).with_overrides({"columns.mean_area.type": "float",
                                                    "columns.mean_area.max": 3000})

        assert spec.columns["mean_area"].type == "float"
        assert spec.columns["mean_area"].max == 3000

    def test_set_with_a_bad_column_key_is_refused(self, spec_dict):
        with pytest.raises(SpecError, match="Unknown key 'columns.mean_area.kind'.*Allowed "
                                            "here: categories, max, min, nullable, type"):
            make_spec(spec_dict).with_overrides({"columns.mean_area.kind": "float"})

    def test_a_column_set_to_a_bare_type_says_how_to_write_it(self, spec_dict):
        with pytest.raises(SpecError, match=r"'columns.mean_area' takes keys \(categories, max, "
                                            r".*--set columns.mean_area.type=category"):
            make_spec(spec_dict).with_overrides({"columns.mean_area": "category"})

    def test_an_override_of_a_missing_column_lists_the_columns(self, spec_dict, cancer_df):
        spec = make_spec(spec_dict, columns={"nosuch": {"type": "float"}})

        with pytest.raises(DataError, match=r"\['nosuch'\], which are not in the data; its "
                                            r"columns are: mean_radius, "):
            infer_schema(cancer_df, spec)

    def test_other_unknown_sections_are_still_refused(self, spec_dict):
        with pytest.raises(SpecError, match="'budgett' is not a section"):
            make_spec(spec_dict).with_overrides({"budgett.patience": 2})


class TestStrayTextCells:
    def test_a_stray_cell_is_named_not_read_as_a_category(self, spec_dict, cancer_df):
        with pytest.raises(DataError, match=r"Column 'mean_area' holds numbers but for 1 "
                                            r"cell\(s\) \('n/a'\)"):
            infer_schema(with_stray_cell(cancer_df, "mean_area"), make_spec(spec_dict))

    def test_many_markers_are_named_too(self, spec_dict, cancer_df):
        # 14% of the cells '?': still a numeric column with missing values, not free text
        df = cancer_df.astype({"mean_area": object})
        df.loc[df.index % 7 == 0, "mean_area"] = "?"

        with pytest.raises(DataError, match=r"Column 'mean_area' holds numbers but for 42 "
                                            r"cell\(s\) \('\?'\)"):
            infer_schema(df, make_spec(spec_dict))

    def test_declared_numeric_reads_the_stray_cell_as_missing(self, spec_dict, cancer_df):
        df = with_stray_cell(cancer_df, "mean_area")
        spec = make_spec(spec_dict, columns={"mean_area": {"type": "float"}})

        schema = infer_schema(df, spec)
        rows = conform(df, schema)

        col = next(c for c in schema.columns if c.name == "mean_area")
        assert col.type == "float" and col.nullable
        assert col.min == pytest.approx(float(cancer_df.mean_area.min()))
        assert math.isnan(rows.loc[3, "mean_area"])

    def test_declared_category_keeps_every_value(self, spec_dict, cancer_df):
        df = cancer_df.assign(grade=[str(i % 5) for i in range(len(cancer_df))])
        df.loc[3, "grade"] = "unknown"
        spec = make_spec(spec_dict, columns={"grade": {"type": "category"}})

        schema = infer_schema(df, spec)

        col = next(c for c in schema.columns if c.name == "grade")
        assert col.type == "category" and "unknown" in col.categories

    @pytest.mark.parametrize("value", ["3+", "V45"])
    def test_other_text_among_numbers_is_a_category_as_before(self, spec_dict, cancer_df,
                                                               value):
        # e.g. a count capped as '3+', or codes of which a few carry a letter
        df = cancer_df.assign(kids=[str(i % 3) for i in range(len(cancer_df))])
        df.loc[:3, "kids"] = value

        schema = infer_schema(df, make_spec(spec_dict))

        col = next(c for c in schema.columns if c.name == "kids")
        assert col.type == "category" and value in col.categories

    def test_a_mostly_text_column_is_not_refused(self, spec_dict, cancer_df):
        # a category column that happens to hold a few numbers is not a numeric one
        df = cancer_df.assign(site=["north", "south", "east", "west"] * (len(cancer_df) // 4))
        df.loc[:5, "site"] = "12"

        schema = infer_schema(df, make_spec(spec_dict))

        assert next(c for c in schema.columns if c.name == "site").type == "category"
