"""The inspection commands: ``synthloop runs list|show|diff|history|mlflow``, ``fork``,
``lineage`` and ``graph``. Presentation only: the numbers come from ``synthloop.inspect``,
``synthloop.checkpoints``, ``synthloop.fork`` and ``synthloop.mlflow_log``; ``--json`` prints
what those return."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from synthloop.console import err, fail, narrowest_table, out, print_json, table_fits
from synthloop.errors import SynthloopError
from synthloop.events import rule_text
from synthloop.paths import write_text
from synthloop.store import resume_command

# synthloop.cli imports this module at its end, so its shared helpers are imported inside
# the commands


runs_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       help="Inspect runs: list them, show one, diff two, its checkpoint history.")
RUNS_DIR = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are.")
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")


def _n(v: Any, fmt: str = ".4f") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return format(v, fmt) if isinstance(v, float) else str(v)
    return escape(str(v))


def _heading(text: str) -> None:
    out.print(f"\n[bold]── {escape(text)} ──[/]")


def _shorten(text: str, width: int = 200) -> str:
    """One line of at most ``width`` characters (a fallback's reason may quote a reply at
    length: ``--json`` has it as the prompt version keeps it)."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _diff_lines(diff: str) -> None:
    for line in diff.splitlines():
        style = ("green" if line.startswith("+") and not line.startswith("+++") else
                 "red" if line.startswith("-") and not line.startswith("---") else
                 "cyan" if line.startswith("@@") else "dim" if line.startswith(("---", "+++"))
                 else "")
        out.print(f"[{style}]{escape(line)}[/]" if style else escape(line))


# -- runs list ------------------------------------------------------------------------------
@runs_app.command("list")
def list_cmd(runs_dir: Path = RUNS_DIR, as_json: bool = AS_JSON) -> None:
    """Every run: status, stop reason, metric lift on the holdout, synthetic rows, cost."""
    from synthloop.inspect import list_runs

    try:
        rows = list_runs(runs_dir)
    except SynthloopError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"no runs in {escape(str(runs_dir))}")
        return
    t = Table(title=f"runs in {runs_dir}")
    for col in ("run", "status", "stop reason", "iter", "metric", "holdout base → final", "lift",
                "syn rows", "tokens", "sec", "parent"):
        t.add_column(col, justify="left" if col in ("run", "status", "stop reason", "parent")
                     else "right", no_wrap=True)
    for r in rows:
        t.add_row(escape(r["run_id"]), r["status"], _n(r["stop_reason"]), str(r["iterations"]),
                  _n(r["metric"]), _holdout(r), _n(r["lift_holdout"], "+.4f"),
                  _n(r["synthetic_rows"]), _n(r["tokens"]), _n(r["seconds"], ".0f"),
                  _parent(r))
    if table_fits(t):
        out.print(t)
        return
    # too narrow for the table (e.g. 80 columns): three short lines per run, nothing cut off
    out.print(f"runs in {escape(str(runs_dir))}")
    for r in rows:
        forked = f"; forked from {_parent(r)}" if r.get("parent") else ""
        why = f" ({r['stop_reason']})" if r.get("stop_reason") else ""
        out.print(f"[bold]{escape(r['run_id'])}[/]  {r['status']}{why} "
                  f"after {r['iterations']} iteration(s)")
        out.print(f"    {_n(r['metric'])} holdout {_holdout(r)} (lift "
                  f"{_n(r['lift_holdout'], '+.4f')}); {_n(r['synthetic_rows'])} synthetic rows")
        out.print(f"    {_n(r['tokens'])} tokens, {_n(r['seconds'], '.0f')} s{forked}")


def _holdout(r: dict[str, Any]) -> str:
    if r["baseline_holdout"] is None:
        return "—"
    return f"{_n(r['baseline_holdout'])} → {_n(r['final_holdout'])}"


def _parent(r: dict[str, Any]) -> str:
    p = r.get("parent")
    return f"{escape(p['run_id'])} @ {p['iteration']}" if p else ""


