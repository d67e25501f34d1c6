"""Where the loop's rows move sick's models: true and false positives at the protocol's threshold.

    .venv/bin/python scripts/sick_confusion.py ../shared/bench-data [BENCH_OUT/runs]

For the suite's two models fitted on the real training split alone, plus EPIC's published
rows (all 1,000, then a seeded 320 per seed 0-2), plus the rows each finished loop run under
BENCH_OUT/runs delivered (what the bench scores), it prints the test split's true positives,
false positives and missed positives of class `sick` at decision thresholds 0.3-0.6, and F1
×100 at each. On the 960-row copula loop's runs, LightGBM found about as many positives as on
real data alone and 3-7 false positives where real data alone has 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from synthloop.evals.bench import delivered_rows, fit_proba, run_script, sick_suite
from synthloop.spec import load_spec

MODELS = ("gradient_boosting", "lightgbm")
THRESHOLDS = (0.3, 0.4, 0.5, 0.6)
SICK = "sick"


def counts(suite, train: pd.DataFrame, test: pd.DataFrame, extra: pd.DataFrame | None,
           weights: np.ndarray | None, seed: int) -> str:
    both = train if extra is None else pd.concat([train, extra[train.columns]],
                                                 ignore_index=True)
    y = test[suite.target].astype(str).str.strip().to_numpy() == SICK
    w = None if weights is None else np.r_[np.ones(len(train)), weights]
    cells = []
    for name in MODELS:
        proba, classes = fit_proba(suite, name, seed, both, w, test)
        p = proba[:, classes.index(SICK)]
        parts = []
        for t in THRESHOLDS:
            hit = p >= t
            tp, fp, fn = int((hit & y).sum()), int((hit & ~y).sum()), int((~hit & y).sum())
            parts.append(f"{t}: {tp}/{fp}/{fn} F1 {200 * tp / (2 * tp + fp + fn):.1f}")
        cells.append(f"{name}  " + ", ".join(parts))
    return "\n    ".join(cells)


def main(data_dir: str, runs_dir: str | None) -> None:
    suite = sick_suite(Path(data_dir))
    split = next(suite.splits([0]))  # one fixed published split
    train, test = split.train, split.test
    print(f"test: {int((test[suite.target].str.strip() == SICK).sum())} sick of {len(test)}; "
          "each cell is threshold: true positives / false positives / missed")
    sets = [("real only", None, None, 0), ("+ EPIC, all 1,000 rows", suite.provided, None, 0)]
    sets += [(f"+ EPIC, a random 320, seed {s}", suite.provided.sample(320, random_state=s),
              None, s) for s in range(3)]
    for run in sorted(Path(runs_dir).iterdir()) if runs_dir else []:
        missing = [f for f in ("data/synthetic.parquet", "spec.yaml") if not (run / f).is_file()]
        if missing:
            print(f"skipped {run.name}: no {missing[0]} (not a finished run)")
            continue
        spec = load_spec(run / "spec.yaml")
        # as the bench scores it: the run's own synthetic weight
        kept, w = delivered_rows(run, spec.blend.synthetic_weight)
        sets.append((f"+ {run.name}: {len(kept)} rows", kept,
                     None if (w == 1.0).all() else w, spec.seed))
    for name, extra, w, seed in sets:
        print(f"{name}\n    {counts(suite, train, test, extra, w, seed)}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: scripts/sick_confusion.py BENCH_DATA_DIR [BENCH_OUT/runs]")
    runs = sys.argv[2] if len(sys.argv) > 2 else None
    if runs and not Path(runs).is_dir():
        sys.exit(f"'{runs}' is not a folder: pass the runs/ folder of a finished "
                 "`synthloop bench sick` --out.")
    run_script(lambda: main(sys.argv[1], runs))
