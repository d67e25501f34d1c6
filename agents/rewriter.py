"""The prompt rewrite agent.

A typed signature, as in DSPy's instruction proposal: the current instruction, the error
regions with their figures and what past iterations did go in; an improved instruction and the
regions to focus on come out. A reply that fails validation is replaced by a deterministic
rewrite, and the fallback is recorded with its reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from synthloop.agents.prompts import INITIAL_INSTRUCTION, PromptVersion
from synthloop.agents.tools import tool_results_text
from synthloop.errors import LLMError
from synthloop.llm import LLMClient, chat
from synthloop.tools.error_analysis import Region

SYSTEM = (
    "You improve the instruction given to a data generator. The generator writes synthetic "
    "table rows that are added to a model's training data. Rewrite the instruction so the "
    "generator targets the regions where the model is wrong, keeps to the schema and rules, and "
    "avoids what made past batches fail. Reply with JSON: "
    '{"instruction": "...", "focus": ["r1", ...]}.'
)


MAX_CHARS = 600  # the grammar's cap on an instruction: a small model often runs into it


class RewriteReply(BaseModel):
    instruction: str = Field(description="The new instruction for the generator.")
    focus: list[str] = Field(description="Ids of the regions to generate rows for.")


def reply_json_schema(regions: Sequence[Any]) -> dict:
    """RewriteReply's JSON schema narrowed to these regions' ids (a grammar for models that
    take one), so a small model cannot ramble through made-up ids."""
    ids = [r.id for r in regions]
    return {
        "type": "object",
        "properties": {
            "instruction": {"type": "string", "minLength": 40, "maxLength": MAX_CHARS},
            "focus": {"type": "array", "items": {"type": "string", "enum": ids},
                      "minItems": 1, "maxItems": len(ids)},
        },
        "required": ["instruction", "focus"],
    }


def rewrite_request(current: PromptVersion, regions: Sequence[Any], history: list[dict],
                    heading: str = "Regions where the model is wrong:",
                    tool_calls: list[dict] | None = None) -> str:
    lines = ["Current instruction:", current.text, "", heading]
    lines += [f"- {r.describe()}" for r in regions]
    if history:
        lines += ["", "Past iterations:"]
        for h in history[-4:]:
            verdict = "kept" if h.get("accepted") else f"rejected ({h.get('reason', '')})"
            lines.append(
                f"- iteration {h['iteration']}, prompt v{h.get('prompt_version')}: "
                f"{h.get('rows_accepted', 0)} rows {verdict}, validation "
                f"{h.get('validation_metric')}"
            )
    lines += tool_results_text(tool_calls or [])
    lines += ["", "Write the improved instruction and list the region ids to focus on."]
    return "\n".join(lines)


def region_anchors(region: Region) -> set[str]:
    """Words an instruction for a region should name: its class and its columns."""
    return {region.label.lower()} | {c.column.lower() for c in region.conditions}


# a sentence ends at . ! or ? (and any closing quotes or brackets) before the end of the text
# or before a space and a word that starts one (a capital, a digit or a quote); not after an
# abbreviation or a list number ("e.g. radius", "Dr. Smith", "2. vary")
_SENTENCE_END = re.compile(
    r"""(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bDr)(?<!\bapprox)(?<!\betc)(?<![\s(]\d)"""
    r"""[.!?]["')\]]*(?=\s+["'(\[]?[A-Z0-9]|\s*$)""")
_ENDS_WELL = re.compile(r"""[.!?]["')\]]*$""")
# what no finished sentence ends on (case-sensitive: "grade A" or "log In" may end one)
_DANGLING = re.compile(r"(?:[,;:(\-]|\b(?:and|or|the|a|an|of|to|with|where|that|than))$")
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# "x > a and x <= b" for one column; the number must end there ("< 1,000,000" or "< 35k" is
# not "< 1" or "< 35"), and a column is not the tail of a dotted name ("worst.radius")
_RANGE = re.compile(
    rf"(?P<col>`[^`]+`|(?<![\w.])[A-Za-z_][\w.]*)\s*(?P<op1><=|>=|<|>)\s*(?P<v1>{_NUMBER})"
    rf"\s+and\s+(?P=col)\s*(?P<op2><=|>=|<|>)\s*(?P<v2>{_NUMBER})(?![\w%]|[.,]\d)")


def cut_off(text: str) -> bool:
    """Whether an instruction stops mid-sentence: it ends in a comma, an open bracket or a word
    no sentence ends on, or it fills the grammar's cap (``MAX_CHARS``, counted as the model
    wrote it) without ending a sentence. A longer reply (a model without the grammar) that
    ends without a full stop is not taken for cut off."""
    stripped = text.rstrip()
    if _ENDS_WELL.search(stripped):
        return False
    return bool(_DANGLING.search(stripped)) or MAX_CHARS - 1 <= len(text) <= MAX_CHARS


def complete_sentences(text: str) -> str:
    """``text`` without a trailing sentence that was cut off (see ``cut_off``); '' when no
    sentence of it is complete. An instruction that ends well is returned stripped."""
    if not cut_off(text):
        return text.strip()
    text = text.strip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[:ends[-1]].strip() if ends else ""


def empty_ranges(text: str) -> list[str]:
    """The ranges an instruction names that no value can fall in, as written (``x > 5 and
    x <= 5``): a small model copying rule bounds often swaps or repeats one. "x < 10 and
    x > 20" is one too: a generator reads "and" as both, so a reply meaning both tails is
    refused as well, on purpose."""
    found = []
    for m in _RANGE.finditer(text):
        bounds = [(m["op1"], float(m["v1"])), (m["op2"], float(m["v2"]))]
        lows = [(v, op) for op, v in bounds if op in (">", ">=")]
        highs = [(v, op) for op, v in bounds if op in ("<", "<=")]
        if len(lows) != 1 or len(highs) != 1:
            continue
        (lo, lo_op), (hi, hi_op) = lows[0], highs[0]
        if lo > hi or (lo == hi and (lo_op == ">" or hi_op == "<")):
            found.append(m.group(0))
    return found


def validate_reply(reply: RewriteReply, current: PromptVersion, regions: Sequence[Any],
                   anchors_of: Callable[[Any], set[str]] = region_anchors) -> str | None:
    """None if the reply is usable, else the reason it is not. A last sentence that was cut
    off is not judged (``rewrite_prompt`` drops it from the instruction it keeps)."""
    text = complete_sentences(reply.instruction)
    if not text:
        return "instruction cut off mid-sentence, with no complete sentence before the cut"
    reason = _judge(text, reply.focus, current, regions, anchors_of)
    if reason and text != reply.instruction.strip():
        reason += " (judged without its cut-off last sentence)"
    return reason


def _judge(text: str, focus_ids: list[str], current: PromptVersion, regions: Sequence[Any],
           anchors_of: Callable[[Any], set[str]]) -> str | None:
    words = text.split()
    if len(words) < 8:
        return f"instruction too short ({len(words)} words)"
    if len(text) > 2000:
        return f"instruction too long ({len(text)} characters)"
    if text == current.text.strip():
        return "instruction unchanged"
    ids = {r.id for r in regions}
    if not any(f in ids for f in focus_ids):
        return f"focus {focus_ids} names none of the regions {sorted(ids)}"
    focus = [r for r in regions if r.id in set(focus_ids)]
    anchors = set().union(*(anchors_of(r) for r in focus))
    if not any(a in text.lower() for a in anchors):
        return ("instruction names neither the class nor a column of its focus regions "
                f"({', '.join(sorted(anchors))})")
    empty = empty_ranges(text)
    if empty:
        return f"instruction asks for a range no value is in: {'; '.join(empty)}"
    return None


def fallback_instruction(regions: list[Region], history: list[dict]) -> str:
    parts = [INITIAL_INSTRUCTION]
    for r in regions:
        rec = "" if r.recall is None else f" (the model's recall there is {r.recall:.2f})"
        parts.append(f"Write rows of class '{r.label}' where {r.rule}{rec}.")
    last = next((h for h in reversed(history) if not h.get("accepted")), None)
    if last is not None:
        parts.append(f"The last rejected batch failed because: {last.get('reason', 'unknown')}; "
                     "stay closer to the examples' value ranges.")
    return " ".join(parts)


@dataclass(frozen=True)
class RewriteTask:
    """What the rewrite agent works on: the system prompt, how the targets are introduced, which
    words a usable instruction must name for a target, and the deterministic fallback. The
    tabular loop's targets are regions (``TABULAR``); the text loop passes its own task."""

    system: str = SYSTEM
    heading: str = "Regions where the model is wrong:"
    anchors_of: Callable[[Any], set[str]] = region_anchors
    fallback: Callable[[Sequence[Any], list[dict]], str] = fallback_instruction


TABULAR = RewriteTask()


def rewrite_prompt(
    client: LLMClient | None,
    current: PromptVersion,
    regions: Sequence[Any],
    history: list[dict],
    *,
    iteration: int,
    temperature: float,
    seed: int,
    max_tokens: int = 320,
    task: RewriteTask = TABULAR,
    tool_calls: list[dict] | None = None,
) -> tuple[PromptVersion, dict | None]:
    """The next prompt version and, when the fallback was used, an event saying why.

    ``regions`` are the targets (``Region`` for tables; anything with ``id``, ``label``,
    ``describe()`` and ``model_dump_json()`` with a matching ``task``). ``tool_calls`` (what
    the agent's tools returned) go into the request and the version."""
    event = None
    reply = None
    reason: str | None = None
    if client is not None:
        try:
            reply = client.structured(
                chat(task.system, rewrite_request(current, regions, history, task.heading,
                                                  tool_calls)),
                RewriteReply, json_schema=reply_json_schema(regions),
                node="rewrite", temperature=temperature, max_tokens=max_tokens, seed=seed,
            )
            reason = validate_reply(reply, current, regions, task.anchors_of)
        except LLMError as exc:
            reason = str(exc)
        if reason is not None:
            event = {"kind": "fallback", "node": "rewrite", "iteration": iteration,
                     "reason": reason[:500]}
            reply = None
    if reply is None:
        text = task.fallback(regions, history)
        focus = [r for r in regions]
        author = "fallback" if client is not None else "template"
    else:
        text = complete_sentences(reply.instruction)  # without a sentence cut off
        wanted = set(reply.focus)
        focus = [r for r in regions if r.id in wanted]
        author = "llm"
    version = PromptVersion(
        id=current.id, version=current.version + 1, parent=current.version,
        model=client.model_id if client is not None else "none", temperature=temperature,
        text=text, focus_regions=[json.loads(r.model_dump_json()) for r in focus],
        author=author, iteration=iteration, tool_calls=list(tool_calls or []),
        fallback_reason=reason if event else None,  # whole: the event's is cut at 500
    ).with_hash()
    return version, event