# -- runs show ------------------------------------------------------------------------------
@runs_app.command("show")
def show_cmd(
    run_id: str = typer.Argument(..., help="The run (its id, or its folder)."),
    iteration: int | None = typer.Option(None, "--iteration", "-k",
                                         help="Only this iteration (0: the baseline's analysis)."),
    rows: int = typer.Option(3, min=0, help="Sample rows shown per iteration, kept and "
                             "rejected."),
    runs_dir: Path = RUNS_DIR,
    as_json: bool = AS_JSON,
) -> None:
    """Show a run: spec, iterations, error regions, prompt diffs, sample rows, cost by node.

    The resolved spec, the per-iteration table, the error regions of each analysis, the diff
    between consecutive prompt versions, sample kept and rejected rows with the reason for
    each rejection, and LLM tokens and seconds by node (of one iteration with --iteration).
    """
    from synthloop.cli import iteration_tables
    from synthloop.inspect import decision_label, show_run, validation_noise

    try:
        d = show_run(run_id, runs_dir, iteration=iteration, rows=rows)
    except SynthloopError as exc:
        fail(str(exc))
    if as_json:
        print_json(d)
        return
    o, s = d["overview"], d["summary"]
    out.print(f"[bold]run {escape(o['run_id'])}[/] ({o['status']}"
              f"{', ' + o['stop_reason'] if o['stop_reason'] else ''}) in {escape(d['run_dir'])}")
    if o.get("parent"):
        out.print(f"forked from {escape(o['parent']['run_id'])} at the end of iteration "
                  f"{o['parent']['iteration']}")
    if s:
        b, f, lift = s["baseline"], s["final"], s["lift"]
        ci = lift.get("holdout_ci95") or [None, None]
        out.print(f"{s['metric']} {decision_label(s)} {b['validation']:.4f} → "
                  f"{f['validation']:.4f}{validation_noise(s)}; "
                  f"holdout {b['holdout']:.4f} → {f['holdout']:.4f} (lift {lift['holdout']:+.4f}, "
                  f"95% CI [{_n(ci[0], '+.4f')}, {_n(ci[1], '+.4f')}]); "
                  f"{s['synthetic_rows']} synthetic rows kept; {s['total_tokens']} tokens; "
                  f"{s['wall_seconds']:.0f} s")
    if iteration is None:
        _heading("spec (resolved)")
        out.print(escape(d["spec"].rstrip()))
    _heading("iterations")
    if d["iterations"]:
        for table in iteration_tables({"run_id": o["run_id"], "metric": o["metric"],
                                       "iterations": d["iterations"]}):
            out.print(table)
        for r in d["iterations"]:
            out.print(f"iter {r['iteration']}: {'kept' if r['accepted'] else 'refused'} — "
                      f"{escape(str(r['reason']))}")
    else:
        out.print("no iteration finished")
    _heading("error regions")
    ran = {r["iteration"] for r in d["iterations"]} if iteration is None else \
        {r["iteration"] for r in show_all_iterations(d)}
    for k, regions in d["regions"].items():
        k = int(k)
        who = "the baseline model" if k == 0 else f"the model after iteration {k}"
        then = f"; motivated iteration {k + 1}" if k + 1 in ran else ""
        out.print(f"analysis/iter_{k:03d}.json: errors of {who}{then}: {len(regions)} region(s)")
        for rule in d["set_aside"].get(k, []):
            out.print(f"  set aside, its batch was refused: {escape(rule)}")
        for r in regions:
            rec = "n/a" if r.get("recall") is None else f"{r['recall']:.2f}"
            rid = escape(f"[{r['id']}]")
            out.print(f"  {rid} {escape(rule_text(r['rule']))} — {r['support']} rows, error rate "
                      f"{r['error_rate']:.2f}, recall {rec}, generate '{escape(str(r['label']))}'")
    _heading("prompt versions")
    for p in d["prompts"]:
        out.print(f"  v{p['version']} ({p['author']}, iteration {p['iteration']}) "
                  f"sha256 {str(p['sha256'])[:12]}  {escape(p['file'])}")
    for pd_ in d["prompt_diffs"]:
        _heading(f"prompt v{pd_['from_version']} → v{pd_['to_version']} (iteration "
                 f"{pd_['iteration']}, by {pd_['author']})")
        if pd_.get("fallback_reason"):
            out.print(f"the LLM's rewrite was not used: {escape(_shorten(pd_['fallback_reason']))}")
        if pd_["focus_before"] != pd_["focus_after"]:
            out.print(f"focus: {escape(str(pd_['focus_before']))} → {escape(str(pd_['focus_after']))}")
        _diff_lines(pd_["diff"])
    for k, sample in d["rows"].items():
        counts = sample["counts"]
        _heading(f"rows of iteration {k}: {counts.get('kept', 0)} kept, "
                 f"{counts.get('rejected', 0)} rejected")
        for reason, n in sample["reasons"].items():
            out.print(f"  {n:>4} × {escape(str(reason))}")
        for label, rows_ in (("kept", sample["kept"]), ("rejected", sample["rejected"])):
            if rows_:
                out.print(_rows_table(f"{label} (sample)", rows_, reasons=label == "rejected"))
    _heading("tokens and seconds by node" + (f", iteration {iteration}" if iteration is not None
                                             else ""))
    t = Table()
    for col in ("node", "LLM calls", "cached", "tokens", "seconds"):
        t.add_column(col, justify="left" if col == "node" else "right")
    for r in d["cost_by_node"]:
        t.add_row(r["node"], str(r.get("calls", 0)), str(r.get("cached_calls", 0)),
                  str(r.get("tokens", 0)), f"{r.get('seconds', 0):.2f}")
    out.print(t)


