"""How the loop's nodes reach the registry: the spec names a component of each pluggable kind
(model, metric, generator, validators, error analyser, noise, agent tools, data loader, rule
functions); these helpers build it and hold it to its contract where the loop depends on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthloop.agents.generator import GenerationRequest
from synthloop.agents.prompts import PromptVersion
from synthloop.agents.tools import ToolContext, build_tools, consult_tools
from synthloop.errors import PluginError
from synthloop.graphs.context import TRAIN, LoopContext
from synthloop.tools.error_analysis import Region
from synthloop.tools.registry import build

STAT_DEFAULTS = {"calls": 0, "llm_failures": 0, "rows_returned": 0, "cells_repaired": 0,
                 "failure_reasons": []}


def loop_metric(ctx: LoopContext):
    """The metric class the spec names (``metric.name``)."""
    return ctx.registry.get("metric", ctx.spec.metric.name)


def make_analyser(spec, registry):
    """The error analyser the spec names (``analysis.kind``), built with its params."""
    a = spec.analysis
    return build("error_analyser", a.kind, registry.get("error_analyser", a.kind), a.params)


def make_generator(spec, registry):
    """The row generator the spec names (``generator.kind``), built with its params."""
    g = spec.generator
    return build("generator", g.kind, registry.get("generator", g.kind), g.params)


def build_components(spec, registry) -> None:
    """Build the generator, noise model and error analyser the spec names, so params they
    refuse stop a run (or fork) before its folder exists, not after its first training."""
    from synthloop.tools.noise import make_noise

    make_generator(spec, registry)
    make_analyser(spec, registry)
    make_noise(spec.generator.noise, registry)


def analyser(ctx: LoopContext):
    return make_analyser(ctx.spec, ctx.registry)


def analyse_errors(ctx: LoopContext, rows: pd.DataFrame, proba: np.ndarray, threshold: float,
                   set_aside: frozenset[str] = frozenset()) -> tuple[list[Region], dict]:
    """Regions from the spec's error analyser, checked to be regions of these rows; the best
    ``analysis.max_regions`` of those whose rule is not in ``set_aside``."""
    kind = ctx.spec.analysis.kind
    regions, summary = analyser(ctx).analyse(rows, proba, ctx.schema, threshold=threshold,
                                             settings=ctx.spec.analysis, seed=ctx.spec.seed)
    try:
        regions = [r if isinstance(r, Region) else Region.model_validate(r) for r in regions]
    except Exception as exc:
        raise PluginError(f"Error analyser '{kind}' returned something that is not a Region: "
                          f"{str(exc).splitlines()[0]}; return synthloop.tools.error_analysis."
                          "Region objects.") from None
    bad = [r.label for r in regions if r.label not in ctx.schema.classes]
    if bad:
        raise PluginError(f"Error analyser '{kind}' asks for class {bad[0]!r}, which is not a "
                          f"class of {ctx.schema.target} ({', '.join(ctx.schema.classes)}).")
    regions = [r for r in regions if r.rule not in set_aside]
    return regions[: ctx.spec.analysis.max_regions], dict(summary)


WHOLE_CLASS = "True"
EXPLORE_ID = "all"


def whole_class(label: str, support: int) -> Region:
    """The region ``True`` of class ``label``: the part of a batch ``explore_share`` gives to
    the whole class (id ``all``, so its calls have their own seeds)."""
    return Region(id=EXPLORE_ID, rule=WHOLE_CLASS, conditions=[], label=label, support=support,
                  errors=0, error_rate=0.0, positives=0, recall=None)


def explore_split(n_rows: int, share: float) -> tuple[int, int]:
    """(rows for the error regions, rows for the whole class) of a batch of ``n_rows``."""
    explore = int(round(n_rows * share))
    return n_rows - explore, explore


def merge_stats(a: dict, b: dict) -> dict:
    """Two generator calls' stats as one: counts added, lists joined."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, list):
            out[key] = [*out.get(key, []), *value]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = out.get(key, 0) + value
        else:
            out.setdefault(key, value)
    return out


