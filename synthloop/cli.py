"""The command line. Thin: it parses options, calls the library, and turns library errors into
one clear line (exit code 2), never a traceback."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from synthloop.console import err, error_line, fail, out
from synthloop.errors import ReviewPending, SynthloopError
from synthloop.events import rule_text
from synthloop.paths import write_text
from synthloop.store import resume_command

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="synthloop: improve a model by generating the training data it is missing.")


class Progress:
    """Live progress from the graph's stream: one line per node on stderr, or with ``--json``
    one JSON event per line on stdout (``started``, then ``node`` events, then ``finished``).

    While a node runs, each LLM call it finishes is a ``progress`` event; as text, one line at
    most every ``PROGRESS_EVERY`` seconds of silence, so a long generate step shows it is
    alive without flooding the terminal."""

    PROGRESS_EVERY = 10.0

    def __init__(self, as_json: bool = False, run_id: str | None = None,
                 run_dir: Path | None = None):
        self.as_json = as_json
        self.run_id = run_id
        self.run_dir = run_dir
        self.start = time.perf_counter()
        self._started = False
        self._last_line = 0.0  # when the last text line was printed (seconds since start)

    def emit(self, event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        sys.stdout.flush()

    def started(self) -> None:
        """Said once, with the first node's event (bad input fails before it: no noise)."""
        self._started = True
        if self.as_json:
            self.emit({"event": "started", "run_id": self.run_id, "run_dir": str(self.run_dir)})
        else:
            err.print(f"[dim]run {escape(str(self.run_id))} in {escape(str(self.run_dir))}[/]")

    def __call__(self, node: str, update: dict[str, Any]) -> None:
        from synthloop.events import node_event, progress_event

        if not self._started:
            self.started()
        elapsed = time.perf_counter() - self.start
        if "progress" in update:  # an LLM call inside a node still running
            ev = progress_event(node, update["progress"], run_id=self.run_id, elapsed=elapsed)
            if self.as_json:
                self.emit(ev)
            elif elapsed - self._last_line >= self.PROGRESS_EVERY:
                self._last_line = elapsed
                err.print(f"[dim]{elapsed:7.1f}s {'':>7} {node:<9} {escape(ev['message'])}[/]")
            return
        self._last_line = elapsed

        ev = node_event(node, update, run_id=self.run_id, elapsed=elapsed)
        if self.as_json:
            self.emit(ev)
            return
        k = ev["iteration"]
        it = f"iter {k}" if k is not None else "      "
        tokens = f" [dim]({ev['tokens']} tokens)[/]" if ev["tokens"] else ""
        err.print(f"[dim]{ev['elapsed']:7.1f}s[/] {it:>7} {node:<9} {escape(ev['message'])}{tokens}")

    def finished(self, summary: dict[str, Any]) -> None:
        """The outcome: the iteration table and lift, or one ``finished`` JSON line."""
        from synthloop.events import finished_event

        if self.as_json:
            self.emit(finished_event(summary))
        else:
            print_summary(summary)


TEXT_COLUMNS = (("grounded", "grounded_share", ".2f"), ("copies", "near_copies_rejected", "d"),
                ("sBLEU", "self_bleu", ".2f"), ("cos", "mean_cosine", ".2f"),
                ("lab.acc", "label_accuracy", ".2f"))


def _is_text(summary: dict[str, Any]) -> bool:
    """Whether the summary is a text loop's (its iterations carry the text figures)."""
    return any("grounded_share" in r for r in summary["iterations"])


