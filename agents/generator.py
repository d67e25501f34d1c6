"""The row generator: the LLM writes candidate rows for a requested label and region.

The LLM sees the prompt version's instruction, the schema, the rules, the region and real
exemplars drawn from that region of the training split. What it returns is then *enforced* by
code: the label is set, values are cast to the schema's types, and each row is projected into
its region, so a weak model cannot move a row out of the region or change its class.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synthloop.agents.prompts import PromptVersion
from synthloop.data import TableSchema
from synthloop.errors import LLMError
from synthloop.llm import LLMClient, chat
from synthloop.tools.constraints import evaluate_region
from synthloop.tools.error_analysis import Region

PROVENANCE = ["_sl_origin", "_sl_run_id", "_sl_iteration", "_sl_prompt_id", "_sl_prompt_version",
              "_sl_prompt_sha256", "_sl_generator", "_sl_seed"]


def call_seed(*parts) -> int:
    h = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def _value_schema(schema: TableSchema, name: str) -> dict:
    c = schema.column(name)
    if c.type == "int":
        return {"type": "integer"}
    if c.type == "float":
        return {"type": "number"}
    if c.type == "bool":
        return {"type": "boolean"}
    if c.type == "category" and c.categories:
        return {"type": "string", "enum": list(c.categories)}
    return {"type": "string"}


def row_json_schema(schema: TableSchema, columns: list[str], n: int) -> dict:
    """Rows as arrays in column order: half the tokens of objects, types fixed per position."""
    row = {"type": "array", "prefixItems": [_value_schema(schema, c) for c in columns],
           "minItems": len(columns), "maxItems": len(columns)}
    return {"type": "object", "properties": {"rows": {"type": "array", "items": row,
                                                      "minItems": n, "maxItems": n}},
            "required": ["rows"]}


def choose_columns(schema: TableSchema, region: Region, ranked: list[str],
                   limit: int | None) -> list[str]:
    names = [c.name for c in schema.columns if c.type != "text" or schema.text_column == c.name]
    if limit is None or limit >= len(names):
        return names
    chosen = list(dict.fromkeys([c.column for c in region.conditions]))
    for col in ranked:
        if len(chosen) >= limit:
            break
        if col not in chosen and col in names:
            chosen.append(col)
    return [n for n in names if n in chosen]


# with generator.exemplars: hard, every row's chance is its hardness plus this floor, so a
# region whose rows the model all gets right still yields exemplars
HARD_FLOOR = 0.01


def pick_exemplars(train: pd.DataFrame, schema: TableSchema, region: Region, k: int,
                   rng: np.random.Generator, hardness: np.ndarray | None = None) -> pd.DataFrame:
    """``k`` real rows of the region's class inside it (of the whole class when it holds none),
    drawn uniformly, or with ``hardness`` (one value per row of ``train``: how wrong the model
    is on it out of fold) in proportion to hardness + ``HARD_FLOOR``."""
    same = (train[schema.target].astype(str) == region.label).to_numpy()
    pos = np.flatnonzero(same)
    if region.conditions:
        inside = pos[evaluate_region(region.rule, train.iloc[pos])]
        if len(inside):
            pos = inside
    p = None
    if hardness is not None and len(pos):
        if len(hardness) != len(train):
            raise ValueError(f"hardness holds {len(hardness)} values for {len(train)} training "
                             "rows; give one per row of train")
        h = np.nan_to_num(np.asarray(hardness, float)[pos], nan=0.0)
        w = np.clip(h, 0, 1) + HARD_FLOOR
        p = w / w.sum()
    take = rng.choice(len(pos), size=min(k, len(pos)), replace=False, p=p)
    return train.iloc[pos[np.sort(take)]]


def _fmt_row(row: pd.Series, columns: list[str], schema: TableSchema) -> str:
    out = []
    for c in columns:
        v = row[c]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif schema.column(c).type == "int":
            out.append(int(v))
        elif isinstance(v, (np.floating, float, np.integer)):
            out.append(float(round(float(v), 4)))
        else:
            out.append(v)
    return json.dumps(out)


def generation_request(schema: TableSchema, rules: list[str], region: Region,
                       exemplars: pd.DataFrame, columns: list[str], n: int) -> str:
    lines = ["Columns, in this order:"]
    lines += [f"{i + 1}. {schema.column(c).describe()}" for i, c in enumerate(columns)]
    if rules:
        lines += ["Rules every row obeys:"] + [f"- {r}" for r in rules]
    lines += [f"Class of every row: {schema.target} = {region.label}"]
    if region.conditions:
        lines += [f"Every row must satisfy: {region.rule}"]
    lines += ["Real rows of this kind:"]
    lines += [_fmt_row(r, columns, schema) for _, r in exemplars.iterrows()]
    lines += [f'Write {n} new rows as JSON {{"rows": [[...], ...]}}, values in the column order '
              "above."]
    return "\n".join(lines)


def project_to_region(df: pd.DataFrame, region: Region, fallback: pd.DataFrame,
                      schema: TableSchema) -> pd.DataFrame:
    """Move each row into the region: a number on the wrong side of a bound takes the
    exemplar's value when that lies inside the bound (exemplars come from inside the region),
    else the bound itself; equalities are set. Clipping to the bound alone would pile rows up
    on the region's edge, a spike no real column has."""
    out = df.copy()
    for cond in region.conditions:
        col = cond.column
        ctype = schema.column(col).type
        if cond.op == "==":
            out[col] = cond.value
        elif cond.op == "!=":
            bad = out[col].astype(str) == str(cond.value)
            out.loc[bad, col] = fallback.loc[bad, col].to_numpy()
        elif ctype in ("float", "int"):
            vals = pd.to_numeric(out[col], errors="coerce")
            spare = pd.to_numeric(fallback[col], errors="coerce").set_axis(vals.index)
            v = float(cond.value)
            if cond.op == ">":
                low = math.floor(v) + 1 if ctype == "int" else v + max(abs(v) * 1e-6, 1e-6)
                edge = spare.where(spare > v, low)
                vals = vals.where(vals.isna() | (vals > v), edge)
            else:
                high = math.floor(v) if ctype == "int" else v
                edge = spare.where(spare <= v, high)
                vals = vals.where(vals.isna() | (vals <= v), edge)
            out[col] = vals
    return out


