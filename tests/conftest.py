"""Fixtures: the small real data set as a frame and as a CSV, a spec dict for it, and its
inferred schema and conformed frame."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from synthloop.data import conform, infer_schema
from tests.support import base_spec, cancer_frame, make_spec

# The tests read plain, 80-column console output and keep their LLM replies to themselves:
# a shell or CI that exports these would otherwise colour the CLI's output (Rich reads them
# when the CLI module is imported), narrow its tables, or share the fake LLM's cache.
for _var in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS", "LINES", "SYNTHLOOP_LLM_CACHE"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def cancer_df() -> pd.DataFrame:
    return cancer_frame()


@pytest.fixture
def cancer_csv(tmp_path: Path, cancer_df: pd.DataFrame) -> Path:
    path = tmp_path / "cancer.csv"
    cancer_df.to_csv(path, index=False)
    return path


@pytest.fixture
def spec_dict(cancer_csv: Path) -> dict:
    return base_spec(cancer_csv)


@pytest.fixture(scope="session")
def traced_run(tmp_path_factory) -> tuple[Path, dict]:
    """(runs dir, summary) of a finished three-iteration run to inspect (see
    tests/trace_support.py); tests only read it (copy it before forking)."""
    from tests.trace_support import make_traced_run

    return make_traced_run(tmp_path_factory.mktemp("traced"))


@pytest.fixture
def schema(spec_dict, cancer_df):
    """The schema inferred from the cancer data under the base spec."""
    return infer_schema(cancer_df, make_spec(spec_dict))


@pytest.fixture
def train(cancer_df, schema):
    """The cancer data conformed to its schema, as the loop's training rows."""
    return conform(cancer_df, schema)
