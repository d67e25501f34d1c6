"""Progress events: what the CLI shows while a loop runs, built from the graph's stream.

``node_event`` turns one ``{node: update}`` of ``graph.stream(stream_mode="updates")`` into a
flat, JSON-safe dict (node, iteration, rows, tokens, seconds, a one-line message), so the
text progress lines and the ``--json`` lines say the same thing. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any


def rule_text(rule: Any) -> str:
    """A region's rule as shown to a user: the rule ``True`` (a region with no condition: the
    whole class, or every row when no smaller region stood out) reads as ``all rows``."""
    return "all rows" if str(rule).strip() == "True" else str(rule)

def progress_event(node: str, payload: dict[str, Any], *, run_id: str | None = None,
                   elapsed: float | None = None) -> dict[str, Any]:
    """An LLM call finished inside a node that is still running: ``{"event": "progress",
    "run_id", "node", "elapsed", "llm_calls", "cached_calls", "failures", "tokens",
    "message"}`` (the counts are the node's so far, in this iteration)."""
    calls, cached = int(payload.get("llm_calls", 0)), int(payload.get("cached_calls", 0))
    from_cache = f", {cached} from the cache" if cached else ""
    return {"event": "progress", "run_id": run_id, "node": node,
            "elapsed": None if elapsed is None else round(elapsed, 2),
            "llm_calls": calls, "cached_calls": cached,
            "failures": int(payload.get("failures", 0)), "tokens": int(payload.get("tokens", 0)),
            "message": f"… {calls} LLM call(s){from_cache}, {int(payload.get('tokens', 0))} "
                       f"tokens so far"}


# counts in the validate node's ``checks`` that are not rejections
_NOT_REJECTIONS = {"generated", "violation_rate"}


def _invalid(checks: dict[str, Any]) -> int:
    """Rows the validate node rejected: the sum of its per-check counts."""
    return int(sum(v for k, v in checks.items()
                   if k not in _NOT_REJECTIONS and isinstance(v, int) and not isinstance(v, bool)))


def node_rows(node: str, update: dict[str, Any]) -> dict[str, int]:
    """The row counts a node's update carries (empty when it carries none)."""
    batch = update.get("batch") or {}
    checks = batch.get("checks") or {}
    if node == "prepare" and "n_train" in update:
        return {"train": update["n_train"], "validation": update["n_validation"],
                "holdout": update["n_holdout"]}
    if node == "generate" and "stats" in batch:
        return {"generated": int(batch["stats"].get("rows_returned", 0))}
    if node == "validate" and checks:
        bad = _invalid(checks)
        return {"valid": int(checks.get("generated", 0)) - bad, "invalid": bad}
    if node == "curate" and checks:
        return {"inconsistent": int(checks.get("inconsistent", 0)),
                "contradicted": int(checks.get("contradicted", 0)),
                "low_confidence": int(checks.get("low_confidence", 0))}
    if node == "blend" and checks:
        return {"over_cap": int(checks.get("over_cap", 0))}
    if node == "accept" and update.get("iterations"):
        r = update["iterations"][0]
        rows = {"accepted": int(r["rows_accepted"]), "rejected": int(r["rows_rejected"])}
        if "synthetic_rows" in update:
            rows["synthetic_total"] = int(update["synthetic_rows"])
        return rows
    return {}


def node_message(node: str, update: dict[str, Any]) -> str:
    """A short human sentence for a node's update ('' when there is nothing to add)."""
    batch = update.get("batch") or {}
    checks = batch.get("checks") or {}
    if node == "prepare" and "n_train" in update:
        return (f"real rows: train {update['n_train']}, validation {update['n_validation']}, "
                f"holdout {update['n_holdout']}")
    if node == "evaluate" and "baseline_validation" in update:
        return f"baseline validation {update['baseline_validation']:.4f}"
    if node == "analyse" and "regions" in update:
        regs = update.get("regions", [])
        return f"{len(regs)} region(s)" + (f"; top: {rule_text(regs[0]['rule'])}" if regs else "")
    if node == "decide" and update.get("stop_reason"):
        return f"stop: {update['stop_reason']}"
    if node == "rewrite" and update.get("prompt"):
        p = update["prompt"]
        return f"prompt v{p['version']} by {p.get('author')}"
    if node == "generate" and "stats" in batch:
        s = batch["stats"]
        return f"{s['rows_returned']} rows from {s['calls']} calls ({s['llm_failures']} failed)"
    if node == "validate" and "checks" in batch:
        c = batch["checks"]
        msg = f"violation rate {c.get('violation_rate', 0):.2f}"
        if "grounded_share" in c:  # a text batch
            msg += (f"; grounded {_num(c['grounded_share'])}, near copies "
                    f"{c.get('near_copies', 0)}, self-BLEU {_num(c.get('self_bleu'))}, "
                    f"mean cosine {_num(c.get('mean_cosine'))}")
        return msg + (f"; batch blocked: {batch['blocked']}" if batch.get("blocked") else "")
    if node == "curate" and "label_accuracy" in checks:  # a text batch
        return (f"label accuracy {_num(checks['label_accuracy'])}, "
                f"{checks.get('label_removed', 0)} removed")
    if node == "curate" and "low_confidence" in checks:
        contradicted = (f", {checks['contradicted']} as contradicting the class sentences"
                        if checks.get("contradicted") else "")
        return (f"{checks.get('inconsistent', 0)} row(s) dropped as inconsistent with their "
                f"other columns{contradicted}, {checks['low_confidence']} for low confidence "
                "in their label")
    if node == "blend" and "over_cap" in checks:
        return f"{checks['over_cap']} row(s) over the synthetic-share cap or the class balance"
    if node == "accept" and update.get("iterations"):
        r = update["iterations"][0]
        if r["accepted"]:
            return f"{r['rows_accepted']} rows accepted: {r['reason']}"
        return f"batch refused, no row kept: {r['reason']}"
    if node == "report" and update.get("status") == "finished":
        return "summary.json and report.html written"
    return ""


def node_event(node: str, update: dict[str, Any], *, run_id: str | None = None,
               elapsed: float | None = None) -> dict[str, Any]:
    """One progress event: ``{"event": "node", "run_id", "node", "iteration", "seconds",
    "elapsed", "tokens", "tokens_used", "rows", "message"}``.

    ``seconds`` is the node's own time, ``tokens`` the LLM tokens it spent, ``tokens_used`` the
    run's running total (None when the node does not change it).
    """
    usage = update.get("usage") or []
    event = {
        "event": "node",
        "run_id": run_id,
        "node": node,
        "iteration": update.get("iteration", next(
            (t.get("iteration") for t in update.get("timings", [])), None)),
        "seconds": round(sum(t["seconds"] for t in update.get("timings", [])), 4),
        "elapsed": None if elapsed is None else round(elapsed, 2),
        "tokens": int(sum(u.get("tokens", 0) for u in usage)),
        "tokens_used": update.get("tokens_used"),
        "rows": node_rows(node, update),
        "message": node_message(node, update),
    }
    if update.get("stop_reason"):
        event["stop_reason"] = update["stop_reason"]
    if node == "accept" and update.get("iterations"):
        r = update["iterations"][0]
        event["validation_metric"] = r["validation_metric"]
        event["best_validation"] = r["best_validation"]
        event["accepted"] = r["accepted"]
    return event


def finished_event(summary: dict[str, Any]) -> dict[str, Any]:
    """The last ``--json`` line of a run: its outcome."""
    keys = ("run_id", "status", "stop_reason", "metric", "baseline", "final", "lift",
            "synthetic_rows", "synthetic_sha256", "total_tokens", "wall_seconds", "fallbacks")
    return {"event": "finished", **{k: summary.get(k) for k in keys},
            "iterations": len(summary.get("iterations", []))}


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}"
