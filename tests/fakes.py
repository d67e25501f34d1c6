"""Scripted LLMs for tests.

``ScriptedChatModel`` is a LangChain chat model whose reply is computed by a Python callable
from the messages and call parameters, so one object can answer every call of a loop (the
rewrite agent and the row generator alike) and records what it was sent. The ``*_reply``
functions below are ready-made scripts; ``loop_script`` routes a call to the rewrite or the
generator script by the system prompt, the way the product tells them apart.

Where a fixed sequence of replies is enough, tests use LangChain's own
``GenericFakeChatModel`` instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

REWRITE_SYSTEM_PREFIX = "You improve the instruction"

Script = Callable[[list[BaseMessage], dict[str, Any]], str]


class ScriptedChatModel(BaseChatModel):
    """A chat model whose reply is ``script(messages, params)``.

    ``params`` holds what the caller passed per call (temperature, max_tokens, seed,
    response_format). An exception raised by the script propagates as the model's failure.
    Every call is recorded in ``calls`` (system text, user text, params, reply, usage), failed
    ones too (with reply None).
    Usage metadata is reported as ``chars // 4`` of the prompt and of the reply, so tests
    can recompute the token counts the product must show.
    """

    script: Any
    name_: str = "scripted"
    calls: list[dict] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return f"scripted-{self.name_}"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        user = "\n".join(str(m.content) for m in messages if m.type == "human")
        call = {"system": system, "user": user, "params": dict(kwargs), "reply": None,
                "usage": None}
        self.calls.append(call)
        reply = self.script(messages, kwargs)
        call["reply"], call["usage"] = reply, fake_usage(messages, reply)
        msg = AIMessage(content=reply, usage_metadata=call["usage"])
        return ChatResult(generations=[ChatGeneration(message=msg)])

    # -- what the loop sent ----------------------------------------------------------------
    def calls_of(self, kind: str) -> list[dict]:
        """Calls of the 'rewrite' agent, the 'generate' node or the text loop's 'judge'."""
        return [c for c in self.calls if text_kind(c["system"]) == kind]


def fake_usage(messages: list[BaseMessage], reply: str) -> dict[str, int]:
    n_in = sum(len(str(m.content)) for m in messages) // 4 + 1
    n_out = len(reply) // 4 + 1
    return {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}


def call_kind(system: str) -> str:
    return "rewrite" if system.startswith(REWRITE_SYSTEM_PREFIX) else "generate"


# -- reading the generator's request -------------------------------------------------------
_COLUMN = re.compile(r"^(\d+)\. (\S+): (\w+)(?: in \[(\S+), (\S+)\])?")


@dataclass
class Column:
    name: str
    type: str
    low: float | None
    high: float | None


@dataclass
class GenerationRequest:
    columns: list[Column]
    exemplars: list[list]
    n: int
    label: str | None
    region: str | None


def parse_generation_request(user: str) -> GenerationRequest:
    """The columns (with ranges), exemplar rows, row count, class and region of a request."""
    lines = user.splitlines()
    columns: list[Column] = []
    exemplars: list[list] = []
    n, label, region = 0, None, None
    in_examples = False
    for line in lines:
        m = _COLUMN.match(line)
        if m and not in_examples:
            low = float(m.group(4)) if m.group(4) not in (None, "?") else None
            high = float(m.group(5)) if m.group(5) not in (None, "?") else None
            columns.append(Column(m.group(2), m.group(3), low, high))
        elif line.startswith("Class of every row:"):
            label = line.split("=", 1)[1].strip()
        elif line.startswith("Every row must satisfy:"):
            region = line.split(":", 1)[1].strip()
        elif line.startswith("Real rows of this kind:"):
            in_examples = True
        elif line.startswith("Write "):
            in_examples = False
            n = int(re.match(r"Write (\d+) new rows", line).group(1))
        elif in_examples and line.startswith("["):
            exemplars.append(json.loads(line))
    return GenerationRequest(columns, exemplars, n, label, region)


