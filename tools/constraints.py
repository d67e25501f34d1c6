"""Rules and regions as expressions over the columns of a table.

One safe, vectorised evaluator serves both row rules from the spec
(``price > 50 if category == "Electronics"``: an implication) and the error regions found by
error analysis (``int_rate > 14.2 and term == "60 months"``). Only comparisons, boolean logic,
arithmetic, ``in`` lists and a few functions are allowed; names are column names.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from synthloop.errors import RuleError

_CMP = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}


def _len(values):
    return pd.Series(values).astype(str).str.len()


# Functions rules may call. Each registers as a ``rule_function`` (so does any a plugin adds,
# e.g. ``balanced(debit, credit)``); rules see every registered one.
BUILTIN_FUNCTIONS = {"abs": np.abs, "log": np.log, "isnull": pd.isna, "notnull": pd.notna,
                     "len": _len}


def rule_functions() -> dict:
    """Every function rules may call: the built-ins and those plugins registered."""
    from synthloop.tools.registry import default_registry

    return default_registry().components("rule_function")


@dataclass(frozen=True)
class Rule:
    text: str
    tree: ast.Expression
    columns: tuple[str, ...]


@lru_cache(maxsize=1024)
def parse_rule(text: str) -> Rule:
    """Parse an expression; ``A if B`` (no else) means 'B implies A'."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("A rule must be a non-empty expression such as 'price > 0'.")
    src, quoted = _unquote_names(text.strip())
    if " if " in f" {src} " and " else " not in f" {src} ":
        src = f"({src} else True)"
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as exc:
        raise RuleError(
            f"Rule {text!r} does not parse ({exc.msg}); write it like "
            "'price > 50 if category == \"Electronics\"', with a column name that has spaces "
            "or symbols in backticks: `annual income` > 0."
        ) from None
    names: list[str] = []
    funcs = rule_functions()
    called = {id(n.func) for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in quoted:
                node.id = quoted[node.id]
                names.append(node.id)
            elif id(node) not in called and node.id not in ("True", "False"):
                names.append(node.id)
        elif not isinstance(node, _ALLOWED):
            raise RuleError(
                f"Rule {text!r} uses {type(node).__name__}, which rules do not allow; use "
                "comparisons, and/or/not, arithmetic, 'in [...]' and abs/log/isnull/notnull."
            )
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in funcs
        ):
            what = f"'{node.func.id}', " if isinstance(node.func, ast.Name) else ""
            raise RuleError(f"Rule {text!r} calls {what}a function rules do not allow; rule "
                            f"functions are: {', '.join(sorted(funcs))} (plugins add more).")
    return Rule(text=text, tree=tree, columns=tuple(dict.fromkeys(names)))


_BACKTICK = re.compile(r"`([^`]+)`")


def _unquote_names(src: str) -> tuple[str, dict[str, str]]:
    """Column names that are not identifiers are written in backticks (as in pandas' query):
    `mean radius` > 3. They become placeholders for parsing and are restored afterwards."""
    quoted: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        key = f"__sl_col{len(quoted)}__"
        quoted[key] = m.group(1)
        return key

    return _BACKTICK.sub(sub, src), quoted


def quote_name(name: str) -> str:
    """A column name as it must be written in a rule."""
    return name if name.isidentifier() else f"`{name}`"


_ALLOWED = (
    ast.Expression, ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
    ast.UAdd, ast.BinOp, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, ast.IfExp,
    ast.Call, ast.In, ast.NotIn, *_CMP, *_BIN,
)


def check_columns(rule: Rule, columns, target: str | None = None) -> None:
    """Refuse a rule that names a column outside ``columns``; ``target`` (the label column)
    gets its own message, since the data has it but a rule may not use it."""
    missing = [c for c in rule.columns if c not in set(columns)]
    if target is not None and target in missing:
        raise RuleError(
            f"Rule {rule.text!r} names the target column {target!r}; rules may use feature "
            f"columns only (they hold for every row, whatever its label), so drop "
            f"{target!r} from the rule."
        )
    if missing:
        raise RuleError(
            f"Rule {rule.text!r} names column(s) {missing} that the data does not have; "
            f"known columns: {', '.join(map(str, columns))}."
        )


