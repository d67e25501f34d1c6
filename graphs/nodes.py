"""The loop's nodes. Each is ``node(state, ctx) -> partial update``.

Nodes read frames and models from the run store and write new ones under names that carry the
iteration, so re-running a node after a crash overwrites its own output and never appends.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_selection import mutual_info_classif

from synthloop.agents.prompts import INITIAL_INSTRUCTION, PromptVersion
from synthloop.agents.rewriter import TABULAR, RewriteTask, rewrite_prompt
from synthloop.data import conform, infer_schema, load_table, sample_rows, split_real
from synthloop.evals.classification import score_all
from synthloop.evals.utility import HoldoutLift, difference_standard_error
from synthloop.graphs.components import (
    agent_tool_calls,
    analyse_errors,
    apply_noise,
    extra_validators,
    generate_rows,
    loop_metric,
)
from synthloop.graphs.context import (
    CONSISTENCY,
    HOLDOUT,
    LABEL_CRITIC,
    LEAKAGE,
    SCHEMA,
    SYNTHETIC,
    TEACHER,
    TEACHER_FINAL,
    TRAIN,
    VALIDATION,
    LoopContext,
)
from synthloop.graphs.state import LoopState
from synthloop.store import frame_sha256
from synthloop.tools.consistency import ConsistencyModel
from synthloop.tools.constraints import check_columns, parse_rule
from synthloop.tools.curation import (
    blend_cap,
    blend_refusal,
    confidence_floors,
    curate,
    region_confidence_floors,
    share_room,
    training_frame,
)
from synthloop.tools.error_analysis import Region, analysis_threshold
from synthloop.tools.training import (
    TabularModel,
    make_estimator,
    stratified_folds,
)
from synthloop.tools.validation import FeatureSpace, LeakageIndex, validate_batch

log = logging.getLogger(__name__)


# -- helpers ------------------------------------------------------------------------------
def primary_metric(ctx: LoopContext, y, proba) -> float:
    m = ctx.spec.metric
    return round(loop_metric(ctx).compute(
        y, proba, ctx.schema.classes, ctx.schema.positive_class, threshold=m.threshold,
        precision=m.precision), 6)


def make_model(ctx: LoopContext):
    """An unfitted model for the spec: the text classifier when the spec names a text column,
    else the tabular one."""
    if ctx.spec.is_text:
        from synthloop.tools.text import make_text_model

        return make_text_model(ctx.spec.model, ctx.schema, ctx.spec.seed,
                               features=ctx.spec.text.features, embedder=ctx.embedder,
                               registry=ctx.registry)
    return TabularModel(make_estimator(ctx.spec.model, ctx.spec.seed, ctx.registry), ctx.schema)


def fit(ctx: LoopContext, synthetic_paths: list[str], extra: pd.DataFrame | None = None):
    syn = ctx.synthetic(synthetic_paths)
    if extra is not None and not extra.empty:
        syn = extra if syn is None else pd.concat([syn, extra], ignore_index=True)
    X, w = training_frame(ctx.frame(TRAIN), syn, ctx.schema, ctx.spec.blend.synthetic_weight)
    return make_model(ctx).fit(X, sample_weight=w)


def exemplar_rows(synthetic: pd.DataFrame) -> list[frozenset[int]]:
    """For each synthetic row, the positions in the real training split of the exemplars it
    was written from (its ``_sl_exemplars``, ``train:i``); empty when a generator names none."""
    if "_sl_exemplars" not in synthetic.columns:
        return [frozenset()] * len(synthetic)
    return [frozenset(int(t[6:]) for t in str(v).split(",") if t.startswith("train:"))
            for v in synthetic["_sl_exemplars"].fillna("")]


def cross_validated_proba(ctx: LoopContext, synthetic: pd.DataFrame | None) -> np.ndarray:
    """Out-of-fold probabilities over every real training and validation row, each fold's
    model fitted on the other real rows plus ``synthetic`` (``accept_on: cross_validation``).

    A synthetic row is left out of the fold that predicts one of its exemplars: it carries
    that real row's cells and label, so it would score its own source. The folds depend on
    the seed only, so every set of synthetic rows is compared on the same folds."""
    schema, spec = ctx.schema, ctx.spec
    real = decision_rows(ctx)
    y = real[schema.target].astype(str).to_numpy()
    n_train = len(ctx.frame(TRAIN))  # decision_rows puts the training split first
    sources = exemplar_rows(synthetic) if synthetic is not None else []
    out = np.zeros((len(real), len(schema.classes)))
    for tr, te in stratified_folds(y, spec.blend.accept_folds, spec.seed):
        syn = synthetic
        if synthetic is not None and len(synthetic):
            held = frozenset(int(i) for i in te if i < n_train)
            syn = synthetic[[not (src & held) for src in sources]]
        X, w = training_frame(real.iloc[tr], syn, schema, spec.blend.synthetic_weight)
        out[te] = make_model(ctx).fit(X, sample_weight=w).predict_proba(real.iloc[te])
    return out


def decision_folds(ctx: LoopContext) -> int | None:
    """How many folds ``accept_on: cross_validation`` uses (fewer than ``accept_folds`` when a
    class has fewer rows); None when the validation split decides."""
    if ctx.spec.blend.accept_on != "cross_validation":
        return None
    y = decision_rows(ctx)[ctx.schema.target]
    return len(stratified_folds(y, ctx.spec.blend.accept_folds, ctx.spec.seed))


def decision_rows(ctx: LoopContext) -> pd.DataFrame:
    """The real rows the accept rule scores: the validation split, or with ``accept_on:
    cross_validation`` every real training and validation row (training rows first)."""
    if ctx.spec.blend.accept_on == "cross_validation":
        return pd.concat([ctx.frame(TRAIN), ctx.frame(VALIDATION)], ignore_index=True)
    return ctx.frame(VALIDATION)


def decision_proba(ctx: LoopContext, synthetic_paths: list[str],
                   model: Callable[[], Any]) -> np.ndarray:
    """What the accept rule scores for the synthetic rows in ``synthetic_paths``: the
    probabilities of ``model()`` (fitted on them) on the validation rows, or with ``accept_on:
    cross_validation`` out-of-fold probabilities, computed once per set of batches in a run."""
    if ctx.spec.blend.accept_on != "cross_validation":
        return model().predict_proba(ctx.frame(VALIDATION))
    key = tuple(synthetic_paths)
    if key not in ctx.decisions:
        ctx.decisions[key] = cross_validated_proba(ctx, ctx.synthetic(list(synthetic_paths)))
    return ctx.decisions[key]


def decision_score(ctx: LoopContext, proba: np.ndarray) -> float:
    return primary_metric(ctx, decision_rows(ctx)[ctx.schema.target].to_numpy(), proba)


def accept_tolerance(ctx: LoopContext, candidate: np.ndarray,
                     current: Callable[[], np.ndarray]) -> tuple[float, str]:
    """How far below the best a batch's score may fall, and how to say it.

    A number is used as is. ``auto`` is one standard error of the difference between the
    current and the candidate probabilities on the decision rows (paired, class-stratified
    bootstrap): refuse a batch only for a drop the split's own noise would not explain.
    ``candidate`` and ``current()`` are the probabilities ``decision_proba`` gives for the
    batch and for the rows kept so far (computed only for ``auto``).
    """
    setting = ctx.spec.blend.max_validation_drop
    if setting != "auto":
        return float(setting), f"{setting:g}"
    m = ctx.spec.metric
    se = difference_standard_error(
        decision_rows(ctx)[ctx.schema.target].to_numpy(), current(), candidate,
        ctx.schema.classes, ctx.schema.positive_class, m.name,
        seed=ctx.spec.seed, threshold=m.threshold, precision=m.precision)
    se = round(se, 6)
    return se, f"one standard error ({se:.4f})"


def batch_path(iteration: int, stage: str) -> str:
    return f"data/batches/iter_{iteration:03d}_{stage}.parquet"


# -- nodes --------------------------------------------------------------------------------
def prepare(state: LoopState, ctx: LoopContext) -> dict:
    spec = ctx.spec
    df = sample_rows(load_table(spec.resolved_source(), ctx.registry), spec)
    schema = infer_schema(df, spec)
    for rule in spec.rules:
        check_columns(parse_rule(rule), schema.feature_names(), schema.target)
    df = conform(df[[*schema.feature_names(), schema.target]], schema)
    train, val, holdout = split_real(df, spec, schema)
    ctx.store.write_json(SCHEMA, schema.model_dump())
    ctx.store.write_frame(TRAIN, train)
    ctx.store.write_frame(VALIDATION, val)
    ctx.store.write_frame(HOLDOUT, holdout)
    space = FeatureSpace(schema)
    cols = schema.feature_names()
    real_features = pd.concat([train[cols], val[cols], holdout[cols]], ignore_index=True)
    ctx.store.write_model(LEAKAGE, LeakageIndex(space, real_features, n_train=len(train)))
    ranked = _rank_columns(train, schema, spec.seed)
    fit_consistency(ctx, train, schema, ranked)
    # fitted now, so that a sentence missing for a class fails before any LLM call
    critic = label_critic(ctx)
    events = ([{"kind": "label_critic_off", "node": "prepare",
                "reason": f"out-of-fold AUC {critic.auc_} on the real training rows is under "
                          f"curation.label_critic_min_auc {critic.min_auc}"}]
              if critic is not None and not critic.active else [])
    prompt = PromptVersion(
        id=f"{spec.name}-gen", version=1, model=ctx.client.model_id if ctx.client else "none",
        temperature=spec.generator.temperature, text=INITIAL_INSTRUCTION,
    ).with_hash()
    ctx.store.write_yaml(prompt.filename, prompt.model_dump())
    return {
        "status": "running", "iteration": 0, "classes": schema.classes,
        "positive": schema.positive_class, "n_train": len(train), "n_validation": len(val),
        "n_holdout": len(holdout), "ranked_columns": ranked, "synthetic_batches": [],
        "synthetic_rows": 0, "tokens_used": 0, "no_improvement": 0, "stop_reason": None,
        "prompt": prompt.model_dump(), "events": events,
    }


def _rank_columns(train: pd.DataFrame, schema, seed: int) -> list[str]:
    cols = [c for c in schema.columns if c.type != "text"]
    X = np.column_stack([
        pd.to_numeric(train[c.name], errors="coerce").fillna(-1).to_numpy()
        if c.type in ("float", "int") else
        pd.factorize(train[c.name].astype(str))[0]
        for c in cols
    ])
    mi = mutual_info_classif(X, train[schema.target].astype(str),
                             discrete_features=[c.type not in ("float", "int") for c in cols],
                             random_state=seed)
    order = np.argsort(-mi, kind="stable")
    return [cols[i].name for i in order]


def train(state: LoopState, ctx: LoopContext) -> dict:
    model = fit(ctx, [])
    path = ctx.store.write_model("models/baseline.joblib", model)
    return {"baseline_model": path, "current_model": path}


def evaluate(state: LoopState, ctx: LoopContext) -> dict:
    score = decision_score(ctx, decision_proba(
        ctx, [], lambda: ctx.store.read_model(state["current_model"])))
    return {"baseline_validation": score, "best_validation": score}


def analyse(state: LoopState, ctx: LoopContext) -> dict:
    spec, schema = ctx.spec, ctx.schema
    model = ctx.store.read_model(state["current_model"])
    val = ctx.frame(VALIDATION)
    val_proba = model.predict_proba(val)
    tr = ctx.frame(TRAIN)
    oof = ctx.train_oof
    rows = pd.concat([val, tr], ignore_index=True)
    proba = np.vstack([val_proba, oof])
    pos = schema.classes.index(schema.positive_class)
    y_pos = rows[schema.target].astype(str).to_numpy() == schema.positive_class
    thr = analysis_threshold(proba[:, pos], y_pos, spec.metric.threshold,
                             getattr(loop_metric(ctx), "needs_threshold", False))
    set_aside = (refused_since_accepted(state.get("iterations", []))
                 if spec.analysis.feedback and spec.analysis.set_aside_refused else frozenset())
    regions, summary = analyse_errors(ctx, rows, proba, thr, set_aside)
    if set_aside:
        summary["set_aside"] = sorted(set_aside)
    floors = confidence_floors(tr[schema.target].astype(str).to_numpy(), oof, schema.classes,
                               spec.curation.confidence_percentile)
    region_floors = (region_confidence_floors(tr, oof, schema, [r.rule for r in regions],
                                              spec.curation.confidence_percentile)
                     if spec.curation.per_region else {})
    # the open loop, or every region set aside: the whole class, whatever the errors
    if not spec.analysis.feedback or (set_aside and not regions):
        n_pos = int(y_pos.sum())
        regions = [Region(id="r1", rule="True", conditions=[], label=schema.positive_class,
                          support=len(rows), errors=n_pos, error_rate=1.0, positives=n_pos,
                          recall=None)]
    k = state.get("iteration", 0)
    ctx.store.write_json(f"analysis/iter_{k:03d}.json",
                         {"summary": summary, "regions": [r.model_dump() for r in regions]})
    return {"regions": [r.model_dump() for r in regions], "analysis": summary,
            "confidence_floors": floors, "region_floors": region_floors}


def refused_since_accepted(history: list[dict]) -> frozenset[str]:
    """The region rules that batches refused since the last accepted one were written for."""
    rules: set[str] = set()
    for record in reversed(history):
        if record.get("accepted"):
            break
        rules.update(record.get("focus_regions") or [])
    return frozenset(rules)


def decide(state: LoopState, ctx: LoopContext) -> dict:
    b, m = ctx.spec.budget, ctx.spec.metric
    elapsed = sum(t["seconds"] for t in state.get("timings", []))
    reason = None
    if m.target is not None and state["best_validation"] >= m.target:
        reason = "target_reached"
    elif (b.stop_on_perfect_validation
          and state["best_validation"] >= loop_metric(ctx).max_value - 1e-12):
        reason = "no_errors"  # a perfect validation score leaves nothing to target
    elif state.get("iteration", 0) >= b.max_iterations:
        reason = "max_iterations"
    elif state.get("no_improvement", 0) >= b.patience:
        reason = "no_improvement"
    elif b.max_llm_tokens is not None and state.get("tokens_used", 0) >= b.max_llm_tokens:
        reason = "token_budget"
    elif b.max_wall_seconds is not None and elapsed >= b.max_wall_seconds:
        reason = "wall_clock"
    elif not state.get("regions"):
        reason = "no_errors"
    return {"stop_reason": reason}


def route_after_decide(state: LoopState) -> str:
    return "report" if state.get("stop_reason") else "rewrite"


def rewrite(state: LoopState, ctx: LoopContext) -> dict:
    regions = [Region.model_validate(r) for r in state["regions"]]
    return rewrite_targets(state, ctx, regions, TABULAR)


def rewrite_targets(state: LoopState, ctx: LoopContext, targets: list, task: RewriteTask) -> dict:
    """The rewrite node's update for ``targets`` (regions, or the text loop's clusters)."""
    k = state.get("iteration", 0) + 1
    current = PromptVersion.model_validate(state["prompt"])
    # a generator that does not read the prompt (uses_prompt = False, e.g. copula) gets the
    # template's version: its focus regions, no LLM call and no tool calls
    reads = task is not TABULAR or getattr(
        ctx.registry.get("generator", ctx.spec.generator.kind), "uses_prompt", True)
    # agent.rewrite: template, or the open loop: the template's version, no LLM call
    agent = reads and ctx.spec.analysis.feedback and ctx.spec.agent.rewrite == "llm"
    # the agent's tools look at table regions; the text loop's clusters have none to call
    tool_calls, tool_events = (agent_tool_calls(ctx, targets, k) if task is TABULAR and agent
                               else ([], []))
    keep_first = ctx.spec.agent.rewrite == "initial"
    if keep_first:  # the run's first instruction (a fork's parent's too); the focus follows
        first = first_instruction(ctx, current)
        task = dataclasses.replace(task, fallback=lambda _targets, _history: first)
    new, event = rewrite_prompt(
        ctx.client if agent else None, current, targets,
        state.get("iterations", []), iteration=k,
        temperature=ctx.spec.generator.temperature,
        seed=ctx.spec.seed * 1000 + k, task=task, tool_calls=tool_calls,
    )
    if keep_first:
        new = new.model_copy(update={"author": "initial"})  # not hashed
    ctx.store.write_yaml(new.filename, new.model_dump())
    usage = ctx.client.take_usage("rewrite") if ctx.client else {}
    return {
        "iteration": k,
        "prompt": new.model_dump(),
        "events": tool_events + ([event] if event else []),
        "usage": [{"node": "rewrite", "iteration": k, **usage}],
        "tokens_used": state.get("tokens_used", 0) + usage.get("tokens", 0),
        "batch": {},
    }


def first_instruction(ctx: LoopContext, current: PromptVersion) -> str:
    """The text of the run's first prompt version (a fork copies its parent's), else the
    current one's."""
    first = f"prompts/{current.id}.v001.yaml"
    return ctx.store.read_yaml(first)["text"] if ctx.store.exists(first) else current.text