def _rng(params: dict) -> np.random.Generator:
    return np.random.default_rng(int(params.get("seed", 0)))


def _jitter(value, col: Column, rng: np.random.Generator, scale: float):
    if value is None or col.type not in ("float", "int") or col.low is None:
        return value
    span = (col.high - col.low) or 1.0
    v = float(value) + rng.uniform(-scale, scale) * span
    v = min(max(v, col.low), col.high)
    return int(round(v)) if col.type == "int" else round(v, 4)


def _user(messages: list[BaseMessage]) -> str:
    return "\n".join(str(m.content) for m in messages if m.type == "human")


# -- generator scripts ---------------------------------------------------------------------
def jittered_rows_reply(messages: list[BaseMessage], params: dict, scale: float = 0.06) -> str:
    """Valid rows: copies of the exemplars with every number moved by up to ``scale`` of its
    column's range (seeded by the call's seed, so replies replay exactly)."""
    req = parse_generation_request(_user(messages))
    rng = _rng(params)
    rows = []
    for i in range(req.n):
        ex = req.exemplars[i % len(req.exemplars)]
        rows.append([_jitter(v, c, rng, scale) for v, c in zip(ex, req.columns)])
    return json.dumps({"rows": rows})


def garbage_reply(messages: list[BaseMessage], params: dict) -> str:
    return "Sure! Here are some great rows for you: row one, row two. Hope this helps"


def out_of_range_reply(messages: list[BaseMessage], params: dict) -> str:
    """Rows whose every number lies far above its column's maximum."""
    req = parse_generation_request(_user(messages))
    rows = [[(c.high or 0) * 100 + 1e6 if c.type in ("float", "int") else "???"
             for c in req.columns] for _ in range(req.n)]
    return json.dumps({"rows": rows})


def wrong_label_outside_region_reply(target: str, wrong_label: str) -> Script:
    """Rows as objects that carry ``target = wrong_label`` and break every numeric condition
    of the requested region (while staying inside the columns' ranges); the other numbers are
    the exemplars' values, jittered, so a row moved back into the region is no copy."""
    def script(messages: list[BaseMessage], params: dict) -> str:
        req = parse_generation_request(_user(messages))
        cols = {c.name: c for c in req.columns}
        rng = _rng(params)
        rows = []
        for i in range(req.n):
            ex = req.exemplars[i % len(req.exemplars)]
            row = {name: _jitter(v, c, rng, 0.03) for (name, c), v in zip(cols.items(), ex)}
            for col, op, value in region_conditions(req.region or ""):
                c = cols[col]
                step = 0.05 * ((c.high - c.low) or 1.0)
                row[col] = max(c.low, value - step) if op == ">" else min(c.high, value + step)
            row[target] = wrong_label
            rows.append(row)
        return json.dumps({"rows": rows})
    return script


def region_conditions(rule: str) -> list[tuple[str, str, float]]:
    """Numeric conditions ``col > v`` / ``col <= v`` of a region rule."""
    out = []
    for part in rule.split(" and "):
        m = re.match(r"^(\w+) (>|<=) (\S+)$", part.strip())
        if m:
            out.append((m.group(1), m.group(2), float(m.group(3))))
    return out


def rows_from_frame_reply(frame, scale: float = 0.02) -> Script:
    """Rows copied (jittered) from ``frame``, whatever class or region was asked for: with a
    frame of the other class, a batch of mislabeled rows that should hurt the model."""
    def script(messages: list[BaseMessage], params: dict) -> str:
        req = parse_generation_request(_user(messages))
        rng = _rng(params)
        take = rng.choice(len(frame), size=req.n, replace=False)
        rows = [[_jitter(frame.iloc[i][c.name], c, rng, scale) for c in req.columns] for i in take]
        return json.dumps({"rows": [[_plain(v) for v in r] for r in rows]})
    return script


def _plain(v):
    return v.item() if hasattr(v, "item") else v


# -- rewrite scripts -----------------------------------------------------------------------
_REGION = re.compile(r"^- \[(r\d+)\] (.*?) — .*generate '(.*)'$")


