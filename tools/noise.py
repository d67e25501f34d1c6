"""Noise injection: real-world messiness on accepted synthetic rows (typos, missing values).

Seeded, so the same batch gets the same noise on a replay. Typos only touch free-text columns
(a typo in a category would just be rejected as an unknown category); missing values only touch
columns the schema marks nullable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthloop.data import TableSchema


def _typo(text: str, rng: np.random.Generator) -> str:
    if len(text) < 2:
        return text
    i = int(rng.integers(0, len(text) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0:  # swap
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 1:  # drop
        return text[:i] + text[i + 1:]
    return text[:i] + text[i] + text[i:]  # double


def inject_noise(df: pd.DataFrame, schema: TableSchema, typo_rate: float, missing_rate: float,
                 seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    out = df.copy()
    rng = np.random.default_rng(seed)
    counts = {"typos": 0, "missing": 0}
    if out.empty:
        return out, counts
    for c in schema.columns:
        if c.type == "text" and typo_rate > 0:
            hit = rng.random(len(out)) < typo_rate
            vals = out[c.name].to_numpy(dtype=object)
            for i in np.flatnonzero(hit):
                if isinstance(vals[i], str):
                    vals[i] = _typo(vals[i], rng)
                    counts["typos"] += 1
            out[c.name] = vals
        if c.nullable and missing_rate > 0 and c.name != schema.text_column:
            hit = rng.random(len(out)) < missing_rate
            out.loc[hit, c.name] = None
            counts["missing"] += int(hit.sum())
    return out, counts
