"""Reading a run folder for people: what ``synthloop runs`` and ``synthloop lineage`` show.

Everything here reads; nothing writes. Each function returns JSON-safe dicts (the CLI prints
them as tables, or as JSON with ``--json``). Sources: ``spec.yaml``, ``summary.json`` (a
finished run), ``iterations/iter_NNN.json``, ``analysis/iter_NNN.json``, ``prompts/*.yaml``,
``data/batches/iter_NNN_*.parquet`` and the LangGraph checkpoints (unfinished runs' costs).

A generated row's fate is read from the batch files of its iteration:

====================  =====================================================================
stage                  how it is found
====================  =====================================================================
validation             in ``_invalid`` (its ``_sl_reject``: range, rule, region, copy, ...)
curation               in ``_rejected`` but not ``_invalid`` (inconsistent with its other
                       columns, its label contradicting the class sentences of
                       ``curation.label_critic``, or low confidence in its label)
batch blocked          the iteration kept nothing and never refitted (its record's reason)
blend                  in ``_curated`` but not ``_candidate``: over the share cap or class balance
acceptance             in ``_candidate`` of an iteration whose batch was refused
kept                   in ``_candidate`` of an accepted iteration (and in synthetic.parquet)
====================  =====================================================================
"""

from __future__ import annotations

import difflib
import json
import math
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from synthloop.errors import RunStoreError
from synthloop.store import (
    CHECKPOINT_FILE,
    FORK_FILE,
    SPEC_FILE,
    SUMMARY_FILE,
    RunStore,
    run_folders,
)
from synthloop.tools.teacher import PREFIX as TEACHER_PREFIX
from synthloop.tools.teacher import teacher_columns

TRAIN = "data/real_train.parquet"
SYNTHETIC = "data/synthetic.parquet"
STAGES = ("generated", "valid", "invalid", "curated", "rejected", "candidate")


# -- finding runs ---------------------------------------------------------------------------
def find_run(run_id: str, runs_dir: str | Path = "runs") -> RunStore:
    """The store of run ``run_id`` (or of the run folder ``run_id``), else one clear error."""
    return RunStore.open(runs_dir, run_id)


def decision_label(run: dict) -> str:
    """What a run's "validation" scores are: the validation split's, or out-of-fold over the
    real training and validation rows (``blend.accept_on: cross_validation``)."""
    d = run.get("decided_on") or {}
    if d.get("rule") == "cross_validation":
        return f"cross-validated ({d['folds']} folds, {d['rows']} real rows)"
    return "validation"


def teacher_label(run: dict) -> str | None:
    """Who labelled a run's delivered rows, e.g. "logistic_regression + random_forest on the
    training and validation rows (36 rows)"; None for a run without a final teacher. A final
    teacher that saw the holdout (``curation.final_teacher_rows: all``) says so, since the
    run's holdout scores cannot judge those labels."""
    teacher = run.get("teacher") or {}
    if not teacher.get("rows_final"):
        return None
    seen = ("every real row, the holdout's too: score the delivered rows outside the run"
            if teacher.get("final_rows") == "all" else "the training and validation rows")
    return f"{' + '.join(teacher['kinds'])} on {seen} ({teacher['rows_final']} rows)"


def validation_noise(run: dict) -> str:
    """The validation lift beside one standard error of it on the rows that decided (paired
    bootstrap), e.g. " (lift +0.0972 ± 0.2095, one standard error over 12 rows)"; empty for a
    run that kept nothing, whose figure could not be measured, or that was written before it
    existed."""
    se = (run.get("lift") or {}).get("validation_se")
    if not se or not math.isfinite(se):
        return ""
    decided = run.get("decided_on") or {}
    # a cross-validated label already names its rows
    over = (f" over {decided['rows']} rows"
            if decided.get("rows") and decided.get("rule") != "cross_validation" else "")
    return f" (lift {run['lift']['validation']:+.4f} ± {se:.4f}, one standard error{over})"


