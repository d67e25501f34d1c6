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
        assert set(summary["lift"]) == {"validation", "validation_se", "holdout", "holdout_ci95"}
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


@pytest.mark.embedded
class TestEmbeddedTextGenerator:
    def test_writes_texts_of_the_label_from_retrieved_exemplars(self, tmp_path):
        # Setup: a Chroma corpus of 30 real reviews; one target, one call of two texts
        from synthloop.agents.prompts import PromptVersion
        from synthloop.agents.text_generator import TEXT_INSTRUCTION, TextTarget, generate_texts
        from synthloop.data import TableSchema
        from synthloop.llm import LLMClient, make_chat_model
        from synthloop.tools.text import Embedder, TrainingCorpus
        from tests.text_support import food_reviews

        train = food_reviews(30)
        embedder = Embedder()
        corpus = TrainingCorpus(tmp_path / "chroma", embedder).build(train, "review", "score")
        schema = TableSchema(target="score", classes=["great", "other"], positive_class="other",
                             columns=[], text_column="review")
        target = TextTarget(id="c1", kind="cluster", label="other", rule="cluster c1",
                            support=3, errors=3, recall=0.5, keywords=["coffee", "bitter"],
                            members=[0])
        anchor = embedder.embed(["This coffee was bitter and stale, not worth the money."])
        client = LLMClient(make_chat_model("embedded", seed=1))
        prompt = PromptVersion(id="t", version=1, model=client.model_id, temperature=0.7,
                               text=TEXT_INSTRUCTION).with_hash()

        # Run
        batch, stats = generate_texts(
            client, prompt, [target], corpus, schema, {"c1": anchor}, n_texts=2,
            texts_per_call=2, few_shot=3, temperature=0.7, max_tokens=220, min_chars=20,
            max_chars=300, max_exemplar_chars=200, label_descriptions={}, contrast_share=0.0,
            run_id="r", iteration=1, seed=1)

        # Assert: the grammar-constrained reply parsed into texts of the label, each naming
        # the three 'other' training reviews its call was shown
        assert stats["calls"] == 1 and stats["llm_failures"] == 0
        assert len(batch) == 2 and stats["rows_returned"] == 2
        assert (batch["score"] == "other").all()
        assert batch["review"].str.len().between(1, 300).all()
        ids = batch["_sl_exemplars"].iloc[0].split(",")
        assert len(ids) == 3
        rows = train.loc[[int(i.split(":")[1]) for i in ids]]
        assert (rows["score"] == "other").all()
        assert client.usage["generate"].output_tokens > 0