def show_all_iterations(d: dict) -> list[dict]:
    """The iterations a run has finished (``d['iterations']`` holds one with --iteration)."""
    return [{"iteration": int(k)} for k in d.get("finished_iterations", [])]


def _rows_table(title: str, rows: list[dict], reasons: bool) -> Table:
    t = Table(title=title, title_justify="left")
    value_cols = list(dict.fromkeys(c for r in rows for c in r["values"]))
    label = next((k for k in rows[0] if not k.startswith("_sl_") and k != "values"), None)
    t.add_column("row id", no_wrap=True)
    if label:
        t.add_column(label)
    t.add_column("counter-ex.")
    soft = list(dict.fromkeys(c for r in rows for c in r.get("teacher", {})))
    for c in soft:  # curation.teacher: the probability of each class the row counts at
        t.add_column(f"teacher p({c})", justify="right")
    for c in value_cols:
        t.add_column(c, justify="right")
    if reasons:
        t.add_column("stage")
        t.add_column("reason")
    for r in rows:
        cells = [escape(str(r["_sl_row_id"]))]
        if label:
            cells.append(escape(str(r.get(label))))
        cells.append("yes" if r.get("_sl_counterexample") else "")
        cells += [_n(r.get("teacher", {}).get(c), ".3f") for c in soft]
        cells += [_n(r["values"].get(c), ".6g") for c in value_cols]
        if reasons:
            cells += [escape(str(r.get("_sl_stage"))), escape(str(r.get("_sl_reason")))]
        t.add_row(*cells)
    return t


