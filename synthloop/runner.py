"""Starting and resuming loops: the library entry points the CLI calls."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langgraph.checkpoint.sqlite import SqliteSaver

from synthloop.data import infer_schema, load_table, sample_rows
from synthloop.errors import ReviewPending, RunStoreError, SynthloopError
from synthloop.graphs.context import SCHEMA, LoopContext
from synthloop.graphs.loop import build_graph, stream_loop
from synthloop.llm import LLMClient, make_chat_model
from synthloop.paths import check_folder, check_run_id, output_folder
from synthloop.spec import LoopSpec, dump_spec, load_spec
from synthloop.store import (
    FORK_FILE,
    SPEC_FILE,
    SUMMARY_FILE,
    RunStore,
    new_run_id,
    resume_command,
)
from synthloop.tools.constraints import check_columns, parse_rule
from synthloop.tools.registry import default_registry

log = logging.getLogger(__name__)
# on_update(node, update): each node's update as it finishes; while a node runs, each finished
# LLM call of it as on_update(node, {"progress": {...}}) (see synthloop.events.progress_event)
OnUpdate = Callable[[str, dict[str, Any]], None]


def default_cache_dir(runs_dir: str | Path) -> Path | None:
    env = os.environ.get("SYNTHLOOP_LLM_CACHE")
    if env == "off":
        return None
    return Path(env) if env else Path(runs_dir) / ".llm_cache"


def _client(spec: LoopSpec, chat_model: BaseChatModel | None, cache_dir: Path | None) -> LLMClient:
    model = chat_model or make_chat_model(spec.llm, seed=spec.seed)
    return LLMClient(model=model, cache_dir=cache_dir)


def create_run(spec: LoopSpec, runs_dir: str | Path, run_id: str | None = None) -> RunStore:
    run_id = check_run_id(run_id or new_run_id(spec.name))
    output_folder(runs_dir, "--runs-dir")
    store = RunStore(Path(runs_dir) / run_id)
    if store.exists(SPEC_FILE):
        raise RunStoreError(f"Run '{run_id}' already exists in '{runs_dir}'; pick another id.")
    store.write_text(SPEC_FILE, dump_spec(spec))
    return store


def preflight(spec: LoopSpec) -> None:
    """Check the data against the spec before a run folder exists, so bad input leaves none."""
    df = sample_rows(load_table(spec.resolved_source()), spec)
    schema = infer_schema(df, spec)
    for rule in spec.rules:
        check_columns(parse_rule(rule), schema.feature_names(), schema.target)
    if spec.is_text:
        from synthloop.graphs.text_nodes import text_schema
        from synthloop.tools.text import model_path

        text_schema(df, spec)
        model_path()  # the packaged embedding model is installed
    else:
        from synthloop.graphs.components import build_components

        build_components(spec, default_registry())


def execute(store: RunStore, spec: LoopSpec, *, resume: bool,
            chat_model: BaseChatModel | None = None, cache_dir: Path | None = None,
            on_update: OnUpdate | None = None, checkpointer=None,
            client: LLMClient | None = None, command: Any = None) -> dict[str, Any]:
    client = client or _client(spec, chat_model, cache_dir)
    ctx = LoopContext(spec=spec, store=store, client=client, registry=default_registry())
    conn = None
    if checkpointer is None:
        conn = sqlite3.connect(str(store.checkpoint_path), check_same_thread=False)
        checkpointer = SqliteSaver(conn)
    try:
        graph = build_graph(ctx, checkpointer)
        if resume:
            snap = graph.get_state({"configurable": {"thread_id": store.run_id}})
            if not snap.next:
                if store.exists(SUMMARY_FILE):
                    return store.read_json(SUMMARY_FILE)
                resume = False  # killed before the first checkpoint: start over
        def progress(payload: dict) -> None:  # an LLM call finished inside a node
            if payload.get("kind") == "llm_call":  # what else a plugin writes is its own
                on_update(str(payload.get("node", "?")), {"progress": payload})

        for update in stream_loop(graph, store.run_id, spec.budget.max_iterations, resume=resume,
                                  command=command,
                                  on_progress=progress if on_update is not None else None):
            for node, payload in update.items():
                if on_update is not None and isinstance(payload, dict):
                    on_update(node, payload)
        pending = pending_interrupt(graph, store.run_id)  # review.mode: batch
    finally:
        if conn is not None:
            conn.close()
    if pending is not None:
        raise ReviewPending(store.run_id, pending, str(store.root.parent))
    if not store.exists(SUMMARY_FILE):
        raise SynthloopError(f"Run '{store.run_id}' stopped before its report; "
                             f"resume it with: {resume_command(store.run_id, store.root.parent)}")
    summary = store.read_json(SUMMARY_FILE)
    if store.exists(FORK_FILE) and "parent" not in summary:  # a fork names its parent
        summary["parent"] = store.read_json(FORK_FILE)["parent"]
        store.write_json(SUMMARY_FILE, summary)
    return summary


def run_loop(spec: LoopSpec | str | Path, runs_dir: str | Path = "runs", *,
             chat_model: BaseChatModel | None = None, run_id: str | None = None,
             cache_dir: Path | None | str = "default", on_update: OnUpdate | None = None,
             checkpointer=None) -> dict[str, Any]:
    """Run a loop to its end and return its summary (also in ``runs/<run_id>/summary.json``)."""
    if not isinstance(spec, LoopSpec):
        spec = load_spec(spec)
    run_id = check_run_id(run_id or new_run_id(spec.name))
    check_folder(runs_dir, "--runs-dir")  # before the LLM loads; created with the run's folder
    cache = default_cache_dir(runs_dir) if cache_dir == "default" else cache_dir
    client = _client(spec, chat_model, Path(cache) if cache else None)
    preflight(spec)
    fresh = not (Path(runs_dir) / run_id).exists()
    store = create_run(spec, runs_dir, run_id)
    try:
        return execute(store, spec, resume=False, on_update=on_update,
                       checkpointer=checkpointer, client=client)
    except ReviewPending:
        raise
    except SynthloopError:
        # Bad input (data file, target, class, rule columns, LLM URI) is found before the
        # first node writes anything: such a run has nothing to resume, so leave no folder.
        if fresh and not store.exists(SCHEMA):
            shutil.rmtree(store.root, ignore_errors=True)
        raise


def resume_run(run_id: str, runs_dir: str | Path = "runs", *,
               chat_model: BaseChatModel | None = None, cache_dir: Path | None | str = "default",
               on_update: OnUpdate | None = None) -> dict[str, Any]:
    """Continue a stopped run from its last checkpoint; finished iterations are not redone."""
    store = RunStore.open(runs_dir, run_id)
    spec = load_spec(store.root / SPEC_FILE)
    # the cache beside the run (run_id may be the run's folder, outside runs_dir)
    cache = default_cache_dir(store.root.parent) if cache_dir == "default" else cache_dir
    return execute(store, spec, resume=True, chat_model=chat_model,
                   cache_dir=Path(cache) if cache else None, on_update=on_update)


def pending_interrupt(graph, run_id: str) -> dict | None:
    """The payload of the interrupt the run waits on (a batch for review), if any."""
    snap = graph.get_state({"configurable": {"thread_id": run_id}})
    for intr in getattr(snap, "interrupts", ()) or ():
        return dict(intr.value)
    return None


@contextlib.contextmanager
def open_graph(store: RunStore, spec: LoopSpec, checkpointer=None):
    """The run's compiled graph on its checkpoints (to read its state), without an LLM."""
    conn = None
    if checkpointer is None:
        conn = sqlite3.connect(str(store.checkpoint_path), check_same_thread=False)
        checkpointer = SqliteSaver(conn)
    try:
        ctx = LoopContext(spec=spec, store=store, client=None, registry=default_registry())
        yield build_graph(ctx, checkpointer)
    finally:
        if conn is not None:
            conn.close()
