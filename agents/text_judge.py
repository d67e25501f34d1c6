"""The LLM judge of label consistency: which label does each generated text have?

Optional (``text.llm_judge``): the current classifier is the main judge. The LLM is asked for
one label per text, constrained to the known labels where the backend takes a JSON schema. A
reply that cannot be used leaves those texts unjudged (``None``), counted as failures; an
unjudged text is never removed on the judge's word.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from synthloop.agents.generator import call_seed
from synthloop.agents.text_generator import shorten
from synthloop.errors import LLMError
from synthloop.llm import LLMClient, chat
from synthloop.llm.client import extract_json

JUDGE_SYSTEM = (
    "You judge which label fits each text, from what the text says. Answer with exactly one "
    'of the allowed labels per text, in order, as JSON: {"labels": ["...", ...]}.'
)


def judge_request(texts: Sequence[str], classes: Sequence[str],
                  descriptions: dict[str, str], max_chars: int) -> str:
    lines = ["Allowed labels:"]
    lines += [f"- {c}" + (f": {descriptions[c]}" if descriptions.get(c) else "") for c in classes]
    lines.append("Texts:")
    lines += [f"{i + 1}. {json.dumps(shorten(t, max_chars), ensure_ascii=False)}"
              for i, t in enumerate(texts)]
    lines.append(f"Give the label of each of the {len(texts)} texts.")
    return "\n".join(lines)


def labels_json_schema(classes: Sequence[str], n: int) -> dict:
    return {"type": "object",
            "properties": {"labels": {"type": "array",
                                      "items": {"type": "string", "enum": list(classes)},
                                      "minItems": n, "maxItems": n}},
            "required": ["labels"]}


def judge_labels(client: LLMClient, texts: Sequence[str], classes: Sequence[str], *,
                 descriptions: dict[str, str] | None = None, per_call: int = 4,
                 max_chars: int = 400, seed: int = 0,
                 iteration: int = 0) -> tuple[list[str | None], dict]:
    """One label (or None: not judged) per text, and the stats of the calls."""
    classes = [str(c) for c in classes]
    out: list[str | None] = [None] * len(texts)
    stats = {"judge_calls": 0, "judge_failures": 0}
    for start in range(0, len(texts), per_call):
        chunk = list(texts[start:start + per_call])
        stats["judge_calls"] += 1
        try:
            raw = client.complete(
                chat(JUDGE_SYSTEM, judge_request(chunk, classes, descriptions or {}, max_chars)),
                node="judge", temperature=0.0, max_tokens=16 + 12 * len(chunk),
                seed=call_seed(seed, iteration, "judge", start),
                json_schema=labels_json_schema(classes, len(chunk)), schema_name="Labels",
            )
            data = extract_json(raw)
            labels = data.get("labels") if isinstance(data, dict) else None
            if not isinstance(labels, list) or len(labels) != len(chunk):
                raise ValueError(f"expected {len(chunk)} labels, got {raw[:120]!r}")
        except (LLMError, ValueError):
            stats["judge_failures"] += 1
            continue
        for i, lab in enumerate(labels):
            out[start + i] = str(lab) if str(lab) in classes else None
    return out, stats
