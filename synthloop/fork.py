"""Forking a run: time travel from the checkpoint at the end of an iteration.

``create_fork`` makes a new run folder holding what the new run needs from the original: its
store files up to iteration K (splits, schema, leakage index, models, batches, prompt versions,
iteration records, analyses before K), a fresh ``checkpoint.sqlite`` whose one checkpoint is
the original's state at the end of iteration K (with the new run id), the spec with ``--set``
overrides applied, and ``fork.json`` naming the parent. It then runs like any resumable run:
``fork_run`` continues it at once, ``synthloop resume NEW_ID`` later. The original run's folder
is only read (its checkpoints through an in-memory copy), never written.

What a fork may change: only what acts on iterations after K. The data, split, columns, rules,
model, metric (but its stop target) and seed made the splits, models and scores the fork
inherits; changing them would compare the new batches against numbers of another setup, so
they are refused (start a new run for that).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from langchain_core.language_models.chat_models import BaseChatModel
from langgraph.checkpoint.sqlite import SqliteSaver

from synthloop.checkpoints import ITERATION_BOUNDARY, state_at_iteration
from synthloop.errors import RunStoreError, SpecError
from synthloop.graphs.context import LoopContext
from synthloop.graphs.loop import build_graph
from synthloop.inspect import find_run
from synthloop.paths import check_run_id
from synthloop.spec import LoopSpec, TextSpec, dump_spec, load_spec
from synthloop.store import CHECKPOINT_FILE, FORK_FILE, SPEC_FILE, RunStore, new_run_id

# what a fork may override: it acts on iterations after the fork point only
FORKABLE_SECTIONS = ("budget", "generator", "analysis", "curation", "blend", "agent")
FORKABLE_KEYS = ("llm", "metric.target")
# the text loop's gates and prompts act on later batches; text.features (the model's input) not
FORKABLE_KEYS += tuple(f"text.{k}" for k in TextSpec.model_fields if k != "features")
# files every iteration relies on, made by the prepare node (the text loop's: its real texts
# for the grounding gate; its Chroma collection and embedding cache are folders, see below)
PREPARED = ("schema.json", "data/real_train.parquet", "data/real_validation.parquet",
            "data/real_holdout.parquet", "data/leakage_index.joblib", "data/real_texts.joblib",
            "data/consistency_model.joblib", "data/consistency.json",
            "data/label_critic.joblib", "data/label_critic.json", "data/teacher.joblib")
PREPARED_DIRS = ("chroma", "embeddings")
SYNTHETIC = "data/synthetic.parquet"


# keys of a forkable section a fork still cannot change: the parent's scores were made with them
UNFORKABLE_KEYS = ("blend.accept_on", "blend.accept_folds", "curation.teacher")


def check_fork_overrides(overrides: dict[str, Any]) -> None:
    """Refuse, in one line, an override a fork cannot take."""
    allowed = ", ".join([f"{s}.*" for s in FORKABLE_SECTIONS] + list(FORKABLE_KEYS))
    for key in overrides:
        if key in UNFORKABLE_KEYS:
            raise SpecError(
                f"A fork cannot change '{key}': the parent's best score, which the fork's batches "
                "must not fall below, was measured with it, so start a new run with "
                "'synthloop run' instead.")
        if key not in FORKABLE_KEYS and key.split(".")[0] not in FORKABLE_SECTIONS:
            raise SpecError(
                f"A fork cannot change '{key}': the parent's splits, models and scores up to the "
                "fork point were made with it, so start a new run with 'synthloop run' instead. "
                f"A fork may change {allowed}.")


def _spec_value(spec: LoopSpec, dotted: str) -> Any:
    value: Any = spec
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _fork_spec(parent: LoopSpec, overrides: dict[str, Any]) -> LoopSpec:
    check_fork_overrides(overrides)
    if not overrides:
        return parent
    child = parent.with_overrides(overrides)
    # a whole section set at once (--set 'curation={...}') must not slip an unforkable key in
    for key in UNFORKABLE_KEYS:
        if _spec_value(child, key) != _spec_value(parent, key):
            raise SpecError(
                f"A fork cannot change '{key}' (here through "
                f"'{next(k for k in overrides if key.startswith(k + '.'))}'): the "
                "parent's best score, which the fork's batches must not fall below, was measured "
                "with it, so start a new run with 'synthloop run' instead.")
    return child


def _iter_of(name: str) -> int | None:
    """The iteration in a store file name such as ``iter_002_valid.parquet``."""
    if not name.startswith("iter_"):
        return None
    try:
        return int(name[5:8])
    except ValueError:
        return None


def _files_to_copy(parent: RunStore, k: int) -> list[str]:
    """The parent's files the fork inherits: everything made up to the end of iteration k."""
    root = parent.root
    rels = [r for r in PREPARED if parent.exists(r)]
    rels += ["models/baseline.joblib"] if parent.exists("models/baseline.joblib") else []
    for folder, keep in (("models", lambda i: 1 <= i <= k),
                         ("iterations", lambda i: 1 <= i <= k),
                         ("analysis", lambda i: i < k),  # the fork redoes analysis k
                         ("data/batches", lambda i: 1 <= i <= k)):
        for p in sorted((root / folder).glob("iter_*")) if (root / folder).is_dir() else []:
            i = _iter_of(p.name)
            if i is not None and keep(i):
                rels.append(f"{folder}/{p.name}")
    for p in sorted((root / "prompts").glob("*.yaml")) if (root / "prompts").is_dir() else []:
        doc = yaml.safe_load(p.read_text()) or {}
        if int(doc.get("iteration", 0)) <= k:
            rels.append(f"prompts/{p.name}")
    return rels


