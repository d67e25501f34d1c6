"""Prompt versions: YAML files with id, version, parent, sha256, model, temperature, text and
the focus regions. Each rewrite makes a new version; nothing is edited in place."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, Field

INITIAL_INSTRUCTION = (
    "You write new, realistic rows for a table of real records. Each row must look like it "
    "came from the same source as the examples: plausible values, consistent with each other, "
    "inside the allowed ranges and categories, and obeying every rule. Do not copy an example: "
    "vary the values the way real records vary."
)


class PromptVersion(BaseModel):
    id: str
    version: int
    parent: int | None = None
    model: str
    temperature: float
    text: str
    focus_regions: list[dict] = Field(default_factory=list)
    author: str = "initial"  # initial | llm | fallback
    iteration: int = 0
    sha256: str = ""
    # what the rewrite agent looked at: each tool call with its args, how it was called
    # (native or plan) and its result or error
    tool_calls: list[dict] = Field(default_factory=list)
    # a fallback's reason: why the LLM's rewrite was refused (not part of the hash)
    fallback_reason: str | None = None

    def with_hash(self) -> PromptVersion:
        payload = json.dumps(
            {"text": self.text, "focus": self.focus_regions, "model": self.model,
             "temperature": self.temperature}, sort_keys=True,
        )
        return self.model_copy(update={"sha256": hashlib.sha256(payload.encode()).hexdigest()})

    @property
    def filename(self) -> str:
        return f"prompts/{self.id}.v{self.version:03d}.yaml"
