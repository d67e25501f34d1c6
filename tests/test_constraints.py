"""Rules and regions as expressions over a table's columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.errors import RuleError, SpecError
from synthloop.spec import validate_spec
from synthloop.tools.constraints import (
    check_columns,
    evaluate,
    evaluate_region,
    parse_rule,
    violation_rate,
)


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame({
        "price": [10.0, 80.0, 30.0, None, 60.0],
        "category": ["Electronics", "Electronics", "Books", "Electronics", None],
        "qty": [1, 2, 3, 4, 5],
    })


class TestImplication:
    def test_a_if_b_only_binds_rows_where_b_holds(self, df):
        # Run
        mask = evaluate('price > 50 if category == "Electronics"', df)

        # Assert: row 0 is Electronics at 10 -> fails; Books at 30 is not bound; row 3's null
        # price and row 4's null category pass
        assert mask.tolist() == [False, True, True, True, True]

    def test_if_with_else_is_an_ordinary_conditional(self, df):
        mask = evaluate('price > 50 if category == "Electronics" else price < 20', df)

        assert mask.tolist() == [False, True, False, True, True]

    def test_parse_keeps_the_user_text_and_columns(self):
        rule = parse_rule('price > 50 if category == "Electronics"')

        assert rule.text == 'price > 50 if category == "Electronics"'
        assert set(rule.columns) == {"price", "category"}


class TestMembership:
    def test_in_list(self, df):
        assert evaluate('category in ["Books", "Toys"]', df).tolist() == \
            [False, False, True, False, True]

    def test_not_in_list(self, df):
        assert evaluate('category not in ["Books"]', df).tolist() == [True, True, False, True, True]

    def test_in_numbers(self, df):
        assert evaluate("qty in [1, 5]", df).tolist() == [True, False, False, False, True]


class TestNulls:
    def test_null_cells_pass_rules(self, df):
        mask = evaluate("price > 1000", df)

        assert mask.tolist() == [False, False, False, True, False]

    def test_null_cells_are_outside_regions(self, df):
        mask = evaluate_region("price > 20", df)

        assert mask.tolist() == [False, True, True, False, True]

    def test_isnull_function(self, df):
        assert evaluate_region("isnull(price)", df).tolist() == [False, False, False, True, False]


class TestExpressions:
    @pytest.mark.parametrize(("rule", "expected"), [
        ("price * qty >= 90", [False, True, True, True, True]),
        ("abs(price - 50) < 25", [False, False, True, True, True]),
        ("qty > 1 and qty < 4", [False, True, True, False, False]),
        ("not qty > 1 or qty == 5", [True, False, False, False, True]),
        ("1 < qty <= 3", [False, True, True, False, False]),
    ])
    def test_arithmetic_logic_and_chains(self, df, rule, expected):
        assert evaluate(rule, df).tolist() == expected

    def test_violation_rate_counts_each_rule(self, df):
        ok, counts = violation_rate(["price > 20", "qty < 5"], df)

        assert ok.tolist() == [False, True, True, True, False]
        assert counts == {"price > 20": 1, "qty < 5": 1}

    def test_constant_rule(self, df):
        assert evaluate("True", df).tolist() == [True] * 5


class TestBadRules:
    @pytest.mark.parametrize(("rule", "fragment"), [
        ("price >", "does not parse"),
        ("price > 50 if", "does not parse"),
        ("", "non-empty expression"),
        ("   ", "non-empty expression"),
        ("__import__('os').system('ls')", "calls a function rules do not allow"),
        ("price.real > 1", "uses Attribute"),
        ("[x for x in qty]", "uses ListComp"),
        ("lambda: 1", "uses Lambda"),
        ("price[0] > 1", "uses Subscript"),
    ])
    def test_bad_rule_raises_rule_error_on_one_line(self, rule, fragment):
        with pytest.raises(RuleError) as info:
            parse_rule(rule)

        msg = str(info.value)
        assert fragment in msg
        assert "\n" not in msg

    def test_unknown_column(self, df):
        with pytest.raises(RuleError, match=r"names column\(s\) \['weight'\]") as info:
            evaluate("weight > 1", df)
        assert "known columns: price, category, qty" in str(info.value)

    def test_check_columns(self):
        check_columns(parse_rule("price > 1"), ["price"])
        with pytest.raises(RuleError):
            check_columns(parse_rule("price > 1"), ["qty"])

    def test_rule_errors_are_spec_errors(self):
        # the spec validates its rules when it loads
        with pytest.raises(SpecError, match="does not parse"):
            validate_spec({"data": {"source": "x.csv", "target": "y"}, "rules": ["a >"]})

    def test_type_mismatch_is_a_rule_error(self):
        df = pd.DataFrame({"a": np.array([1, 2], dtype=object), "b": ["x", "y"]})

        with pytest.raises(RuleError, match="compares values of different types"):
            evaluate("a - b > 1", df)