# -- small readers --------------------------------------------------------------------------
def _json_files(store: RunStore, folder: str) -> dict[int, dict]:
    out = {}
    for p in sorted((store.root / folder).glob("iter_*.json")):
        try:
            out[int(p.stem.split("_")[1])] = json.loads(p.read_text())
        except (ValueError, IndexError, json.JSONDecodeError):
            continue
    return out


def iteration_records(store: RunStore) -> list[dict]:
    """The record of each finished iteration, in order (``iterations/iter_NNN.json``)."""
    return [r for _, r in sorted(_json_files(store, "iterations").items())]


def analyses(store: RunStore) -> dict[int, dict]:
    """Error analysis by iteration: ``analysis/iter_NNN.json`` (0: the baseline model's)."""
    return _json_files(store, "analysis")


def prompt_versions(store: RunStore) -> list[dict]:
    """Every prompt version of the run, oldest first (``prompts/*.yaml``)."""
    found = []
    for p in (store.root / "prompts").glob("*.yaml"):
        doc = yaml.safe_load(p.read_text()) or {}
        doc["file"] = f"prompts/{p.name}"
        found.append(doc)
    return sorted(found, key=lambda d: (d.get("version", 0), d["file"]))


def fork_info(store: RunStore) -> dict | None:
    return store.read_json(FORK_FILE) if store.exists(FORK_FILE) else None


def summary_of(store: RunStore) -> dict | None:
    return store.read_json(SUMMARY_FILE) if store.exists(SUMMARY_FILE) else None


def _clean(v: Any) -> Any:
    """A JSON-safe scalar (numpy to Python, NaN to None)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def records_of(df: pd.DataFrame) -> list[dict]:
    return [{k: _clean(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


# -- runs list ------------------------------------------------------------------------------
def run_overview(store: RunStore) -> dict[str, Any]:
    """One line of ``runs list``: status, stop reason, metric and lift, cost, parent."""
    summary = summary_of(store)
    spec = yaml.safe_load((store.root / SPEC_FILE).read_text()) or {}
    records = iteration_records(store)
    fork = fork_info(store)
    row: dict[str, Any] = {
        "run_id": store.run_id,
        "name": spec.get("name"),
        "metric": (spec.get("metric") or {}).get("name"),
        "iterations": len(records),
        "parent": fork["parent"] if fork else None,
    }
    if summary:
        row.update(
            status=summary.get("status", "finished"), stop_reason=summary.get("stop_reason"),
            baseline_holdout=summary["baseline"]["holdout"], final_holdout=summary["final"]["holdout"],
            lift_holdout=summary["lift"]["holdout"], lift_validation=summary["lift"]["validation"],
            synthetic_rows=summary.get("synthetic_rows"), tokens=summary.get("total_tokens"),
            seconds=summary.get("wall_seconds"))
    else:
        row.update(
            status="unfinished" if store.exists(CHECKPOINT_FILE) else "not started",
            stop_reason=None, baseline_holdout=None, final_holdout=None, lift_holdout=None,
            lift_validation=None,
            synthetic_rows=sum(r["rows_accepted"] for r in records if r.get("accepted")),
            tokens=sum(r.get("tokens", 0) for r in records),
            seconds=round(sum(r.get("seconds", 0) for r in records), 2))
    return row


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run under ``runs_dir``, oldest first."""
    return [run_overview(RunStore(p)) for p in run_folders(runs_dir)]


# -- runs show ------------------------------------------------------------------------------
def prompt_diffs(versions: list[dict], fallbacks: dict[int, str] | None = None
                 ) -> list[dict[str, Any]]:
    """The change from each prompt version to the next: a unified diff of the instruction and
    the focus regions before and after, and for a fallback why the LLM's rewrite was not used
    (from the version, else from ``fallbacks``: iteration to reason, for runs written before
    versions kept it)."""
    out = []
    for old, new in zip(versions, versions[1:]):
        a = (old.get("text") or "").splitlines() or [""]
        b = (new.get("text") or "").splitlines() or [""]
        diff = list(difflib.unified_diff(
            _wrap(a), _wrap(b), fromfile=old["file"], tofile=new["file"], lineterm="", n=1))
        out.append({
            "from_version": old.get("version"), "to_version": new.get("version"),
            "iteration": new.get("iteration"), "author": new.get("author"),
            "sha256": new.get("sha256"),
            "focus_before": [r.get("rule") for r in old.get("focus_regions", [])],
            "focus_after": [r.get("rule") for r in new.get("focus_regions", [])],
            "diff": "\n".join(diff) if diff else "(instruction unchanged)",
            "fallback_reason": (new.get("fallback_reason")
                                or (fallbacks or {}).get(new.get("iteration"))
                                if new.get("author") == "fallback" else None),
        })
    return out


