"""A Gaussian copula as a row generator: the loop's regions without an LLM.

``copula`` (``generator.kind: copula``) fits a Gaussian copula (the ``copulas`` package,
categories as integer codes) on the real training rows of each region's class inside the
region, or of the whole class when the region holds fewer than ``min_rows`` of them, samples
the rows asked, and moves each into its region as the LLM generator's rows are. It is the
bench's ``gaussian_copula`` baseline aimed at the error regions, so a bench can tell what the
loop's feedback and acceptance add from what an LLM's rows add.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from synthloop.errors import SpecError
from synthloop.tools.constraints import evaluate_region


def impute(df: pd.DataFrame, skip: str | None = None) -> pd.DataFrame:
    """Blanks filled: a number by its column's median, anything else by its most common value
    ("missing" when the column holds none); ``skip`` (the label) is left alone."""
    out = df.copy()
    for c in out.columns:
        if c == skip:
            continue
        if pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].fillna(out[c].median())
        else:
            out[c] = out[c].fillna(out[c].mode().iloc[0] if out[c].notna().any() else "missing")
    return out


def sample_copula(rows: pd.DataFrame, k: int, seed: int, clip: bool = False) -> pd.DataFrame:
    """``k`` rows from a Gaussian copula fitted on ``rows`` (no blanks; features only).
    Non-numeric columns are fitted as integer codes and decoded to the nearest category;
    constant columns keep their one value. ``clip`` holds each numeric column inside the
    range ``rows`` span (the fitted marginals reach past it) and rounds the columns that hold
    only whole numbers."""
    try:
        from copulas.multivariate import GaussianMultivariate
    except ImportError:
        raise SpecError("The copula generator needs the 'copulas' package: pip install "
                        "'synthloop[bench]'.") from None
    enc = rows.reset_index(drop=True).copy()
    codes: dict[str, list] = {}
    for col in enc.columns:
        if not pd.api.types.is_numeric_dtype(enc[col]) or pd.api.types.is_bool_dtype(enc[col]):
            cats = sorted(enc[col].unique(), key=str)
            codes[col] = cats
            enc[col] = enc[col].map({v: i for i, v in enumerate(cats)}).astype(float)
        else:
            enc[col] = enc[col].astype(float)
    const = [col for col in enc.columns if enc[col].nunique() <= 1]
    varying = enc.drop(columns=const)
    if varying.shape[1]:
        model = GaussianMultivariate(random_state=seed)
        with warnings.catch_warnings():  # copulas tries every marginal family; misfits warn
            warnings.simplefilter("ignore")
            model.fit(varying)
            sample = model.sample(k).reset_index(drop=True)
    else:
        sample = pd.DataFrame(index=range(k))
    for col in const:
        sample[col] = enc[col].iloc[0]
    for col, cats in codes.items():
        idx = np.clip(np.round(sample[col].to_numpy(float)), 0, len(cats) - 1).astype(int)
        sample[col] = [cats[i] for i in idx]
    if clip:
        for col in enc.columns:
            if col in codes or col in const:
                continue
            real = enc[col].to_numpy(float)
            vals = np.clip(sample[col].to_numpy(float), real.min(), real.max())
            sample[col] = np.round(vals) if np.all(real == np.round(real)) else vals
    return sample[list(rows.columns)]


class CopulaRowGenerator:
    """Rows for each region from a Gaussian copula of the real rows of its class there.

    Params: ``min_rows`` (20), the fewest real rows of the class inside a region to fit the
    copula there; with fewer it is fitted on the whole class and its rows moved into the
    region. The spec's ``contrast_share`` applies as for the LLM generator. It does not read
    the prompt (``uses_prompt = False``), so the loop asks no LLM to rewrite it. Each row's
    ``_sl_exemplars`` names the real rows whose values filled the cells the region forced."""

    uses_prompt = False

    def __init__(self, min_rows: int = 20):
        if int(min_rows) < 2:
            raise SpecError(f"generator.params.min_rows must be at least 2, not {min_rows}.")
        self.min_rows = int(min_rows)

    def generate(self, request) -> tuple[pd.DataFrame, dict]:
        from synthloop.agents.generator import (
            call_seed,
            cast_to_schema,
            pick_exemplars,
            plan_jobs,
            project_to_region,
        )

        schema, train = request.schema, request.train
        stats = {"calls": 0, "rows_returned": 0, "failure_reasons": [], "fitted_on_class": 0}
        features = schema.feature_names()
        frames = []
        for region, want, counter in plan_jobs(request.regions, request.n_rows,
                                                request.settings.contrast_share, schema.classes):
            s = call_seed(request.seed, request.iteration, region.id, "copula")
            same = train[train[schema.target].astype(str) == region.label]
            inside = same[evaluate_region(region.rule, same)] if region.conditions else same
            fit_on = inside if len(inside) >= self.min_rows else same
            if len(fit_on) < 2:
                stats["failure_reasons"].append(f"class {region.label!r} has fewer than 2 real "
                                                "training rows to fit a copula on")
                continue
            stats["fitted_on_class"] += int(fit_on is not inside)
            stats["calls"] += 1
            rows = sample_copula(impute(fit_on[features]), want, s, clip=True)
            stats["rows_returned"] += len(rows)
            rng = np.random.default_rng(s)
            ex = pick_exemplars(train, schema, region, min(want, len(inside) or len(same)), rng,
                                request.hardness)
            ex = ex.iloc[np.arange(len(rows)) % len(ex)]  # one exemplar per row, in turn
            base = ex.reset_index(drop=True)
            full = cast_to_schema(rows, schema)
            full = project_to_region(full, region, base, schema)
            full[schema.target] = region.label
            full["_sl_seed"] = s
            full["_sl_region"] = region.rule
            full["_sl_counterexample"] = counter
            full["_sl_exemplars"] = [f"train:{i}" for i in ex.index]
            frames.append(full)
        if not frames:
            return pd.DataFrame(), stats
        return pd.concat(frames, ignore_index=True), stats