def generate(state: LoopState, ctx: LoopContext) -> dict:
    k = state["iteration"]
    prompt = PromptVersion.model_validate(state["prompt"])
    regions = [Region.model_validate(r) for r in prompt.focus_regions] or \
        [Region.model_validate(r) for r in state["regions"]]
    batch, stats = generate_rows(ctx, prompt, regions, state["ranked_columns"],
                                 state["run_id"], k)  # generator.kind
    return generated_update(state, ctx, batch, stats)


def generated_update(state: LoopState, ctx: LoopContext, batch: pd.DataFrame,
                     stats: dict) -> dict:
    """The generate node's state update, tabular or text: the batch on disk, its stats, the
    LLM failures as events and the node's token usage."""
    k = state["iteration"]
    path = ctx.store.write_frame(batch_path(k, "generated"), batch)
    usage = ctx.client.take_usage("generate") if ctx.client else {}
    events = []
    if stats["llm_failures"]:
        events.append({"kind": "llm_failure", "node": "generate", "iteration": k,
                       "count": stats["llm_failures"], "reason": stats["failure_reasons"][:3]})
    return {
        "batch": {"generated": path, "stats": {k2: v for k2, v in stats.items()
                                                if k2 != "failure_reasons"}},
        "events": events,
        "usage": [{"node": "generate", "iteration": k, **usage}],
        "tokens_used": state.get("tokens_used", 0) + usage.get("tokens", 0),
    }


