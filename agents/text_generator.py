"""The text generator: for each weak class or error cluster, the LLM writes new texts of a
requested label, shown the k nearest real TRAINING texts retrieved from the Chroma corpus.

Retrieval is anchored on the cluster: each call queries the corpus with the embedding of one of
the cluster's misclassified validation texts (a different one per call, so calls see different
exemplars), and only the training texts that come back are shown to the LLM; validation texts
are used as queries, never as exemplars. Code, not the model, sets each text's label and
provenance (``_sl_*`` columns, with the Chroma ids of the exemplars in ``_sl_exemplars``) and
strips the list markers and quotes a small model wraps its texts in.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from synthloop.agents.generator import call_seed
from synthloop.agents.prompts import PromptVersion
from synthloop.agents.rewriter import RewriteTask
from synthloop.data import TableSchema
from synthloop.errors import LLMError
from synthloop.llm import LLMClient, chat
from synthloop.tools.text import Hit, TrainingCorpus

TEXT_INSTRUCTION = (
    "You write new, realistic texts like the real ones shown: the same kind of writer, topic, "
    "length and tone, each clearly belonging to the requested label. Write about a different "
    "detail or experience than the examples; never copy a sentence from them."
)

TEXT_REWRITE_SYSTEM = (
    "You improve the instruction given to a text generator. The generator writes synthetic "
    "texts (reviews, tickets, notes) that are added to a text classifier's training data. "
    "Rewrite the instruction so the generator writes texts of the labels and themes the "
    "classifier gets wrong, sounds like the real texts, and avoids what made past batches "
    "fail. Reply with JSON: "
    '{"instruction": "...", "focus": ["c1", ...]}.'
)

# how many nearest training texts each call draws its exemplars from
POOL_FACTOR = 3


class TextTarget(BaseModel):
    """What to generate: texts of ``label`` near a cluster of misclassified validation texts
    (``kind="cluster"``), or near the misclassified texts of a weak class (``kind="class"``)."""

    id: str
    kind: Literal["cluster", "class"]
    label: str
    rule: str = Field(description="One line naming the target (progress lines, provenance).")
    support: int = Field(description="Validation texts it covers.")
    errors: int = Field(description="Misclassified validation texts it covers (its share).")
    recall: float | None = Field(description="Validation recall of its label.")
    predicted: str | None = None
    keywords: list[str] = Field(default_factory=list)
    representatives: list[str] = Field(default_factory=list)
    members: list[int] = Field(
        default_factory=list, description="Validation row positions used as retrieval anchors.")

    def describe(self) -> str:
        """One line for the rewrite agent. Its keywords, not its representative texts: no
        validation text goes into a prompt, so none can be copied into generated data."""
        rec = "n/a" if self.recall is None else f"{self.recall:.2f}"
        kw = ", ".join(self.keywords) or "none"
        misread = f" read as '{self.predicted}'" if self.predicted else ""
        what = "error cluster" if self.kind == "cluster" else "weak class"
        return (f"[{self.id}] {what}: {self.errors} validation texts of '{self.label}'{misread}; "
                f"recall of '{self.label}' {rec}; keywords: {kw} — generate '{self.label}'")


def target_anchors(target: TextTarget) -> set[str]:
    """Words a usable instruction for a target names: its label or one of its keywords."""
    return {target.label.lower()} | {k.lower() for k in target.keywords}


def text_fallback_instruction(targets: Sequence[TextTarget], history: list[dict],
                              descriptions: dict[str, str] | None = None) -> str:
    """The deterministic instruction: the base one, then per target its label (with what the
    label means) and its themes, then why the last rejected batch failed."""
    descriptions = descriptions or {}
    parts = [TEXT_INSTRUCTION]
    for t in targets:
        means = f" ({descriptions[t.label]})" if descriptions.get(t.label) else ""
        theme = f" about {', '.join(t.keywords[:4])}" if t.keywords else ""
        parts.append(f"Write texts of label '{t.label}'{means}{theme}, and make the label "
                     "clear from what the writer says.")
    last = next((h for h in reversed(history) if not h.get("accepted")), None)
    if last is not None:  # plain words: a small model echoes figures and gate names
        parts.append("Stay on the topic of the examples, write whole sentences, and vary the "
                     "wording from text to text.")
    return " ".join(parts)


def text_rewrite_task(descriptions: dict[str, str] | None = None) -> RewriteTask:
    """The rewrite agent's task for text targets (the spec's label descriptions go into the
    fallback instruction)."""
    return RewriteTask(
        system=TEXT_REWRITE_SYSTEM,
        heading="Where the classifier is wrong (clusters of misclassified validation texts):",
        anchors_of=target_anchors,
        fallback=functools.partial(text_fallback_instruction,
                                   descriptions=dict(descriptions or {})),
    )


def shorten(text: str, n: int) -> str:
    """``text`` with runs of whitespace collapsed, cut at a word boundary to ``n`` characters."""
    text = " ".join(str(text).split())
    if len(text) <= n:
        return text
    cut = text[: n - 1].rsplit(" ", 1)[0]
    return (cut if len(cut) > n // 2 else text[: n - 1]) + "…"


def texts_json_schema(n: int, min_chars: int, max_chars: int) -> dict:
    """``{"texts": [n strings]}``: a grammar for models that take one."""
    item = {"type": "string", "minLength": min_chars, "maxLength": max_chars}
    return {"type": "object",
            "properties": {"texts": {"type": "array", "items": item, "minItems": n,
                                     "maxItems": n}},
            "required": ["texts"]}


def text_generation_request(schema: TableSchema, label: str, exemplars: list[Hit], n: int,
                            *, description: str | None, focus: str | None,
                            max_exemplar_chars: int) -> str:
    lines = [f"Label of every text: {schema.target} = {label}"]
    if description:
        lines.append(f"What this label means: {description}")
    if focus:
        lines.append(f"Focus: {focus}")
    lines.append("Real texts with this label (do not copy them):")
    lines += [json.dumps(shorten(h.text, max_exemplar_chars), ensure_ascii=False)
              for h in exemplars]
    lines.append(f'Write {n} new texts as JSON {{"texts": ["...", ...]}}.')
    return "\n".join(lines)


def _focus(target: TextTarget, label: str, counter: bool) -> str | None:
    """The themes to write about (a small model follows plain topics better than being told
    what a classifier gets wrong; the exemplars near the cluster carry the rest)."""
    theme = ", ".join(target.keywords[:5])
    if not theme:
        return None
    return f"texts that truly are '{label}', on themes such as {theme}" if counter else \
        f"themes such as {theme}"


_MARKER = re.compile(r"^\s*(?:(?:\d{1,2}|[a-z])[.)]\s+|\(\d{1,2}\)\s*|[-*•]\s+|#+\s+|\.{3}\s*)",
                     re.IGNORECASE)
_QUOTES = "\"'“”‘’`"


def clean_text(raw: str) -> str:
    """The text a small model meant: list markers, wrapping quotes and surrounding whitespace
    removed, runs of whitespace collapsed (HTML the real texts carry is kept)."""
    t = " ".join(str(raw).split())
    for _ in range(3):
        before = t
        t = _MARKER.sub("", t).strip()
        if len(t) >= 2 and t[0] in _QUOTES and t[-1] in _QUOTES:
            t = t[1:-1].strip()
        elif t[:1] in _QUOTES and t.count(t[0]) == 1:
            t = t[1:].strip()
        if t == before:
            break
    return t


_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)


def parse_texts(raw: str) -> tuple[list[str], bool]:
    """The texts of a ``{"texts": [...]}`` reply and whether the reply had to be salvaged (cut
    off by the token limit: the complete strings are kept, the cut one dropped)."""
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", str(raw).strip())
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("texts"), list):
        return [str(t) for t in data["texts"] if isinstance(t, (str, int, float))], False
    if isinstance(data, list):
        return [str(t) for t in data if isinstance(t, str)], False
    start = text.find("[")
    if start < 0:
        raise ValueError(f"reply holds no texts: {text[:120]!r}")
    body = text[start + 1:]
    found = []
    for m in _STRING.finditer(body):
        try:
            found.append(json.loads(f'"{m.group(1)}"', strict=False))
        except json.JSONDecodeError:
            continue
    # a string that runs to the end of the reply without its closing quote was cut off
    if not found:
        raise ValueError(f"reply holds no complete text: {text[:120]!r}")
    return found, True


def _shares(targets: Sequence[TextTarget], n: int) -> list[int]:
    weights = np.array([max(t.errors, 1) for t in targets], dtype=float)
    shares = np.floor(weights / weights.sum() * n).astype(int)
    shares[int(np.argmax(weights))] += n - int(shares.sum())
    return [int(x) for x in shares]


def _exemplars(corpus: TrainingCorpus, label: str, anchor: np.ndarray | None, k: int,
               rng: np.random.Generator, label_ids: dict[str, list[str]]) -> list[Hit]:
    """``k`` training texts of ``label``: drawn from the ``POOL_FACTOR * k`` nearest to the
    anchor, or at random from the label's texts when there is no anchor."""
    if anchor is not None:
        pool = corpus.query_vectors(anchor[None, :], k=POOL_FACTOR * k, label=label)[0]
        if pool:
            take = np.sort(rng.choice(len(pool), size=min(k, len(pool)), replace=False))
            return [pool[i] for i in take]
    ids = label_ids.setdefault(label, corpus.ids(label))
    if not ids:
        return []
    take = np.sort(rng.choice(len(ids), size=min(k, len(ids)), replace=False))
    return corpus.get([ids[i] for i in take])


