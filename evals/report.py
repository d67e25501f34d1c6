"""The report of a finished run: ``report.json`` (the numbers) and ``report.html`` (the same
numbers with plots, in one self-contained file).

``build_report`` computes every number from the run folder; the HTML and its plots are drawn
from that dict only, so whatever the page shows is in ``report.json`` too. The report is
read after the loop, so unlike every node but ``report`` it may read the real holdout.

Sections: the run's header (metric, holdout lift and its CI, tokens, seconds); the validation
metric by iteration; the recall of the class that matters inside the first analysis's error
regions, baseline model against final model, on the real validation rows; real against
synthetic distributions of the columns the loop targeted; and fidelity, coverage, privacy,
diversity and calibration figures from ``synthloop.evals``. A metric that cannot be computed
(no synthetic rows, too few of them) is ``null`` with a note saying why, never left out.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthloop.data import TableSchema
from synthloop.errors import RunStoreError, SynthloopError
from synthloop.evals.calibration import ConstraintViolationRate, ExpectedCalibrationError
from synthloop.evals.classification import predict_labels
from synthloop.evals.coverage import ManifoldPrecision, ManifoldRecall
from synthloop.evals.diversity import MeanPairwiseCosine
from synthloop.evals.fidelity import (
    ColumnShapes,
    CorrelationSimilarity,
    DetectionScore,
    KSComplement,
    TVComplement,
)
from synthloop.evals.privacy import DCR, NNDR, MembershipInference
from synthloop.events import rule_text
from synthloop.inspect import decision_label, teacher_label
from synthloop.paths import output_file, output_folder
from synthloop.spec import load_spec
from synthloop.store import SPEC_FILE, SUMMARY_FILE, RunStore, resume_command
from synthloop.tools.constraints import evaluate_region, parse_rule
from synthloop.tools.error_analysis import Region, analysis_threshold
from synthloop.tools.registry import default_registry
from synthloop.tools.validation import FeatureSpace

log = logging.getLogger(__name__)

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
REPORT_VERSION = 1
MAX_COLUMNS = 8  # columns shown in the distributions section
MAX_CATEGORIES = 12  # bars per categorical column; the rest are summed into "(other)"
BINS = 20
SAMPLE_ROWS = 2000  # real rows sampled for the costlier metrics (detection, coverage, ...)
NO_SYNTHETIC = "no synthetic rows: no batch was kept"

# paths inside a run folder (the same as synthloop.graphs.context's)
TRAIN = "data/real_train.parquet"
VALIDATION = "data/real_validation.parquet"
HOLDOUT = "data/real_holdout.parquet"
SYNTHETIC = "data/synthetic.parquet"
FIRST_ANALYSIS = "analysis/iter_000.json"


# -- finding a run ------------------------------------------------------------------------
# -- numbers ------------------------------------------------------------------------------
def build_report(run_dir: str | Path, *, holdout: pd.DataFrame | None = None) -> dict[str, Any]:
    """Every number of the report of the finished run in ``run_dir`` (JSON-safe).

    ``holdout``: the real holdout, when the caller has read it already (the report node), so
    that a run reads its holdout once.
    """
    store = RunStore(run_dir)
    if not store.exists(SPEC_FILE):
        raise RunStoreError(f"'{run_dir}' is not a run folder (it has no {SPEC_FILE}).")
    if not store.exists(SUMMARY_FILE):
        raise RunStoreError(f"Run '{store.run_id}' has not finished (no {SUMMARY_FILE}); "
                            f"finish it with: {resume_command(store.run_id, store.root.parent)}")
    summary = store.read_json(SUMMARY_FILE)
    spec = load_spec(store.root / SPEC_FILE)
    schema = TableSchema.model_validate(store.read_json("schema.json"))
    train, val = store.read_frame(TRAIN), store.read_frame(VALIDATION)
    if holdout is None:
        holdout = store.read_frame(HOLDOUT)
    syn = store.read_frame(SYNTHETIC) if store.exists(SYNTHETIC) else pd.DataFrame()
    syn = syn[[c for c in syn.columns if not str(c).startswith("_sl_")]]
    baseline = store.read_model("models/baseline.joblib")
    final = store.read_model("models/final.joblib")
    notes: list[str] = []
    if syn.empty:
        notes.append(NO_SYNTHETIC)

    report = {
        "report_version": REPORT_VERSION,
        "run": _header(summary, len(syn)),
        "iterations": _iterations(summary),
    }
    if schema.text_column is not None:  # a text run: the table sections do not apply
        from synthloop.evals.text_report import not_for_text, text_section

        full = store.read_frame(SYNTHETIC) if store.exists(SYNTHETIC) else pd.DataFrame()
        report.update(not_for_text(schema.positive_class))
        report["text"] = text_section(store, spec, schema, summary, train, val, holdout, full,
                                      baseline, final)
    else:
        report.update({
            "regions": _regions(store, schema, spec, val, baseline, final),
            "distributions": _distributions(store, summary, schema, train, syn),
            "fidelity": _fidelity(schema, train, syn, spec.seed),
            "coverage": _coverage(schema, train, syn, spec.seed),
            "privacy": _privacy(schema, train, syn, holdout, spec.seed),
            "diversity": _diversity(schema, train, syn, spec.seed),
        })
    report["calibration"] = _calibration(schema, spec.rules, holdout, syn, train, baseline,
                                         final)
    report["notes"] = notes
    return _json_safe(report)


def _header(summary: dict, n_syn: int) -> dict:
    keys = ("run_id", "status", "stop_reason", "metric", "positive_class", "llm", "baseline",
            "final", "lift", "total_tokens", "wall_seconds", "fallbacks", "llm_failures", "split",
            "decided_on")
    out = {k: summary.get(k) for k in keys}
    out["synthetic_rows"] = n_syn
    if summary.get("teacher"):  # curation.teacher: whose labels the delivered rows carry
        out["teacher"] = summary["teacher"]
    return out


def _iterations(summary: dict) -> dict:
    rows = [
        {k: r.get(k) for k in ("iteration", "validation_metric", "best_validation", "accepted",
                               "rows_generated", "rows_accepted", "prompt_version",
                               "prompt_author", "reason", "tokens", "seconds")}
        for r in summary.get("iterations", [])
    ]
    return {
        "metric": summary.get("metric"),
        "decided_on": decision_label(summary),  # what the "validation" scores are
        "baseline_validation": summary["baseline"]["validation"],
        "final_validation": summary["final"]["validation"],
        "holdout": {"baseline": summary["baseline"]["holdout"],
                    "final": summary["final"]["holdout"]},
        "rows": rows,
    }


def _regions(store: RunStore, schema: TableSchema, spec, val: pd.DataFrame, baseline,
             final) -> dict:
    """Recall of the class that matters inside each region of the first analysis, on the
    real validation rows, for the baseline and the final model."""
    out: dict[str, Any] = {"source": FIRST_ANALYSIS, "rows_scored": "real validation",
                           "positive_class": schema.positive_class, "regions": []}
    if not store.exists(FIRST_ANALYSIS):
        out["note"] = f"no {FIRST_ANALYSIS} in the run folder"
        return out
    regions = [Region.model_validate(r) for r in store.read_json(FIRST_ANALYSIS)["regions"]]
    metric = default_registry().get("metric", spec.metric.name)  # built-in or a plugin's
    y = val[schema.target].astype(str).to_numpy()
    y_pos = y == schema.positive_class
    pos = schema.classes.index(schema.positive_class)
    models = {"baseline": baseline, "final": final}
    preds, thresholds = {}, {}
    for name, model in models.items():
        proba = model.predict_proba(val)
        thr = analysis_threshold(proba[:, pos], y_pos, spec.metric.threshold,
                                 metric.needs_threshold)
        thresholds[name] = thr
        preds[name] = predict_labels(proba, schema.classes, schema.positive_class, thr)
    out["threshold"] = thresholds
    out["threshold_rule"] = (
        f"the metric's threshold {spec.metric.threshold}" if metric.needs_threshold else
        "per model, the score that flags as many validation rows as there are positives")
    if not regions:
        out["note"] = "the first analysis found no error region"
    for r in regions:
        inside = evaluate_region(r.rule, val)
        row = {"id": r.id, "rule": r.rule, "label": r.label, "support": int(inside.sum()),
               "positives": int((inside & y_pos).sum())}
        for name, pred in preds.items():
            is_pos = inside & y_pos
            row[name] = {
                "recall": float((pred[is_pos] == schema.positive_class).mean())
                if is_pos.any() else None,
                "error_rate": float((pred[inside] != y[inside]).mean()) if inside.any() else None,
            }
        out["regions"].append(row)
    return out


def _feature_frames(schema: TableSchema, *frames: pd.DataFrame) -> list[pd.DataFrame]:
    cols = [c.name for c in schema.columns if c.type != "text"]
    return [f[cols] for f in frames]


def _sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return df if len(df) <= n else df.sample(n, random_state=seed)


def _target_columns(store: RunStore, summary: dict, schema: TableSchema) -> list[str]:
    """Columns of the first analysis's regions, then of the iterations' focus regions."""
    rules = []
    if store.exists(FIRST_ANALYSIS):
        rules += [r["rule"] for r in store.read_json(FIRST_ANALYSIS)["regions"]]
    for it in summary.get("iterations", []):
        rules += it.get("focus_regions", [])
    known = {c.name for c in schema.columns if c.type != "text"}
    cols: list[str] = []
    for rule in rules:
        for c in parse_rule(rule).columns:
            if c in known and c not in cols:
                cols.append(c)
    return cols


def _distributions(store: RunStore, summary: dict, schema: TableSchema, train: pd.DataFrame,
                   syn: pd.DataFrame) -> dict:
    out: dict[str, Any] = {"n_real_train": len(train), "n_synthetic": len(syn), "columns": []}
    if syn.empty:
        out["note"] = NO_SYNTHETIC
        return out
    real, fake = _feature_frames(schema, train, syn)
    scores = ColumnShapes.compute_breakdown(real, fake, schema)
    targeted = _target_columns(store, summary, schema)
    # then the columns the synthetic rows reproduce worst
    rest = sorted((c for c in scores if c not in targeted),
                  key=lambda c: (np.nan_to_num(scores[c], nan=2.0), c))
    chosen = (targeted + rest)[:MAX_COLUMNS]
    out["chosen_by"] = ("columns of the error regions the loop targeted, then the columns "
                        "whose synthetic distribution differs most from the real one")
    for name in chosen:
        col = schema.column(name)
        entry: dict[str, Any] = {"name": name, "targeted": name in targeted,
                                 "score": scores[name]}
        if col.type in ("float", "int"):
            entry.update(kind="numeric", score_name=KSComplement.name,
                         **_histogram(real[name], fake[name]))
        else:
            entry.update(kind="categorical", score_name=TVComplement.name,
                         **_category_shares(real[name], fake[name]))
        out["columns"].append(entry)
    return out


def _histogram(real: pd.Series, fake: pd.Series) -> dict:
    r = pd.to_numeric(real, errors="coerce").dropna().to_numpy(float)
    s = pd.to_numeric(fake, errors="coerce").dropna().to_numpy(float)
    both = np.r_[r, s]
    lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
    share = [np.histogram(x, edges)[0] / max(1, len(x)) for x in (r, s)]
    return {"bin_edges": edges.tolist(), "real_share": share[0].tolist(),
            "synthetic_share": share[1].tolist(), "real_mean": float(r.mean()) if len(r) else None,
            "synthetic_mean": float(s.mean()) if len(s) else None}


def _category_shares(real: pd.Series, fake: pd.Series) -> dict:
    def shares(s: pd.Series) -> pd.Series:
        return s.astype(object).where(s.notna(), "<null>").astype(str).value_counts(normalize=True)
    p, q = shares(real), shares(fake)
    p, q = p.align(q, fill_value=0.0)
    order = (p + q).sort_values(ascending=False, kind="stable").index
    top, other = list(order[:MAX_CATEGORIES]), list(order[MAX_CATEGORIES:])
    cats, rs, ss = list(top), [float(p[c]) for c in top], [float(q[c]) for c in top]
    if other:
        cats.append("(other)")
        rs.append(float(p[other].sum()))
        ss.append(float(q[other].sum()))
    return {"categories": cats, "real_share": rs, "synthetic_share": ss}


def _attempt(fn: Callable[[], Any], notes: dict, key: str) -> Any:
    """``fn()``, or None with the reason in ``notes[key]`` when the data does not allow it."""
    try:
        return fn()
    except SynthloopError as exc:
        notes[key] = str(exc)
        return None


def _fidelity(schema, train, syn, seed) -> dict:
    if syn.empty:
        return {"note": NO_SYNTHETIC}
    real, fake = _feature_frames(schema, train, syn)
    notes: dict[str, str] = {}
    sample = _sample(real, SAMPLE_ROWS, seed)
    out = {
        ColumnShapes.name: ColumnShapes.compute(real, fake, schema),
        CorrelationSimilarity.name: CorrelationSimilarity.compute(real, fake, schema),
        "detection_auc": _attempt(lambda: DetectionScore.auc(sample, fake, schema, seed=seed),
                                  notes, "detection"),
        "detection_real_rows": len(sample),
    }
    auc = out["detection_auc"]
    out[DetectionScore.name] = None if auc is None else 1.0 - 2.0 * max(auc - 0.5, 0.0)
    out["notes"] = notes
    return out


def _coverage(schema, train, syn, seed) -> dict:
    if syn.empty:
        return {"note": NO_SYNTHETIC}
    real, fake = _feature_frames(schema, train, syn)
    notes: dict[str, str] = {}
    out = {
        m.name: _attempt(lambda m=m: m.compute(real, fake, schema, max_rows=SAMPLE_ROWS,
                                               seed=seed), notes, m.name)
        for m in (ManifoldPrecision, ManifoldRecall)
    }
    out["notes"] = notes
    return out


def _privacy(schema, train, syn, holdout, seed) -> dict:
    if syn.empty:
        return {"note": NO_SYNTHETIC}
    real, fake, hold = _feature_frames(schema, train, syn, holdout)
    notes: dict[str, str] = {}
    members = _sample(real, len(hold), seed)  # about the holdout's size (see the metric)
    out = {
        DCR.name: _attempt(lambda: DCR.compute(real, fake, hold, schema), notes, DCR.name),
        NNDR.name: {
            "synthetic": _attempt(lambda: NNDR.compute(real, fake, schema), notes, NNDR.name),
            "real_holdout": _attempt(lambda: NNDR.compute(real, hold, schema), notes,
                                     "nndr_holdout"),
        },
        MembershipInference.name: _attempt(
            lambda: MembershipInference.compute(members, fake, hold, schema), notes,
            MembershipInference.name),
        "notes": notes,
    }
    return out


def _diversity(schema, train, syn, seed) -> dict:
    if syn.empty:
        return {"note": NO_SYNTHETIC}
    space = FeatureSpace(schema)
    real, fake = _feature_frames(schema, train, syn)
    notes: dict[str, str] = {}
    sample = _sample(real, len(fake), seed)  # a real sample of the same size as reference
    name = MeanPairwiseCosine.name
    return {
        name: {
            "synthetic": _attempt(lambda: MeanPairwiseCosine.compute(space.transform(fake)),
                                  notes, "synthetic"),
            "real_train_sample": _attempt(
                lambda: MeanPairwiseCosine.compute(space.transform(sample)), notes, "real"),
        },
        "vectors": "rows encoded by the schema's feature space",
        "notes": notes,
    }


def _calibration(schema, rules, holdout, syn, train, baseline, final) -> dict:
    y = holdout[schema.target].astype(str).to_numpy()
    ece = {name: ExpectedCalibrationError.compute(y, model.predict_proba(holdout),
                                                  schema.classes, schema.positive_class)
           for name, model in (("baseline", baseline), ("final", final))}
    out: dict[str, Any] = {"ece_holdout": ece, "rules": list(rules)}
    name = ConstraintViolationRate.name
    if not rules:
        out[name] = None
        out["note"] = "the spec has no rules"
    elif syn.empty:
        out[name] = {"synthetic": None, "real_train": ConstraintViolationRate.compute(train, rules)}
        out["note"] = NO_SYNTHETIC
    else:
        out[name] = {"synthetic": ConstraintViolationRate.compute(syn, rules),
                     "real_train": ConstraintViolationRate.compute(train, rules),
                     "synthetic_by_rule": ConstraintViolationRate.compute_breakdown(syn, rules)}
    return out


def _json_safe(obj: Any) -> Any:
    """Plain JSON: numpy scalars as Python numbers, floats rounded to 6 places, NaN/inf null."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return round(obj, 6) if math.isfinite(obj) else None
    return obj


