"""The human review gate (``review: {mode: batch}``): a node between blend and accept.

It pauses the graph with LangGraph's ``interrupt`` and the batch's figures (counts by class,
the checks, the prompt that wrote it); the run's checkpoint keeps everything before it.
``synthloop review RUN_ID`` answers with ``Command(resume=decision)``: LangGraph then runs this
node again from its start, ``interrupt`` returns the decision, and the graph goes on. The node
only reads until the decision is in, and the nodes before it are not run again (their updates
are in the checkpoint), so no LLM call, batch file or iteration record is made twice.

Decisions: ``approve`` (the batch goes on to the usual acceptance test: kept only if the
validation metric does not drop), ``reject`` (refused whole, with the reason in the iteration
record) and ``edit`` (the reviewer's rows, already validated by ``synthloop.review``, replace
the candidate rows and go on to the acceptance test).
"""

from __future__ import annotations

from typing import Literal

from langgraph.types import interrupt
from pydantic import BaseModel, Field, model_validator

from synthloop.graphs.context import LoopContext
from synthloop.graphs.state import LoopState


class ReviewDecision(BaseModel):
    action: Literal["approve", "reject", "edit"]
    reason: str | None = None
    reviewer: str | None = None
    candidate: str | None = Field(None, description="edit: the reviewed rows' file in the run")
    edits: dict = Field(default_factory=dict, description="edit: rows changed, added, removed")

    @model_validator(mode="after")
    def _edit_names_its_rows(self) -> ReviewDecision:
        if (self.action == "edit") != (self.candidate is not None):
            raise ValueError("an edit decision names the reviewed rows' file (candidate), and "
                             "only an edit does; use synthloop.review.review_run")
        return self


def review_file(iteration: int) -> str:
    return f"reviews/iter_{iteration:03d}.json"


def pending_payload(state: LoopState, ctx: LoopContext) -> dict:
    """What the reviewer is shown (small: it is stored in the checkpoint)."""
    k, info = state["iteration"], state["batch"]
    cand = ctx.frame(info["candidate"])
    target = ctx.schema.target
    prompt = state["prompt"]
    return {
        "run_id": state["run_id"],
        "iteration": k,
        "candidate": info["candidate"],
        "rows": int(len(cand)),
        "by_class": {str(c): int(n) for c, n in
                     cand[target].astype(str).value_counts().sort_index().items()},
        "counterexamples": int(cand["_sl_counterexample"].astype(bool).sum())
        if "_sl_counterexample" in cand.columns else 0,
        "checks": info.get("checks", {}),
        "generation": {k2: v for k2, v in info.get("stats", {}).items()
                       if k2 != "failure_reasons"},
        "prompt": {"version": prompt.get("version"), "author": prompt.get("author"),
                   "focus_regions": [r["rule"] for r in prompt.get("focus_regions", [])],
                   "tool_calls": len(prompt.get("tool_calls", []))},
        "best_validation": state.get("best_validation"),
        "synthetic_batches": list(state.get("synthetic_batches", [])),
    }


def review(state: LoopState, ctx: LoopContext) -> dict:
    k, info = state["iteration"], state["batch"]
    if info.get("blocked"):  # refused whole already: there is nothing to decide
        return {}
    decision = ReviewDecision.model_validate(interrupt(pending_payload(state, ctx)))
    record = {"iteration": k, **decision.model_dump(exclude_defaults=True)}
    ctx.store.write_json(review_file(k), record)  # the same file on a replay
    batch = {**info, "review": record}
    if decision.action == "reject":
        batch["blocked"] = "rejected in review" + (f": {decision.reason}" if decision.reason else "")
    elif decision.action == "edit":
        batch["candidate"] = decision.candidate
    event = {"kind": "review", "node": "review", "iteration": k, "action": decision.action}
    return {"batch": batch, "events": [event]}