def cast_to_schema(df: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    out = df.copy()
    for c in schema.columns:
        if c.name not in out.columns:
            continue
        if c.type in ("float", "int"):
            vals = pd.to_numeric(out[c.name], errors="coerce").astype(float)
            out[c.name] = vals.round() if c.type == "int" else vals
        elif c.type == "bool":
            out[c.name] = out[c.name].map(lambda v: None if v is None else bool(v))
        else:
            out[c.name] = out[c.name].map(lambda v: None if v is None else str(v))
    return out


def plausible_bounds(train: pd.DataFrame, schema: TableSchema, columns: list[str],
                     quantile: float) -> dict[tuple[str, str], tuple[float, float]]:
    """(class, column) -> the [q, 1 - q] quantiles of that class's real training values.

    A small model often writes a number in the wrong position (a hormone level where the age
    goes): it can still lie inside the column's range while no real row of the class comes near
    it. Classes with fewer than 20 real values of a column get no bounds there: their
    quantiles would be their extremes, which the column's range already covers.
    """
    bounds: dict[tuple[str, str], tuple[float, float]] = {}
    if quantile <= 0:
        return bounds
    labels = train[schema.target].astype(str)
    for name in columns:
        if schema.column(name).type not in ("float", "int"):
            continue
        vals = pd.to_numeric(train[name], errors="coerce")
        for label, v in vals.groupby(labels):
            v = v.dropna()
            if len(v) >= 20:
                lo, hi = np.quantile(v.to_numpy(float), [quantile, 1 - quantile])
                bounds[(str(label), name)] = (float(lo), float(hi))
    return bounds


def repair_ranges(df: pd.DataFrame, fallback: pd.DataFrame, schema: TableSchema,
                  columns: list[str], bounds: dict[tuple[str, str], tuple[float, float]]
                  | None = None, label: str | None = None) -> tuple[pd.DataFrame, int]:
    """Replace each written number outside its column's range, or outside the plausible
    ``bounds`` of the rows' class ``label``, by the exemplar's value (a small model often
    shifts a value into the wrong position); returns the count replaced."""
    out = df.copy()
    repaired = 0
    bounds = bounds or {}
    for name in columns:
        c = schema.column(name)
        if c.type not in ("float", "int"):
            continue
        plo, phi = bounds.get((str(label), name), (None, None))
        lo = max((b for b in (c.min, plo) if b is not None), default=None)
        hi = min((b for b in (c.max, phi) if b is not None), default=None)
        if lo is None and hi is None:
            continue
        v = pd.to_numeric(out[name], errors="coerce")
        bad = pd.Series(False, index=out.index)
        if lo is not None:
            bad |= (v < lo).fillna(False)
        if hi is not None:
            bad |= (v > hi).fillna(False)
        if bad.any():
            out.loc[bad, name] = fallback.loc[bad, name].to_numpy()
            repaired += int(bad.sum())
    return out, repaired


def plan_jobs(regions: list[Region], n_rows: int, contrast_share: float,
              classes: list[str]) -> list[tuple[Region, int, bool]]:
    """(region, rows, counter-examples?) for each piece of a batch: ``n_rows`` shared over
    ``regions`` by their error counts, and ``contrast_share`` of each region's rows given to
    the other class(es) inside the same region (binary: the other class; multiclass: the
    classes in turn)."""
    if not regions or n_rows <= 0:
        return []
    weights = np.array([max(r.errors, 1) for r in regions], dtype=float)
    shares = np.floor(weights / weights.sum() * n_rows).astype(int)
    shares[np.argmax(weights)] += n_rows - shares.sum()
    jobs: list[tuple[Region, int, bool]] = []
    for region, want in zip(regions, shares):
        n_contrast = int(round(want * contrast_share))
        jobs.append((region, int(want) - n_contrast, False))
        others = [c for c in classes if c != region.label]
        if n_contrast and others:
            for j, other in enumerate(others):
                part = n_contrast // len(others) + (1 if j < n_contrast % len(others) else 0)
                if part:
                    jobs.append((region.model_copy(update={"label": other,
                                                           "id": f"{region.id}-{other}"}), part,
                                 True))
    return [j for j in jobs if j[1] > 0]


def generate_batch(
    client: LLMClient,
    prompt: PromptVersion,
    regions: list[Region],
    train: pd.DataFrame,
    schema: TableSchema,
    rules: list[str],
    *,
    n_rows: int,
    rows_per_call: int,
    few_shot: int,
    temperature: float,
    max_tokens: int,
    columns_per_row: int | None,
    ranked_columns: list[str],
    run_id: str,
    contrast_share: float = 0.0,
    repair: bool = False,
    plausible_quantile: float = 0.0,
    iteration: int,
    seed: int,
    hardness: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Candidate rows for ``regions`` (shares by error count) and the generation stats.

    With ``contrast_share`` > 0, that share of each region's rows is written for the other
    class(es) inside the same region: the counter-examples that keep the boundary in place, so
    the model learns where the region's class starts rather than a shifted prior.
    """
    stats = {"calls": 0, "llm_failures": 0, "rows_returned": 0, "cells_repaired": 0,
             "failure_reasons": []}
    if not regions or n_rows <= 0:
        return pd.DataFrame(), stats
    jobs = plan_jobs(regions, n_rows, contrast_share, schema.classes)
    bounds = (plausible_bounds(train, schema, schema.feature_names(), plausible_quantile)
              if repair else {})
    frames = []
    for region, want, counter in jobs:
        columns = choose_columns(schema, region, ranked_columns, columns_per_row)
        for ci in range(math.ceil(want / rows_per_call)):
            k = int(min(rows_per_call, want - ci * rows_per_call))
            s = call_seed(seed, iteration, region.id, ci)
            rng = np.random.default_rng(s)
            ex = pick_exemplars(train, schema, region, few_shot, rng, hardness)
            request = generation_request(schema, rules, region, ex, columns, k)
            stats["calls"] += 1
            try:
                raw = client.complete(
                    chat(prompt.text, request), node="generate", temperature=temperature,
                    max_tokens=max_tokens, seed=s,
                    json_schema=row_json_schema(schema, columns, k), schema_name="Rows",
                )
                rows = _parse_rows(raw, columns)
            except (LLMError, ValueError) as exc:
                stats["llm_failures"] += 1
                stats["failure_reasons"].append(str(exc)[:200])
                continue
            rows = [r for r in rows if isinstance(r, dict)][:k]
            if not rows:
                stats["llm_failures"] += 1
                stats["failure_reasons"].append("reply held no rows")
                continue
            stats["rows_returned"] += len(rows)
            gen = pd.DataFrame(rows)
            # columns the LLM does not write come from a different exemplar than the one it
            # most likely imitates, so a reply that echoes an exemplar is not a copy of it
            shift = 1 if len(columns) < len(schema.columns) and len(ex) > 1 else 0
            base = ex.iloc[[(i + shift) % len(ex) for i in range(len(gen))]].reset_index(drop=True)
            full = base.copy()
            for c in columns:
                full[c] = gen[c] if c in gen.columns else None
            full = cast_to_schema(full, schema)
            if repair:
                full, fixed = repair_ranges(full, base, schema, columns, bounds, region.label)
                stats["cells_repaired"] += fixed
            full = project_to_region(full, region, base, schema)
            full[schema.target] = region.label
            full["_sl_origin"] = "synthetic"
            full["_sl_run_id"] = run_id
            full["_sl_iteration"] = iteration
            full["_sl_prompt_id"] = prompt.id
            full["_sl_prompt_version"] = prompt.version
            full["_sl_prompt_sha256"] = prompt.sha256
            full["_sl_generator"] = client.model_id
            full["_sl_seed"] = s
            full["_sl_region"] = region.rule
            full["_sl_counterexample"] = counter
            full["_sl_exemplars"] = ",".join(f"train:{i}" for i in ex.index)
            frames.append(full)
    if not frames:
        return pd.DataFrame(), stats
    batch = pd.concat(frames, ignore_index=True)
    batch.insert(0, "_sl_row_id", [f"{run_id}:{iteration}:{i}" for i in range(len(batch))])
    return batch, stats


def _parse_rows(raw: str, columns: list[str]) -> list[dict]:
    """Rows from a reply: arrays in column order (or objects by column name)."""
    from synthloop.llm.client import extract_json

    try:
        data = extract_json(raw)
    except ValueError:
        raise ValueError(f"reply is not JSON: {raw[:120]!r}") from None
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError(f"reply holds no rows: {raw[:120]!r}")
    out = []
    for r in rows:
        if isinstance(r, list) and len(r) == len(columns):
            out.append(dict(zip(columns, r)))
        elif isinstance(r, dict):
            out.append({c: r.get(c) for c in columns})
    return out


@dataclass
class GenerationRequest:
    """What a generator gets for one iteration: the LLM client, the prompt version, the regions
    to write rows for, the training split (never validation or holdout rows), the schema, the
    spec's rules, how many rows, the spec's ``generator`` section, the columns ranked by how
    much they tell the classes apart, and the ids that go into provenance."""

    client: LLMClient | None
    prompt: PromptVersion
    regions: list[Region]
    train: pd.DataFrame
    schema: TableSchema
    rules: list[str]
    n_rows: int
    settings: Any  # synthloop.spec.GeneratorSpec
    ranked_columns: list[str]
    run_id: str
    iteration: int
    seed: int
    # with generator.exemplars: hard, per row of ``train``, how wrong the loop's model is on it
    # out of fold (1 - p(its class)); None draws exemplars uniformly
    hardness: np.ndarray | None = None


class LLMRowGenerator:
    """The LLM writes rows for each region from real exemplars of it; code enforces the label,
    the types and the region."""

    def generate(self, request: GenerationRequest) -> tuple[pd.DataFrame, dict]:
        g = request.settings
        return generate_batch(
            request.client, request.prompt, request.regions, request.train, request.schema,
            request.rules, n_rows=request.n_rows, rows_per_call=g.rows_per_call,
            few_shot=g.few_shot, temperature=g.temperature, max_tokens=g.max_tokens_per_call,
            columns_per_row=g.columns_per_row, ranked_columns=request.ranked_columns,
            run_id=request.run_id, iteration=request.iteration, seed=request.seed,
            contrast_share=g.contrast_share, repair=g.repair_out_of_range,
            plausible_quantile=g.plausible_quantile, hardness=request.hardness,
        )