def _wrap(lines: list[str], width: int = 100) -> list[str]:
    """Instructions are one long line: break them at sentence ends so a diff shows what
    changed rather than the whole text twice."""
    import re
    import textwrap

    out: list[str] = []
    for line in lines:
        for sentence in re.split(r"(?<=[.;:!?])\s+", line):
            out.extend(textwrap.wrap(sentence, width) or [""])
    return out


def _frame(store: RunStore, k: int, stage: str) -> pd.DataFrame:
    rel = f"data/batches/iter_{k:03d}_{stage}.parquet"
    return store.read_frame(rel) if store.exists(rel) else pd.DataFrame()


def _ids(df: pd.DataFrame) -> list[str]:
    return df["_sl_row_id"].astype(str).tolist() if "_sl_row_id" in df.columns else []


def row_fates(store: RunStore, k: int, record: dict | None) -> pd.DataFrame:
    """Every row generated in iteration ``k`` with ``_sl_status`` (kept, rejected, pending),
    ``_sl_stage`` (where it was decided) and ``_sl_reason`` (why, for a rejected row).

    A kept row shows its values as blended (after noise); any other row as generated.
    """
    gen = _frame(store, k, "generated")
    if gen.empty or "_sl_row_id" not in gen.columns:
        return pd.DataFrame(columns=["_sl_row_id", "_sl_status", "_sl_stage", "_sl_reason"])
    invalid = _frame(store, k, "invalid")
    rejected = _frame(store, k, "rejected")
    reasons = {}
    if "_sl_reject" in rejected.columns:
        reasons.update(zip(_ids(rejected), rejected["_sl_reject"].astype(str)))
    invalid_ids = set(_ids(invalid))
    if "_sl_reject" in invalid.columns:  # a run stopped between validate and curate
        reasons.update(zip(_ids(invalid), invalid["_sl_reject"].astype(str)))
    curated = set(_ids(_frame(store, k, "curated")))
    cand_df = _frame(store, k, "candidate")
    candidate = set(_ids(cand_df))
    accepted = bool(record and record.get("accepted"))
    blocked = bool(record and not record.get("accepted") and record.get("validation_metric") is None)
    status, stage, why = [], [], []
    for rid in _ids(gen):
        if rid in reasons:
            s, st, r = "rejected", "validation" if rid in invalid_ids else "curation", reasons[rid]
        elif record is None:
            s, st, r = "pending", None, None
        elif accepted and rid in candidate:
            s, st, r = "kept", "acceptance", None
        elif blocked:
            s, st, r = "rejected", "batch blocked", f"batch blocked: {record.get('reason')}"
        elif rid in candidate:
            s, st, r = "rejected", "acceptance", f"batch refused: {record.get('reason')}"
        elif rid in curated:
            s, st, r = "rejected", "blend", "over the synthetic-share cap or the class balance"
        else:
            s, st, r = "rejected", "unknown", "not in any later stage of its batch"
        status.append(s)
        stage.append(st)
        why.append(r)
    out = gen.assign(_sl_status=status, _sl_stage=stage, _sl_reason=why)
    if accepted and not cand_df.empty:  # kept rows as blended
        cols = [c for c in cand_df.columns if c in out.columns and not c.startswith("_sl_")]
        kept = out["_sl_status"] == "kept"
        blended = cand_df.set_index("_sl_row_id").loc[out.loc[kept, "_sl_row_id"]]
        out.loc[kept, cols] = blended[cols].to_numpy()
        soft = teacher_columns(cand_df)  # curation.teacher: what each kept row counts as
        if soft:
            out = out.assign(**{c: np.nan for c in soft})
            out.loc[kept, soft] = blended[soft].to_numpy(float)
    return out