def create_fork(run_id: str, runs_dir: str | Path = "runs", *, from_iteration: int,
                overrides: dict[str, Any] | None = None, new_run_id_: str | None = None,
                ) -> tuple[RunStore, LoopSpec]:
    """Make the fork's run folder (see the module doc); returns its store and spec.

    The folder is built under a temporary name and renamed into place, so a failure leaves
    nothing behind; the parent's folder is only read.
    """
    overrides = dict(overrides or {})
    parent = find_run(run_id, runs_dir)
    parent_spec = load_spec(parent.root / SPEC_FILE)
    spec = _fork_spec(parent_spec, overrides)
    if "llm" in overrides:  # the fork's LLM is built when it runs: refuse a bad one now
        from synthloop.llm.client import check_llm_uri

        check_llm_uri(spec.llm)
    if not spec.is_text:
        from synthloop.graphs.components import build_components
        from synthloop.tools.registry import default_registry

        build_components(spec, default_registry())  # refused params: one line, no folder
    if spec.curation.label_critic and parent.exists("schema.json"):
        from synthloop.data import TableSchema
        from synthloop.tools.label_critic import check_sentences

        check_sentences(spec.curation.label_critic,
                        TableSchema.model_validate(parent.read_json("schema.json")))
    if from_iteration < 0:
        raise RunStoreError(f"--from-iteration must be 0 or more (0: fork from the baseline); "
                            f"got {from_iteration}.")
    snap = state_at_iteration(parent, from_iteration)
    runs_dir = parent.root.parent  # the fork sits beside its parent
    fork_id = check_run_id(new_run_id_ or new_run_id(spec.name))
    if (runs_dir / fork_id).exists():
        raise RunStoreError(f"Run '{fork_id}' already exists in '{runs_dir}'; pick another id "
                            "with --run-id.")
    tmp = runs_dir / f".fork-{fork_id}-{secrets.token_hex(3)}"
    try:
        tmp.mkdir(parents=True)
        for rel in _files_to_copy(parent, from_iteration):
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(parent.root / rel, dst)
        for rel in PREPARED_DIRS:
            if (parent.root / rel).is_dir():
                shutil.copytree(parent.root / rel, tmp / rel)
        values = dict(snap.values)
        _check_references(values, tmp, parent.run_id, from_iteration)
        store = RunStore(tmp)
        # the accepted synthetic rows as of iteration k (the parent's file holds later ones)
        batches = values.get("synthetic_batches", [])
        if batches:
            store.write_frame(SYNTHETIC, pd.concat([store.read_frame(b) for b in batches],
                                                   ignore_index=True))
        record = {
            "parent": {"run_id": parent.run_id, "iteration": from_iteration,
                       "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
                       "run_dir": str(parent.root.resolve())},
            "overrides": overrides,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        store.write_json(FORK_FILE, record)
        store.write_text(SPEC_FILE, _spec_header(record) + dump_spec(spec))
        _write_checkpoint(store, spec, values, fork_id, record)
        os.replace(tmp, runs_dir / fork_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunStore(runs_dir / fork_id), spec


def _spec_header(record: dict) -> str:
    p = record["parent"]
    sets = " ".join(f"--set {k}={v}" for k, v in record["overrides"].items()) or "no --set"
    return (f"# forked from run {p['run_id']} at the end of iteration {p['iteration']} "
            f"(checkpoint {p['checkpoint_id']}); {sets}\n")


def _check_references(values: dict, root: Path, parent_id: str, k: int) -> None:
    """Every store path the checkpointed state names must be in the fork."""
    paths = [values.get("baseline_model"), values.get("current_model"),
             *values.get("synthetic_batches", [])]
    missing = [p for p in paths if p and not (root / p).is_file()]
    if missing:
        raise RunStoreError(f"Run '{parent_id}' lacks {', '.join(missing)}, which its checkpoint "
                            f"at iteration {k} names; its folder is incomplete, so it cannot be "
                            "forked there.")


def _write_checkpoint(store: RunStore, spec: LoopSpec, values: dict, fork_id: str,
                      record: dict) -> None:
    """The fork's first checkpoint: the parent's state at the fork point, as if the accept (or
    evaluate) node had just written it, so the graph continues at ``analyse``."""
    values = {**values, "run_id": fork_id}
    event = {"kind": "fork", "node": "fork", "iteration": record["parent"]["iteration"],
             "parent_run_id": record["parent"]["run_id"],
             "parent_checkpoint_id": record["parent"]["checkpoint_id"],
             "overrides": record["overrides"]}
    values["events"] = [*values.get("events", []), event]
    conn = sqlite3.connect(str(store.root / CHECKPOINT_FILE), check_same_thread=False)
    try:
        graph = build_graph(LoopContext(spec=spec, store=store, client=None), SqliteSaver(conn))
        config = {"configurable": {"thread_id": fork_id}}
        graph.update_state(config, values, as_node="accept")
        if tuple(graph.get_state(config).next) != ITERATION_BOUNDARY:  # the graph changed shape
            raise RunStoreError("The fork's checkpoint does not continue at 'analyse'; this "
                                "version of the loop graph cannot fork runs.")
    finally:
        conn.close()


def fork_run(run_id: str, runs_dir: str | Path = "runs", *, from_iteration: int,
             overrides: dict[str, Any] | None = None, new_run_id_: str | None = None,
             chat_model: BaseChatModel | None = None, cache_dir: Path | None | str = "default",
             on_update=None, start: bool = True) -> dict[str, Any]:
    """Fork run ``run_id`` at the end of ``from_iteration`` and run the fork to its end.

    Returns the fork's summary (``start=False``: ``{"run_id": ..., "status": "forked"}``
    without running it; ``synthloop resume`` continues it).
    """
    from synthloop.runner import default_cache_dir, execute

    store, spec = create_fork(run_id, runs_dir, from_iteration=from_iteration,
                              overrides=overrides, new_run_id_=new_run_id_)
    if not start:
        return {"run_id": store.run_id, "status": "forked", "run_dir": str(store.root)}
    cache = default_cache_dir(store.root.parent) if cache_dir == "default" else cache_dir
    return execute(store, spec, resume=True, chat_model=chat_model,
                   cache_dir=Path(cache) if cache else None, on_update=on_update)