def validate(state: LoopState, ctx: LoopContext) -> dict:
    k = state["iteration"]
    batch = ctx.frame(state["batch"]["generated"])
    space = FeatureSpace(ctx.schema)
    leakage = ctx.store.read_model(LEAKAGE)
    previous = ctx.synthetic(state.get("synthetic_batches", []))
    valid, rejected, counts = validate_batch(
        batch, ctx.schema, ctx.spec.rules, leakage, previous,
        ctx.spec.curation.near_duplicate_distance, space, extra=extra_validators(ctx),
        keep_training_copies=ctx.spec.curation.keep_training_copies,
    )
    if ctx.spec.curation.keep_training_copies:
        # counted, not refused: what share of the kept rows is a real training row
        counts["training_copies_kept"] = int(
            (leakage.nearest(valid) < max(ctx.spec.curation.near_duplicate_distance,
                                          1e-12)).sum()) if not valid.empty else 0
    over = counts.get("violation_rate", 0) > ctx.spec.curation.max_violation_rate
    info = {
        **state["batch"],
        "valid": ctx.store.write_frame(batch_path(k, "valid"), valid),
        "invalid": ctx.store.write_frame(batch_path(k, "invalid"), rejected),
        "checks": counts,
    }
    out: dict = {}
    if ctx.spec.curation.keep_training_copies and not leakage.splits_known:
        out["events"] = [{"kind": "training_copies_refused", "node": "validate", "iteration": k,
                          "reason": "this run's leakage index was built before it knew the "
                                    "training split; copies of real rows are refused as before"}]
    if over:
        info["blocked"] = (f"violation rate {counts['violation_rate']:.2f} over "
                           f"{ctx.spec.curation.max_violation_rate:.2f}")
    elif valid.empty:
        info["blocked"] = "no row passed validation"
    return {"batch": info, **out}