def _record_for(store: RunStore, k: int) -> dict | None:
    rel = f"iterations/iter_{k:03d}.json"
    return store.read_json(rel) if store.exists(rel) else None


def _feature_columns(store: RunStore) -> tuple[list[str], str | None]:
    if not store.exists("schema.json"):
        return [], None
    schema = store.read_json("schema.json")
    return [c["name"] for c in schema.get("columns", [])], schema.get("target")


def region_columns(rule: str | None, columns: list[str]) -> list[str]:
    """The columns a region rule names, in the schema's order."""
    from synthloop.errors import SynthloopError
    from synthloop.tools.constraints import parse_rule

    if not rule or rule == "True":
        return []
    try:
        names = set(parse_rule(rule).columns)
    except SynthloopError:  # a rule an older version wrote that no longer parses
        names = {c for c in columns if c in rule}
    return [c for c in columns if c in names]


def row_samples(store: RunStore, k: int, n: int = 3) -> dict[str, Any]:
    """``n`` kept and ``n`` rejected rows of iteration ``k`` (rejected ones with their
    reason), and the count of rows by reason."""
    fates = row_fates(store, k, _record_for(store, k))
    columns, target = _feature_columns(store)
    base = ["_sl_row_id", *([target] if target else []), "_sl_counterexample", "_sl_region",
            "_sl_stage", "_sl_reason"]

    def pick(df: pd.DataFrame) -> list[dict]:
        rows = []
        for rec in records_of(df.head(n)):
            shown = {k2: rec.get(k2) for k2 in base if k2 in rec}
            shown["values"] = {c: rec.get(c) for c in region_columns(rec.get("_sl_region"), columns)}
            teacher = {c[len(TEACHER_PREFIX):]: rec[c] for c in rec
                       if str(c).startswith(TEACHER_PREFIX) and pd.notna(rec[c])}  # NaN: unlabelled
            if teacher:
                shown["teacher"] = teacher
            rows.append(shown)
        return rows

    if fates.empty:
        return {"kept": [], "rejected": [], "reasons": {}, "counts": {}}
    rejected = fates[fates["_sl_status"] == "rejected"]
    # show different reasons first: one row per reason, then the rest
    order = pd.concat([rejected.drop_duplicates("_sl_reason"), rejected]).drop_duplicates(
        "_sl_row_id")
    return {
        "kept": pick(fates[fates["_sl_status"] == "kept"]),
        "rejected": pick(order),
        "reasons": dict(Counter(rejected["_sl_reason"]).most_common()),
        "counts": {k2: int(v) for k2, v in fates["_sl_status"].value_counts().items()},
    }


def cost_by_node(store: RunStore, iteration: int | None = None) -> list[dict[str, Any]]:
    """LLM calls, tokens and seconds by node: the whole run, or one iteration. Read from the
    checkpointed state (which holds per-iteration usage and timings), so an unfinished run has
    them too."""
    from synthloop.checkpoints import CheckpointReader

    usage: list[dict] = []
    timings: list[dict] = []
    snap = CheckpointReader(store).latest() if store.exists(CHECKPOINT_FILE) else None
    if snap is not None:
        usage, timings = snap.values.get("usage", []), snap.values.get("timings", [])
    elif (summary := summary_of(store)) is not None and iteration is None:
        return [{"node": node, "seconds": secs,
                 **summary.get("usage_by_node", {}).get(node, {})}
                for node, secs in summary.get("seconds_by_node", {}).items()]
    rows: dict[str, dict[str, Any]] = {}
    for t in timings:
        if iteration is None or t.get("iteration") == iteration:
            r = rows.setdefault(t["node"], {"node": t["node"], "calls": 0, "cached_calls": 0,
                                            "tokens": 0, "seconds": 0.0})
            r["seconds"] = round(r["seconds"] + t["seconds"], 4)
    for u in usage:
        if iteration is None or u.get("iteration") == iteration:
            r = rows.setdefault(u["node"], {"node": u["node"], "calls": 0, "cached_calls": 0,
                                            "tokens": 0, "seconds": 0.0})
            for key in ("calls", "cached_calls", "tokens"):
                r[key] += int(u.get(key, 0))
    return list(rows.values())


