"""Reviewing a paused run's batch: show it, and approve, reject or edit it.

A run whose spec says ``review: {mode: batch}`` pauses before accepting each batch
(``synthloop.graphs.review``). These are the library calls behind ``synthloop review``:
:func:`pending_review` and :func:`candidate_rows` show what waits; :func:`review_run` answers
and resumes the run, which goes on until the next batch to review or its end.

An edited file is checked like a generated batch before anything changes: the schema's columns,
types, ranges and categories, known classes, the spec's rules and extra validators, no copy of
a real row and no duplicate of a synthetic one (region membership is not required: a reviewer
may move a row). A bad edit is one ReviewError and leaves the run as it was.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
from langgraph.types import Command

from synthloop.data import conform, read_file
from synthloop.errors import DataError, ReviewError
from synthloop.graphs.context import LEAKAGE, SCHEMA, TEACHER
from synthloop.paths import output_file
from synthloop.runner import default_cache_dir, execute, open_graph, pending_interrupt
from synthloop.spec import LoopSpec, load_spec
from synthloop.store import SPEC_FILE, SUMMARY_FILE, RunStore, resume_command, review_command
from synthloop.tools.teacher import PREFIX as TEACHER_PREFIX
from synthloop.tools.teacher import teacher_columns

ACTIONS = ("approve", "reject", "edit")
REVIEWED = "data/batches/iter_{k:03d}_reviewed.parquet"


def _open(run_id: str, runs_dir: str | Path) -> tuple[RunStore, LoopSpec]:
    store = RunStore.open(runs_dir, run_id)
    return store, load_spec(store.root / SPEC_FILE)


def pending_review(run_id: str, runs_dir: str | Path = "runs", *, checkpointer=None) -> dict:
    """What waits for review: iteration, candidate file, rows by class, checks, prompt."""
    store, spec = _open(run_id, runs_dir)
    with open_graph(store, spec, checkpointer) as graph:
        pending = pending_interrupt(graph, run_id)
    if pending is None:
        state = "it is finished" if store.exists(SUMMARY_FILE) else \
            "it is not paused for review; continue it with: " + resume_command(run_id, runs_dir)
        mode = "" if spec.review.mode == "batch" else " (its spec has no review: {mode: batch})"
        raise ReviewError(f"Run '{run_id}' has no batch waiting for review: {state}{mode}.")
    return pending


def candidate_rows(run_id: str, runs_dir: str | Path, pending: dict) -> pd.DataFrame:
    """The candidate rows waiting for review (features, label and provenance)."""
    return RunStore.open(runs_dir, run_id).read_frame(pending["candidate"])


def export_rows(rows: pd.DataFrame, schema_cols: list[str], path: Path) -> Path:
    """The rows to edit, as CSV or parquet: ``_sl_row_id``, the features and the label, and
    with ``curation.teacher`` the teacher's probability of each class (``_sl_teacher:<class>``,
    what the row counts as; read only: the import ignores them, a changed label overrides)."""
    cols = ["_sl_row_id", *[c for c in schema_cols if c in rows.columns],
            *teacher_columns(rows)]
    frame = rows[cols]
    suffix = Path(path).suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise ReviewError(f"Export to '{path}': use a .csv or .parquet file name.")
    path = output_file(path, "--export")
    try:
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    except OSError as exc:
        raise ReviewError(f"--export '{path}': cannot write it ({exc.strerror}); "
                          f"pick a path you can write to") from None
    return path


def review_run(run_id: str, runs_dir: str | Path = "runs", *, action: str,
               reason: str | None = None, edit: str | Path | None = None,
               reviewer: str | None = None, chat_model=None, cache_dir: Any = "default",
               on_update=None, checkpointer=None) -> dict[str, Any]:
    """Decide on the pending batch and resume the run; returns its summary when it finishes,
    or raises ReviewPending when it pauses at the next batch."""
    if action not in ACTIONS:
        raise ReviewError(f"Review action {action!r} must be one of {', '.join(ACTIONS)}.")
    if (action == "edit") != (edit is not None):
        raise ReviewError("Give an edited file with the edit action (--edit FILE), and only then.")
    store, spec = _open(run_id, runs_dir)
    pending = pending_review(run_id, runs_dir, checkpointer=checkpointer)
    decision: dict[str, Any] = {"action": action, "reason": reason, "reviewer": reviewer}
    if action == "edit":
        decision.update(apply_edit(store, spec, pending, Path(edit)))
    cache = default_cache_dir(runs_dir) if cache_dir == "default" else cache_dir
    return execute(store, spec, resume=True, chat_model=chat_model,
                   cache_dir=Path(cache) if cache else None, on_update=on_update,
                   checkpointer=checkpointer, command=Command(resume=decision))


# -- edits ------------------------------------------------------------------------------------
def apply_edit(store: RunStore, spec: LoopSpec, pending: dict, path: Path) -> dict[str, Any]:
    """Check an edited file of candidate rows and write it into the run as the iteration's
    reviewed batch; returns the decision's ``candidate`` and ``edits``."""
    from synthloop.data import TableSchema
    from synthloop.graphs.context import LoopContext

    if not Path(path).is_file():
        raise ReviewError(f"The edited file '{path}' does not exist; pass the file you exported "
                          "with --export and edited.")
    try:
        edited = read_file(str(path))
    except DataError as exc:
        raise ReviewError(f"The edited file cannot be read: {exc}") from None
    schema = TableSchema.model_validate(store.read_json(SCHEMA))
    original = store.read_frame(pending["candidate"])
    k = int(pending["iteration"])
    where = f"the edit in '{path}'"
    again = (f"fix the file and run: {review_command(store.run_id, store.root.parent)} --edit "
             f"{shlex.quote(str(path))}")
    needed = [*schema.feature_names(), schema.target]
    missing = [c for c in needed if c not in edited.columns]
    if missing:
        raise ReviewError(f"{where} lacks column(s) {missing}; keep every column of the exported "
                          f"batch ({again}).")
    unknown = [c for c in edited.columns if c not in needed and not str(c).startswith("_sl_")]
    if unknown:
        raise ReviewError(f"{where} has column(s) {unknown} the data does not have; remove them "
                          f"({again}).")
    if edited.empty:
        raise ReviewError(f"{where} holds no rows; to refuse the batch use --reject instead.")
    edited = edited.reset_index(drop=True)
    ids = edited["_sl_row_id"] if "_sl_row_id" in edited.columns else pd.Series([None] * len(edited))
    ids = ids.where(ids.notna() & (ids.astype(str).str.strip() != ""), None)
    known = set(original["_sl_row_id"].astype(str))
    dup_ids = ids.dropna()[ids.dropna().duplicated()]
    if len(dup_ids):
        raise ReviewError(f"{where} repeats _sl_row_id {dup_ids.iloc[0]!r}; give each row once, "
                          f"and a new row no id ({again}).")
    foreign = [i for i in ids.dropna().astype(str) if i not in known]
    if foreign:
        raise ReviewError(f"{where} has _sl_row_id {foreign[0]!r}, which is not a row of this "
                          f"batch; give a new row an empty id ({again}).")
    labels = sorted(set(edited[schema.target].astype(str)) - set(schema.classes))
    if labels:
        raise ReviewError(f"{where} has class {labels[0]!r} in '{schema.target}', which is not "
                          f"a class ({', '.join(schema.classes)}); {again}.")

    rows = _with_provenance(edited, ids, original, schema, spec, store.run_id, k, pending)
    ctx = LoopContext(spec=spec, store=store, client=None)
    _check_rows(rows, ctx, schema, store, pending, where, again)
    rows = conform(rows, schema)[original.columns.union(rows.columns, sort=False)]
    if spec.curation.teacher and store.exists(TEACHER):
        # rows whose cells the reviewer changed are labelled again for what they now say;
        # a changed label or a new row stays the reviewer's (Teacher.label leaves it empty)
        rows = store.read_model(TEACHER).label(rows, schema)
    rel = REVIEWED.format(k=k)
    store.write_frame(rel, rows)
    before = original.set_index("_sl_row_id")
    changed = [rid for rid in rows["_sl_row_id"] if rid in known and not _same(
        rows.set_index("_sl_row_id").loc[rid, needed], before.loc[rid, needed])]
    kept = set(rows["_sl_row_id"])
    return {"candidate": rel, "edits": {
        "file": str(path), "rows": int(len(rows)), "changed": changed,
        "added": int(ids.isna().sum()),
        "removed": [rid for rid in original["_sl_row_id"] if rid not in kept]}}


