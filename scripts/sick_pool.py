"""What the loop's rows could have given on sick, from a finished bench's run folders: the rows
it kept against every batch it wrote (kept or refused), and the same rows at other weights,
by class, or labelled by a teacher fitted on the real training split.

    .venv/bin/python scripts/sick_pool.py ../shared/bench-data BENCH_OUT/runs

BENCH_OUT is the --out folder of a finished `synthloop bench sick --methods synthloop` (or
open_loop). For each run under runs/ (one per seed), the *pool* is every candidate batch the
loop wrote: rows that passed validation and curation, before the validation split judged the
batch. Each figure is F1 of class `sick` ×100 on the real test split, with the suite's two
models fitted on the whole real training split plus the rows named, at that seed (as the bench
scores the loop); per-seed rows, then the mean ± std over seeds, then the mean paired
difference against the kept rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from synthloop.evals.bench import fit_and_score, sick_suite

MODELS = ("gradient_boosting", "lightgbm")


def variants(train: pd.DataFrame, kept: pd.DataFrame, pool: pd.DataFrame,
             seed: int) -> dict[str, tuple[pd.DataFrame, float]]:
    """Name -> (extra rows, their sample weight)."""
    from synthloop.data import infer_schema
    from synthloop.spec import validate_spec
    from synthloop.tools.teacher import Teacher

    sick = "sick"
    spec = validate_spec({"name": "pool", "data": {"source": "x.csv", "target": "Class",
                                                   "positive_class": sick}})
    schema = infer_schema(train, spec)
    hard = {}
    for kinds in (["lightgbm"], ["gradient_boosting"]):
        teacher = Teacher(kinds, seed).fit(train, schema)
        p = teacher.proba(pool[train.columns])[:, list(schema.classes).index(sick)]
        hard[kinds[0]] = pool.assign(Class=np.where(p >= 0.5, sick, "negative"))
    return {
        "+ kept (what the bench scores)": (kept, 1.0),
        "+ kept at weight 0.5": (kept, 0.5),
        "+ kept, sick rows only": (kept[kept.Class == sick], 1.0),
        "+ pool (every batch written)": (pool, 1.0),
        "+ pool at weight 0.5": (pool, 0.5),
        "+ pool, sick rows only": (pool[pool.Class == sick], 1.0),
        "+ pool labelled by LightGBM (hard)": (hard["lightgbm"], 1.0),
        "+ pool labelled by GradientBoosting (hard)": (hard["gradient_boosting"], 1.0),
    }


def main(data_dir: str, runs_dir: str) -> None:
    suite = sick_suite(Path(data_dir))
    split = next(suite.splits([0]))  # sick has one fixed split
    train, test = split.train, split.test
    runs = sorted(p for p in Path(runs_dir).iterdir() if (p / "summary.json").is_file())
    if not runs:
        sys.exit(f"No finished run under {runs_dir}: pass the runs/ folder of a bench --out.")
    scores: dict[str, list[np.ndarray]] = {}
    for run in runs:
        seed = int(yaml.safe_load((run / "spec.yaml").read_text())["seed"])
        batches = [pd.read_parquet(p) for p in
                   sorted((run / "data" / "batches").glob("iter_*_candidate.parquet"))]
        pool = pd.concat([b for b in batches if len(b)], ignore_index=True)
        kept_path = run / "data" / "synthetic.parquet"
        kept = pd.read_parquet(kept_path) if kept_path.is_file() else pool.iloc[:0]
        summary = json.loads((run / "summary.json").read_text())
        print(f"seed {seed}: kept {len(kept)} {kept.Class.value_counts().to_dict()}, pool "
              f"{len(pool)} {pool.Class.value_counts().to_dict()}, "
              f"{summary.get('total_tokens')} tokens")

        def f1(extra: pd.DataFrame, weight: float, seed=seed) -> np.ndarray:
            both = pd.concat([train, extra[train.columns]], ignore_index=True)
            w = (None if weight == 1.0
                 else np.r_[np.ones(len(train)), np.full(len(extra), weight)])
            return np.array([fit_and_score(suite, m, seed, both, w, test)["f1"] * 100
                             for m in MODELS])

        scores.setdefault("real only", []).append(f1(train.iloc[:0], 1.0))
        for name, (extra, weight) in variants(train, kept, pool, seed).items():
            scores.setdefault(name, []).append(f1(extra, weight))
    ref = np.array(scores["+ kept (what the bench scores)"])
    print(f"\n{len(ref)} seeds; F1 ×100, mean ± std over seeds; paired: minus the kept rows, "
          "mean ± one standard error\n")
    print("| training set | GradientBoosting | LightGBM | paired GB | paired LightGBM |")
    print("|---|---|---|---|---|")
    for name, rows in scores.items():
        s = np.array(rows)
        d = s - ref
        se = d.std(0, ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.zeros(2)
        cells = [f"{m:.2f} ± {v:.2f}" for m, v in zip(s.mean(0), s.std(0, ddof=1))]
        cells += [f"{m:+.2f} ± {v:.2f}" for m, v in zip(d.mean(0), se)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: scripts/sick_pool.py BENCH_DATA_DIR BENCH_OUT/runs")
    main(*sys.argv[1:3])