def evaluate(rule: Rule | str, df: pd.DataFrame) -> np.ndarray:
    """Boolean mask: rows that satisfy the rule. Rows where a named column is null pass."""
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    check_columns(rule, df.columns)
    with np.errstate(all="ignore"):
        try:
            out = _eval(rule.tree.body, df)
        except TypeError as exc:
            raise RuleError(f"Rule {rule.text!r} compares values of different types ({exc}).") from None
    mask = _as_mask(out, len(df))
    if rule.columns:
        null = df[list(rule.columns)].isna().any(axis=1).to_numpy()
        mask = mask | null
    return mask


def evaluate_region(expr: str, df: pd.DataFrame) -> np.ndarray:
    """Boolean mask of region membership; null cells count as outside the region."""
    rule = parse_rule(expr)
    check_columns(rule, df.columns)
    with np.errstate(all="ignore"):
        out = _eval(rule.tree.body, df)
    return _as_mask(out, len(df))


def _as_mask(out, n: int) -> np.ndarray:
    if np.isscalar(out) or getattr(out, "ndim", 1) == 0:
        return np.full(n, bool(out))
    arr = out.to_numpy() if isinstance(out, pd.Series) else np.asarray(out)
    return pd.Series(arr).fillna(False).astype(bool).to_numpy()


def _eval(node, df: pd.DataFrame):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return node.id == "True"
        return df[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, df) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        vals = [_as_mask(_eval(v, df), len(df)) for v in node.values]
        red = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return red.reduce(vals)
    if isinstance(node, ast.UnaryOp):
        val = _eval(node.operand, df)
        if isinstance(node.op, ast.Not):
            return ~_as_mask(val, len(df))
        return -val if isinstance(node.op, ast.USub) else val
    if isinstance(node, ast.BinOp):
        return _BIN[type(node.op)](_eval(node.left, df), _eval(node.right, df))
    if isinstance(node, ast.IfExp):
        test = _as_mask(_eval(node.test, df), len(df))
        body = _as_mask(_eval(node.body, df), len(df))
        orelse = _as_mask(_eval(node.orelse, df), len(df))
        return np.where(test, body, orelse)
    if isinstance(node, ast.Call):
        fn = rule_functions()[node.func.id]
        args = [_eval(a, df) for a in node.args]
        out = fn(*args)
        return out.reset_index(drop=True).set_axis(df.index) if isinstance(out, pd.Series) \
            and len(out) == len(df) else out
    if isinstance(node, ast.Compare):
        left = _eval(node.left, df)
        result = None
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, df)
            if isinstance(op, (ast.In, ast.NotIn)):
                vals = right if isinstance(right, list) else [right]
                cur = pd.Series(left).isin(vals).to_numpy()
                cur = ~cur if isinstance(op, ast.NotIn) else cur
            else:
                cur = _CMP[type(op)](_coerce(left, right), _coerce(right, left))
            cur = _as_mask(cur, len(df))
            result = cur if result is None else (result & cur)
            left = right
        return result
    raise RuleError(f"Unsupported expression element {type(node).__name__}.")


def _coerce(value, other):
    """Compare categoricals as strings; leave numbers alone."""
    if isinstance(value, pd.Series) and isinstance(value.dtype, pd.CategoricalDtype):
        return value.astype(object)
    if isinstance(value, pd.Series) and isinstance(other, str) and value.dtype != object:
        return value.astype(str)
    return value


def violation_rate(rules: list[str], df: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of rows passing every rule and the count of rows each rule removed."""
    ok = np.ones(len(df), dtype=bool)
    counts: dict[str, int] = {}
    for text in rules:
        passed = evaluate(text, df)
        counts[text] = int((~passed).sum())
        ok &= passed
    return ok, counts
