"""Paths a user hands synthloop: checked before anything is written, so a wrong one ends in
one line that names it (never a traceback, never a half-written file).

- ``output_file``: a file to write (``--out`` of ``report``, ``schema``, ``graph``, ``review
  --export``). A missing parent folder is created; a folder, or a parent that is a file, is
  refused.
- ``output_folder``: a folder to write into (``--runs-dir``, ``report --out DIR``).
- ``check_run_id``: a run id is one folder name inside the runs folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from synthloop.errors import SynthloopError


def _refuse_unwritable(path: Path, what: str, shown: Path) -> None:
    """Refuse ``path`` as a folder to write into, creating nothing: it lies under a file, or
    its nearest existing folder is not writable."""
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise SynthloopError(f"{what} '{shown}': '{existing}' is a file, not a folder; "
                             f"pick a path under a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SynthloopError(f"{what} '{shown}': the folder '{existing}' is not writable; "
                             f"pick a path you can write to")


def _make_folder(folder: Path, what: str, shown: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthloopError(f"{what} '{shown}': cannot create the folder '{folder}' "
                             f"({exc.strerror}); pick a path you can write to") from None


def output_file(path: str | Path, what: str) -> Path:
    """``path`` ready to be written: its folder exists and is writable, and it is not a folder.
    ``what`` names the option in messages, e.g. ``"--out"``."""
    path = Path(path)
    if path.is_dir():
        raise SynthloopError(f"{what} '{path}' is a folder; give a file path, "
                             f"e.g. {path / 'NAME'}")
    _refuse_unwritable(path.parent, what, path)
    _make_folder(path.parent, what, path)
    return path


def check_folder(path: str | Path, what: str) -> Path:
    """Refuse ``path`` as a folder to write into, without creating anything: it is a file,
    or lies under a file, or its nearest existing folder is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SynthloopError(f"{what} '{path}' is a file, not a folder; give a folder "
                             f"(it is created if missing)")
    _refuse_unwritable(path, what, path)
    return path


def output_folder(path: str | Path, what: str) -> Path:
    """``path`` as an existing, writable folder (created if missing)."""
    path = check_folder(path, what)
    _make_folder(path, what, path)
    return path


def write_text(path: str | Path, text: str, what: str) -> Path:
    """Write ``text`` to the user's ``path`` (checked as ``output_file``)."""
    path = output_file(path, what)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SynthloopError(f"{what} '{path}': cannot write it ({exc.strerror}); "
                             f"pick a path you can write to") from None
    return path


RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_run_id(run_id: str) -> str:
    """A run id names one folder inside the runs folder, and can be pasted into a shell as it
    is: letters, digits, '_', '-' and '.', not starting with '-' or '.'."""
    if not RUN_ID.fullmatch(run_id or ""):
        raise SynthloopError(f"run id {run_id!r} must be one folder name of letters, digits, "
                             f"'_', '-' and '.' (not starting with '-' or '.'), e.g. my-run-1")
    return run_id
