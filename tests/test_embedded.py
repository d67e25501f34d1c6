"""The real embedded LLM (SmolLM2 through llama-cpp-python), end to end, for one iteration."""

from __future__ import annotations

import pandas as pd
import pytest

from synthloop.agents.generator import PROVENANCE
from synthloop.graphs.context import SYNTHETIC
from synthloop.runner import run_loop
from tests.support import make_spec


@pytest.mark.embedded
class TestEmbeddedLLM:
    def test_one_iteration_end_to_end(self, spec_dict, tmp_path):
        # Setup: the spec's own LLM ('embedded'), no injected chat model, no cache
        spec = make_spec(spec_dict, llm="embedded",
                         budget={"max_iterations": 1, "rows_per_iteration": 8},
                         generator={"rows_per_call": 4, "columns_per_row": 3,
                                    "max_tokens_per_call": 200},
                         analysis={"max_regions": 1})

        # Run
        summary = run_loop(spec, tmp_path, chat_model=None, run_id="emb", cache_dir=None)

        # Assert: a complete summary ...
        assert summary["status"] == "finished"
        assert summary["stop_reason"] == "max_iterations"
        assert summary["llm"].startswith("embedded:") and summary["llm"].endswith(".gguf")
        (record,) = summary["iterations"]
        assert record["prompt_author"] in ("llm", "fallback")
        assert summary["fallbacks"] == (record["prompt_author"] == "fallback")
        for key in ("baseline", "final"):
            assert set(summary[key]) == {"validation", "holdout"}
        assert set(summary["lift"]) == {"validation", "holdout", "holdout_ci95"}
        low, high = summary["lift"]["holdout_ci95"]
        assert low <= summary["lift"]["holdout"] <= high
        # ... from real calls with real token counts ...
        usage = summary["usage_by_node"]
        assert usage["rewrite"]["calls"] == 1
        assert usage["generate"]["calls"] == 2
        assert usage["generate"]["cached_calls"] == 0
        assert usage["generate"]["tokens"] > 0
        assert summary["total_tokens"] == usage["rewrite"]["tokens"] + usage["generate"]["tokens"]
        # ... and rows generated from the model's replies
        assert record["rows_generated"] > 0
        generated = pd.read_parquet(tmp_path / "emb/data/batches/iter_001_generated.parquet")
        assert len(generated) == record["rows_generated"]
        assert set(PROVENANCE) <= set(generated.columns)
        assert (generated["_sl_generator"] == summary["llm"]).all()
        kept = pd.read_parquet(tmp_path / "emb" / SYNTHETIC)
        assert len(kept) == summary["synthetic_rows"] == record["rows_accepted"]
