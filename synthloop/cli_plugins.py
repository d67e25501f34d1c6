"""The plugin and review commands: ``synthloop plugins list|check`` and ``synthloop review``.
Presentation only: the registry (``synthloop.tools.registry``), the conformance kit
(``synthloop.testing``) and the review calls (``synthloop.review``) do the work."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synthloop.cli import Progress, print_summary
from synthloop.console import fail, out, print_json
from synthloop.errors import ReviewPending, SynthloopError
from synthloop.store import review_command

plugins_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Installed components (built-in and from plugins), and their checks.")


@plugins_app.command("list")
def list_cmd(
    kind: str | None = typer.Option(None, help="Only this kind (model, metric, generator, ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every installed component, by kind, with the package it comes from."""
    from synthloop.tools.registry import KINDS, default_registry

    try:
        _check_kind(kind)
        reg = default_registry()
    except SynthloopError as exc:
        fail(str(exc))
    rows = reg.entries(kind)
    if as_json:
        print_json([{"kind": c.kind, "name": c.name, "package": c.source,
                     "version": reg.packages.get(c.source, ""),
                     "spec_key": KINDS[c.kind].spec_key, "summary": c.summary} for c in rows])
        return
    # a kind's spec key goes under its name, not in a column of its own: the table then fits
    # 80 columns (it was 88 wide with four)
    t = Table(title="synthloop components", title_justify="left")
    for col in ("kind, selected by", "name", "package"):
        t.add_column(col, no_wrap=True)
    for kind, group in itertools.groupby(rows, key=lambda c: c.kind):
        group = list(group)
        key = f"[dim]{escape(KINDS[kind].spec_key)}[/dim]"
        for i, c in enumerate(group):
            label = {0: kind + (f"\n{key}" if len(group) == 1 else ""), 1: key}.get(i, "")
            version = reg.packages.get(c.source, "")
            t.add_row(label, c.name, escape(f"{c.source} {version}".strip()),
                      end_section=i == len(group) - 1)
    wide = out if out.is_terminal else Console(highlight=False, width=160)  # piped: never crop
    wide.print(t)
    plugins = sorted(s for s in reg.packages if s != "synthloop")
    out.print(f"{len(rows)} components; plugins: {', '.join(plugins) if plugins else 'none'}")


def _check_kind(kind: str | None) -> None:
    from synthloop.tools.registry import KINDS

    if kind is not None and kind not in KINDS:
        raise SynthloopError(f"Unknown kind {kind!r}; kinds are: {', '.join(KINDS)}.")


@plugins_app.command("check")
def check_cmd(
    package: str | None = typer.Option(None, help="Only the components of this package."),
    kind: str | None = typer.Option(None, help="Only this kind."),
) -> None:
    """Run the conformance kit (synthloop.testing) on installed components."""
    from synthloop.testing import check_component
    from synthloop.tools.registry import default_registry

    try:
        _check_kind(kind)
        reg = default_registry()
        rows = [c for c in reg.entries(kind) if package is None or c.source == package]
        if not rows:
            asked = " and ".join(f"{k} {v!r}" for k, v in (("package", package), ("kind", kind))
                                 if v is not None)
            raise SynthloopError(f"No installed component matches {asked}; see: synthloop "
                                 f"plugins list.")
    except SynthloopError as exc:
        fail(str(exc))
    failed = 0
    for c in rows:
        try:
            passed = check_component(c.kind, c.name, c.obj)
            out.print(f"[green]ok[/]   {c.kind:<14} {c.name:<22} {escape(c.source)} "
                      f"({len(passed)} check{'' if len(passed) == 1 else 's'})")
        except SynthloopError as exc:
            failed += 1
            out.print(f"[red]FAIL[/] {c.kind:<14} {c.name:<22} {escape(c.source)}: {escape(str(exc))}")
    out.print(f"{len(rows) - failed} of {len(rows)} components pass")
    if failed:
        raise typer.Exit(1)


def print_pending(exc: ReviewPending, runs_dir: Path) -> None:
    """A run paused for review: say so and how to go on (not an error)."""
    out.print(escape(str(exc)))
    out.print(f"next: {escape(review_command(exc.run_id, runs_dir))}")


