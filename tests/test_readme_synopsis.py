"""The README's command-line synopsis lists every command and every option the CLI has, and
no option it does not have (this drifted twice: a missing `review --llm`, an invented `runs
history --from-iteration`)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from synthloop.cli import app

ROOT = Path(__file__).resolve().parents[1]


def synopsis() -> dict[str, set[str]]:
    """Command path (e.g. 'runs show') -> the long options its synopsis lines name."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Command line", 1)[1]
    block = section.split("```", 2)[1]
    commands: dict[str, set[str]] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("synthloop "):
            words = line.split()[1:]
            path = []
            for w in words:
                if not re.fullmatch(r"[a-z][a-z-]*", w):
                    break
                path.append(w)
            current = " ".join(path)
            commands[current] = set()
        if current is not None:
            commands[current] |= set(re.findall(r"--[a-z][a-z-]*", line))
    return commands


def cli_commands() -> dict[str, list[set[str]]]:
    """Command path -> for each option, the long names it answers to (--x and --no-x)."""
    found: dict[str, list[set[str]]] = {}

    def walk(cmd, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
            return
        found[" ".join(path)] = [
            {n for n in [*p.opts, *p.secondary_opts] if n.startswith("--")}
            for p in cmd.params if getattr(p, "param_type_name", "") == "option"
            and "--help" not in p.opts]

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_is_in_the_synopsis():
    assert sorted(cli_commands()) == sorted(synopsis())


def test_every_option_is_in_the_synopsis_and_none_other():
    documented = synopsis()
    for path, options in cli_commands().items():
        known = set().union(*options) if options else set()
        missing = [sorted(o) for o in options if not o & documented[path]]
        invented = sorted(documented[path] - known)
        assert not missing, f"README synopsis of '{path}' lacks {missing}"
        assert not invented, f"README synopsis of '{path}' names {invented}, which it lacks"