# -- runs diff ------------------------------------------------------------------------------
@runs_app.command("diff")
def diff_cmd(run_a: str = typer.Argument(..., help="The first run."),
             run_b: str = typer.Argument(..., help="The second run."),
             runs_dir: Path = RUNS_DIR, as_json: bool = AS_JSON) -> None:
    """Spec, prompt and metric differences between two runs."""
    from synthloop.inspect import diff_runs

    try:
        d = diff_runs(run_a, run_b, runs_dir)
    except SynthloopError as exc:
        fail(str(exc))
    if as_json:
        print_json(d)
        return
    out.print(f"[bold]A[/] = {escape(d['a'])}   [bold]B[/] = {escape(d['b'])}"
              + (f"   ({escape(d['relation'])})" if d["relation"] else ""))
    _heading("spec")
    if d["spec"]:
        t = Table()
        for col in ("key", "A", "B"):
            t.add_column(col)
        for r in d["spec"]:
            t.add_row(escape(r["key"]), _n(r["a"]), _n(r["b"]))
        out.print(t)
    else:
        out.print("same spec")
    _heading("prompt versions")
    t = Table()
    for col in ("version", "A", "B", "same"):
        t.add_column(col)
    for p in d["prompts"]:
        def cell(x):
            return "—" if x is None else f"{str(x['sha256'])[:12]} {x['author']} (iter {x['iteration']})"
        t.add_row(f"v{p['version']}", cell(p["a"]), cell(p["b"]), "yes" if p["same"] else "no")
    out.print(t)
    for p in d["prompts"]:
        if "diff" in p:
            out.print(f"v{p['version']}:")
            if p.get("focus_a") != p.get("focus_b"):
                out.print(f"focus A {escape(str(p['focus_a']))}\nfocus B {escape(str(p['focus_b']))}")
            _diff_lines(p["diff"])
    _heading("metrics")
    t = Table()
    for col in ("", "A", "B", "B − A"):
        t.add_column(col, justify="left" if not col else "right")
    for m in d["metrics"]:
        fmt = ".1f" if m["metric"] == "seconds" else ".4f"
        delta = m["delta"]
        t.add_row(m["metric"], _n(m["a"], fmt), _n(m["b"], fmt),
                  _n(delta, "+" + fmt) if isinstance(delta, float) else _n(delta))
    out.print(t)
    on = d["decided_on"]
    scores = on["a"] if on["a"] == on["b"] else f"decision (A: {on['a']}; B: {on['b']})"
    t = Table(title=f"{scores} metric by iteration (kept?)", title_justify="left")
    for col in ("iter", "A", "B"):
        t.add_column(col, justify="right")
    for r in d["per_iteration"]:
        def it(x):
            return "—" if x is None else f"{_n(x['validation_metric'])} ({_n(x['accepted'])})"
        t.add_row(str(r["iteration"]), it(r["a"]), it(r["b"]))
    out.print(t)
    same = d["same_synthetic_data"]
    out.print("synthetic data: " + ("unknown (a run is unfinished)" if same is None else
                                    "identical (same content hash)" if same else "different"))


# -- runs history ---------------------------------------------------------------------------
@runs_app.command("history")
def history_cmd(run_id: str = typer.Argument(..., help="The run."),
                runs_dir: Path = RUNS_DIR, as_json: bool = AS_JSON) -> None:
    """The run's LangGraph checkpoint history, oldest first.

    The checkpoints that end an iteration are where 'synthloop fork RUN_ID --from-iteration K'
    starts; the thread id is the run id.
    """
    from synthloop.checkpoints import history
    from synthloop.inspect import find_run

    try:
        rows = history(find_run(run_id, runs_dir))
    except SynthloopError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    def note(r: dict[str, Any], short: bool) -> str:
        said = []
        if r["fork_iteration"] is not None:
            k = r["fork_iteration"]
            said.append(f"fork -k {k}" if short else f"end of iteration {k}: --from-iteration {k}")
        if r["source"] == "update":
            said.append("fork's start" if short else "fork's starting point")
        if r["stop_reason"] and r["next"] == ["report"]:
            said.append(f"stop: {r['stop_reason']}")
        return escape("; ".join(said))

    def make(dropped: set[str]) -> Table:
        # on a narrow terminal the checkpoint id (in --json), then the time, go first
        t = Table(title=f"checkpoints of {run_id} (thread {run_id})")
        cells = {
            "step": lambda r: str(r["step"]),
            "checkpoint": lambda r: r["checkpoint_id"][:13] + "…",
            "time": lambda r: str(r["created_at"])[11:19],
            "ran": lambda r: _n(r["ran"]), "next": lambda r: ",".join(r["next"]) or "(end)",
            "iter": lambda r: _n(r["iteration"]), "best val.": lambda r: _n(r["best_validation"]),
            "syn": lambda r: _n(r["synthetic_rows"]), "tokens": lambda r: _n(r["tokens_used"]),
            "note": lambda r: note(r, short=bool(dropped)),
        }
        cols = [c for c in cells if c not in dropped]
        for col in cols:
            t.add_column(col, justify="right" if col in ("step", "iter", "best val.", "syn",
                                                          "tokens") else "left",
                         no_wrap=col != "note", min_width=16 if col == "note" else None)
        for r in rows:
            t.add_row(*[cells[c](r) for c in cols])
        return t

    out.print(narrowest_table(make, ["checkpoint", "time", "tokens"]))
    out.print(f"{len(rows)} checkpoints; the thread id is the run id")


