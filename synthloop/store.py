"""The run store: everything a run makes, under ``runs/<run_id>/``.

Graph state holds paths into this folder, never frames or models. Every write is atomic
(a temporary file renamed into place), so a run killed at any point leaves no half-written file,
and every file a node writes is named by iteration, so re-running a node overwrites rather than
appends.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import yaml

from synthloop.errors import RunStoreError

SPEC_FILE = "spec.yaml"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.sqlite"
FORK_FILE = "fork.json"  # a fork's parent run and iteration (see synthloop.fork)


def _run_command(verb: str, run_id: str, runs_dir: str | Path) -> str:
    return f"synthloop {verb} {shlex.quote(run_id)} --runs-dir {shlex.quote(str(runs_dir))}"


def resume_command(run_id: str, runs_dir: str | Path) -> str:
    """The command that continues a run, quoted for a shell (a relative runs folder is
    relative to where the command that printed it ran)."""
    return _run_command("resume", run_id, runs_dir)


def review_command(run_id: str, runs_dir: str | Path) -> str:
    """``synthloop review RUN_ID --runs-dir DIR``, quoted for a shell (add the action)."""
    return _run_command("review", run_id, runs_dir)


def new_run_id(name: str) -> str:
    return f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def run_folders(runs_dir: str | Path) -> list[Path]:
    """The run folders in ``runs_dir``, oldest first (by their spec's time, then name)."""
    where = Path(runs_dir)
    if where.exists() and not where.is_dir():
        raise RunStoreError(f"'{where}' is a file, not a runs folder; pass the folder your runs "
                            "are in with --runs-dir DIR.")
    if not where.is_dir():
        raise RunStoreError(f"The runs folder '{where.resolve()}' does not exist; pass the folder "
                            "your runs are in with --runs-dir DIR.")
    found = [p for p in where.iterdir() if (p / SPEC_FILE).is_file()]
    return sorted(found, key=lambda p: ((p / SPEC_FILE).stat().st_mtime, p.name))


def locate_run(run_id: str, runs_dir: str | Path = "runs") -> Path:
    """The folder of run ``run_id`` in ``runs_dir`` (or ``run_id`` itself when it is a run's
    folder), else one ``RunStoreError`` that says where it looked, the newest runs there, and
    how to list them all."""
    root = Path(runs_dir) / run_id
    if (root / SPEC_FILE).is_file():
        return root
    if (Path(run_id) / SPEC_FILE).is_file():
        return Path(run_id)
    try:
        known = [p.name for p in run_folders(runs_dir)]
    except RunStoreError as exc:
        raise RunStoreError(f"No run '{run_id}': {exc}") from None
    newest = ", ".join(reversed(known[-3:]))
    listing = (f"; the newest {'are' if len(known) > 1 else 'is'} {newest}"
               f"{f' (of {len(known)})' if len(known) > 3 else ''}" if known else "; it holds none")
    raise RunStoreError(f"No run '{run_id}' in '{Path(runs_dir).resolve()}'{listing}. List them "
                        f"with 'synthloop runs list --runs-dir {shlex.quote(str(runs_dir))}'.")


class RunStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def open(cls, runs_dir: str | Path, run_id: str) -> RunStore:
        return cls(locate_run(run_id, runs_dir))

    @property
    def run_id(self) -> str:
        return self.root.name

    def path(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def checkpoint_path(self) -> Path:
        return self.path(CHECKPOINT_FILE)

    # -- atomic writes --------------------------------------------------------------------
    def _atomic(self, rel: str, write) -> str:
        target = self.path(rel)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return rel

    def write_text(self, rel: str, text: str) -> str:
        return self._atomic(rel, lambda t: Path(t).write_text(text))

    def write_json(self, rel: str, obj: Any) -> str:
        return self.write_text(rel, json.dumps(obj, indent=2, default=_json_default) + "\n")

    def write_yaml(self, rel: str, obj: Any) -> str:
        return self.write_text(rel, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))

    def write_frame(self, rel: str, df: pd.DataFrame) -> str:
        return self._atomic(rel, lambda t: df.to_parquet(t, index=False))

    def write_model(self, rel: str, model: Any) -> str:
        return self._atomic(rel, lambda t: joblib.dump(model, t))

    # -- reads ----------------------------------------------------------------------------
    def read_frame(self, rel: str) -> pd.DataFrame:
        return pd.read_parquet(self.root / rel)

    def read_model(self, rel: str) -> Any:
        return joblib.load(self.root / rel)

    def read_json(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text())

    def read_yaml(self, rel: str) -> Any:
        return yaml.safe_load((self.root / rel).read_text())

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()


RUN_SPECIFIC = ("_sl_run_id", "_sl_row_id")


def frame_sha256(df: pd.DataFrame) -> str:
    """A content hash of a frame that depends neither on the file format, nor on row order, nor
    on the run's id: two runs with the same spec and seed that made the same rows agree."""
    if df.empty:
        return hashlib.sha256(b"").hexdigest()
    cols = sorted(c for c in df.columns if c not in RUN_SPECIFIC)
    canon = df[cols].astype(str)
    lines = sorted("\x1f".join(r) for r in canon.itertuples(index=False, name=None))
    h = hashlib.sha256("\x1f".join(cols).encode())
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def _json_default(o: Any):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
