"""The CLI's two consoles and its one way to fail, shared by every command module.

``soft_wrap``: a line is never broken at the terminal width (an error stays one line);
``escape``: a ``[...]`` in a message is text, not rich markup.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def table_fits(table: Any, console: Console = out) -> bool:
    """Whether ``table`` prints at its natural width, no cell cut short, on ``console``."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(max_width=10_000),
                           table).maximum <= console.width


def narrowest_table(make: Any, optional: list[str], console: Console = out) -> Any:
    """``make(dropped)`` is a table without the columns in ``dropped``; the first that fits,
    dropping ``optional`` columns one by one in that order (the last one tried if none
    does)."""
    dropped: list[str] = []
    table = make(set())
    for name in optional:
        if table_fits(table, console):
            break
        dropped.append(name)
        table = make(set(dropped))
    return table


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout (what ``--json`` prints)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def error_line(message: str) -> None:
    """Print ``error: MESSAGE`` as one line on stderr."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    """End the command with ``error: MESSAGE`` and exit code ``code`` (2: bad input)."""
    error_line(message)
    raise typer.Exit(code)
