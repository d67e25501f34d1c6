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


class TypoMissingNoise:
    """Typos in free-text cells and blanks in nullable cells (generator.noise.typo_rate and
    missing_rate)."""

    def __init__(self, typo_rate: float = 0.0, missing_rate: float = 0.0):
        self.typo_rate = typo_rate
        self.missing_rate = missing_rate

    def apply(self, df: pd.DataFrame, schema: TableSchema, seed: int
              ) -> tuple[pd.DataFrame, dict[str, int]]:
        return inject_noise(df, schema, self.typo_rate, self.missing_rate, seed)


def make_noise(spec, registry):
    """The noise model the spec names (``generator.noise``), built with its parameters; the
    built-in ``default`` takes typo_rate and missing_rate from the spec's own keys."""
    cls = registry.get("noise", spec.kind)
    params = dict(spec.params)
    if spec.kind == "default":
        params = {"typo_rate": spec.typo_rate, "missing_rate": spec.missing_rate, **params}
    from synthloop.tools.registry import build

    return build("noise", spec.kind, cls, params)