def show_run(run_id: str, runs_dir: str | Path = "runs", *, iteration: int | None = None,
             rows: int = 3) -> dict[str, Any]:
    """Everything ``synthloop runs show`` prints: the overview, the resolved spec, the
    per-iteration table, the error regions, the prompt diffs, sample kept and rejected rows
    with reasons, and tokens and seconds by node (for one iteration with ``iteration``)."""
    store = find_run(run_id, runs_dir)
    records = iteration_records(store)
    done = [r["iteration"] for r in records]
    found = analyses(store)
    if iteration is not None and iteration not in done and iteration not in found:
        have = f"0..{max(done)}" if done else "0"
        raise RunStoreError(f"Run '{store.run_id}' has no iteration {iteration}; pick one of "
                            f"{have} (0 is the baseline's analysis).")
    # with an iteration: the analysis that motivated it and the one after it
    wanted = sorted({max(iteration - 1, 0), iteration}) if iteration is not None else sorted(found)
    versions = prompt_versions(store)
    summary = summary_of(store)
    fallbacks = {e.get("iteration"): e.get("reason") for e in (summary or {}).get("events", [])
                 if e.get("kind") == "fallback" and e.get("node") == "rewrite"}
    diffs = prompt_diffs(versions, fallbacks)
    if iteration is not None:
        diffs = [d for d in diffs if d["iteration"] == iteration]
    sample_its = [iteration] if iteration is not None else done
    return {
        "overview": run_overview(store),
        "run_dir": str(store.root),
        "spec": (store.root / SPEC_FILE).read_text(),
        "summary": summary,
        "iterations": [r for r in records if iteration is None or r["iteration"] == iteration],
        "finished_iterations": done,
        "regions": {k: found[k].get("regions", []) for k in wanted if k in found},
        # rules left out because batches written for them were refused (analysis.set_aside_refused)
        "set_aside": {k: rules for k in wanted
                      if (rules := found.get(k, {}).get("summary", {}).get("set_aside"))},
        "prompts": [{k2: v.get(k2) for k2 in ("file", "version", "iteration", "author", "sha256")}
                    for v in versions],
        "prompt_diffs": diffs,
        "rows": {k: row_samples(store, k, rows) for k in sample_its if k > 0},
        "cost_by_node": cost_by_node(store, iteration),
    }


# -- runs diff ------------------------------------------------------------------------------
def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: d}


def _spec_values(store: RunStore) -> dict[str, Any]:
    return _flatten(yaml.safe_load((store.root / SPEC_FILE).read_text()) or {})


