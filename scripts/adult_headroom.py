"""What the real rows the loop sets aside cost on adult-lowdata n=20, without the loop.

    .venv/bin/python scripts/adult_headroom.py ../shared/bench-data [SEEDS]

The rival `gaussian_copula_teacher` fits its copula and its teacher (logistic regression +
random forest, soft labels) on all 40 real rows. The loop splits those 40 rows as it does in
the bench (24 training, 12 validation, 4 holdout) and fits its writer on the 24. For each
seed (default 10) this draws the gaussian_copula baseline's 200 rows, half per class, and
labels them with the teacher as gaussian_copula_teacher does, fitting each on the 24, the 36
(training + validation) or all 40 rows. It prints the test AUC ×100 (mean of the suite's
three models) of the 40 real rows plus those rows, and each variant minus the rival, paired
by seed (mean ± one standard error). On seeds 0-9 the rival scored 83.46 (as in the bench);
the copula on 24 rows with the teacher on 40 (what curation.final_teacher_rows: all gives
the loop's copula writer) 83.22.

Two more variants ask whether the rival itself gains from rows aimed where its teacher is
unsure, or from more rows: of 2,000 rows drawn as the rival draws its 200, the 200 whose
teacher probability is nearest 0.5; and 1,000 rows instead of 200. Both are fitted on all 40.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from synthloop.data import infer_schema, split_real
from synthloop.evals import bench as B
from synthloop.tools.teacher import Teacher

TEACHER = ["logistic_regression", "random_forest"]
ROWS = 200
# (rows the copula is fitted on, rows the teacher is fitted on)
VARIANTS = [("40", "40"), ("36", "36"), ("24", "36"), ("24", "40")]
RIVAL = "copula 40 / teacher 40"
POOL, MORE = 2000, 1000
UNSURE = f"{RIVAL}, the {ROWS} of {POOL:,} least sure"


def main(data_dir: str, seeds: int) -> None:
    suite = B.adult_suite(Path(data_dir), sizes=(20,))
    rows = []
    for split in suite.splits(list(range(seeds))):
        spec = B._loop_spec(suite, split, ROWS, {"loop_overrides": {}}, "bench.csv",
                            feedback=True)
        schema = infer_schema(split.train, spec)
        tr, va, _ = split_real(split.train, spec, schema)
        sets = {"24": tr, "36": pd.concat([tr, va], ignore_index=True), "40": split.train}
        scored = {"real only": B.Augmented(split.train)}
        for fit_c, fit_t in VARIANTS:
            # the gaussian_copula baseline's rows, fitted on those rows only
            part = B.BenchSplit(sets[fit_c], split.test, split.seed)
            syn = B.m_gaussian_copula(suite, part, ROWS, {}).train.iloc[len(part.train):]
            scored[f"copula {fit_c} / teacher {fit_t}"] = B.with_teacher_labels(
                split.train, syn, TEACHER, schema, split.seed, fit_on=sets[fit_t])
        # the teacher's own "unsure" region: of a larger pool of the rival's rows, the ROWS its
        # teacher is least sure of (p of the positive class nearest 0.5); and more rows
        pool = B.m_gaussian_copula(suite, split, POOL, {}).train.iloc[len(split.train):]
        teacher = Teacher(TEACHER, split.seed).fit(split.train, schema)
        p = teacher.proba(pool)[:, schema.classes.index(suite.positive)]
        unsure = pool.iloc[np.argsort(np.abs(p - 0.5), kind="stable")[:ROWS]]
        scored[UNSURE] = B.with_teacher_labels(split.train, unsure, TEACHER, schema, split.seed)
        more = B.m_gaussian_copula(suite, split, MORE, {}).train.iloc[len(split.train):]
        scored[f"{RIVAL}, {MORE:,} rows"] = B.with_teacher_labels(split.train, more, TEACHER,
                                                                 schema, split.seed)
        for name, aug in scored.items():
            auc = [B.fit_and_score(suite, m, split.seed, aug.train, aug.weights,
                                   split.test)["roc_auc"] for m in suite.models]
            rows.append({"seed": split.seed, "variant": name, "auc": 100 * float(np.mean(auc))})
        print(f"seed {split.seed}: " + ", ".join(f"{r['variant']} {r['auc']:.2f}"
                                                 for r in rows if r["seed"] == split.seed),
              flush=True)
    piv = pd.DataFrame(rows).pivot(index="seed", columns="variant", values="auc")
    print(f"\nmean over {len(piv)} seeds, and minus the rival ({RIVAL}), paired by seed:")
    for c in piv:
        d = piv[c] - piv[RIVAL]
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        print(f"  {c:48s} {piv[c].mean():6.2f}   {d.mean():+.2f} ± {se:.2f}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: scripts/adult_headroom.py BENCH_DATA_DIR [SEEDS]")
    n_seeds = 10
    if len(sys.argv) == 3:
        if not sys.argv[2].isdigit() or int(sys.argv[2]) < 1:
            sys.exit(f"SEEDS must be a whole number of at least 1, got '{sys.argv[2]}'.")
        n_seeds = int(sys.argv[2])
    B.run_script(lambda: main(sys.argv[1], n_seeds))