def generate_texts(
    client: LLMClient,
    prompt: PromptVersion,
    targets: Sequence[TextTarget],
    corpus: TrainingCorpus,
    schema: TableSchema,
    anchors: dict[str, np.ndarray],
    *,
    n_texts: int,
    texts_per_call: int,
    few_shot: int,
    temperature: float,
    max_tokens: int,
    min_chars: int,
    max_chars: int,
    max_exemplar_chars: int,
    label_descriptions: dict[str, str],
    contrast_share: float,
    run_id: str,
    iteration: int,
    seed: int,
) -> tuple[pd.DataFrame, dict]:
    """Candidate texts for ``targets`` (shares by their error counts) and the generation stats.

    ``anchors[target.id]``: one embedding per retrieval anchor of the target (rows of
    misclassified validation texts), cycled through call by call. With ``contrast_share`` > 0
    that share of a target's texts is written for the other label(s), from exemplars of those
    labels near the same anchors: counter-examples that keep the boundary in place.
    """
    col = schema.text_column
    stats = {"calls": 0, "llm_failures": 0, "rows_returned": 0, "salvaged_replies": 0,
             "failure_reasons": []}
    if not targets or n_texts <= 0:
        return pd.DataFrame(), stats
    jobs: list[tuple[TextTarget, str, int, bool]] = []  # (target, label, texts, counter?)
    for target, want in zip(targets, _shares(targets, n_texts)):
        others = [c for c in schema.classes if c != target.label]
        n_contrast = int(round(want * contrast_share)) if others else 0
        jobs.append((target, target.label, want - n_contrast, False))
        for j, other in enumerate(others):
            part = n_contrast // len(others) + (1 if j < n_contrast % len(others) else 0)
            if part:
                jobs.append((target, other, part, True))
    rows: list[dict] = []
    label_ids: dict[str, list[str]] = {}
    for target, label, want, counter in jobs:
        vecs = anchors.get(target.id)
        job_id = f"{target.id}-{label}" if counter else target.id
        for ci in range(math.ceil(want / texts_per_call)):
            n = int(min(texts_per_call, want - ci * texts_per_call))
            s = call_seed(seed, iteration, job_id, ci)
            rng = np.random.default_rng(s)
            anchor = vecs[ci % len(vecs)] if vecs is not None and len(vecs) else None
            ex = _exemplars(corpus, label, anchor, few_shot, rng, label_ids)
            request = text_generation_request(
                schema, label, ex, n, description=label_descriptions.get(label),
                focus=_focus(target, label, counter), max_exemplar_chars=max_exemplar_chars)
            stats["calls"] += 1
            try:
                raw = client.complete(
                    chat(prompt.text, request), node="generate", temperature=temperature,
                    max_tokens=max_tokens, seed=s,
                    json_schema=texts_json_schema(n, min_chars, max_chars), schema_name="Texts",
                )
                texts, salvaged = parse_texts(raw)
            except (LLMError, ValueError) as exc:
                stats["llm_failures"] += 1
                stats["failure_reasons"].append(str(exc)[:200])
                continue
            texts = texts[:n]
            stats["salvaged_replies"] += int(salvaged)
            stats["rows_returned"] += len(texts)
            for text in texts:
                rows.append({
                    col: clean_text(text), schema.target: label,
                    "_sl_origin": "synthetic", "_sl_run_id": run_id, "_sl_iteration": iteration,
                    "_sl_prompt_id": prompt.id, "_sl_prompt_version": prompt.version,
                    "_sl_prompt_sha256": prompt.sha256, "_sl_generator": client.model_id,
                    "_sl_seed": s, "_sl_region": target.rule, "_sl_target": target.id,
                    "_sl_counterexample": counter,
                    "_sl_exemplars": ",".join(h.row_id for h in ex),
                })
    if not rows:
        return pd.DataFrame(), stats
    batch = pd.DataFrame(rows)
    batch.insert(0, "_sl_row_id", [f"{run_id}:{iteration}:{i}" for i in range(len(batch))])
    return batch, stats
