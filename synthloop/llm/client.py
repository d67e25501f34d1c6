"""One way to call any LLM: LangChain chat models behind retries, a response cache and meters.

``make_chat_model(uri)`` turns an LLM URI into a LangChain chat model:

- ``embedded`` or ``embedded:/path/model.gguf``: llama-cpp-python in-process (the default);
- ``openai:MODEL`` or ``openai:MODEL@BASE_URL``: any OpenAI-compatible endpoint (OpenAI, vLLM,
  Ollama, llama.cpp server); the key comes from ``OPENAI_API_KEY`` (a local server accepts any);
- anything else with a ``provider:model`` shape goes to LangChain's ``init_chat_model``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from synthloop.errors import LLMError, LLMOutputError

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


def check_llm_uri(uri: str) -> None:
    """Refuse an LLM URI ``make_chat_model`` could not build, without building it (no model is
    loaded, no server called): for a fork, whose run starts later."""
    uri = (uri or "embedded").strip()
    if uri == "embedded" or uri.startswith("embedded:"):
        path = uri.split(":", 1)[1] if ":" in uri else ""
        if path and not Path(path).is_file():
            raise LLMError(f"LLM '{uri}': no model file '{path}'; give a GGUF file's path, or "
                           "plain 'embedded'.")
        return
    if uri.startswith("openai:"):
        base_url = uri.removeprefix("openai:").partition("@")[2]
        if not (os.environ.get("OPENAI_API_KEY") or base_url or os.environ.get("OPENAI_BASE_URL")):
            raise LLMError(
                "LLM 'openai:...' needs OPENAI_API_KEY in the environment, or a local server "
                "given as 'openai:MODEL@http://host:port/v1'."
            )
        return
    if ":" not in uri:
        raise LLMError(
            f"Unknown LLM {uri!r}; use 'embedded', 'openai:MODEL[@BASE_URL]' or 'provider:model'."
        )
    if not _langchain_resolves(uri):
        raise _unknown_provider(uri)


def _langchain_resolves(uri: str) -> bool:
    """Whether ``init_chat_model`` finds a provider for ``uri``, without building anything:
    the part before ':' when it is a provider it knows, else one inferred from the name (a
    Bedrock id such as 'anthropic.claude-...-v1:0'). True when this LangChain cannot say
    (the check is on private names): then building the model tells."""
    try:
        from langchain.chat_models import base
    except ImportError:  # pragma: no cover - langchain is a dependency
        return True
    parse = getattr(base, "_parse_model", None)
    if parse is None:  # pragma: no cover - another LangChain version
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parse(uri, None)
    except ValueError:
        return False
    except Exception:  # pragma: no cover - a change in the private function
        return True
    return True


def _unknown_provider(uri: str) -> LLMError:
    return LLMError(
        f"LLM {uri!r}: {uri.split(':', 1)[0]!r} is not a provider LangChain knows; write "
        "'provider:model' with a provider such as openai, anthropic, ollama or google_genai "
        "(its langchain-<provider> package installed)")


def make_chat_model(uri: str, *, timeout: float = 120.0, seed: int = 0) -> BaseChatModel:
    uri = (uri or "embedded").strip()
    check_llm_uri(uri)
    if uri == "embedded" or uri.startswith("embedded:"):
        from synthloop.llm.embedded import ChatEmbeddedLlama

        path = uri.split(":", 1)[1] if ":" in uri else None
        return ChatEmbeddedLlama(model_path=path or None, seed=seed)
    if uri.startswith("openai:"):
        from langchain_openai import ChatOpenAI

        rest = uri.removeprefix("openai:")
        model, _, base_url = rest.partition("@")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = os.environ.get("OPENAI_API_KEY")
        return ChatOpenAI(
            model=model, base_url=base_url, api_key=key or "not-needed", timeout=timeout,
            max_retries=0, seed=seed,
        )
    if ":" in uri:
        from langchain.chat_models import init_chat_model

        try:
            return init_chat_model(uri)
        except Exception as exc:
            if "model_provider" in str(exc):  # a provider LangChain does not know
                raise _unknown_provider(uri) from None
            raise LLMError(f"init_chat_model could not build {uri!r}: {exc}".splitlines()[0]) from None
    raise AssertionError(f"check_llm_uri let {uri!r} through")  # pragma: no cover


def model_id_of(model: BaseChatModel) -> str:
    mid = getattr(model, "model_id", None)
    if isinstance(mid, str):
        return mid
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    return f"{model._llm_type}:{name}" if name else model._llm_type


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    name = type(exc).__name__
    return name in {
        "APITimeoutError", "APIConnectionError", "RateLimitError", "InternalServerError",
        "ServiceUnavailableError", "TimeoutException", "ConnectError", "ReadTimeout",
    }


@dataclass
class NodeUsage:
    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    retries: int = 0
    failures: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["tokens"] = self.tokens
        d["seconds"] = round(self.seconds, 3)
        return d


@dataclass
class LLMClient:
    """Calls a chat model with retries, an on-disk cache and per-node usage counts."""

    model: BaseChatModel
    cache_dir: Path | None = None
    max_attempts: int = 3
    backoff_seconds: float = 1.0
    usage: dict[str, NodeUsage] = field(default_factory=lambda: defaultdict(NodeUsage))

    @property
    def model_id(self) -> str:
        return model_id_of(self.model)

    def take_usage(self, node: str) -> dict[str, Any]:
        """The counts of ``node`` since the last take (and reset them)."""
        u = self.usage.pop(node, NodeUsage())
        return u.as_dict()

    # -- the call -------------------------------------------------------------------------
    def complete(
        self,
        messages: Sequence[BaseMessage],
        *,
        node: str,
        temperature: float = 0.7,
        max_tokens: int = 512,
        seed: int = 0,
        schema: type[BaseModel] | None = None,
        json_schema: dict | None = None,
        schema_name: str | None = None,
    ) -> str:
        """The reply's text. ``schema`` (a pydantic model) or a raw ``json_schema`` constrains
        it where the backend takes a JSON schema (a grammar on the embedded model)."""
        params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}
        if schema is not None or json_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name or (schema.__name__ if schema else "Reply"),
                    "schema": json_schema if json_schema is not None
                    else schema.model_json_schema(),
                },
            }
        key = self._key(messages, params)
        rec = self._metered(node, key, messages,
                            lambda: self.model.invoke(list(messages), **params))
        return rec["content"]

    def tool_calls(self, messages: Sequence[BaseMessage], tools: Sequence[Any], *, node: str,
                   temperature: float = 0.0, max_tokens: int = 256, seed: int = 0
                   ) -> list[dict[str, Any]]:
        """The tool calls (``{"name", "args"}``) the model makes through its native tool
        calling (``bind_tools``), with the same retries, cache and meters as ``complete``."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}
        key = self._key(messages, {**params, "tools": [convert_to_openai_tool(t) for t in tools]})
        rec = self._metered(node, key, messages,
                            lambda: self.model.bind_tools(list(tools)).invoke(list(messages),
                                                                               **params))
        return rec.get("tool_calls", [])

    def _metered(self, node: str, key: str, messages: Sequence[BaseMessage], call
                 ) -> dict[str, Any]:
        """The cached reply for ``key``, or ``call()``'s, with retries on transient errors;
        counted in ``node``'s meter either way."""
        meter = self.usage[node]
        cached = self._cache_get(key)
        if cached is not None:
            meter.calls += 1
            meter.cached_calls += 1
            meter.input_tokens += cached.get("input_tokens", 0)
            meter.output_tokens += cached.get("output_tokens", 0)
            _report_progress(node, meter)
            return cached
        start = time.perf_counter()
        retries_before = meter.retries  # the meter spans the node's calls; report this call's

        def _count_retry(state: RetryCallState) -> None:
            meter.retries += 1
            log.warning("LLM call failed (%s); retry %d", state.outcome.exception(), meter.retries)

        invoke = retry(
            retry=retry_if_exception(_is_transient),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=30),
            stop=stop_after_attempt(self.max_attempts),
            before_sleep=_count_retry,
            reraise=True,
        )(call)
        try:
            reply = invoke()
        except Exception as exc:
            meter.failures += 1
            meter.seconds += time.perf_counter() - start
            raise LLMError(
                f"LLM call to {self.model_id} failed after "
                f"{meter.retries - retries_before + 1} attempt(s): "
                f"{type(exc).__name__}: {exc}".splitlines()[0]
            ) from None
        meter.seconds += time.perf_counter() - start
        content = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        um = getattr(reply, "usage_metadata", None) or {}
        rec = {
            "content": content,
            "input_tokens": int(um.get("input_tokens", 0)) or _approx_tokens(messages),
            "output_tokens": int(um.get("output_tokens", 0)) or _approx_tokens(content),
        }
        calls = getattr(reply, "tool_calls", None)
        if calls:
            rec["tool_calls"] = [{"name": c["name"], "args": dict(c.get("args") or {})}
                                 for c in calls]
        meter.calls += 1
        meter.input_tokens += rec["input_tokens"]
        meter.output_tokens += rec["output_tokens"]
        self._cache_put(key, rec)
        _report_progress(node, meter)
        return rec

    def structured(self, messages: Sequence[BaseMessage], schema: type[T],
                   json_schema: dict | None = None, **kw: Any) -> T:
        """Call and parse into ``schema``; a reply that does not fit raises LLMOutputError.
        ``json_schema`` narrows what the backend is constrained to (e.g. enums of valid ids)."""
        raw = self.complete(messages, schema=schema, json_schema=json_schema, **kw)
        return parse_reply(raw, schema)

    # -- cache ----------------------------------------------------------------------------
    def _key(self, messages: Sequence[BaseMessage], params: dict[str, Any]) -> str:
        payload = {
            "model": self.model_id,
            "messages": [[m.type, m.content] for m in messages],
            "params": params,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else Path(self.cache_dir) / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> dict | None:
        p = self._cache_path(key)
        if p is None or not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def _cache_put(self, key: str, rec: dict) -> None:
        p = self._cache_path(key)
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(rec, fh)
        os.replace(tmp, p)


def _report_progress(node: str, meter: NodeUsage) -> None:
    """Tell the running graph's ``custom`` stream that an LLM call of ``node`` finished, so a
    long generate or rewrite step shows signs of life (``graphs.loop.stream_loop``). A no-op
    outside a graph run, or when nobody streams ``custom``."""
    try:
        from langgraph.config import get_config, get_stream_writer

        write = get_stream_writer()
        graph_node = (get_config().get("metadata") or {}).get("langgraph_node")
    except (ImportError, RuntimeError):  # not inside a graph node
        return
    # node: the graph node that runs (e.g. curate for the text loop's judge), meter: the
    # usage counter the call is billed to
    write({"kind": "llm_call", "node": graph_node or node, "meter": node,
           "llm_calls": meter.calls,
           "cached_calls": meter.cached_calls, "failures": meter.failures,
           "tokens": meter.tokens})


def _approx_tokens(x: Any) -> int:
    if isinstance(x, str):
        return max(1, len(x) // 4)
    return sum(max(1, len(str(m.content)) // 4) for m in x)


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def extract_json(raw: str) -> Any:
    text = _FENCE.sub("", raw.strip())
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start >= 0:
        for end in range(len(text), start, -1):
            if text[end - 1] in "}]":
                try:
                    return json.loads(text[start:end])
                except json.JSONDecodeError:
                    continue
    raise ValueError("no JSON value found")


def parse_reply(raw: str, schema: type[T]) -> T:
    fields = list(schema.model_fields)
    try:
        data = extract_json(raw)
    except ValueError:
        raise LLMOutputError("The LLM reply is not JSON", raw, fields) from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise LLMOutputError(
            f"The LLM reply does not fit {schema.__name__} ({where}: {first['msg']})", raw, fields
        ) from None


def chat(system: str, user: str) -> list[BaseMessage]:
    return [SystemMessage(content=system), HumanMessage(content=user)]
