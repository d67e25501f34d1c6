"""Which teacher for `curation.teacher`? The out-of-fold log-loss and AUC of candidate teachers
(the loop's model kinds, alone and averaged) on the real training rows of a bench suite's
seed-0 split: a teacher with lower log-loss gives soft labels closer to the truth.

    python scripts/teacher_logloss.py BENCH_DATA [--suite sick|adult-lowdata]

On sick (2,968 training rows, 5 folds): LightGBM 0.028, GradientBoosting 0.036, LightGBM +
random forest 0.038, random forest 0.052, logistic regression + random forest 0.069, logistic
regression 0.109. On adult-lowdata n=20 (40 rows): logistic regression 0.442, + random forest
0.456, LightGBM + random forest 0.480, LightGBM 0.493, random forest 0.505, GradientBoosting
1.495. The order matches the soft-label gains measured on adult (logistic regression first).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from synthloop.data import infer_schema
from synthloop.evals.bench import adult_suite, run_script, sick_suite
from synthloop.spec import ModelSpec, validate_spec
from synthloop.tools.training import TabularModel, make_estimator, stratified_folds

CANDIDATES = (["lightgbm"], ["gradient_boosting"], ["random_forest"], ["logistic_regression"],
              ["logistic_regression", "random_forest"], ["lightgbm", "random_forest"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("--suite", default="sick", choices=("sick", "adult-lowdata"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    suite = (sick_suite(Path(args.data_dir)) if args.suite == "sick"
             else adult_suite(Path(args.data_dir), sizes=(20,)))
    real = next(iter(suite.splits([0]))).train
    with tempfile.TemporaryDirectory() as tmp:
        real.to_csv(Path(tmp) / "train.csv", index=False)
        spec = validate_spec({"name": "teacher-logloss", "data": {
            "source": str(Path(tmp) / "train.csv"), "target": suite.target,
            "positive_class": suite.positive}})
    schema = infer_schema(real, spec)
    y = real[suite.target].astype(str).str.strip().to_numpy()
    j = schema.classes.index(suite.positive)
    print(f"{args.suite}, seed 0: {len(real)} real training rows, {args.folds} folds")
    for kinds in CANDIDATES:
        oof = np.zeros((len(real), len(schema.classes)))
        for tr, te in stratified_folds(y, args.folds, 0):
            oof[te] = np.mean([TabularModel(make_estimator(ModelSpec(kind=k), 0), schema)
                               .fit(real.iloc[tr]).predict_proba(real.iloc[te])
                               for k in kinds], axis=0)
        hit = y == suite.positive
        print(f"  {' + '.join(kinds):36s} log-loss {log_loss(hit, oof[:, j]):.3f}  "
              f"AUC {roc_auc_score(hit, oof[:, j]):.3f}", flush=True)


if __name__ == "__main__":
    run_script(main)