def diff_runs(run_a: str, run_b: str, runs_dir: str | Path = "runs") -> dict[str, Any]:
    """Spec, prompt and metric differences between two runs."""
    a, b = find_run(run_a, runs_dir), find_run(run_b, runs_dir)
    sa, sb = _spec_values(a), _spec_values(b)
    spec = [{"key": k, "a": sa.get(k), "b": sb.get(k)} for k in sorted(set(sa) | set(sb))
            if sa.get(k) != sb.get(k)]
    pa = {v.get("version"): v for v in prompt_versions(a)}
    pb = {v.get("version"): v for v in prompt_versions(b)}
    prompts = []
    for ver in sorted(set(pa) | set(pb)):
        va, vb = pa.get(ver), pb.get(ver)
        entry = {"version": ver,
                 "a": None if va is None else {"sha256": va.get("sha256"), "author": va.get("author"),
                                               "iteration": va.get("iteration")},
                 "b": None if vb is None else {"sha256": vb.get("sha256"), "author": vb.get("author"),
                                               "iteration": vb.get("iteration")},
                 "same": bool(va and vb and va.get("sha256") == vb.get("sha256"))}
        if va and vb and not entry["same"]:
            ta, tb = _wrap((va.get("text") or "").splitlines()), _wrap((vb.get("text") or "").splitlines())
            lines = list(difflib.unified_diff(ta, tb, fromfile=f"{a.run_id}/{va['file']}",
                                              tofile=f"{b.run_id}/{vb['file']}", lineterm="", n=1))
            what = [f"{k} {va.get(k)!r} → {vb.get(k)!r}" for k in ("model", "temperature")
                    if va.get(k) != vb.get(k)]
            if va.get("focus_regions") != vb.get("focus_regions"):
                what.append("focus regions")
            entry["diff"] = "\n".join(lines) if lines else \
                f"(same instruction; differs in {', '.join(what) or 'its hash only'})"
            entry["focus_a"] = [r.get("rule") for r in va.get("focus_regions", [])]
            entry["focus_b"] = [r.get("rule") for r in vb.get("focus_regions", [])]
        prompts.append(entry)
    ra = {r["iteration"]: r for r in iteration_records(a)}
    rb = {r["iteration"]: r for r in iteration_records(b)}
    per_iteration = [{
        "iteration": k,
        "a": _iteration_brief(ra.get(k)), "b": _iteration_brief(rb.get(k)),
    } for k in sorted(set(ra) | set(rb))]
    oa, ob = run_overview(a), run_overview(b)
    summ_a, summ_b = summary_of(a) or {}, summary_of(b) or {}
    pairs = {k: (oa.get(k), ob.get(k)) for k in (
        "status", "stop_reason", "iterations", "baseline_holdout", "final_holdout",
        "lift_holdout", "lift_validation", "synthetic_rows", "tokens", "seconds")}
    # from the summaries: the final model's own validation score, and how far the decision
    # rows' noise moves the validation lift
    for name, section, key in (("final_validation", "final", "validation"),
                               ("lift_validation_se", "lift", "validation_se")):
        pairs[name] = tuple((s.get(section) or {}).get(key) for s in (summ_a, summ_b))
    order = ("status", "stop_reason", "iterations", "final_validation", "baseline_holdout",
             "final_holdout", "lift_holdout", "lift_validation", "lift_validation_se",
             "synthetic_rows", "tokens", "seconds")
    metrics = [{"metric": k, "a": pairs[k][0], "b": pairs[k][1], "delta": _delta(*pairs[k])}
               for k in order]
    return {
        "a": a.run_id, "b": b.run_id,
        "relation": _relation(a, b),
        "spec": spec,
        "prompts": prompts,
        "metrics": metrics,
        "per_iteration": per_iteration,
        # what each run's per-iteration scores are: the validation split's or cross-validated
        "decided_on": {"a": decision_label(summ_a), "b": decision_label(summ_b)},
        "same_synthetic_data": (summ_a.get("synthetic_sha256") == summ_b.get("synthetic_sha256")
                                if summ_a and summ_b else None),
    }


def _iteration_brief(r: dict | None) -> dict | None:
    if r is None:
        return None
    return {k: r.get(k) for k in ("validation_metric", "accepted", "rows_generated",
                                  "rows_accepted", "prompt_sha256", "tokens", "seconds")}


def _delta(a: Any, b: Any) -> Any:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return round(b - a, 6)
    return None


def _relation(a: RunStore, b: RunStore) -> str | None:
    fa, fb = fork_info(a), fork_info(b)
    if fb and fb["parent"]["run_id"] == a.run_id:
        return f"{b.run_id} is a fork of {a.run_id} at iteration {fb['parent']['iteration']}"
    if fa and fa["parent"]["run_id"] == b.run_id:
        return f"{a.run_id} is a fork of {b.run_id} at iteration {fa['parent']['iteration']}"
    if fa and fb and fa["parent"]["run_id"] == fb["parent"]["run_id"]:
        return f"both are forks of {fa['parent']['run_id']}"
    return None


# -- lineage --------------------------------------------------------------------------------
def _iteration_of(row_id: str) -> int | None:
    parts = row_id.rsplit(":", 2)
    try:
        return int(parts[-2]) if len(parts) == 3 else None
    except ValueError:
        return None