# -- runs mlflow ----------------------------------------------------------------------------
@runs_app.command("mlflow")
def mlflow_cmd(
    run_id: str = typer.Argument(..., help="The finished run to log."),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else RUNS_DIR/mlruns)."),
    experiment: str | None = typer.Option(None, help="Experiment name (default: synthloop-NAME)."),
    runs_dir: Path = RUNS_DIR,
) -> None:
    """Log a finished run to MLflow (pip install 'synthloop\\[mlflow]').

    The spec as parameters, per-iteration metrics, the prompt versions, the synthetic data and
    every batch as artifacts; writes mlflow.json into the run folder.
    """
    from synthloop.inspect import find_run

    try:
        _log_mlflow(find_run(run_id, runs_dir).root, tracking_uri, experiment)
    except SynthloopError as exc:
        fail(str(exc))


def _log_mlflow(run_dir: Path, tracking_uri: str | None = None,
                experiment: str | None = None) -> None:
    from synthloop.mlflow_log import log_run

    rec = log_run(run_dir, tracking_uri=tracking_uri, experiment=experiment)
    err.print(f"mlflow: logged run {rec['mlflow_run_id']} in experiment '{escape(rec['experiment'])}'"
              f" at {escape(rec['tracking_uri'])}")


def require_mlflow_if(flag: bool) -> None:
    if flag:
        from synthloop.mlflow_log import require_mlflow

        require_mlflow()


# -- fork, lineage, graph -------------------------------------------------------------------
def fork_cmd(
    run_id: str = typer.Argument(..., help="The run to fork (left unchanged)."),
    from_iteration: int = typer.Option(
        ..., "--from-iteration", "-k",
        help="Start from the checkpoint at the end of this iteration (0: the baseline)."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override a spec key for the new run: --set generator.temperature=0.4 "
        "(budget.*, generator.*, analysis.*, curation.*, blend.*, llm, metric.target)."),
    new_id: str | None = typer.Option(None, "--run-id", help="Name the new run."),
    runs_dir: Path = RUNS_DIR,
    start: bool = typer.Option(True, "--start/--no-start",
                               help="Run the fork now, or only create it (resume it later)."),
    json_events: bool = typer.Option(False, "--json", help="Progress as JSON lines."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the finished run to MLflow."),
) -> None:
    """Start a new run from a run's checkpoint at the end of an iteration (time travel).

    The new run gets the store files up to iteration K, the checkpointed state at its end and
    the spec with --set overrides; the original run is left byte-for-byte intact.
    """
    from synthloop.cli import Progress, _parse_sets
    from synthloop.fork import create_fork
    from synthloop.runner import default_cache_dir, execute

    try:
        require_mlflow_if(mlflow)
        store, spec = create_fork(run_id, runs_dir, from_iteration=from_iteration,
                                  overrides=_parse_sets(set_), new_run_id_=new_id)
    except SynthloopError as exc:
        fail(str(exc))
    parent = json.loads((store.root / "fork.json").read_text())
    progress = Progress(json_events, store.run_id, store.root)
    if json_events:
        progress.emit({"event": "forked", "run_id": store.run_id, "run_dir": str(store.root),
                       **parent})
    else:
        err.print(f"forked {escape(run_id)} at the end of iteration {from_iteration} (checkpoint "
                  f"{parent['parent']['checkpoint_id']}) -> {escape(store.run_id)}")
    if not start:
        out.print(f"created {escape(str(store.root))}; run it with: "
                  f"{escape(resume_command(store.run_id, store.root.parent))}")
        return
    try:
        cache = default_cache_dir(store.root.parent)
        summary = execute(store, spec, resume=True, cache_dir=cache, on_update=progress)
        if mlflow:
            _log_mlflow(store.root)
    except SynthloopError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"interrupted; resume with '{resume_command(store.run_id, store.root.parent)}'",
              code=130)
    progress.finished(summary)