# -- writing ------------------------------------------------------------------------------
def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 holdout: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` for the run in ``run_dir``.

    ``out`` is a folder to write both into (default: the run folder), or a path ending in
    ``.html`` (the JSON goes beside it, same name, ``.json``). ``holdout`` as in
    ``build_report``. Returns both paths.
    """
    target = Path(out) if out is not None else Path(run_dir)
    if target.suffix.lower() == ".json":
        raise SynthloopError(f"--out '{target}': give a folder, or a .html path (the JSON is "
                             f"written beside it, e.g. {target.with_suffix('.html')} and "
                             f"{target})")
    if target.suffix.lower() in (".html", ".htm"):  # checked before the report is built
        html_path, json_path = output_file(target, "--out"), target.with_suffix(".json")
    else:
        target = output_folder(target, "--out")
        html_path, json_path = target / REPORT_HTML, target / REPORT_JSON
    report = build_report(run_dir, holdout=holdout)
    page = render_html(report)
    try:
        _atomic_write(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
        _atomic_write(html_path, page)
    except OSError as exc:
        raise SynthloopError(f"--out '{target}': cannot write the report ({exc.strerror}); "
                             f"pick a path you can write to") from None
    log.info("report of run %s written to %s", report["run"]["run_id"], html_path)
    return html_path, json_path


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# -- HTML ---------------------------------------------------------------------------------
REAL_COLOUR, SYN_COLOUR = "#4c72b0", "#dd8452"
CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
.pair { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.note { color: #8a4b00; } img { max-width: 100%; }
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.6g}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[Any]], text_cols: tuple[int, ...] = ()) -> str:
    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="text"' if i in text_cols else ""
        return f"<{tag}{cls}>{v if tag == 'th' else _fmt(v)}</{tag}>"
    head = "".join(cell("th", i, html.escape(h)) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _note(text: str | None) -> str:
    return f'<p class="note">{html.escape(text)}</p>' if text else ""


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def render_html(report: dict) -> str:
    """The report as one HTML page: inline CSS, plots as embedded PNGs, no external link."""
    run = report["run"]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>synthloop report: {html.escape(str(run['run_id']))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>synthloop report: {html.escape(str(run['run_id']))}</h1>",
        _header_html(run),
        _iterations_html(report["iterations"]),
        _regions_html(report["regions"]),
        _distributions_html(report["distributions"]),
        _quality_html(report),
        _text_html(report.get("text")),
        _calibration_html(report["calibration"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _text_html(section: dict | None) -> str:
    if section is None:
        return ""
    from synthloop.evals.text_report import text_html

    return text_html(section, _table, _note, _png, _figure)


def _header_html(run: dict) -> str:
    b, f, lift = run["baseline"], run["final"], run["lift"]
    ci = lift.get("holdout_ci95") or [None, None]
    rows = [
        ["status", run["status"]], ["stop reason", run["stop_reason"]],
        ["metric", run["metric"]], ["class that matters", run["positive_class"]],
        [f"{decision_label(run)}: baseline", b["validation"]],
        [f"{decision_label(run)}: final", f["validation"]],
        [f"{decision_label(run)}: one standard error of the lift",
         lift.get("validation_se") or None],  # none for a run that kept nothing
        ["holdout: baseline", b["holdout"]], ["holdout: final", f["holdout"]],
        ["holdout lift", lift["holdout"]], ["holdout lift 95% CI low", ci[0]],
        ["holdout lift 95% CI high", ci[1]], ["synthetic rows kept", run["synthetic_rows"]],
        ["LLM tokens", run["total_tokens"]], ["seconds", run["wall_seconds"]],
        ["LLM", run["llm"]],
    ]
    labelled_by = teacher_label(run)
    if labelled_by:
        rows.append(["delivered rows labelled by", labelled_by])
    return "<h2>Run</h2>" + _table(["", "value"], rows, text_cols=(0, 1))


def _iterations_html(it: dict) -> str:
    fig = _figure(6.5, 3.4)
    ax = fig.add_subplot()
    xs = [0] + [r["iteration"] for r in it["rows"]]
    best = [it["baseline_validation"]] + [r["best_validation"] for r in it["rows"]]
    on = it["decided_on"]
    ax.step(xs, best, where="post", color="#555", label=f"best so far ({on})")
    ax.plot([0], [it["baseline_validation"]], "o", color="#555")
    for kept, marker, colour, label in ((True, "o", "#2a9d4b", "batch kept"),
                                        (False, "x", "#c0392b", "batch rejected")):
        pts = [(r["iteration"], r["validation_metric"]) for r in it["rows"]
               if r["accepted"] is kept and r["validation_metric"] is not None]
        if pts:
            ax.plot(*zip(*pts), marker, color=colour, linestyle="none", label=label)
    last = xs[-1]
    hold = it["holdout"]
    ax.plot([0], [hold["baseline"]], "s", color=REAL_COLOUR, label="holdout (baseline, final)")
    ax.plot([last], [hold["final"]], "s", color=REAL_COLOUR)
    ax.set_xticks(xs)
    ax.set_xlabel("iteration")
    ax.set_ylabel(it["metric"])
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=.3)
    rows = [[0, it["baseline_validation"], None, None, None, "baseline"]] + [
        [r["iteration"], r["validation_metric"], r["accepted"], r["rows_generated"],
         r["rows_accepted"], r["reason"]] for r in it["rows"]]
    table = _table(["iteration", on, "kept", "generated", "accepted", "reason"], rows,
                   text_cols=(5,))
    hold_table = _table(["holdout", it["metric"]], [["baseline", hold["baseline"]],
                                                    ["final", hold["final"]]], text_cols=(0,))
    return (f"<h2>{html.escape(str(it['metric']))} by iteration</h2><div class=\"pair\">"
            f"{_png(fig)}<div>{table}{hold_table}</div></div>")


def _regions_html(reg: dict) -> str:
    head = (f"<h2>Error-region recall, before and after</h2><p>Regions of "
            f"{html.escape(reg['source'])}, scored on the {html.escape(reg['rows_scored'])} "
            f"rows: recall of the class '{html.escape(str(reg['positive_class']))}' inside each "
            "region (and the share of its rows misclassified), baseline model against final "
            "model.</p>")
    if not reg["regions"]:
        return head + _note(reg.get("note"))
    rows = [[r["id"], rule_text(r["rule"]), r["support"], r["positives"], r["baseline"]["recall"],
             r["final"]["recall"], r["baseline"]["error_rate"], r["final"]["error_rate"]]
            for r in reg["regions"]]
    table = _table(["region", "rule", "rows", "positives", "recall baseline", "recall final",
                    "error rate baseline", "error rate final"], rows, text_cols=(1,))
    thr = reg["threshold"]
    thr_table = _table(["threshold", "value"], [["baseline", thr["baseline"]],
                                                ["final", thr["final"]]], text_cols=(0,))
    fig = _figure(max(4.0, 1.2 * len(rows) + 2), 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    for off, name, colour in ((-0.2, "baseline", "#999"), (0.2, "final", "#2a9d4b")):
        vals = [np.nan if r[name]["recall"] is None else r[name]["recall"]
                for r in reg["regions"]]
        ax.bar(x + off, vals, width=0.4, color=colour, label=name)
    ax.set_xticks(x, [r["id"] for r in reg["regions"]])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall in region")
    ax.legend(fontsize=8)
    return (head + f'<div class="pair">{_png(fig)}<div>{thr_table}<p>'
            f"{html.escape(reg['threshold_rule'])}</p></div></div>{table}")


def _distributions_html(dist: dict) -> str:
    head = "<h2>Real and synthetic distributions</h2>"
    if not dist["columns"]:
        return head + _note(dist.get("note"))
    cols = dist["columns"]
    n = len(cols)
    ncols = 2 if n > 1 else 1
    nrows = math.ceil(n / ncols)
    fig = _figure(5.0 * ncols, 2.6 * nrows)
    for i, c in enumerate(cols):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        if c["kind"] == "numeric":
            edges = np.asarray(c["bin_edges"])
            for share, colour, label in ((c["real_share"], REAL_COLOUR, "real train"),
                                         (c["synthetic_share"], SYN_COLOUR, "synthetic")):
                ax.stairs(share, edges, fill=True, alpha=0.45, color=colour, label=label)
        else:
            x = np.arange(len(c["categories"]))
            ax.bar(x - 0.2, c["real_share"], width=0.4, color=REAL_COLOUR, label="real train")
            ax.bar(x + 0.2, c["synthetic_share"], width=0.4, color=SYN_COLOUR, label="synthetic")
            ax.set_xticks(x, c["categories"], rotation=60, fontsize=7, ha="right")
        ax.set_title(c["name"], fontsize=9)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    rows = [[c["name"], c["kind"], c["targeted"], c["score_name"], c["score"]] for c in cols]
    table = _table(["column", "kind", "in a region", "score", "value"], rows,
                   text_cols=(0, 1, 3))
    return (head + f"<p>{dist['n_real_train']} real training rows, {dist['n_synthetic']} "
            f"synthetic rows; shares per bin or category. Shown: "
            f"{html.escape(dist['chosen_by'])}.</p><div class=\"pair\">{_png(fig)}{table}</div>")


def _quality_html(report: dict) -> str:
    fid, cov, priv, div = (report[k] for k in ("fidelity", "coverage", "privacy", "diversity"))
    head = "<h2>Fidelity, coverage, privacy and diversity</h2>"
    if "note" in fid:
        return head + _note(fid["note"])
    dcr = priv.get(DCR.name) or {}
    nndr, cos = priv[NNDR.name], div[MeanPairwiseCosine.name]
    scores = [  # name, value, the better end
        ("column shapes", fid[ColumnShapes.name], "high"),
        ("correlation similarity", fid[CorrelationSimilarity.name], "high"),
        ("detection (1 = indistinguishable)", fid[DetectionScore.name], "high"),
        ("k-NN precision", cov[ManifoldPrecision.name], "high"),
        ("k-NN recall", cov[ManifoldRecall.name], "high"),
        ("membership inference AUC", priv[MembershipInference.name], "0.5"),
        ("DCR: share closer than holdout 5%", dcr.get("share_closer"), "about 0.05"),
        ("DCR: exact copies", dcr.get("exact_copies"), "low"),
    ]
    pairs = [  # name, synthetic, reference, reference's name
        ("DCR median", dcr.get("synthetic_median"), dcr.get("holdout_median"), "real holdout"),
        ("NNDR median", nndr["synthetic"], nndr["real_holdout"], "real holdout"),
        ("pairwise cosine", cos["synthetic"], cos["real_train_sample"],
         "real train sample"),
    ]
    fig = _figure(10.0, 3.2)
    grid = fig.add_gridspec(1, 4 + len(pairs))
    ax = fig.add_subplot(grid[0, :4])
    y = np.arange(len(scores))[::-1]
    ax.barh(y, [np.nan if v is None else v for _, v, _ in scores], color="#6a8caf")
    ax.set_yticks(y, [s[0] for s in scores], fontsize=7)
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="#aaa", lw=0.8, ls="--")
    ax.set_title("scores in [0, 1]", fontsize=9)
    ax.tick_params(labelsize=7)
    for j, (name, s, r, _) in enumerate(pairs):
        a = fig.add_subplot(grid[0, 4 + j])
        a.bar([0, 1], [np.nan if s is None else s, np.nan if r is None else r],
              color=[SYN_COLOUR, REAL_COLOUR])
        a.set_xticks([0, 1], ["syn.", "real"], fontsize=7)
        a.set_title(name, fontsize=8)
        a.tick_params(labelsize=7)
    score_table = _table(["score", "value", "better"], [list(s) for s in scores],
                         text_cols=(0, 2))
    pair_table = _table(["figure", "synthetic", "reference", "reference rows"],
                        [list(p) for p in pairs], text_cols=(0, 3))
    notes = {**fid.get("notes", {}), **cov.get("notes", {}), **priv.get("notes", {}),
             **div.get("notes", {})}
    note_html = "".join(_note(f"{k}: {v}") for k, v in notes.items())
    detail = (f"<p>Detection classifier: real-vs-synthetic out-of-fold AUC "
              f"{_fmt(fid['detection_auc'])} on {fid['detection_real_rows']} real rows. "
              "Privacy distances compare synthetic rows with the real training rows; the real "
              "holdout is the yardstick.</p>")
    return (head + f'<div class="pair">{_png(fig)}</div><div class="pair">{score_table}'
            f"{pair_table}</div>{detail}{note_html}")


def _calibration_html(cal: dict) -> str:
    ece = cal["ece_holdout"]
    rows = [["ECE on the holdout: baseline", ece["baseline"]],
            ["ECE on the holdout: final", ece["final"]]]
    cvr = cal.get(ConstraintViolationRate.name)
    by_rule = ""
    if cvr is not None:
        rows += [["rule violation rate: synthetic", cvr["synthetic"]],
                 ["rule violation rate: real train", cvr["real_train"]]]
        if cvr.get("synthetic_by_rule"):
            by_rule = _table(["rule", "share of synthetic rows failing it"],
                             [[k, v] for k, v in cvr["synthetic_by_rule"].items()],
                             text_cols=(0,))
    return ("<h2>Calibration and rules</h2>" + _table(["figure", "value"], rows, text_cols=(0,))
            + by_rule + _note(cal.get("note")))
