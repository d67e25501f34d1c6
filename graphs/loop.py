"""The loop graph: one builder, an injected checkpointer, a recursion limit from the budget.

    prepare → train → evaluate → analyse → decide ─┬─> report → END
                                   ↑               └─> rewrite → generate → validate
                                   └── accept ← blend ← curate ←──────────────┘

A text spec (``data.text_column``) runs the same graph with the text loop's nodes
(``synthloop.graphs.text_nodes``) in place of prepare, analyse, rewrite, generate, validate,
curate and accept.

With ``review: {mode: batch}`` a ``review`` node sits between blend and accept: it pauses the
graph (LangGraph ``interrupt``) until a person decides (``synthloop review RUN_ID``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from synthloop.graphs import nodes
from synthloop.graphs.context import LoopContext
from synthloop.graphs.review import review as review_node
from synthloop.graphs.state import LoopState

log = logging.getLogger(__name__)

NODES: list[tuple[str, Callable]] = [
    ("prepare", nodes.prepare),
    ("train", nodes.train),
    ("evaluate", nodes.evaluate),
    ("analyse", nodes.analyse),
    ("decide", nodes.decide),
    ("rewrite", nodes.rewrite),
    ("generate", nodes.generate),
    ("validate", nodes.validate),
    ("curate", nodes.curate_node),
    ("blend", nodes.blend),
    ("accept", nodes.accept),
    ("report", nodes.report),
]
NODES_PER_ITERATION = 8


def _text_nodes() -> list[tuple[str, Callable]]:
    from synthloop.graphs import text_nodes

    replaced = {"prepare": text_nodes.prepare, "analyse": text_nodes.analyse,
                "rewrite": text_nodes.rewrite, "generate": text_nodes.generate,
                "validate": text_nodes.validate, "curate": text_nodes.curate,
                "accept": text_nodes.accept}
    return [(name, replaced.get(name, fn)) for name, fn in NODES]


def nodes_for(ctx: LoopContext) -> list[tuple[str, Callable]]:
    """The node functions for the context's spec: the text loop's nodes replace prepare,
    analyse, rewrite, generate, validate, curate and accept when it names a text column."""
    return _text_nodes() if ctx.spec.is_text else NODES


def _timed(name: str, fn: Callable, ctx: LoopContext) -> Callable[[LoopState], dict]:
    @functools.wraps(fn)
    def run(state: LoopState) -> dict:
        start = time.perf_counter()
        update = fn(state, ctx) or {}
        k = update.get("iteration", state.get("iteration", 0))
        timing = {"node": name, "iteration": k, "seconds": round(time.perf_counter() - start, 4)}
        return {**update, "timings": [timing]}

    return run


def build_graph(ctx: LoopContext, checkpointer: BaseCheckpointSaver | None = None):
    """The compiled loop graph for ``ctx``; pass a checkpointer to make it resumable."""
    g = StateGraph(LoopState)
    for name, fn in nodes_for(ctx):
        g.add_node(name, _timed(name, fn, ctx))
    gated = ctx.spec.review.mode == "batch"  # the human review gate
    if gated:
        g.add_node("review", _timed("review", review_node, ctx))
        g.add_edge("review", "accept")
    g.add_edge(START, "prepare")
    for a, b in [("prepare", "train"), ("train", "evaluate"), ("evaluate", "analyse"),
                 ("analyse", "decide"), ("rewrite", "generate"), ("generate", "validate"),
                 ("validate", "curate"), ("curate", "blend"),
                 ("blend", "review" if gated else "accept"), ("accept", "analyse")]:
        g.add_edge(a, b)
    g.add_conditional_edges("decide", nodes.route_after_decide,
                            {"report": "report", "rewrite": "rewrite"})
    g.add_edge("report", END)
    return g.compile(checkpointer=checkpointer if checkpointer is not None else InMemorySaver())


def recursion_limit(max_iterations: int) -> int:
    return (NODES_PER_ITERATION + 1) * (max_iterations + 1) + 16  # +1: the review node




def stream_loop(graph, run_id: str, max_iterations: int, *, resume: bool,
                command: Any = None, on_progress: Callable[[dict], None] | None = None
                ) -> Iterator[dict[str, Any]]:
    """Run (or resume) the graph, yielding ``{node: update}`` after each node. ``command``
    (a LangGraph ``Command(resume=...)``) answers a pending interrupt, e.g. a review.
    ``on_progress`` gets what nodes write to the ``custom`` stream while they run (one dict
    per finished LLM call, see ``synthloop.llm.client``)."""
    config = {"configurable": {"thread_id": run_id},
              "recursion_limit": recursion_limit(max_iterations)}
    inputs = command if command is not None else (None if resume else {"run_id": run_id})
    if on_progress is None:
        yield from graph.stream(inputs, config=config, stream_mode="updates")
        return
    for mode, chunk in graph.stream(inputs, config=config, stream_mode=["updates", "custom"]):
        if mode == "custom":
            if isinstance(chunk, dict):
                on_progress(chunk)
        else:
            yield chunk