def lineage_cmd(
    run_id: str = typer.Argument(..., help="The run."),
    row_id: str = typer.Argument(..., help="A synthetic row's _sl_row_id, e.g. RUN:2:17."),
    runs_dir: Path = RUNS_DIR,
    as_json: bool = AS_JSON,
) -> None:
    """Where a synthetic row came from, and whether (and why) it was kept.

    Its iteration, its prompt version, the error region that motivated it, and the real
    training rows it was generated from, side by side with the row.
    """
    from synthloop.inspect import lineage

    try:
        d = lineage(run_id, row_id, runs_dir)
    except SynthloopError as exc:
        fail(str(exc))
    if as_json:
        print_json(d)
        return
    fate = ("kept" + (" (in data/synthetic.parquet)" if d["in_synthetic_parquet"] else "")
            if d["status"] == "kept" else
            f"rejected at {d['stage']}: {d['reason']}" if d["status"] == "rejected"
            else "pending (its iteration has not finished)")
    out.print(f"[bold]row {escape(d['row_id'])}[/] of run {escape(d['run_id'])}: iteration "
              f"{d['iteration']}, class '{escape(str(d['label']))}', {escape(fate)}")
    p = d["prompt"]
    match = "" if p.get("file_sha256_matches") is None else (
        f", matches {p['file']}" if p["file_sha256_matches"] else f", DIFFERS from {p['file']}")
    out.print(f"prompt: {escape(str(p['id']))} v{p['version']} by {p.get('author', '?')} "
              f"(sha256 {str(p['sha256'])[:12]}{escape(match)})")
    if p.get("text"):
        out.print(f"  {escape(p['text'])}")
    r = d["region"]
    st = r["stats"]
    where = (f" — found in {r['analysis']}: {st['support']} rows, error rate "
             f"{st['error_rate']:.2f}, recall {_n(st.get('recall'), '.2f')}, asks for "
             f"'{escape(str(st['label']))}'") if st else ""
    out.print(f"region: {escape(rule_text(r['rule']))}{where}")
    if r["counterexample"]:
        out.print(f"  a counter-example: written for class '{escape(str(d['label']))}' inside "
                  "the region, to keep the boundary in place")
    out.print(f"generator: {escape(str(d['generator']))}, seed {d['seed']}"
              + (f"; made by run {escape(str(d['origin_run_id']))}"
                 if d["origin_run_id"] and d["origin_run_id"] != d["run_id"] else ""))
    t = Table(title="the row and the real training rows it was generated from "
                    "(data/real_train.parquet)", title_justify="left")
    t.add_column("column")
    t.add_column("this row", justify="right")
    for ex in d["exemplars"]:
        t.add_column(escape(ex["id"]), justify="right")
    for col, v in d["values"].items():
        t.add_row(escape(col), _n(v, ".6g"),
                  *[_n((ex.get("values") or {}).get(col), ".6g") for ex in d["exemplars"]])
    out.print(t)
    for ex in d["exemplars"]:
        if ex.get("missing"):
            out.print(f"exemplar {escape(ex['id'])}: {escape(ex['missing'])}")


def graph_cmd(
    spec: Path | None = typer.Argument(
        None, help="A loop spec (default: the bundled Lending Club example)."),
    out_file: Path | None = typer.Option(None, "--out", help="Write here, not stdout."),
) -> None:
    """Print the loop graph as a mermaid diagram, drawn from the compiled LangGraph graph."""
    from synthloop.graphs.context import LoopContext
    from synthloop.graphs.loop import build_graph
    from synthloop.graphs.studio import studio_spec
    from synthloop.spec import load_spec
    from synthloop.store import RunStore

    try:
        s = load_spec(spec) if spec else studio_spec()
    except SynthloopError as exc:
        fail(str(exc))
    # building a graph reads nothing: the context is only captured by the nodes
    text = build_graph(LoopContext(spec=s, store=RunStore("."), client=None)).get_graph() \
        .draw_mermaid()
    if out_file:
        try:
            write_text(out_file, text, "--out")
        except SynthloopError as exc:
            fail(str(exc))
    else:
        sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
    app.command("fork")(fork_cmd)
    app.command("lineage")(lineage_cmd)
    app.command("graph")(graph_cmd)