def fit_consistency(ctx: LoopContext, train: pd.DataFrame, schema, ranked: list[str]):
    model = ConsistencyModel(ctx.spec.curation.consistency_quantile, ctx.spec.seed).fit(
        train, schema, ranked)
    ctx.store.write_model(CONSISTENCY, model)
    ctx.store.write_json("data/consistency.json", model.describe())
    return model


def consistency_model(ctx: LoopContext, state: LoopState):
    """The run's consistency check, fitted again when a fork changed its quantile; None for a
    run started before the check existed."""
    if not ctx.store.exists(CONSISTENCY):
        return None
    model = ctx.store.read_model(CONSISTENCY)
    if model.quantile != ctx.spec.curation.consistency_quantile:
        model = fit_consistency(ctx, ctx.frame(TRAIN), ctx.schema, state["ranked_columns"])
    return model


def label_critic(ctx: LoopContext):
    """The run's fitted label critic (curation.label_critic), fitted on the real training rows
    at first use and again when a fork changes its settings; None when it is off."""
    cur = ctx.spec.curation
    if not cur.label_critic:
        return None
    if ctx.store.exists(LABEL_CRITIC):
        critic = ctx.store.read_model(LABEL_CRITIC)
        if critic.sentences == cur.label_critic and critic.min_auc == cur.label_critic_min_auc:
            critic.embedder = ctx.embedder
            return critic
    from synthloop.tools.label_critic import LabelCritic

    critic = LabelCritic(cur.label_critic, cur.label_critic_min_auc, ctx.spec.seed,
                         embedder=ctx.embedder).fit(ctx.frame(TRAIN), ctx.schema)
    ctx.store.write_model(LABEL_CRITIC, critic)
    ctx.store.write_json("data/label_critic.json", critic.describe())
    return critic