def regions_in_request(user: str) -> list[tuple[str, str, str]]:
    """(id, rule, label) of each region listed in a rewrite request."""
    out = []
    for line in user.splitlines():
        m = _REGION.match(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def rewrite_reply(messages: list[BaseMessage], params: dict) -> str:
    """A valid rewrite: names the first region's class and rule, focuses on it."""
    regions = regions_in_request(_user(messages))
    rid, rule, label = regions[0]
    revision = 1 + sum(1 for line in _user(messages).splitlines() if line.startswith("- iteration"))
    instruction = (f"Write realistic rows of class '{label}' that satisfy {rule}; keep every "
                   "value inside its column's range and vary values the way real records do "
                   f"(revision {revision}).")
    return json.dumps({"instruction": instruction, "focus": [rid]})


def by_revision(*scripts: Script) -> Script:
    """Generator script chosen by the '(revision N)' that ``rewrite_reply`` writes into the
    instruction: revision 1 uses ``scripts[0]``, revision 2 ``scripts[1]``, and so on (the
    last one repeats)."""
    def script(messages: list[BaseMessage], params: dict) -> str:
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        m = re.search(r"\(revision (\d+)\)", system)
        n = int(m.group(1)) if m else 1
        return scripts[min(n, len(scripts)) - 1](messages, params)
    return script


def loop_script(generate: Script = jittered_rows_reply, rewrite: Script = rewrite_reply) -> Script:
    """One script for a whole loop: rewrite requests to ``rewrite``, the rest to ``generate``."""
    def script(messages: list[BaseMessage], params: dict) -> str:
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        return (rewrite if call_kind(system) == "rewrite" else generate)(messages, params)
    return script


def failing_then(script: Script, failures: int, exc: Callable[[], BaseException] = TimeoutError,
                 ) -> Script:
    """Raise ``exc()`` on the first ``failures`` calls, then answer with ``script``."""
    state = {"n": 0}

    def wrapped(messages: list[BaseMessage], params: dict) -> str:
        state["n"] += 1
        if state["n"] <= failures:
            raise exc()
        return script(messages, params)
    return wrapped


def raise_on_call(script: Script, when: Callable[[int, list[BaseMessage]], bool],
                  exc: Callable[[], BaseException]) -> Script:
    """Answer with ``script`` but raise ``exc()`` on the call for which ``when(i, messages)``
    holds (``i`` counts calls from 0)."""
    state = {"n": 0}

    def wrapped(messages: list[BaseMessage], params: dict) -> str:
        i = state["n"]
        state["n"] += 1
        if when(i, messages):
            raise exc()
        return script(messages, params)
    return wrapped


def scripted(script: Script | None = None, name: str = "scripted") -> ScriptedChatModel:
    return ScriptedChatModel(script=script or loop_script(), name_=name)


# -- the text loop -------------------------------------------------------------------------
JUDGE_SYSTEM_PREFIX = "You judge"


@dataclass
class TextRequest:
    label: str | None
    exemplars: list[str]
    n: int
    focus: str | None


def parse_text_request(user: str) -> TextRequest:
    """The label, exemplar texts, text count and focus of a text generation request."""
    label, focus, n, exemplars = None, None, 0, []
    in_examples = False
    for line in user.splitlines():
        if line.startswith("Label of every text:"):
            label = line.split("=", 1)[1].strip()
        elif line.startswith("Focus:"):
            focus = line.split(":", 1)[1].strip()
        elif line.startswith("Real texts with this label"):
            in_examples = True
        elif line.startswith("Write "):
            in_examples = False
            n = int(re.match(r"Write (\d+) new texts", line).group(1))
        elif in_examples and line.startswith('"'):
            exemplars.append(json.loads(line))
    return TextRequest(label, exemplars, n, focus)


def text_kind(system: str) -> str:
    if system.startswith(REWRITE_SYSTEM_PREFIX):
        return "rewrite"
    if system.startswith(JUDGE_SYSTEM_PREFIX):
        return "judge"
    return "generate"


def pool_reply(pools: dict[str, list[str]]) -> Script:
    """Texts of the requested label taken in turn from ``pools[label]`` (each used once, then
    the pool repeats): distinct, hand-written texts."""
    used: dict[str, int] = {}

    def script(messages: list[BaseMessage], params: dict) -> str:
        req = parse_text_request(_user(messages))
        pool = pools[req.label]
        out = []
        for _ in range(req.n):
            i = used.get(req.label, 0)
            used[req.label] = i + 1
            out.append(pool[i % len(pool)])
        return json.dumps({"texts": out})
    return script


def copy_exemplars_reply(messages: list[BaseMessage], params: dict) -> str:
    """The exemplars the generator was shown, verbatim (memorisation)."""
    req = parse_text_request(_user(messages))
    return json.dumps({"texts": [req.exemplars[i % len(req.exemplars)] for i in range(req.n)]})


def template_reply(messages: list[BaseMessage], params: dict) -> str:
    """One template with a word changed: a batch whose diversity has collapsed."""
    req = parse_text_request(_user(messages))
    rng = _rng(params)
    words = ["really", "truly", "so", "very", "quite", "rather", "pretty", "awfully"]
    return json.dumps({"texts": [
        f"This coffee is {words[int(rng.integers(len(words)))]} good and I love the taste of "
        f"it every morning, will buy again." for _ in range(req.n)]})


def fixed_texts_reply(texts: list[str]) -> Script:
    """``texts`` in turn, whatever was asked."""
    state = {"i": 0}

    def script(messages: list[BaseMessage], params: dict) -> str:
        req = parse_text_request(_user(messages))
        out = []
        for _ in range(req.n):
            out.append(texts[state["i"] % len(texts)])
            state["i"] += 1
        return json.dumps({"texts": out})
    return script


_TARGET = re.compile(r"^- \[(\w+)\] .* generate '(.*)'$")


def text_rewrite_reply(messages: list[BaseMessage], params: dict) -> str:
    """A valid rewrite: names the first target's label, focuses on it."""
    targets = [m.groups() for m in map(_TARGET.match, _user(messages).splitlines()) if m]
    tid, label = targets[0]
    revision = 1 + sum(1 for line in _user(messages).splitlines() if line.startswith("- iteration"))
    instruction = (f"Write realistic customer reviews with the label '{label}' that sound like the "
                   f"real ones, each about a different product (revision {revision}).")
    return json.dumps({"instruction": instruction, "focus": [tid]})


def judge_reply(verdict: Callable[[str], str]) -> Script:
    """The judge's labels: ``verdict(text)`` for each text of the request."""
    def script(messages: list[BaseMessage], params: dict) -> str:
        texts = [json.loads(line.split(". ", 1)[1]) for line in _user(messages).splitlines()
                 if re.match(r"^\d+\. \"", line)]
        return json.dumps({"labels": [verdict(t) for t in texts]})
    return script


def text_loop_script(generate: Script, rewrite: Script = text_rewrite_reply,
                     judge: Script | None = None) -> Script:
    """One script for a text loop: rewrite, judge and generation calls to their scripts."""
    def script(messages: list[BaseMessage], params: dict) -> str:
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        kind = text_kind(system)
        if kind == "judge":
            if judge is None:
                raise AssertionError("the judge was called but the test scripted none")
            return judge(messages, params)
        return (rewrite if kind == "rewrite" else generate)(messages, params)
    return script


def seeded_pool_reply(pools: dict[str, list[str]]) -> Script:
    """Texts of the requested label picked from ``pools[label]`` by the call's seed: the same
    request always gets the same texts (for replays across processes)."""
    def script(messages: list[BaseMessage], params: dict) -> str:
        req = parse_text_request(_user(messages))
        pool = pools[req.label]
        seed = int(params.get("seed", 0))
        return json.dumps({"texts": [pool[(seed + 5 * i) % len(pool)] for i in range(req.n)]})
    return script