def iteration_table(summary: dict[str, Any], text_figures: bool = True) -> Table:
    """The per-iteration table; a text loop's figures (grounded share, copies, Self-BLEU, ...)
    in it unless ``text_figures`` is false."""
    t = Table(title=f"run {summary['run_id']} — metric {summary.get('metric')}")
    extra = TEXT_COLUMNS if text_figures and _is_text(summary) else ()
    for col in ("iter", "prompt", "valid.", "gen", "rej", "acc", *(c[0] for c in extra),
                "kept", "tokens", "sec"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in summary["iterations"]:
        vm = r["validation_metric"]
        t.add_row(str(r["iteration"]), f"v{r['prompt_version']} {r.get('prompt_author')}",
                  "—" if vm is None else f"{vm:.4f}", str(r["rows_generated"]),
                  str(r["rows_rejected"]), str(r["rows_accepted"]),
                  *(_num(r.get(key), fmt) for _, key, fmt in extra),
                  "yes" if r["accepted"] else "no", str(r["tokens"]), f"{r['seconds']:.1f}")
    return t


def iteration_tables(summary: dict[str, Any], console: Any = None) -> list[Table]:
    """``iteration_table`` when it fits ``console`` (default: the CLI's); else, for a text
    loop, the table without its text figures and those figures in a second table by
    iteration, so no cell is cut short at 80 columns."""
    from synthloop.console import table_fits

    whole = iteration_table(summary)
    if table_fits(whole, console or out) or not _is_text(summary):
        return [whole]
    figures = Table(title="text figures")
    for col in ("iter", *(c[0] for c in TEXT_COLUMNS)):
        figures.add_column(col, justify="right", no_wrap=True)
    for r in summary["iterations"]:
        figures.add_row(str(r["iteration"]), *(_num(r.get(key), fmt) for _, key, fmt in TEXT_COLUMNS))
    return [iteration_table(summary, text_figures=False), figures]


def print_summary(summary: dict[str, Any]) -> None:
    from synthloop.inspect import decision_label, teacher_label, validation_noise

    for table in iteration_tables(summary):
        out.print(table)
    b, f, lift = summary["baseline"], summary["final"], summary["lift"]
    out.print(f"stop reason: {summary['stop_reason']}")
    out.print(f"{summary['metric']} {decision_label(summary)}: baseline "
              f"{b['validation']:.4f} -> final {f['validation']:.4f}"
              f"{validation_noise(summary)}")
    ci = lift.get("holdout_ci95")
    ci_text = f", 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else ""
    out.print(f"{summary['metric']} holdout:    baseline {b['holdout']:.4f} -> final "
              f"{f['holdout']:.4f}  (lift {lift['holdout']:+.4f}{ci_text})")
    out.print(f"synthetic rows kept: {summary['synthetic_rows']} (sha256 "
              f"{summary['synthetic_sha256'][:12]}); tokens {summary['total_tokens']}; "
              f"fallbacks {summary['fallbacks']}; wall {summary['wall_seconds']:.0f}s")
    labelled_by = teacher_label(summary)
    if labelled_by:
        out.print(f"delivered rows labelled by {labelled_by}")


@app.command()
def run(
    spec: Path = typer.Argument(..., help="The loop spec (YAML)."),
    llm: str | None = typer.Option(None, help="LLM URI: embedded, openai:MODEL[@URL], provider:model."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run folders go."),
    seed: int | None = typer.Option(None, help="Override the spec's seed."),
    max_iterations: int | None = typer.Option(None, help="Override budget.max_iterations."),
    run_id: str | None = typer.Option(None, help="Name the run (default: NAME-DATE-TIME-XXXX)."),
    set_: list[str] = typer.Option([], "--set", help="Override a spec key: --set budget.patience=3"),
    json_events: bool = typer.Option(False, "--json", help="Progress as JSON lines."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the finished run to MLflow "
                                "(default store: RUNS_DIR/mlruns; pip install 'synthloop\\[mlflow]')."),
) -> None:
    """Run a loop on a spec and print the per-iteration table and the holdout lift."""
    from synthloop.runner import run_loop
    from synthloop.spec import load_spec
    from synthloop.store import new_run_id

    try:
        require_mlflow_if(mlflow)
        s = load_spec(spec)
        overrides = _parse_sets(set_)
        if llm:
            overrides["llm"] = llm
        if seed is not None:
            overrides["seed"] = seed
        if max_iterations is not None:
            overrides["budget.max_iterations"] = max_iterations
        if overrides:
            s = s.with_overrides(overrides)
        run_id = run_id or new_run_id(s.name)
        progress = Progress(json_events, run_id, runs_dir / run_id)
        summary = run_loop(s, runs_dir, run_id=run_id, on_update=progress)
        if mlflow:
            _log_mlflow(runs_dir / run_id)
    except ReviewPending as exc:  # review: {mode: batch} paused the run; not a failure
        print_pending(exc, runs_dir)
        return
    except SynthloopError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"interrupted; resume with '{resume_command(run_id or 'RUN_ID', runs_dir)}'",
              code=130)
    progress.finished(summary)


@app.command()
def resume(
    run_id: str = typer.Argument(..., help="The run to continue."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run folders are."),
    json_events: bool = typer.Option(False, "--json", help="Progress as JSON lines."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the finished run to MLflow."),
) -> None:
    """Continue a stopped run (even one killed with kill -9) from its last checkpoint."""
    from synthloop.runner import resume_run

    progress = Progress(json_events, run_id, runs_dir / run_id)
    try:
        require_mlflow_if(mlflow)
        summary = resume_run(run_id, runs_dir, on_update=progress)
        if mlflow:
            _log_mlflow(runs_dir / run_id)
    except ReviewPending as exc:
        print_pending(exc, runs_dir)
        return
    except SynthloopError as exc:
        fail(str(exc))
    progress.finished(summary)


@app.command()
def report(
    run_id: str = typer.Argument(..., help="The finished run to report on."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where run folders are."),
    out_path: Path | None = typer.Option(
        None, "--out", help="A folder for report.html and report.json, or a .html path "
        "(default: the run folder)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's JSON."),
) -> None:
    """Write report.html (plots) and report.json (the same numbers) for a finished run."""
    from synthloop.evals.report import write_report
    from synthloop.store import locate_run

    try:
        html_path, json_path = write_report(locate_run(run_id, runs_dir), out_path)
    except SynthloopError as exc:
        fail(str(exc))
    rep = json.loads(json_path.read_text())
    if as_json:
        sys.stdout.write(json.dumps({"files": {"html": str(html_path), "json": str(json_path)},
                                     **rep}, indent=2) + "\n")
        return
    print_report_headlines(rep, html_path, json_path)


def _num(v: Any, fmt: str = ".4f") -> str:
    return "n/a" if v is None else format(v, fmt)


def print_report_headlines(rep: dict[str, Any], html_path: Path, json_path: Path) -> None:
    run, regions = rep["run"], rep["regions"]["regions"]
    b, f, lift = run["baseline"], run["final"], run["lift"]
    ci = lift.get("holdout_ci95") or [None, None]
    out.print(f"wrote {escape(str(html_path))}")
    out.print(f"wrote {escape(str(json_path))}")
    out.print(f"run {run['run_id']} ({run['status']}, {run['stop_reason']}); "
              f"{run['synthetic_rows']} synthetic rows; tokens {run['total_tokens']}; "
              f"wall {_num(run['wall_seconds'], '.0f')}s")
    out.print(f"{run['metric']} holdout: baseline {_num(b['holdout'])} -> final "
              f"{_num(f['holdout'])} (lift {_num(lift['holdout'], '+.4f')}, 95% CI "
              f"[{_num(ci[0], '+.4f')}, {_num(ci[1], '+.4f')}])")
    for r in regions:
        out.print(f"region {r['id']} recall of '{rep['regions']['positive_class']}': "
                  f"{_num(r['baseline']['recall'], '.2f')} -> {_num(r['final']['recall'], '.2f')} "
                  f"({r['positives']} positives in {r['support']} validation rows): "
                  f"{escape(rule_text(r['rule']))}")
    text = rep.get("text")
    if text is not None:
        syn = text["synthetic"]
        out.print(f"text: {syn.get('texts', 0)} synthetic texts kept; grounded share "
                  f"{_num(text.get('grounded_share'), '.2f')}, near copies rejected "
                  f"{text.get('near_copies_rejected')}, label accuracy "
                  f"{_num(text.get('label_accuracy'), '.2f')}")
        return
    fid, priv = rep["fidelity"], rep["privacy"]
    if "note" in fid:
        out.print(f"synthetic data: {fid['note']}")
        return
    dcr = priv.get("dcr") or {}
    out.print(f"fidelity: column shapes {_num(fid['column_shapes'])}, detection "
              f"{_num(fid['detection'])}; privacy: membership-inference AUC "
              f"{_num(priv['membership_inference_auc'])}, DCR share closer "
              f"{_num(dcr.get('share_closer'))}, exact copies {_num(dcr.get('exact_copies'))}")


@app.command()
def bench(
    suite: str = typer.Argument(..., help="sick, adult-lowdata or lending_club."),
    data_dir: Path = typer.Option(Path("../shared/bench-data"), help="The bench-data folder."),
    out: Path = typer.Option(Path("bench-results"), help="Where raw.csv, results.csv, "
                             "paired.csv, results.md, bench.json and the loops' runs/ go."),
    seeds: int = typer.Option(5, help="How many seeds (FIRST_SEED .. FIRST_SEED+N-1)."),
    first_seed: int = typer.Option(
        0, help="The first seed: --first-seed 5 --seeds 5 runs seeds 5-9, to extend an earlier "
        "bench (`bench-table` merges the folders, paired by seed)."),
    methods: str | None = typer.Option(
        None, help="Comma-separated, from: real_only, class_weight, class_weight_tuned, smote, "
        "gaussian_copula, provided, open_loop, synthloop (default: all); also "
        "gaussian_copula_teacher and provided_bootstrap, run only when named."),
    llm: str = typer.Option("embedded", help="LLM URI for open_loop and synthloop."),
    loop_rows: int = typer.Option(40, help="Rows per loop iteration for the LLM methods."),
    synthetic_rows: int | None = typer.Option(
        None, help="Synthetic rows per method: the LLM methods, provided and the copula's cap "
        "(default: the suite's, e.g. 1000 for sick). Fewer than the provided rows: provided "
        "takes a seeded random sample of them."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a key of the LLM methods' loop spec: --set generator.contrast_share=0.5"),
    variants: str | None = typer.Option(
        None, help="Only these variants of a suite, comma-separated, e.g. 'n=20' for adult-lowdata."),
) -> None:
    """Run the loop and its rivals on identical splits and seeds; print the table."""
    from synthloop.evals.bench import run_bench

    try:
        overrides = _parse_sets(set_)
        res = run_bench(
            suite, data_dir, out, seeds=seeds, first_seed=first_seed,
            methods=[m.strip() for m in methods.split(",")] if methods else None,
            ctx={"llm": llm, "loop_rows_per_iteration": loop_rows, "runs_dir": out / "runs",
                 "synthetic_rows": synthetic_rows, "loop_overrides": overrides},
            progress=lambda msg: err.print(f"[dim]{msg}[/]"),
            variants=[v.strip() for v in variants.split(",")] if variants else None,
        )
    except SynthloopError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        kept = (f"{out / 'raw.csv'} holds the methods it finished; `synthloop bench-table "
                f"{out}` tabulates them" if (out / "raw.csv").is_file()
                else "no method had finished")
        err.print(f"stopped: {kept}.", soft_wrap=True)
        raise typer.Exit(130) from None
    sys.stdout.write((out / "results.md").read_text())
    err.print(f"wrote {out}: results.md, results.csv, paired.csv, raw.csv, bench.json "
              f"({len(res)} result rows)", soft_wrap=True)


@app.command("bench-table")
def bench_table(
    folders: list[str] = typer.Argument(
        ..., metavar="DIR[:LABEL]", help="One or more --out folders of `synthloop bench` runs on "
        "the same suite. DIR:LABEL renames that folder's loop methods 'synthloop LABEL' (and "
        "any method that scored differently in an earlier folder 'METHOD LABEL')."),
    versus: str | None = typer.Option(
        None, help="The method whose lead the paired table shows (default: synthloop, else "
        "the one labelled synthloop run, else open_loop)."),
    out: Path | None = typer.Option(
        None, help="Also write the merged raw.csv, bench.json, results.csv, paired.csv and "
        "results.md here (a new folder, or one bench-table wrote; never a folder read)."),
) -> None:
    """Re-tabulate bench outputs without re-running them, merged and paired by seed."""
    from synthloop.evals import bench as b

    try:
        data = b.load_raw(folders)
        methods = list(dict.fromkeys(data.raw["method"]))
        if versus is not None and versus not in methods:
            raise SynthloopError(f"--versus {versus!r} did not run in these folders; they hold "
                                 f"{', '.join(methods)}.")
        if out is not None:
            if out.resolve() in {b.folder_and_label(f)[0].resolve() for f in folders}:
                raise SynthloopError(f"--out {out} is one of the folders read; write the "
                                     "merged tables to a new folder.")
            meta = out / "bench.json"
            if meta.is_file() and "merged_from" not in meta.read_text():
                raise SynthloopError(f"--out {out} holds a bench's own output, which this "
                                     "would replace; write the merged tables to a new folder.")
        res, pairs, text = b.render(data.raw, data.primary, versus)
    except SynthloopError as exc:
        fail(str(exc))
    for folder in data.unfinished:
        err.print(f"note: {folder} is a bench that has not finished (stopped, or still "
                  "running); its tables hold the methods and seeds it has measured (the seeds "
                  "column says how many).",
                  soft_wrap=True)
    loops = [m for m in methods if m.split(" ")[0] in b.LLM_METHODS]
    if not len(pairs) and versus is None:
        why = ("no loop method (synthloop or open_loop) in these folders; --versus METHOD "
               "pairs the others with METHOD" if not loops else
               f"pass --versus, one of {', '.join(loops)}"
               if b.default_reference(methods) is None else
               "the loop has no rival measured on its seeds here")
        err.print(f"note: no paired table: {why}.", soft_wrap=True)
    sys.stdout.write(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        # a merged output reads back like a bench's own (bench-table OUT works)
        data.raw.to_csv(out / "raw.csv", index=False)
        (out / "bench.json").write_text(json.dumps(
            {"suite": data.suite, "primary": data.primary, "merged_from": data.sources,
             "finished": not data.unfinished}, indent=2, default=str) + "\n")
        b.write_tables(out, res, pairs, text)
        err.print(f"wrote {out}: results.md, results.csv, paired.csv, raw.csv and bench.json")


@app.command()
def schema(out_file: Path | None = typer.Option(None, "--out", help="Write here, not stdout.")) -> None:
    """Print the loop spec's JSON schema (for editors)."""
    from synthloop.spec import LoopSpec

    text = json.dumps(LoopSpec.model_json_schema(), indent=2)
    if out_file:
        try:
            write_text(out_file, text + "\n", "--out")
        except SynthloopError as exc:
            fail(str(exc))
    else:
        sys.stdout.write(text + "\n")


def _parse_sets(items: list[str]) -> dict[str, Any]:
    import yaml

    result = {}
    for item in items:
        if "=" not in item:
            raise SynthloopError(f"--set {item!r} must look like key=value, e.g. budget.patience=3")
        key, _, value = item.partition("=")
        result[key.strip()] = yaml.safe_load(value)
    return result


# the inspection commands (runs list/show/diff/history/mlflow, fork, lineage, graph)
from synthloop.cli_runs import (  # noqa: E402
    _log_mlflow,
    register,
    require_mlflow_if,
)

register(app)

# the plugin and review commands (plugins list/check, review)
from synthloop.cli_plugins import print_pending, register_plugin_commands  # noqa: E402

register_plugin_commands(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:  # typer >= 0.22 carries its own copy of click; its usage errors are that copy's
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - older typer, on click itself
        from click import exceptions as click

    try:
        # standalone_mode=False: click's usage errors come here, to be said in one line
        # instead of typer's boxed panel; typer.Exit(code) comes back as the return value
        code = app(standalone_mode=False)
    except getattr(click, "NoArgsIsHelpError", ()) as exc:  # bare 'synthloop' (click >= 8.2)
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        error_line(exc.format_message().rstrip(".") + where)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        error_line(exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Abort:
        error_line("aborted")
        sys.exit(1)
    except SynthloopError as exc:  # errors raised outside a command's own handler
        error_line(str(exc))
        sys.exit(2)
    except OSError as exc:  # a path the checks above did not foresee: name it, no traceback
        if exc.filename is None:
            raise
        error_line(f"cannot use '{exc.filename}': {exc.strerror or exc}; check the path and "
                   f"its permissions")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
