"""Why the loop's rows fall short of EPIC's on sick: the measurements behind the README's
"Why the gap on sick" paragraph, reproducible.

    .venv/bin/python scripts/sick_diagnostics.py ../shared/bench-data [RUN_DIR]

RUN_DIR is a finished loop run on the sick training split (e.g. one under a `synthloop bench
sick` output's runs/ folder); with it, its kept rows are compared with copies of the real
exemplars they were written from, and their FTI = TT4 / T4U relation is measured.
It also measures how firm EPIC's published 91.95 is: the same fit scored at other decision
thresholds, and EPIC's own rows resampled (a random 95% or 90% of them, and a bootstrap).
Every figure is F1 of class `sick` ×100 on the real test split, the suite's models.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from synthloop.evals.bench import fit_and_score, run_script, sick_suite

MODELS = ("gradient_boosting", "lightgbm")


def main(data_dir: str, run_dir: str | None = None) -> None:
    suite = sick_suite(Path(data_dir))
    split = next(suite.splits([0]))
    train, test, epic = split.train, split.test, suite.provided
    sick = train["Class"] == "sick"

    def f1(extra: pd.DataFrame, seed: int = 0) -> np.ndarray:
        both = pd.concat([train, extra[train.columns]], ignore_index=True)
        return np.array([fit_and_score(suite, m, seed, both, None, test)["f1"] * 100
                         for m in MODELS])

    def line(name: str, scores) -> None:
        scores = np.atleast_2d(scores)
        cells = [f"{m:.2f}" + (f" ± {s:.2f}" if len(scores) > 1 else "")
                 for m, s in zip(scores.mean(0), scores.std(0, ddof=1))]
        print(f"| {name} | " + " | ".join(cells) + " |")

    print("| training set | GradientBoosting | LightGBM |\n|---|---|---|")
    line("real only", f1(epic.iloc[:0]))
    line("+ EPIC, all 1,000", f1(epic))
    line("+ EPIC's 504 sick rows only", f1(epic[epic.Class == "sick"]))
    line("+ EPIC's 496 negative rows only", f1(epic[epic.Class != "sick"]))
    rng = np.random.default_rng(0)
    mixed = epic.copy()
    for c in mixed.columns.drop("Class"):
        for _, idx in mixed.groupby("Class").groups.items():
            mixed.loc[idx, c] = rng.permutation(mixed.loc[idx, c].to_numpy())
    line("+ EPIC, each column shuffled within its class", f1(mixed))
    for n in (160, 324, 1000):
        line(f"+ {n} real training rows resampled, half sick (5 draws)",
             [f1(pd.concat([train[sick].sample(n // 2, replace=True, random_state=b),
                            train[~sick].sample(n // 2, replace=True, random_state=b)]))
              for b in range(5)])

    firmness(suite, train, test, epic, line)

    def ratio(df: pd.DataFrame) -> pd.Series:
        return df["FTI"] / (df["TT4"] / df["T4U"])

    real = ratio(train)
    lo, hi = real.quantile([0.01, 0.99])
    def row_key(df: pd.DataFrame) -> pd.Series:  # a row's features, to 3 decimals
        return df[train.columns.drop("Class")].round(3).astype(str).agg("|".join, axis=1)

    epic_key = row_key(epic)
    print(f"\nEPIC rows equal to a real training row: "
          f"{int(epic_key.isin(set(row_key(train))).sum())} of {len(epic)}; to a test row: "
          f"{int(epic_key.isin(set(row_key(test))).sum())}")
    print(f"FTI / (TT4 / T4U) of real training rows, 1st-99th percentile: {lo:.3f}-{hi:.3f}; "
          f"EPIC rows outside it: {((ratio(epic) < lo) | (ratio(epic) > hi)).mean():.1%}")

    if run_dir:
        data = Path(run_dir) / "data"
        rows = pd.read_parquet(data / "synthetic.parquet")
        loop_train = pd.read_parquet(data / "real_train.parquet")
        print(f"\nrun {run_dir}: {len(rows)} kept rows "
              f"{rows['Class'].value_counts().to_dict()}; outside that range: "
              f"{((ratio(rows) < lo) | (ratio(rows) > hi)).mean():.1%}\n")
        print("| training set | GradientBoosting | LightGBM |\n|---|---|---|")
        line("+ the loop's kept rows", f1(rows))
        copies = []
        for b in range(5):  # each row replaced by one of the real exemplars it was shown
            pick = np.random.default_rng(b)
            idx = [int(pick.choice(e.split(",")).split(":")[1]) for e in rows["_sl_exemplars"]]
            copies.append(f1(loop_train.loc[idx]))
        line("+ a copy of one of each row's exemplars instead (5 draws)", copies)


def firmness(suite, train, test, epic, line) -> None:
    """How firm EPIC's published 91.95 is: the same model at other decision thresholds, and
    EPIC's own rows resampled (the noise of one set of 1,000 generated rows)."""
    y = test["Class"].str.strip().to_numpy() == "sick"
    both = pd.concat([train, epic[train.columns]], ignore_index=True)
    thresholds = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)
    print("\nF1 at other decision thresholds (the protocol scores at 0.5):\n")
    print("| model, training set | " + " | ".join(f"{t:.2f}" for t in thresholds) + " |")
    print("|---|" + "---|" * len(thresholds))
    for model in MODELS:
        for name, frame in (("real only", train), ("+ EPIC, all 1,000", both)):
            proba = sick_proba(suite, model, frame, test)
            cells = []
            for t in thresholds:
                hit = proba >= t
                tp = int((hit & y).sum())
                cells.append(f"{200 * tp / (2 * tp + int((hit & ~y).sum()) + int((~hit & y).sum())):.1f}")
            print(f"| {model}, {name} | " + " | ".join(cells) + " |")

    def f1(extra: pd.DataFrame) -> np.ndarray:
        rows = pd.concat([train, extra[train.columns]], ignore_index=True)
        return np.array([fit_and_score(suite, m, 0, rows, None, test)["f1"] * 100
                         for m in MODELS])

    print("\nEPIC's own rows resampled, 10 draws each (mean ± std):\n")
    print("| training set | GradientBoosting | LightGBM |\n|---|---|---|")
    for frac in (0.95, 0.9):
        line(f"+ a random {frac:.0%} of EPIC's rows",
             [f1(epic.sample(frac=frac, random_state=b)) for b in range(10)])
    line("+ 1,000 of EPIC's rows drawn with replacement (a bootstrap)",
         [f1(epic.sample(frac=1.0, replace=True, random_state=b)) for b in range(10)])


def sick_proba(suite, model: str, frame: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """P(sick) on the test split from the suite's model fitted on ``frame``."""
    from sklearn.pipeline import Pipeline

    from synthloop.evals.bench import _featurize

    cols, pre = _featurize(frame, "Class", suite.encoding)
    pipe = Pipeline([("pre", pre), ("model", suite.models[model](0))])
    pipe.fit(frame[cols], frame["Class"].astype(str).str.strip())
    return pipe.predict_proba(test[cols])[:, list(pipe.classes_).index("sick")]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: scripts/sick_diagnostics.py BENCH_DATA_DIR [RUN_DIR]")
    run_script(lambda: main(*sys.argv[1:3]))
