"""What the loop's rows could have given on sick, from a finished bench's run folders: the rows
it kept against every batch it wrote (kept or refused), and the same rows at other weights,
by class, or labelled by a teacher fitted on the real training split.

    .venv/bin/python scripts/sick_pool.py ../shared/bench-data BENCH_OUT/runs [EVERY]

BENCH_OUT is the --out folder of a finished `synthloop bench sick --methods synthloop` (or
open_loop). For each run under runs/ (one per seed), the *pool* is every candidate batch the
loop wrote: rows that passed validation and curation, before the validation split judged the
batch. Each figure is F1 of class `sick` ×100 on the real test split, with the suite's two
models fitted on the whole real training split plus the rows named, at that seed (as the bench
scores the loop); per-seed rows, then the mean ± std over seeds, then the mean paired
difference against the kept rows.

With EVERY (a number of iterations, e.g. 4), it also scores the rows kept by the end of
iteration EVERY, 2 × EVERY, ...: how the kept rows' worth grows with their count, on the same
run and seed, the rest of the loop unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from adult_diagnostics import seed_runs  # beside this script: one reader of a bench's runs/

from synthloop.data import infer_schema
from synthloop.evals.bench import delivered_rows, fit_and_score, run_script, sick_suite
from synthloop.spec import validate_spec
from synthloop.tools.teacher import Teacher

MODELS = ("gradient_boosting", "lightgbm")
SICK = "sick"


def prefixes(kept: pd.DataFrame, w_kept: np.ndarray, every: int | None,
             last: int) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """The rows kept by the end of iteration every, 2 × every, ... (before ``last``)."""
    if not every:
        return {}
    it = kept["_sl_iteration"].to_numpy(int)
    return {f"+ kept by iteration {k}": (kept[it <= k], w_kept[it <= k])
            for k in range(every, last, every)}


def variants(train: pd.DataFrame, schema, kept: pd.DataFrame, w_kept: np.ndarray,
             pool: pd.DataFrame, seed: int) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """Name -> (extra rows, their sample weights)."""
    other = next(c for c in schema.classes if c != SICK)
    hard = {}
    for kind in ("lightgbm", "gradient_boosting"):
        p = Teacher([kind], seed).fit(train, schema).proba(pool[train.columns])
        hard[kind] = pool.assign(Class=np.where(p[:, list(schema.classes).index(SICK)] >= 0.5,
                                                SICK, other))
    ones = np.ones(len(pool))
    sick_kept, sick_pool = (kept.Class == SICK).to_numpy(), (pool.Class == SICK).to_numpy()
    return {
        "+ kept (what the bench scores)": (kept, w_kept),
        "+ kept at weight 0.5": (kept, 0.5 * w_kept),
        "+ kept, sick rows only": (kept[sick_kept], w_kept[sick_kept]),
        "+ pool (every batch written)": (pool, ones),
        "+ pool at weight 0.5": (pool, 0.5 * ones),
        "+ pool, sick rows only": (pool[sick_pool], ones[sick_pool]),
        "+ pool labelled by LightGBM (hard)": (hard["lightgbm"], ones),
        "+ pool labelled by GradientBoosting (hard)": (hard["gradient_boosting"], ones),
    }


def main(data_dir: str, runs_dir: str, every: int | None = None) -> None:
    suite = sick_suite(Path(data_dir))
    train, test = (split := next(suite.splits([0]))).train, split.test  # one fixed split
    schema = infer_schema(train, validate_spec({
        "name": "pool", "data": {"source": "x.csv", "target": "Class", "positive_class": SICK}}))
    scores: dict[str, list[np.ndarray]] = {}
    skipped: list[str] = []
    for run, summary, seed, _, batches in seed_runs(suite, runs_dir, skipped):
        pool = pd.concat(batches.values(), ignore_index=True)
        kept, w_kept = delivered_rows(run, 1.0)
        print(f"seed {seed}: kept {len(kept)} {kept.Class.value_counts().to_dict()}, pool "
              f"{len(pool)} {pool.Class.value_counts().to_dict()}, "
              f"{summary.get('total_tokens')} tokens")

        def f1(extra: pd.DataFrame, w: np.ndarray, seed=seed) -> np.ndarray:
            both = pd.concat([train, extra[train.columns]], ignore_index=True)
            weights = None if (w == 1.0).all() else np.r_[np.ones(len(train)), w]
            return np.array([fit_and_score(suite, m, seed, both, weights, test)["f1"] * 100
                             for m in MODELS])

        scores.setdefault("real only", []).append(f1(train.iloc[:0], np.ones(0)))
        named = {**prefixes(kept, w_kept, every, max(batches)),
                 **variants(train, schema, kept, w_kept, pool, seed)}
        for name, (extra, w) in named.items():
            scores.setdefault(name, []).append(f1(extra, w))
    for line in skipped:
        print(line)
    ref = np.array(scores["+ kept (what the bench scores)"])
    print(f"\n{len(ref)} seeds; F1 ×100, mean ± std over seeds; paired: minus the kept rows, "
          "mean ± one standard error\n")
    print("| training set | GradientBoosting | LightGBM | paired GB | paired LightGBM |")
    print("|---|---|---|---|---|")
    for name, rows in scores.items():
        s = np.array(rows)
        d = s - ref
        sd = s.std(0, ddof=1) if len(s) > 1 else np.zeros(2)  # one seed: no spread
        se = d.std(0, ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.zeros(2)
        cells = [f"{m:.2f} ± {v:.2f}" for m, v in zip(s.mean(0), sd)]
        cells += [f"{m:+.2f} ± {v:.2f}" for m, v in zip(d.mean(0), se)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: scripts/sick_pool.py BENCH_DATA_DIR BENCH_OUT/runs [EVERY]")
    if len(sys.argv) > 3 and not sys.argv[3].isdigit():
        sys.exit(f"EVERY must be a whole number of iterations, e.g. 4, not '{sys.argv[3]}'.")
    run_script(lambda: main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3
                            else None))
