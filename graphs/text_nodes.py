"""The text loop's nodes (the graph uses them when the spec names ``data.text_column``).

Same graph, same run store, same state as the tabular loop; these nodes replace prepare,
analyse, rewrite, generate, validate and curate, and wrap accept to add the text figures to
each iteration's record. Train, evaluate, decide, blend and report are shared (``fit`` builds a
``TextModel`` for a text spec).

- prepare: the split, the Chroma collection of the real TRAINING texts (label, split and row
  id as metadata), and the real texts with their embeddings for the grounding gate;
- analyse: per-class recall, confusion pairs and clusters of misclassified validation texts,
  which become the generation targets (a cluster, or a weak class no cluster covers);
- generate: per target, the k nearest training texts from Chroma as exemplars;
- validate: form, duplicates, the grounding gate (in domain, no near copy of any real text)
  and the batch's diversity;
- curate: label consistency, by the current classifier and optionally an LLM judge.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from synthloop.agents.prompts import PromptVersion
from synthloop.agents.text_generator import (
    TEXT_INSTRUCTION,
    TextTarget,
    generate_texts,
    shorten,
    text_rewrite_task,
)
from synthloop.agents.text_judge import judge_labels
from synthloop.data import (
    TableSchema,
    check_text_column,
    conform,
    infer_schema,
    load_table,
    sample_rows,
    split_real,
)
from synthloop.errors import DataError
from synthloop.graphs import nodes
from synthloop.graphs.components import loop_metric
from synthloop.graphs.context import (
    CHROMA,
    HOLDOUT,
    REAL_TEXTS,
    SCHEMA,
    TRAIN,
    VALIDATION,
    LoopContext,
)
from synthloop.graphs.nodes import batch_path
from synthloop.graphs.state import LoopState
from synthloop.spec import LoopSpec
from synthloop.tools.error_analysis import analysis_threshold
from synthloop.tools.text import (
    MODEL_NAME,
    RealTexts,
    TextErrorAnalysis,
    label_consistency,
    text_error_analysis,
)
from synthloop.tools.text_validation import TextGates, validate_texts

log = logging.getLogger(__name__)

REPRESENTATIVE_CHARS = 120  # representative texts are cut to this for the rewrite agent
MIN_GENERATED_CHARS = 20  # the grammar's shortest text

# the text figures of a batch, copied from its checks into the iteration record
TEXT_FIGURES = {
    "grounded_share": "grounded_share",
    "near_copies_rejected": "near_copies",
    "ungrounded": "ungrounded",
    "malformed": "malformed",
    "duplicates": "duplicates",
    "near_duplicates": "near_duplicates",
    "self_bleu": "self_bleu",
    "mean_cosine": "mean_cosine",
    "diversity_collapsed": "diversity_collapsed",
    "label_accuracy": "label_accuracy",
    "label_contradictions": "label_contradictions",
    "judge_label_accuracy": "judge_label_accuracy",
}


def text_schema(df: pd.DataFrame, spec: LoopSpec) -> tuple[TableSchema, pd.DataFrame, list[dict]]:
    """The schema of a text loop (the text column is its only feature), the rows with text,
    and events for the columns and rows left out."""
    col, target = spec.data.text_column, spec.data.target
    if target in df.columns:
        check_text_column(df, col)
        has_text = df[col].map(lambda v: isinstance(v, str) and bool(v.strip()))
        labels = df[target].dropna().astype(str)
        empty = sorted(set(labels) - set(labels[has_text]))
        if empty:
            raise DataError(f"Class(es) {empty} of '{target}' have no text in '{col}'; a class "
                            "needs real texts to learn from and to ground generated ones. "
                            "Drop those rows or fill in their texts.")
        df = df.loc[has_text | df[target].isna()]  # rows without text leave before classes count
        dropped = int((~has_text).sum())
    else:
        dropped = 0
    full = infer_schema(df, spec)
    schema = full.model_copy(update={"columns": [full.column(col)]})
    unknown = sorted(set(spec.text.labels) - set(schema.classes))
    if unknown:
        raise DataError(f"text.labels names {unknown}, which are not classes of '{target}'; "
                        f"classes are: {', '.join(schema.classes)}.")
    events = []
    ignored = [c.name for c in full.columns if c.name != col]
    if ignored:
        events.append({"kind": "columns_ignored", "node": "prepare", "columns": ignored,
                       "reason": f"the text loop classifies on '{col}' alone"})
        log.info("text loop: columns %s are not used (the classifier reads '%s' only)",
                 ignored, col)
    if dropped:
        events.append({"kind": "rows_dropped", "node": "prepare", "count": dropped,
                       "reason": f"no text in '{col}'"})
        log.warning("text loop: %d row(s) without text in '%s' dropped", dropped, col)
    rows = conform(df[[col, target]].reset_index(drop=True), schema)
    return schema, rows, events


def prepare(state: LoopState, ctx: LoopContext) -> dict:
    spec = ctx.spec
    df = sample_rows(load_table(spec.resolved_source(), ctx.registry), spec)
    schema, df, events = text_schema(df, spec)
    col, target = schema.text_column, schema.target
    train, val, holdout = split_real(df, spec, schema)
    ctx.store.write_json(SCHEMA, schema.model_dump())
    ctx.store.write_frame(TRAIN, train)
    ctx.store.write_frame(VALIDATION, val)
    ctx.store.write_frame(HOLDOUT, holdout)
    # only training texts are retrievable as exemplars; row ids are the training split's rows
    ctx.corpus.build(train, col, target)
    # every real text (labels of training texts only), for the grounding and near-copy checks
    real = RealTexts.from_splits(ctx.embedder, train[col], train[target].astype(str), val[col],
                                 holdout[col])
    ctx.store.write_model(REAL_TEXTS, real)
    prompt = PromptVersion(
        id=f"{spec.name}-gen", version=1, model=ctx.client.model_id if ctx.client else "none",
        temperature=spec.generator.temperature, text=TEXT_INSTRUCTION,
    ).with_hash()
    ctx.store.write_yaml(prompt.filename, prompt.model_dump())
    return {
        "status": "running", "iteration": 0, "classes": schema.classes,
        "positive": schema.positive_class, "n_train": len(train), "n_validation": len(val),
        "n_holdout": len(holdout), "ranked_columns": [col], "synthetic_batches": [],
        "synthetic_rows": 0, "tokens_used": 0, "no_improvement": 0, "stop_reason": None,
        "prompt": prompt.model_dump(), "events": events,
    }


def _validation_embeddings(ctx: LoopContext) -> np.ndarray:
    return ctx.embedder.embed(ctx.frame(VALIDATION)[ctx.schema.text_column].tolist())


def analyse(state: LoopState, ctx: LoopContext) -> dict:
    spec, schema = ctx.spec, ctx.schema
    model = ctx.store.read_model(state["current_model"])
    val = ctx.frame(VALIDATION)
    proba = model.predict_proba(val)
    y = val[schema.target].astype(str).to_numpy()
    binary = len(schema.classes) == 2
    threshold = spec.metric.threshold
    if binary:
        pos = schema.classes.index(schema.positive_class)
        threshold = analysis_threshold(proba[:, pos], y == schema.positive_class,
                                       spec.metric.threshold,
                                       getattr(loop_metric(ctx), "needs_threshold", False))
    result = text_error_analysis(
        val[schema.text_column].tolist(), y, proba, schema.classes, _validation_embeddings(ctx),
        k_clusters=spec.analysis.max_regions, min_cluster_size=spec.analysis.min_support,
        positive_class=schema.positive_class if binary else None, threshold=threshold,
        seed=spec.seed,
    )
    targets = text_targets(result, y)
    if not spec.analysis.feedback:  # the open loop: the class that matters, anywhere
        label = schema.positive_class
        targets = [TextTarget(id="w1", kind="class", label=label, rule=f"class '{label}'",
                              support=int((y == label).sum()),
                              errors=int((y == label).sum()),
                              recall=result.recall.get(label))]
    summary = {
        "rows": result.rows, "misclassified": result.misclassified,
        "accuracy": result.accuracy, "threshold": round(float(threshold), 6),
        "recall": result.recall, "support": result.support,
        "confusions": [c.model_dump() for c in result.confusions],
        "clusters": [c.model_dump(exclude={"members", "representatives"})
                     for c in result.clusters],
    }
    k = state.get("iteration", 0)
    ctx.store.write_json(f"analysis/iter_{k:03d}.json",
                         {"kind": "text", "summary": summary,
                          "describe": result.describe(),
                          "targets": [t.model_dump() for t in targets]})
    return {"regions": [t.model_dump() for t in targets], "analysis": summary,
            "confidence_floors": {}}


def text_targets(result: TextErrorAnalysis, y: np.ndarray) -> list[TextTarget]:
    """One target per error cluster, then one per class with misclassified texts that no
    cluster is labelled with (a weak class), anchored on those texts."""
    targets = []
    for c in result.clusters:
        kw = ", ".join(c.keywords[:3])
        targets.append(TextTarget(
            id=c.id, kind="cluster", label=c.label, predicted=c.predicted,
            rule=f"cluster {c.id}: '{c.label}' read as '{c.predicted}'"
                 + (f" ({kw})" if kw else ""),
            support=c.size, errors=c.true_labels.get(c.label, c.size),
            recall=result.recall.get(c.label), keywords=c.keywords,
            representatives=[shorten(t, REPRESENTATIVE_CHARS) for t in c.representatives],
            members=c.members,
        ))
    covered = {t.label for t in targets}
    wrong_by_class: dict[str, list[int]] = {}
    for cl in result.clusters:
        for i in cl.members:
            wrong_by_class.setdefault(str(y[i]), []).append(i)
    for j, label in enumerate(c for c in result.weakest_classes() if c not in covered):
        members = sorted(wrong_by_class.get(label, []))
        if not members:
            continue
        targets.append(TextTarget(
            id=f"w{j + 1}", kind="class", label=label, rule=f"weak class '{label}'",
            support=result.support[label], errors=len(members),
            recall=result.recall.get(label), members=members,
        ))
    return targets


def rewrite(state: LoopState, ctx: LoopContext) -> dict:
    targets = [TextTarget.model_validate(r) for r in state["regions"]]
    return nodes.rewrite_targets(state, ctx, targets, text_rewrite_task(ctx.spec.text.labels))


def generate(state: LoopState, ctx: LoopContext) -> dict:
    k, g, t = state["iteration"], ctx.spec.generator, ctx.spec.text
    prompt = PromptVersion.model_validate(state["prompt"])
    targets = [TextTarget.model_validate(r) for r in prompt.focus_regions] or \
        [TextTarget.model_validate(r) for r in state["regions"]]
    E = _validation_embeddings(ctx)
    anchors = {x.id: E[x.members] for x in targets if x.members}
    batch, stats = generate_texts(
        ctx.client, prompt, targets, ctx.corpus, ctx.schema, anchors,
        n_texts=ctx.spec.budget.rows_per_iteration, texts_per_call=g.rows_per_call,
        few_shot=g.few_shot, temperature=g.temperature, max_tokens=g.max_tokens_per_call,
        min_chars=MIN_GENERATED_CHARS, max_chars=t.max_chars,
        max_exemplar_chars=t.max_exemplar_chars, label_descriptions=t.labels,
        contrast_share=g.contrast_share, run_id=state["run_id"], iteration=k,
        seed=ctx.spec.seed,
    )
    return nodes.generated_update(state, ctx, batch, stats)


def gates(ctx: LoopContext) -> TextGates:
    t = ctx.spec.text
    return TextGates(min_words=t.min_words, max_chars=t.max_chars,
                     in_domain_similarity=t.in_domain_similarity,
                     near_copy_similarity=t.near_copy_similarity,
                     max_ungrounded=t.max_ungrounded, max_self_bleu=t.max_self_bleu,
                     max_mean_cosine=t.max_mean_cosine,
                     max_violation_rate=ctx.spec.curation.max_violation_rate)


def validate(state: LoopState, ctx: LoopContext) -> dict:
    k, schema = state["iteration"], ctx.schema
    batch = ctx.frame(state["batch"]["generated"])
    if batch.empty:  # no reply could be used: keep the columns so later nodes can read them
        batch = pd.DataFrame(columns=[schema.text_column, schema.target])
    previous = ctx.synthetic(state.get("synthetic_batches", []))
    prev_texts = [] if previous is None else previous[schema.text_column].tolist()
    result = validate_texts(batch, schema.text_column, schema.target,
                            ctx.store.read_model(REAL_TEXTS), ctx.embedder.embed, prev_texts,
                            gates(ctx))
    info = {
        **state["batch"],
        "valid": ctx.store.write_frame(batch_path(k, "valid"), result.valid),
        "invalid": ctx.store.write_frame(batch_path(k, "invalid"), result.rejected),
        "checks": result.checks,
    }
    if result.blocked:
        info["blocked"] = result.blocked
    return {"batch": info}


def curate(state: LoopState, ctx: LoopContext) -> dict:
    """Label consistency: texts whose content contradicts their label are removed."""
    k, schema, t = state["iteration"], ctx.schema, ctx.spec.text
    info = dict(state["batch"])
    valid = ctx.frame(info["valid"])
    invalid = ctx.frame(info["invalid"])
    checks = {**info["checks"], "label_accuracy": None, "label_contradictions": 0}
    update: dict[str, Any] = {}
    if valid.empty:
        info["curated"] = ctx.store.write_frame(batch_path(k, "curated"),
                                                valid.assign(_sl_confidence=[]))
        info["rejected"] = ctx.store.write_frame(batch_path(k, "rejected"), invalid)
        info["checks"] = checks
        return {"batch": info}
    model = ctx.store.read_model(state["current_model"])
    labels = valid[schema.target].astype(str).tolist()
    lc = label_consistency(model.predict_proba(valid), labels, schema.classes,
                           t.label_min_confidence)
    flagged = lc.contradicts.copy()
    reasons = [f"label contradicted: the classifier gives '{p}'" if c else ""
               for p, c in zip(lc.predicted, lc.contradicts)]
    curated = valid.assign(_sl_confidence=np.round(lc.label_proba, 6),
                           _sl_predicted=lc.predicted.astype(str))
    checks.update(lc.summary())
    if t.llm_judge and not info.get("blocked"):
        judged, jstats = judge_labels(
            ctx.client, valid[schema.text_column].tolist(), schema.classes,
            descriptions=t.labels, max_chars=t.max_exemplar_chars, seed=ctx.spec.seed,
            iteration=k)
        usage = ctx.client.take_usage("judge")
        update.update(usage=[{"node": "judge", "iteration": k, **usage}],
                      tokens_used=state.get("tokens_used", 0) + usage.get("tokens", 0))
        seen = [(j, lab) for j, lab in zip(judged, labels) if j is not None]
        disagree = np.array([j is not None and j != lab for j, lab in zip(judged, labels)])
        for i in np.flatnonzero(disagree & ~flagged):
            reasons[i] = f"label contradicted: the LLM judge says '{judged[i]}'"
        flagged |= disagree
        curated["_sl_judge"] = [j if j is not None else "" for j in judged]
        checks.update(
            judge_label_accuracy=round(float(np.mean([j == lab for j, lab in seen])), 4)
            if seen else None,
            judge_disagreements=int(disagree.sum()), **jstats)
    checks["label_removed"] = int(flagged.sum())
    dropped = curated.loc[flagged].assign(_sl_reject=[r for r, f in zip(reasons, flagged) if f])
    # written from the validation rejects each time, so a re-run after a crash never appends
    info["rejected"] = ctx.store.write_frame(batch_path(k, "rejected"),
                                             pd.concat([invalid, dropped], ignore_index=True))
    info["curated"] = ctx.store.write_frame(batch_path(k, "curated"),
                                            curated.loc[~flagged].reset_index(drop=True))
    info["checks"] = checks
    if flagged.all() and not info.get("blocked"):
        info["blocked"] = "label consistency removed every text"
    return {"batch": info, **update}


def accept(state: LoopState, ctx: LoopContext) -> dict:
    """The shared accept node, with the batch's text figures added to its iteration record."""
    update = nodes.accept(state, ctx)
    record = update["iterations"][0]
    checks = record.get("checks", {})
    record.update({name: checks.get(key) for name, key in TEXT_FIGURES.items()})
    ctx.store.write_json(f"iterations/iter_{record['iteration']:03d}.json", record)
    return update


