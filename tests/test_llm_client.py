"""LLMClient: retries with backoff on transient errors (counted), the on-disk response cache,
and per-node usage that reaches summary['usage_by_node']."""

from __future__ import annotations

import time

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from synthloop import runner
from synthloop.errors import LLMError
from synthloop.llm import LLMClient, make_chat_model
from synthloop.llm.client import chat, check_llm_uri
from tests.fakes import failing_then, loop_script, scripted
from tests.support import make_spec, run

MESSAGES = chat("system text", "user text")


def answer(text: str):
    return lambda messages, params: text


class TestRetries:
    def test_transient_errors_are_retried_with_backoff_and_counted(self):
        # Setup: two timeouts, then a reply; backoff of 20 ms doubling
        model = scripted(failing_then(answer("ok"), 2, TimeoutError))
        client = LLMClient(model=model, backoff_seconds=0.02, max_attempts=3)

        # Run
        start = time.perf_counter()
        reply = client.complete(MESSAGES, node="generate")
        elapsed = time.perf_counter() - start

        # Assert
        assert reply == "ok"
        assert len(model.calls) == 3
        usage = client.take_usage("generate")
        assert usage["retries"] == 2
        assert usage["failures"] == 0
        assert usage["calls"] == 1
        assert elapsed >= 0.02 + 0.04  # waited 20 ms, then 40 ms

    def test_connection_errors_are_transient_too(self):
        model = scripted(failing_then(answer("ok"), 1, ConnectionError))
        client = LLMClient(model=model, backoff_seconds=0.001)

        assert client.complete(MESSAGES, node="n") == "ok"
        assert client.take_usage("n")["retries"] == 1

    def test_gives_up_after_max_attempts(self):
        model = scripted(failing_then(answer("ok"), 10, TimeoutError))
        client = LLMClient(model=model, backoff_seconds=0.001, max_attempts=3)

        with pytest.raises(LLMError, match=r"failed after 3 attempt\(s\): TimeoutError"):
            client.complete(MESSAGES, node="n")

        assert len(model.calls) == 3
        usage = client.take_usage("n")
        assert usage["retries"] == 2 and usage["failures"] == 1 and usage["calls"] == 0

    def test_attempts_in_the_message_are_this_calls_own(self):
        # Setup: the first call succeeds on its third attempt, the second never does
        model = scripted(failing_then(answer("ok"), 2, TimeoutError))
        client = LLMClient(model=model, backoff_seconds=0.001, max_attempts=3)
        assert client.complete(MESSAGES, node="n") == "ok"
        model.script = failing_then(answer("ok"), 10, TimeoutError)

        # Run / Assert: the message counts the second call's attempts, not the node's retries
        with pytest.raises(LLMError, match=r"failed after 3 attempt\(s\)"):
            client.complete(chat("system text", "another"), node="n")
        assert client.take_usage("n")["retries"] == 4

    def test_other_errors_are_not_retried(self):
        model = scripted(failing_then(answer("ok"), 1, lambda: ValueError("bad request")))
        client = LLMClient(model=model, backoff_seconds=0.001)

        with pytest.raises(LLMError, match="ValueError: bad request"):
            client.complete(MESSAGES, node="n")

        assert len(model.calls) == 1
        assert client.take_usage("n")["retries"] == 0

    def test_take_usage_resets(self):
        client = LLMClient(model=scripted(answer("ok")))
        client.complete(MESSAGES, node="n")

        assert client.take_usage("n")["calls"] == 1
        assert client.take_usage("n")["calls"] == 0

    def test_retries_reach_the_summary(self, spec_dict, tmp_path, monkeypatch):
        # Setup: the first two calls of the run (the first rewrite) time out; the client the
        # runner builds gets a tiny backoff
        def client(spec, chat_model, cache_dir):
            return LLMClient(model=chat_model, cache_dir=cache_dir, backoff_seconds=0.001)

        monkeypatch.setattr(runner, "_client", client)
        model = scripted(failing_then(loop_script(), 2, TimeoutError))

        # Run
        summary = run(make_spec(spec_dict), tmp_path, model)

        # Assert: retried, not fallen back
        assert summary["usage_by_node"]["rewrite"]["retries"] == 2
        assert summary["usage_by_node"]["rewrite"]["failures"] == 0
        assert summary["usage_by_node"]["generate"]["retries"] == 0
        assert summary["iterations"][0]["prompt_author"] == "llm"
        assert summary["fallbacks"] == 0


