"""The loop graph for LangGraph Studio and ``langgraph dev`` (see ``langgraph.json``).

``make_graph`` is the graph factory ``langgraph.json`` names. It builds the loop graph for a
spec picked by the ``SYNTHLOOP_SPEC`` environment variable (a YAML path; default: the bundled
Lending Club example), with run folders under ``SYNTHLOOP_RUNS_DIR`` (default ``runs``), one per
thread: ``RUNS_DIR/<thread_id>``. The graph is compiled without a checkpointer: the LangGraph
server brings its own. Start a run with the input ``{"run_id": "<thread id>"}``.

    SYNTHLOOP_SPEC=examples/lending_club.yaml langgraph dev
"""

from __future__ import annotations

import os
from pathlib import Path

from langchain_core.runnables import RunnableConfig

from synthloop.graphs.context import LoopContext
from synthloop.graphs.loop import build_graph
from synthloop.spec import LoopSpec, dump_spec, load_spec
from synthloop.store import SPEC_FILE, RunStore

DEFAULT_RUN = "studio"


def studio_spec() -> LoopSpec:
    path = os.environ.get("SYNTHLOOP_SPEC")
    if path:
        return load_spec(path)
    from importlib.resources import files

    return load_spec(Path(str(files("synthloop.examples") / "lending_club.yaml")))


def make_graph(config: RunnableConfig):
    """The compiled loop graph (no checkpointer) for ``SYNTHLOOP_SPEC``; ``config``'s
    ``configurable.thread_id`` names the run folder."""
    from synthloop.llm import LLMClient, make_chat_model
    from synthloop.runner import default_cache_dir
    from synthloop.tools.registry import load_registry

    spec = studio_spec()
    runs_dir = Path(os.environ.get("SYNTHLOOP_RUNS_DIR", "runs"))
    configurable = (config or {}).get("configurable", {}) or {}
    run_id = str(configurable.get("thread_id") or DEFAULT_RUN)
    store = RunStore(runs_dir / run_id)
    if configurable.get("thread_id") and not store.exists(SPEC_FILE):
        store.write_text(SPEC_FILE, dump_spec(spec))  # so 'synthloop runs show' can read it
    client = LLMClient(model=make_chat_model(spec.llm, seed=spec.seed),
                       cache_dir=default_cache_dir(runs_dir))
    ctx = LoopContext(spec=spec, store=store, client=client, registry=load_registry())
    return build_graph(ctx).builder.compile()