def _show_pending(pending: dict, rows, schema_cols: list[str], n: int, runs_dir: Path) -> None:
    out.print(f"[bold]Run {escape(pending['run_id'])}, iteration {pending['iteration']}: "
              f"{pending['rows']} candidate row(s) wait for review[/]")
    by_class = ", ".join(f"{k} {v}" for k, v in pending["by_class"].items())
    out.print(f"by class: {escape(by_class)} ({pending['counterexamples']} counter-examples)")
    p = pending["prompt"]
    out.print(f"prompt v{p['version']} by {p['author']}; focus: "
              f"{escape('; '.join(p['focus_regions']) or 'the whole class')}; "
              f"{p['tool_calls']} agent tool call(s)")
    g = pending.get("generation", {})
    out.print(f"generation: {g.get('rows_returned', 0)} rows from {g.get('calls', 0)} calls "
              f"({g.get('llm_failures', 0)} failed)")
    checks = {k: v for k, v in pending["checks"].items() if v}
    out.print("checks: " + escape(", ".join(f"{k} {v}" for k, v in checks.items())))
    best = pending.get("best_validation")
    if best is not None:
        out.print(f"best validation so far: {best:.4f} (approved rows are kept only if it does "
                  "not drop)")
    t = Table(title=f"first {min(n, len(rows))} of {len(rows)} rows", title_justify="left")
    cols = ["_sl_row_id", *schema_cols]
    for c in cols:
        t.add_column(escape(c), overflow="fold", no_wrap=c == "_sl_row_id")
    for _, r in rows.head(n).iterrows():
        t.add_row(*[escape(_cell(r[c])) for c in cols])
    out.print(t)
    review = escape(review_command(pending["run_id"], runs_dir))
    out.print(f"decide: {review} --approve | --reject [--reason TEXT] | --export FILE.csv, "
              f"edit it, then --edit FILE.csv")


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.6g}"
    return "" if v is None else str(v)


DONE = {"approve": "approved", "reject": "rejected", "edit": "edited"}


def review(
    run_id: str = typer.Argument(..., help="The paused run."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run folders are."),
    approve: bool = typer.Option(False, "--approve", help="Let the batch on to acceptance."),
    reject: bool = typer.Option(False, "--reject", help="Refuse the batch whole."),
    reason: str | None = typer.Option(None, help="Why (recorded with the decision)."),
    edit: Path | None = typer.Option(None, help="Use the rows of this edited CSV/parquet "
                                     "(see --export) instead of the batch."),
    export: Path | None = typer.Option(None, help="Write the candidate rows here (.csv or "
                                       ".parquet) to edit them."),
    reviewer: str | None = typer.Option(None, help="Who decides (recorded)."),
    rows: int = typer.Option(10, min=0, help="How many rows to show."),
    llm: str | None = typer.Option(None, help="LLM URI for the rest of the run (default: the "
                                   "spec's)."),
    as_json: bool = typer.Option(False, "--json", help="Show the pending batch as JSON."),
) -> None:
    """Show the batch a paused run waits on; --approve, --reject or --edit it to resume."""
    from synthloop.data import TableSchema
    from synthloop.review import candidate_rows, export_rows, pending_review, review_run
    from synthloop.store import RunStore

    chosen = [a for a, on in (("approve", approve), ("reject", reject),
                              ("edit", edit is not None)) if on]
    try:
        if len(chosen) > 1:
            raise SynthloopError("Choose one of --approve, --reject and --edit.")
        if reason is not None and chosen != ["reject"]:
            raise SynthloopError("--reason goes with --reject.")
        pending = pending_review(run_id, runs_dir)
        if not chosen:
            frame = candidate_rows(run_id, runs_dir, pending)
            schema = TableSchema.model_validate(RunStore.open(runs_dir, run_id).read_json(
                "schema.json"))
            cols = [*schema.feature_names(), schema.target]
            if export is not None:
                export_rows(frame, cols, export)
                again = f"{review_command(run_id, runs_dir)} --edit {shlex.quote(str(export))}"
                out.print(f"wrote {escape(str(export))} ({len(frame)} rows); edit it, then: "
                          f"{escape(again)}")
                return
            if as_json:
                from synthloop.tools.teacher import teacher_columns

                sample = frame.head(rows)[["_sl_row_id", *cols, *teacher_columns(frame)]]
                print_json({**pending, "sample": sample.to_dict(orient="records")})
                return
            _show_pending(pending, frame, cols, rows, runs_dir)
            return
        chat_model = None
        if llm:
            from synthloop.llm import make_chat_model

            chat_model = make_chat_model(llm)
        summary = review_run(run_id, runs_dir, action=chosen[0], reason=reason, edit=edit,
                             reviewer=reviewer, chat_model=chat_model, on_update=Progress(False))
    except ReviewPending as exc:
        out.print(f"{DONE[chosen[0]]}: iteration {pending['iteration']}'s batch")
        print_pending(exc, runs_dir)
        return
    except SynthloopError as exc:
        fail(str(exc))
    out.print(f"{DONE[chosen[0]]}: iteration {pending['iteration']}'s batch")
    print_summary(summary)


def register_plugin_commands(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
    app.command("review")(review)