def generate_rows(ctx: LoopContext, prompt: PromptVersion, regions: list[Region],
                  ranked: list[str], run_id: str, iteration: int) -> tuple[pd.DataFrame, dict]:
    """The spec's generator's rows for ``regions``, with every provenance column set.

    With ``generator.explore_share`` that share of the batch is asked for separately, for the
    whole class that matters, with the initial prompt (the rewritten one names the error
    regions): its rows carry ``_sl_region`` ``True`` and prompt version 1. Not when the whole
    class is already what the batch is for (the open loop, or every region set aside)."""
    g, schema = ctx.spec.generator, ctx.schema
    generator = make_generator(ctx.spec, ctx.registry)
    n_rows = ctx.spec.budget.rows_per_iteration
    label = schema.positive_class
    parts = [(prompt, regions, n_rows)]
    if g.explore_share > 0 and regions and not any(
            r.rule == WHOLE_CLASS and r.label == label for r in regions):
        aimed, explore = explore_split(n_rows, g.explore_share)
        y = ctx.frame(TRAIN)[schema.target].astype(str)
        first = PromptVersion.model_validate(ctx.store.read_yaml(
            prompt.model_copy(update={"version": 1}).filename))
        parts = [(prompt, regions, aimed),
                 (first, [whole_class(label, int((y == label).sum()))], explore)]
    hardness = ctx.train_hardness() if g.exemplars == "hard" else None
    frames, stats = [], dict(STAT_DEFAULTS)
    for part_prompt, part_regions, k in parts:
        if k <= 0:
            continue
        request = GenerationRequest(
            client=ctx.client, prompt=part_prompt, regions=part_regions,
            train=ctx.frame(TRAIN), schema=schema, rules=list(ctx.spec.rules), n_rows=k,
            settings=g, ranked_columns=ranked, run_id=run_id, iteration=iteration,
            seed=ctx.spec.seed, hardness=hardness)
        batch, part_stats = generator.generate(request)
        stats = merge_stats(stats, part_stats or {})
        frames.append(stamp(batch, ctx, g.kind, part_prompt, run_id, iteration))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(), stats
    return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), stats


def stamp(batch: pd.DataFrame, ctx: LoopContext, kind: str, prompt: PromptVersion,
          run_id: str, iteration: int) -> pd.DataFrame:
    """Hold a generator's rows to the contract (every column, known classes) and fill in the
    provenance columns it left out."""
    if not isinstance(batch, pd.DataFrame):
        raise PluginError(f"Generator '{kind}' returned {type(batch).__name__}, not a DataFrame.")
    if batch.empty:
        return batch
    schema = ctx.schema
    missing = [c for c in [*schema.feature_names(), schema.target] if c not in batch.columns]
    if missing:
        raise PluginError(f"Generator '{kind}' returned rows without the column(s) {missing}; "
                          "a generator writes every column of the schema and the label.")
    labels = set(batch[schema.target].astype(str)) - set(schema.classes)
    if labels:
        raise PluginError(f"Generator '{kind}' returned rows of class {sorted(labels)[0]!r}, which "
                          f"is not a class of {schema.target} ({', '.join(schema.classes)}); a "
                          "generator sets the label itself.")
    out = batch.reset_index(drop=True).copy()
    out[schema.target] = out[schema.target].astype(str)
    defaults = {"_sl_origin": "synthetic", "_sl_run_id": run_id, "_sl_iteration": iteration,
                "_sl_prompt_id": prompt.id, "_sl_prompt_version": prompt.version,
                "_sl_prompt_sha256": prompt.sha256, "_sl_generator": f"generator:{kind}",
                "_sl_seed": ctx.spec.seed, "_sl_region": "True", "_sl_counterexample": False,
                "_sl_exemplars": ""}
    for col, value in defaults.items():
        if col not in out.columns:
            out[col] = value
    if "_sl_row_id" not in out.columns:
        out.insert(0, "_sl_row_id", [f"{run_id}:{iteration}:{i}" for i in range(len(out))])
    return out


def extra_validators(ctx: LoopContext) -> list:
    return [ctx.registry.get("validator", name) for name in ctx.spec.validators]


def noise_model(ctx: LoopContext):
    from synthloop.tools.noise import make_noise

    return make_noise(ctx.spec.generator.noise, ctx.registry)


def apply_noise(ctx: LoopContext, rows: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, dict]:
    """The spec's noise model on accepted rows; it may not change labels or provenance."""
    kind = ctx.spec.generator.noise.kind
    noisy, counts = noise_model(ctx).apply(rows, ctx.schema, seed)
    keep = [ctx.schema.target, *[c for c in rows.columns if c.startswith("_sl_")]]
    if len(noisy) != len(rows) or any(c not in noisy.columns for c in keep) or not \
            noisy[keep].astype(str).reset_index(drop=True).equals(
                rows[keep].astype(str).reset_index(drop=True)):
        raise PluginError(f"Noise '{kind}' added or removed rows, or changed a label or a "
                          "provenance column; noise may only change feature values.")
    return noisy, {k: int(v) for k, v in (counts or {}).items()}


def agent_tool_calls(ctx: LoopContext, regions: list[Region], iteration: int
                     ) -> tuple[list[dict], list[dict]]:
    """What the rewrite agent's tools returned this iteration (none unless agent.tools)."""
    a = ctx.spec.agent
    if not a.tools or ctx.client is None or not ctx.spec.analysis.feedback or not regions:
        return [], []
    tctx = ToolContext(train=ctx.frame(TRAIN), schema=ctx.schema, regions=regions,
                       rules=list(ctx.spec.rules), seed=ctx.spec.seed * 1000 + iteration)
    tools, events = build_tools(ctx.registry, a.tools, tctx)
    for e in events:
        e["iteration"] = iteration
    records, more = consult_tools(ctx.client, tools, regions, ctx.schema, mode=a.tool_calling,
                                  max_calls=a.max_tool_calls, iteration=iteration,
                                  seed=ctx.spec.seed * 1000 + iteration + 500_000)
    return records, events + more