class TestCache:
    def test_cached_reply_does_not_call_the_model_again(self, tmp_path):
        # Setup: a model with exactly one reply; a second call to it would fail
        model = GenericFakeChatModel(messages=iter([AIMessage(content="only once")]))
        client = LLMClient(model=model, cache_dir=tmp_path)

        # Run
        first = client.complete(MESSAGES, node="n", seed=1)
        second = client.complete(MESSAGES, node="n", seed=1)

        # Assert
        assert first == second == "only once"
        usage = client.take_usage("n")
        assert usage["calls"] == 2 and usage["cached_calls"] == 1
        assert usage["tokens"] > 0  # cached calls still count their tokens
        assert len(list(tmp_path.rglob("*.json"))) == 1

    def test_cache_survives_a_new_client_and_keys_on_parameters(self, tmp_path):
        model = scripted(lambda messages, params: f"seed {params['seed']}")
        LLMClient(model=model, cache_dir=tmp_path).complete(MESSAGES, node="n", seed=1)

        client = LLMClient(model=model, cache_dir=tmp_path)
        again = client.complete(MESSAGES, node="n", seed=1)
        other_seed = client.complete(MESSAGES, node="n", seed=2)
        other_text = client.complete(chat("system text", "other"), node="n", seed=1)

        assert again == "seed 1"
        assert other_seed == "seed 2"
        assert other_text == "seed 1"
        assert len(model.calls) == 3  # the first, then the two new keys
        assert client.take_usage("n")["cached_calls"] == 1

    def test_no_cache_dir_calls_every_time(self):
        model = scripted(answer("x"))
        client = LLMClient(model=model, cache_dir=None)

        client.complete(MESSAGES, node="n")
        client.complete(MESSAGES, node="n")

        assert len(model.calls) == 2

    def test_a_whole_loop_replays_from_the_cache(self, spec_dict, tmp_path):
        # Setup: run once filling the cache
        spec = make_spec(spec_dict)
        first_model = scripted()
        first = run(spec, tmp_path / "a", first_model, run_id="same", cache_dir=tmp_path / "c")

        # Run: the same loop again, with a model that must not be called
        def refuse(messages, params):
            raise AssertionError("the cache should have answered")

        second_model = scripted(refuse)
        second = run(spec, tmp_path / "b", second_model, run_id="same",
                     cache_dir=tmp_path / "c")

        # Assert
        assert second_model.calls == []
        assert second["synthetic_sha256"] == first["synthetic_sha256"]
        n_calls = len(first_model.calls)
        usage = second["usage_by_node"]
        assert usage["rewrite"]["cached_calls"] + usage["generate"]["cached_calls"] == n_calls
        assert second["total_tokens"] == first["total_tokens"]


class TestUsage:
    def test_tokens_per_node_in_summary(self, spec_dict, tmp_path):
        # Setup: the fake reports its own token counts for each call
        model = scripted()

        # Run
        summary = run(make_spec(spec_dict, budget={"max_iterations": 2}), tmp_path, model)

        # Assert: the summary shows exactly what the model reported, per node
        by_node = summary["usage_by_node"]
        for node in ("rewrite", "generate"):
            calls = model.calls_of(node)
            assert by_node[node]["calls"] == len(calls) > 0
            assert by_node[node]["tokens"] == sum(c["usage"]["total_tokens"] for c in calls)
            assert by_node[node]["cached_calls"] == 0
        assert summary["total_tokens"] == sum(c["usage"]["total_tokens"] for c in model.calls)
        assert sum(r["tokens"] for r in summary["iterations"]) == summary["total_tokens"]

    def test_missing_usage_metadata_is_estimated(self):
        model = GenericFakeChatModel(messages=iter(["x" * 400]))
        client = LLMClient(model=model)

        client.complete(MESSAGES, node="n")

        usage = client.take_usage("n")
        assert usage["output_tokens"] == 100
        assert usage["input_tokens"] > 0


class TestMakeChatModel:
    def test_unknown_uri_is_a_clear_error(self):
        with pytest.raises(LLMError, match="Unknown LLM 'nonsense'"):
            make_chat_model("nonsense")

    def test_a_provider_langchain_does_not_know_is_named(self):
        with pytest.raises(LLMError, match="'bogus' is not a provider LangChain knows; write "
                                           "'provider:model'") as info:
            make_chat_model("bogus:x")

        assert "model_provider" not in str(info.value)

    def test_a_provider_is_checked_without_building_the_model(self):
        check_llm_uri("anthropic:claude-x")  # known: its package is not even installed here
        # no known provider before ':', but LangChain infers one from the name
        check_llm_uri("anthropic.claude-3-5-sonnet-20240620-v1:0")  # bedrock
        check_llm_uri("deepseek-r1:7b")
        with pytest.raises(LLMError, match="'bogus' is not a provider LangChain knows"):
            check_llm_uri("bogus:x")

    def test_embedded_is_built_without_loading(self):
        model = make_chat_model("embedded", seed=3)

        assert model.seed == 3
        assert model.model_id.startswith("embedded:")

    def test_openai_without_key_or_url_is_a_clear_error(self, monkeypatch):
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

        with pytest.raises(LLMError, match="OPENAI_API_KEY"):
            make_chat_model("openai:gpt-4o-mini")

    def test_openai_compatible_local_server(self, monkeypatch):
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)

        model = make_chat_model("openai:qwen@http://127.0.0.1:8000/v1")

        assert model.model_name == "qwen"
        assert str(model.openai_api_base).startswith("http://127.0.0.1:8000")