def _same(a: pd.Series, b: pd.Series) -> bool:
    for x, y in zip(a.tolist(), b.tolist()):
        if pd.isna(x) and pd.isna(y):
            continue
        try:
            # a CSV round trip may move a float by its last digit: not a reviewer's change
            if math.isclose(float(x), float(y), rel_tol=1e-12, abs_tol=1e-300):
                continue
        except (TypeError, ValueError):
            pass
        if str(x) != str(y):
            return False
    return True


def _with_provenance(edited: pd.DataFrame, ids: pd.Series, original: pd.DataFrame, schema,
                     spec: LoopSpec, run_id: str, k: int, pending: dict) -> pd.DataFrame:
    """Kept rows keep their provenance (a file cannot rewrite it); new rows are marked as the
    reviewer's."""
    needed = [*schema.feature_names(), schema.target]
    prov = [c for c in original.columns if c.startswith("_sl_")]
    by_id = original.set_index("_sl_row_id")
    out = []
    new_i = 0
    for i, rid in enumerate(ids):
        values = edited.loc[i, needed].to_dict()
        if rid is not None:
            meta = by_id.loc[str(rid)].to_dict()
            meta["_sl_row_id"] = str(rid)
            if not _same(pd.Series(values)[[schema.target]],
                         by_id.loc[str(rid), [schema.target]]):
                # a label the reviewer changed is a person's label: the teacher's
                # probabilities (curation.teacher) no longer count for that row
                meta.update({c: None for c in prov if c.startswith(TEACHER_PREFIX)})
        else:
            meta = {c: None for c in prov}
            meta.update({
                "_sl_row_id": f"{run_id}:{k}:review{new_i}", "_sl_origin": "synthetic",
                "_sl_run_id": run_id, "_sl_iteration": k, "_sl_generator": "human:review",
                "_sl_seed": spec.seed, "_sl_region": "True", "_sl_counterexample": False,
                "_sl_exemplars": "", "_sl_weight": spec.blend.synthetic_weight,
            })
            first = original.iloc[0] if len(original) else None
            for c in ("_sl_prompt_id", "_sl_prompt_version", "_sl_prompt_sha256"):
                if first is not None and c in original.columns:
                    meta[c] = first[c]
            new_i += 1
        out.append({**values, **{c: meta.get(c) for c in prov if c != "_sl_row_id"},
                    "_sl_row_id": meta["_sl_row_id"]})
    frame = pd.DataFrame(out)
    for c in teacher_columns(frame):
        frame[c] = frame[c].astype(float)
    return frame[[c for c in original.columns if c in frame.columns] +
                 [c for c in frame.columns if c not in original.columns]]