def teacher(ctx: LoopContext):
    """The run's teacher (curation.teacher), fitted on the real training rows at first use;
    None when it is off."""
    kinds = list(ctx.spec.curation.teacher)
    if not kinds:
        return None
    if ctx.store.exists(TEACHER):
        fitted = ctx.store.read_model(TEACHER)
        if fitted.kinds == kinds:
            return fitted
    from synthloop.tools.teacher import Teacher

    fitted = Teacher(kinds, ctx.spec.seed).fit(ctx.frame(TRAIN), ctx.schema, ctx.registry)
    ctx.store.write_model(TEACHER, fitted)
    return fitted


def curate_node(state: LoopState, ctx: LoopContext) -> dict:
    k = state["iteration"]
    info = dict(state["batch"])
    valid = ctx.frame(info["valid"])
    invalid = ctx.frame(info["invalid"])
    if valid.empty or info.get("blocked"):
        info["curated"] = ctx.store.write_frame(batch_path(k, "curated"), valid)
        info["rejected"] = ctx.store.write_frame(batch_path(k, "rejected"), invalid)
        info["checks"] = {**info["checks"], "inconsistent": 0, "contradicted": 0,
                          "low_confidence": 0}
        return {"batch": info}
    checker = consistency_model(ctx, state)
    inconsistent, column = (checker.check(valid) if checker is not None else
                            (np.zeros(len(valid), bool), [None] * len(valid)))
    model = ctx.store.read_model(state["current_model"])
    keep, conf = curate(valid, model.predict_proba(valid), ctx.schema, state["confidence_floors"],
                        state.get("region_floors"))
    critic = label_critic(ctx)
    contradicted = (critic.contradicted(valid) if critic is not None
                    else np.zeros(len(valid), bool)) & ~inconsistent
    curated = valid.assign(_sl_confidence=np.round(conf, 6))
    reason = np.where(inconsistent, [f"inconsistent with its other columns: {c}" for c in column],
                      np.where(contradicted, "its label contradicts the class sentences",
                               np.where(keep, "", "low confidence in its label")))
    low_confidence = ~keep & ~inconsistent & ~contradicted
    keep &= ~inconsistent & ~contradicted
    dropped = curated.loc[~keep].assign(_sl_reject=reason[~keep])
    # written from the validation rejects each time, so a re-run after a crash never appends
    rejected = pd.concat([invalid, dropped], ignore_index=True)
    info["rejected"] = ctx.store.write_frame(batch_path(k, "rejected"), rejected)
    info["curated"] = ctx.store.write_frame(batch_path(k, "curated"), curated.loc[keep])
    info["checks"] = {**info["checks"], "inconsistent": int(inconsistent.sum()),
                      "contradicted": int(contradicted.sum()),
                      "low_confidence": int(low_confidence.sum())}
    if not keep.any():
        info["blocked"] = "curation removed every row"
    return {"batch": info}


