"""curation.keep_training_copies: a generated row that copies a real training row is kept (an
oversample, as EPIC's published rows hold), and counted; off, the default, it is refused."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from synthloop.graphs.context import LEAKAGE, SYNTHETIC, TRAIN
from synthloop.store import RunStore
from synthloop.tools.validation import LeakageIndex
from tests.fakes import jittered_rows_reply, loop_script, scripted
from tests.support import make_spec, run

# the exemplars, written back unchanged: every row copies a real training row
copies_reply = functools.partial(jittered_rows_reply, scale=0.0)


@pytest.mark.parametrize("keep", [True, False])
def test_copies_of_training_rows_are_kept_only_when_asked(spec_dict, tmp_path, keep):
    spec = make_spec(spec_dict, budget={"max_iterations": 1, "rows_per_iteration": 24},
                     curation={"confidence_percentile": 0, "keep_training_copies": keep},
                     blend={"max_validation_drop": 1.0})

    summary = run(spec, tmp_path, scripted(loop_script(generate=copies_reply)), run_id="c")

    (record,) = summary["iterations"]
    checks = record["checks"]
    copies = checks["exact_copy_of_real"] + checks["near_copy_of_real"]
    if keep:
        assert copies == 0
        assert checks["training_copies_kept"] > 0
        # every kept row is a real training row, exactly or to the prompt's rounding
        kept = pd.read_parquet(tmp_path / "c" / SYNTHETIC)
        train = pd.read_parquet(tmp_path / "c" / TRAIN)
        store = RunStore(tmp_path / "c")
        space = store.read_model(LEAKAGE).space
        on_train = LeakageIndex(space, train).nearest(kept)
        assert checks["training_copies_kept"] == len(kept) > 0
        assert (on_train < 0.01).all() and (on_train <= 1e-12).any()
    else:
        assert copies > 0 and "training_copies_kept" not in checks