def _check_rows(rows: pd.DataFrame, ctx, schema, store: RunStore, pending: dict, where: str,
                again: str) -> None:
    from synthloop.tools.validation import (
        BUILTIN_VALIDATORS,
        RegionCheck,
        ValidationContext,
        run_validators,
        schema_problem,
    )

    previous = ctx.synthetic(pending.get("synthetic_batches", []))
    vctx = ValidationContext(schema=schema, rules=list(ctx.spec.rules),
                             leakage=store.read_model(LEAKAGE), previous=previous,
                             near_distance=ctx.spec.curation.near_duplicate_distance,
                             keep_training_copies=ctx.spec.curation.keep_training_copies)
    checks = [v for v in BUILTIN_VALIDATORS if not isinstance(v, RegionCheck)]
    checks += [ctx.registry.get("validator", n) for n in ctx.spec.validators]
    _, rejected, _ = run_validators(rows, checks, vctx)
    if rejected.empty:
        return
    def why(i) -> str:
        reason = rejected.loc[i, "_sl_reject"]
        if reason in ("type", "range", "category", "null"):  # say which column, and its bounds
            return schema_problem(rejected.loc[i], schema) or reason
        return reason

    shown = "; ".join(f"row {int(i) + 1} ({rejected.loc[i, '_sl_row_id']}): {why(i)}"
                      for i in rejected.index[:3])
    more = f" and {len(rejected) - 3} more" if len(rejected) > 3 else ""
    raise ReviewError(f"{where} breaks {len(rejected)} of {len(rows)} row(s): {shown}{more}. "
                      f"Nothing was changed; {again}.")