def _find_row(store: RunStore, row_id: str) -> tuple[int, pd.Series] | None:
    guess = _iteration_of(row_id)
    its = sorted(int(p.name[5:8]) for p in (store.root / "data/batches").glob(
        "iter_*_generated.parquet")) if (store.root / "data/batches").is_dir() else []
    if guess in its:  # the row id names its iteration: look there first
        its.remove(guess)
        its.insert(0, guess)
    for k in its:
        fates = row_fates(store, k, _record_for(store, k))
        hit = fates[fates["_sl_row_id"].astype(str) == row_id]
        if len(hit):
            return k, hit.iloc[0]
    return None


def lineage(run_id: str, row_id: str, runs_dir: str | Path = "runs") -> dict[str, Any]:
    """A synthetic row's lineage: its iteration, prompt version, the error region that
    motivated it, the real training rows it was generated from, and whether (and why) it was
    kept or rejected."""
    store = find_run(run_id, runs_dir)
    found = _find_row(store, row_id)
    if found is None:
        sample = ""
        for p in sorted((store.root / "data/batches").glob("iter_*_generated.parquet")):
            ids = _ids(pd.read_parquet(p, columns=["_sl_row_id"]))
            if ids:
                sample = f" Row ids look like '{ids[0]}'."
                break
        raise RunStoreError(f"No synthetic row '{row_id}' in run '{store.run_id}'.{sample} "
                            f"See some with: synthloop runs show {shlex.quote(store.run_id)} --runs-dir "
                            f"{shlex.quote(str(store.root.parent))}")
    k, row = found
    columns, target = _feature_columns(store)
    values = {c: _clean(row.get(c)) for c in [*columns, *([target] if target else [])]}
    # the prompt version
    pid, pver = row.get("_sl_prompt_id"), _clean(row.get("_sl_prompt_version"))
    prompt_file = f"prompts/{pid}.v{int(pver):03d}.yaml" if pid is not None and pver is not None \
        else None
    prompt = {"id": pid, "version": pver, "sha256": row.get("_sl_prompt_sha256"),
              "file": prompt_file}
    if prompt_file and store.exists(prompt_file):
        doc = store.read_yaml(prompt_file)
        prompt.update(author=doc.get("author"), text=doc.get("text"),
                      file_sha256_matches=doc.get("sha256") == row.get("_sl_prompt_sha256"),
                      focus_regions=[r.get("rule") for r in doc.get("focus_regions", [])])
    # the region, with the analysis that found it (the one before this iteration's rewrite)
    rule = row.get("_sl_region")
    analysis = analyses(store).get(k - 1, {})
    stats = next((r for r in analysis.get("regions", []) if r.get("rule") == rule), None)
    counter = bool(_clean(row.get("_sl_counterexample")))
    region = {"rule": rule, "analysis": f"analysis/iter_{k - 1:03d}.json" if stats else None,
              "counterexample": counter, "stats": stats}
    # the real exemplars
    exemplars = []
    train = store.read_frame(TRAIN) if store.exists(TRAIN) else pd.DataFrame()
    for ref in str(row.get("_sl_exemplars") or "").split(","):
        ref = ref.strip()
        if not ref:
            continue
        split, _, pos = ref.partition(":")
        entry: dict[str, Any] = {"id": ref}
        if split == "train" and pos.isdigit() and int(pos) < len(train):
            entry["values"] = {c: _clean(v) for c, v in train.iloc[int(pos)].items()}
        else:
            entry["missing"] = f"no row {pos} in {TRAIN}"
        exemplars.append(entry)
    in_synthetic = None
    if store.exists(SYNTHETIC):
        syn = pd.read_parquet(store.root / SYNTHETIC, columns=None)
        in_synthetic = "_sl_row_id" in syn.columns and row_id in set(syn["_sl_row_id"].astype(str))
    return {
        "run_id": store.run_id,
        "row_id": row_id,
        "iteration": k,
        "status": row["_sl_status"],
        "stage": row["_sl_stage"],
        "reason": row["_sl_reason"],
        "in_synthetic_parquet": in_synthetic,
        "label": values.get(target) if target else None,
        "values": values,
        "prompt": prompt,
        "region": region,
        "exemplars": exemplars,
        "generator": row.get("_sl_generator"),
        "seed": _clean(row.get("_sl_seed")),
        "origin_run_id": row.get("_sl_run_id"),
    }