def text_summary(state: LoopState, ctx: LoopContext) -> dict:
    """The text block of ``summary.json``: the corpus, the embedding model and the gates'
    totals over every batch."""
    its = state.get("iterations", [])
    checks = [r.get("checks", {}) for r in its]
    judged = sum(c.get("valid", 0) for c in checks if c.get("label_accuracy") is not None)
    label_ok = sum(c["label_accuracy"] * c.get("valid", 0) for c in checks
                   if c.get("label_accuracy") is not None)
    well_formed = sum(c.get("generated", 0) - c.get("malformed", 0) for c in checks)
    grounded = sum(c.get("generated", 0) - c.get("malformed", 0) - c.get("ungrounded", 0)
                   for c in checks)
    corpus = ctx.corpus
    return {
        "text_column": ctx.schema.text_column,
        "features": ctx.spec.text.features,
        "embedding_model": MODEL_NAME,
        "corpus": {"path": CHROMA, "collection": corpus.name, "records": corpus.count(),
                   "splits": dict(corpus.splits())},
        "texts_generated": sum(c.get("generated", 0) for c in checks),
        "grounded_share": round(grounded / well_formed, 4) if well_formed else None,
        "near_copies_rejected": sum(c.get("near_copies", 0) for c in checks),
        "label_accuracy": round(label_ok / judged, 4) if judged else None,
        "batches_blocked": sum(1 for r in its if not r.get("accepted")
                               and r.get("validation_metric") is None),
    }
