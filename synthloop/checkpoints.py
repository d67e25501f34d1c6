"""Reading a run's LangGraph checkpoints without touching its folder.

A run's ``checkpoint.sqlite`` is in WAL mode: even a read-only SQLite connection leaves
``-wal`` and ``-shm`` files beside it. So readers here copy the database into memory first
(opened ``immutable`` when no WAL file exists, i.e. no process has it open), and read the
copy through the loop's compiled graph: ``graph.get_state_history`` gives the same snapshots
LangGraph Studio shows. The run folder stays byte-for-byte as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from langgraph.checkpoint.sqlite import SqliteSaver

from synthloop.errors import RunStoreError
from synthloop.graphs.context import LoopContext
from synthloop.graphs.loop import build_graph
from synthloop.spec import load_spec
from synthloop.store import CHECKPOINT_FILE, SPEC_FILE, RunStore

# the node a run resumes at once an iteration (or the baseline, iteration 0) is finished
ITERATION_BOUNDARY = ("analyse",)


def snapshot_db(path: Path) -> sqlite3.Connection:
    """An in-memory copy of the SQLite database at ``path``; the file and its folder are not
    changed (no ``-wal``/``-shm`` files are created)."""
    path = Path(path).resolve()
    wal = path.with_name(path.name + "-wal")
    # a WAL file means a process has (or had) the run open: read through it, its files exist
    mode = "ro" if wal.exists() else "ro&immutable=1"
    try:
        src = sqlite3.connect(f"file:{quote(str(path))}?mode={mode}", uri=True)
        dst = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            src.backup(dst)
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise RunStoreError(f"Cannot read the checkpoints in '{path}': {exc}; is it a "
                            "synthloop run's checkpoint.sqlite?") from None
    return dst


class CheckpointReader:
    """The loop graph over a read-only, in-memory copy of a run's checkpoints."""

    def __init__(self, store: RunStore):
        self.store = store

    def _graph(self):
        if not self.store.exists(CHECKPOINT_FILE):
            raise RunStoreError(f"Run '{self.store.run_id}' has no {CHECKPOINT_FILE} (it never "
                                "started); run it again with 'synthloop run'.")
        spec = load_spec(self.store.root / SPEC_FILE)
        ctx = LoopContext(spec=spec, store=self.store, client=None)
        conn = snapshot_db(self.store.root / CHECKPOINT_FILE)
        return build_graph(ctx, SqliteSaver(conn))

    @property
    def config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.store.run_id}}

    def snapshots(self) -> list:
        """Every checkpoint of the run, oldest first (LangGraph ``StateSnapshot`` objects)."""
        return list(reversed(list(self._graph().get_state_history(self.config))))

    def latest(self):
        """The run's last checkpoint, or None."""
        snaps = self.snapshots()
        return snaps[-1] if snaps else None


def history(store: RunStore) -> list[dict[str, Any]]:
    """The checkpoint history of a run as JSON-safe rows, oldest first.

    Each row: ``step``, ``checkpoint_id``, ``parent_checkpoint_id``, ``created_at``,
    ``source`` (input, loop, update: a fork's starting point), ``ran`` (the node whose update
    made this checkpoint), ``next`` (what runs from here), ``iteration``, ``best_validation``,
    ``synthetic_rows``, ``tokens_used``, ``stop_reason``, and ``fork_iteration``: K when
    this checkpoint ends iteration K (``synthloop fork RUN --from-iteration K`` starts here).
    """
    rows: list[dict[str, Any]] = []
    previous_next: tuple = ()
    snaps = CheckpointReader(store).snapshots()
    boundary = boundaries(snaps)
    for snap in snaps:
        meta = snap.metadata or {}
        values = snap.values or {}
        source = meta.get("source")
        ran = {"input": "(input)", "update": "(fork)"}.get(source, ",".join(previous_next))
        cid = snap.config["configurable"]["checkpoint_id"]
        rows.append({
            "step": meta.get("step"),
            "checkpoint_id": cid,
            "parent_checkpoint_id": (snap.parent_config or {}).get("configurable", {})
            .get("checkpoint_id"),
            "created_at": snap.created_at,
            "source": source,
            "ran": ran or None,
            "next": list(snap.next),
            "iteration": values.get("iteration"),
            "best_validation": values.get("best_validation"),
            "synthetic_rows": values.get("synthetic_rows"),
            "tokens_used": values.get("tokens_used"),
            "stop_reason": values.get("stop_reason"),
            "fork_iteration": values.get("iteration") if boundary.get(values.get("iteration"))
            is snap else None,
        })
        previous_next = tuple(snap.next)
    return rows


def boundaries(snaps: list) -> dict[int, Any]:
    """Iteration K -> the last checkpoint that ends it (next node: analyse)."""
    found: dict[int, Any] = {}
    for snap in snaps:  # oldest first: a later one (a resumed re-run) wins
        if tuple(snap.next) == ITERATION_BOUNDARY and snap.values.get("iteration") is not None:
            found[int(snap.values["iteration"])] = snap
    return found


def state_at_iteration(store: RunStore, k: int):
    """The checkpoint at the end of iteration ``k`` (0: the baseline, before any batch)."""
    found = boundaries(CheckpointReader(store).snapshots())
    if k not in found:
        done = sorted(found)
        have = (f"iterations {done[0]}..{done[-1]} are finished" if done
                else "no iteration is finished")
        raise RunStoreError(f"Run '{store.run_id}' has no checkpoint at the end of iteration {k}: "
                            f"{have}; pick --from-iteration among them.")
    return found[k]
