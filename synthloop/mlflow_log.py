"""Optional MLflow logging of a finished run (``pip install 'synthloop[mlflow]'``).

``log_run`` reads a run folder and logs one MLflow run: the resolved spec as parameters, the
per-iteration numbers as metrics (step = iteration; step 0 is the baseline), the headline
numbers, and as artifacts the prompt versions, the synthetic data (kept rows and every batch
file), the iteration records, the error analyses, the summary and the report. It writes
``mlflow.json`` (tracking URI, experiment, MLflow run id) into the run folder.

Tracking URI: the ``tracking_uri`` argument, else ``MLFLOW_TRACKING_URI``, else a local file
store ``RUNS_DIR/mlruns`` (browse it with ``mlflow ui --backend-store-uri RUNS_DIR/mlruns``).
MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``; for the default store
that opt-in is set in this process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from synthloop.errors import RunStoreError, SynthloopError
from synthloop.store import SPEC_FILE, SUMMARY_FILE, RunStore, resume_command

MLFLOW_FILE = "mlflow.json"
INSTALL_HINT = "MLflow logging needs the mlflow package; install it with: pip install 'synthloop[mlflow]'"
PARAM_LIMIT = 6000  # MLflow's longest parameter value


def require_mlflow():
    """The mlflow module, or a one-line error saying how to install it."""
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SynthloopError(INSTALL_HINT) from None
    return MlflowClient


def default_tracking_uri(runs_dir: str | Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or Path(runs_dir).resolve().joinpath("mlruns").as_uri()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def spec_params(store: RunStore) -> dict[str, str]:
    spec = yaml.safe_load((store.root / SPEC_FILE).read_text()) or {}
    out = {}
    for k, v in _flatten(spec).items():
        text = "; ".join(map(str, v)) if isinstance(v, list) else str(v)
        out[k] = text[:PARAM_LIMIT]
    return out


def run_metrics(summary: dict) -> list[tuple[str, float, int]]:
    """(key, value, step) for every number worth a chart."""
    rows: list[tuple[str, float, int]] = [("best_validation", summary["baseline"]["validation"], 0)]
    for r in summary.get("iterations", []):
        k = r["iteration"]
        if r.get("validation_metric") is not None:
            rows.append(("validation_metric", r["validation_metric"], k))
        rows.append(("best_validation", r["best_validation"], k))
        for key in ("rows_generated", "rows_rejected", "rows_accepted", "tokens", "seconds",
                    "llm_calls", "llm_failures"):
            if r.get(key) is not None:
                rows.append((key, r[key], k))
        rows.append(("batch_accepted", 1.0 if r.get("accepted") else 0.0, k))
    last = max([r["iteration"] for r in summary.get("iterations", [])], default=0)
    b, f, lift = summary["baseline"], summary["final"], summary["lift"]
    for key, value in (("baseline_validation", b["validation"]), ("final_validation", f["validation"]),
                       ("baseline_holdout", b["holdout"]), ("final_holdout", f["holdout"]),
                       ("lift_validation", lift["validation"]),
                       ("lift_validation_se", lift.get("validation_se")),
                       ("lift_holdout", lift["holdout"]),
                       ("synthetic_rows", summary.get("synthetic_rows")),
                       ("total_tokens", summary.get("total_tokens")),
                       ("wall_seconds", summary.get("wall_seconds"))):
        if value is not None:
            rows.append((key, value, last))
    return [(k, float(v), int(s)) for k, v, s in rows]


ARTIFACTS = [  # (path in the run folder, artifact folder)
    ("prompts", "prompts"), ("data/synthetic.parquet", "data"), ("data/batches", "data/batches"),
    ("iterations", "iterations"), ("analysis", "analysis"), (SPEC_FILE, ""), (SUMMARY_FILE, ""),
    ("report.html", ""), ("report.json", ""), ("fork.json", ""),
]


def log_run(run_dir: str | Path, *, tracking_uri: str | None = None,
            experiment: str | None = None) -> dict[str, Any]:
    """Log the finished run in ``run_dir`` to MLflow; returns what ``mlflow.json`` records."""
    client_cls = require_mlflow()
    from mlflow.entities import Metric, Param, RunTag

    store = RunStore(run_dir)
    if not store.exists(SUMMARY_FILE):
        raise RunStoreError(f"Run '{store.run_id}' has not finished (no {SUMMARY_FILE}); finish "
                            f"it with '{resume_command(store.run_id, store.root.parent)}', "
                            "then log it.")
    summary = store.read_json(SUMMARY_FILE)
    uri = tracking_uri or default_tracking_uri(store.root.parent)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    spec = yaml.safe_load((store.root / SPEC_FILE).read_text()) or {}
    name = experiment or f"synthloop-{spec.get('name', 'loop')}"
    client = client_cls(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
    tags = {"synthloop.run_id": store.run_id, "synthloop.status": str(summary.get("status")),
            "synthloop.stop_reason": str(summary.get("stop_reason")),
            "synthloop.metric": str(summary.get("metric")),
            "synthloop.synthetic_sha256": str(summary.get("synthetic_sha256"))}
    parent = summary.get("parent")
    if parent:
        tags.update({"synthloop.parent_run_id": parent["run_id"],
                     "synthloop.parent_iteration": str(parent["iteration"])})
    for p in sorted((store.root / "prompts").glob("*.yaml")):
        doc = yaml.safe_load(p.read_text()) or {}
        tags[f"synthloop.prompt.v{int(doc.get('version', 0)):03d}.sha256"] = str(doc.get("sha256"))
    run = client.create_run(exp_id, run_name=store.run_id,
                            tags={k: v for k, v in tags.items()})
    rid = run.info.run_id
    try:
        now = int(time.time() * 1000)
        params = [Param(k, v) for k, v in spec_params(store).items()]
        metrics = [Metric(k, v, now, s) for k, v, s in run_metrics(summary)]
        for i in range(0, max(len(params), len(metrics)), 100):  # MLflow's batch limits
            client.log_batch(rid, metrics=metrics[i:i + 100], params=params[i:i + 100],
                             tags=[RunTag("synthloop.logged_by", "synthloop")] if i == 0 else [])
        for rel, dest in ARTIFACTS:
            path = store.root / rel
            if path.is_dir():
                client.log_artifacts(rid, str(path), artifact_path=dest or None)
            elif path.is_file():
                client.log_artifact(rid, str(path), artifact_path=dest or None)
        client.set_terminated(rid, "FINISHED")
    except Exception:
        client.set_terminated(rid, "FAILED")
        raise
    record = {"tracking_uri": uri, "experiment": name, "experiment_id": exp_id,
              "mlflow_run_id": rid, "logged_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    store.write_json(MLFLOW_FILE, record)
    return record