def blend(state: LoopState, ctx: LoopContext) -> dict:
    k = state["iteration"]
    info = dict(state["batch"])
    cur = ctx.frame(info["curated"])
    schema = ctx.schema
    if cur.empty or info.get("blocked"):  # a blocked batch is rejected whole
        cur = cur.iloc[:0]
        info["candidate"] = ctx.store.write_frame(batch_path(k, "candidate"), cur)
        info["checks"] = {**info["checks"], "over_cap": 0}
        return {"batch": info}
    tr = ctx.frame(TRAIN)
    syn = ctx.synthetic(state.get("synthetic_batches", []))
    syn_counts = {} if syn is None else syn[schema.target].astype(str).value_counts().to_dict()
    keep = blend_cap(
        cur, cur["_sl_confidence"].to_numpy(), schema, n_real=len(tr),
        class_counts=tr[schema.target].astype(str).value_counts().to_dict(),
        n_synthetic_before=0 if syn is None else len(syn), synthetic_counts=syn_counts,
        max_share=ctx.spec.budget.max_synthetic_share, balance=ctx.spec.blend.balance,
    )
    cand, noise_counts = apply_noise(ctx, cur.loc[keep].reset_index(drop=True),
                                     ctx.spec.seed + k)  # generator.noise.kind
    cand["_sl_weight"] = ctx.spec.blend.synthetic_weight
    labeller = teacher(ctx)
    if labeller is not None:
        cand = labeller.label(cand, schema)
    info["candidate"] = ctx.store.write_frame(batch_path(k, "candidate"), cand)
    info["checks"] = {**info["checks"], "over_cap": int((~keep).sum()), **noise_counts}
    if cand.empty and not info.get("blocked"):
        info["blocked"] = blend_refusal(share_room(len(tr), 0 if syn is None else len(syn),
                                                   ctx.spec.budget.max_synthetic_share))
    return {"batch": info}


