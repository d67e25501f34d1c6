"""LLM access: every backend is a LangChain chat model; LLMClient adds retries, cache, meters."""

from synthloop.llm.client import LLMClient, chat, make_chat_model, parse_reply

__all__ = ["LLMClient", "chat", "make_chat_model", "parse_reply"]