def accept(state: LoopState, ctx: LoopContext) -> dict:
    k = state["iteration"]
    info = state["batch"]
    cand = ctx.frame(info["candidate"])
    stats = info.get("stats", {})
    checks = info.get("checks", {})
    best = state["best_validation"]
    on = "validation" if ctx.spec.blend.accept_on == "validation" else "cross-validated score"
    score = None
    reason = info.get("blocked")
    accepted = False
    update: dict = {}
    tolerance = None
    if reason is None:
        kept = state.get("synthetic_batches", [])
        batches = [*kept, info["candidate"]]
        model = fit(ctx, kept, extra=cand)
        proba = decision_proba(ctx, batches, lambda: model)
        score = decision_score(ctx, proba)
        tolerance, within = accept_tolerance(ctx, proba, lambda: decision_proba(
            ctx, kept, lambda: ctx.store.read_model(state["current_model"])))
        if score >= best - tolerance - 1e-12:
            accepted = True
            reason = (f"{on} did not drop" if score >= best - 1e-12 else
                      f"{on} dropped {best - score:.4f}, within {within}")
            path = ctx.store.write_model(f"models/iter_{k:03d}.joblib", model)
            syn = ctx.synthetic(batches)
            ctx.store.write_frame(SYNTHETIC, syn)
            update.update(current_model=path, synthetic_batches=batches,
                          synthetic_rows=len(syn), synthetic_sha256=frame_sha256(syn),
                          best_validation=max(best, score))
        else:
            reason = f"{on} dropped from {best:.4f} to {score:.4f}"
    improved = accepted and score is not None and score > best + ctx.spec.budget.min_improvement
    n_generated = int(checks.get("generated", 0))
    n_accepted = int(len(cand)) if accepted else 0
    tokens = sum(u.get("tokens", 0) for u in state.get("usage", []) if u.get("iteration") == k)
    seconds = sum(t["seconds"] for t in state.get("timings", []) if t.get("iteration") == k)
    record = {
        "iteration": k,
        "prompt_version": state["prompt"]["version"],
        "prompt_author": state["prompt"].get("author"),
        "prompt_sha256": state["prompt"].get("sha256"),
        "focus_regions": [r["rule"] for r in state["prompt"].get("focus_regions", [])],
        "rows_generated": n_generated,
        "rows_rejected": n_generated - n_accepted,
        "rows_accepted": n_accepted,
        "validation_metric": score,
        "best_validation": update.get("best_validation", best),
        "decided_on": None if info.get("blocked") else ctx.spec.blend.accept_on,
        "accepted": accepted,
        "reason": reason,
        "tolerance": tolerance,
        "llm_calls": stats.get("calls", 0),
        "llm_failures": stats.get("llm_failures", 0),
        "cells_repaired": stats.get("cells_repaired", 0),
        "checks": checks,
        "review": info.get("review"),  # review.mode: batch
        "tokens": tokens,
        "seconds": round(seconds, 2),
    }
    ctx.store.write_json(f"iterations/iter_{k:03d}.json", record)
    return {**update, "iterations": [record],
            "no_improvement": 0 if improved else state.get("no_improvement", 0) + 1}


def report(state: LoopState, ctx: LoopContext) -> dict:
    """The only node that reads the holdout."""
    schema, spec = ctx.schema, ctx.spec
    holdout = ctx.holdout_for_report()
    y = holdout[schema.target].to_numpy()
    base = ctx.store.read_model(state["baseline_model"])
    final = ctx.store.read_model(state["current_model"])
    pb, pf = base.predict_proba(holdout), final.predict_proba(holdout)
    base_h, final_h = primary_metric(ctx, y, pb), primary_metric(ctx, y, pf)
    kw = {"threshold": spec.metric.threshold, "precision": spec.metric.precision}
    ci = HoldoutLift.compute(y, pb, pf, schema.classes, schema.positive_class, spec.metric.name,
                             n_boot=1000, seed=spec.seed, **kw)
    kept = state.get("synthetic_batches", [])
    final_val, val_se, new_events = state["baseline_validation"], 0.0, []
    if kept:
        # the final model's own score on the rows that decided (with a tolerance above 0 it
        # may sit below the best score a batch reached), and how far those rows' own noise
        # moves its lift (paired bootstrap): on a small split a lift the user would believe
        # is within it
        p_final = decision_proba(ctx, kept, lambda: final)
        final_val = decision_score(ctx, p_final)
        try:
            val_se = round(difference_standard_error(
                decision_rows(ctx)[schema.target].to_numpy(),
                decision_proba(ctx, [], lambda: base), p_final, schema.classes,
                schema.positive_class, spec.metric.name, seed=spec.seed, **kw), 6)
        except Exception as exc:  # a plugin metric that cannot score a resample
            val_se = None
            new_events.append({"kind": "validation_se_failed", "node": "report",
                               "reason": f"{type(exc).__name__}: {exc}"})
    events = [*state.get("events", []), *new_events]
    syn = ctx.synthetic(kept)
    if syn is None:
        syn = pd.DataFrame()
    final_teacher = None
    if len(syn) and teacher(ctx) is not None:
        # the rows delivered carry the labels of a teacher that saw every real row the run may
        # learn from (training and validation); the decisions above used the training-split
        # teacher's, so the validation split judged them fairly. The holdout stays unseen,
        # unless curation.final_teacher_rows is 'all' (the scores above were made before)
        from synthloop.tools.teacher import Teacher

        parts = [ctx.frame(TRAIN), ctx.frame(VALIDATION)]
        if spec.curation.final_teacher_rows == "all":
            parts.append(holdout)
        seen = pd.concat(parts, ignore_index=True)
        final_teacher = Teacher(list(spec.curation.teacher), spec.seed).fit(
            seen, schema, ctx.registry)
        ctx.store.write_model(TEACHER_FINAL, final_teacher)
        syn = final_teacher.label(syn, schema)
    ctx.store.write_frame(SYNTHETIC, syn)
    ctx.store.write_model("models/final.joblib", final)
    usage_by_node: dict[str, dict] = {}
    for u in state.get("usage", []):
        agg = usage_by_node.setdefault(u["node"], {"calls": 0, "cached_calls": 0, "tokens": 0,
                                                   "retries": 0, "failures": 0})
        for key in agg:
            agg[key] += u.get(key, 0)
    seconds_by_node: dict[str, float] = {}
    for t in state.get("timings", []):
        seconds_by_node[t["node"]] = round(seconds_by_node.get(t["node"], 0) + t["seconds"], 3)
    summary = {
        "run_id": state["run_id"],
        "status": "finished",
        "stop_reason": state.get("stop_reason"),
        "metric": spec.metric.name,
        "positive_class": schema.positive_class,
        # what the "validation" scores are: the validation split's, or out-of-fold over the
        # real training and validation rows (accept_on: cross_validation)
        "decided_on": {"rule": spec.blend.accept_on, "folds": decision_folds(ctx),
                       "rows": len(decision_rows(ctx))},
        "baseline": {"validation": state["baseline_validation"], "holdout": base_h},
        "final": {"validation": final_val, "holdout": final_h},
        "lift": {"validation": round(final_val - state["baseline_validation"], 6),
                 "validation_se": val_se,
                 "holdout": round(final_h - base_h, 6),
                 "holdout_ci95": [round(ci["ci_low"], 6), round(ci["ci_high"], 6)]},
        "holdout_all_metrics": {
            "baseline": score_all(y, pb, schema.classes, schema.positive_class, **kw),
            "final": score_all(y, pf, schema.classes, schema.positive_class, **kw),
        },
        "iterations": state.get("iterations", []),
        "synthetic_rows": int(len(syn)),
        "synthetic_sha256": frame_sha256(syn),
        "total_tokens": int(state.get("tokens_used", 0)),
        "llm": ctx.client.model_id if ctx.client else None,
        "usage_by_node": usage_by_node,
        "seconds_by_node": seconds_by_node,
        "fallbacks": sum(1 for e in events if e.get("kind") == "fallback"),
        "llm_failures": sum(e.get("count", 0) for e in events if e.get("kind") == "llm_failure"),
        "events": events,
        "wall_seconds": round(sum(t["seconds"] for t in state.get("timings", [])), 2),
        "split": {"train": state["n_train"], "validation": state["n_validation"],
                  "holdout": state["n_holdout"]},
    }
    if spec.curation.teacher:
        # the models, scores and lifts above were made with the training-split teacher's
        # labels (data/teacher.joblib); data/synthetic.parquet carries the final teacher's
        # (data/teacher_final.joblib)
        summary["teacher"] = {"kinds": list(spec.curation.teacher),
                              "rows_in_loop": state["n_train"],
                              "rows_final": final_teacher.n_rows if final_teacher else None,
                              "final_rows": spec.curation.final_teacher_rows}
    if spec.is_text:
        from synthloop.graphs.text_nodes import text_summary

        summary["text"] = text_summary(state, ctx)
    ctx.store.write_json("summary.json", summary)
    try:  # the report reads summary.json: write it first
        from synthloop.evals.report import write_report

        write_report(ctx.store.root, holdout=holdout)
    except Exception as exc:  # the report's figures are a by-product: never fail the run
        log.warning("run %s: report.html was not written: %s", state["run_id"], exc)
        event = {"kind": "report_failed", "node": "report",
                 "reason": f"{type(exc).__name__}: {exc}"}
        summary["events"] = [*events, event]
        ctx.store.write_json("summary.json", summary)
        return {"status": "finished", "synthetic_sha256": summary["synthetic_sha256"],
                "events": [*new_events, event]}
    return {"status": "finished", "synthetic_sha256": summary["synthetic_sha256"],
            "events": new_events}
