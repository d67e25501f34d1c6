"""Why the loop does not beat real data on adult-lowdata: the measurements behind the README's
"Why the gap on adult" paragraph, reproducible.

    .venv/bin/python scripts/adult_diagnostics.py ../shared/bench-data BENCH_OUT/runs
    .venv/bin/python scripts/adult_diagnostics.py ../shared/bench-data --llm-labeller 200
    .venv/bin/python scripts/adult_diagnostics.py ../shared/bench-data BENCH_OUT/runs --embedding-critic
    .venv/bin/python scripts/adult_diagnostics.py ../shared/bench-data BENCH_OUT/runs --teacher

BENCH_OUT is the --out folder of a finished `synthloop bench adult-lowdata --variants n=20
--methods synthloop` (or open_loop); pass --n 50 for a `--variants n=50` run. For each run
under runs/ (one per seed), the *pool* is every candidate batch the loop wrote, kept or
refused: rows that passed validation and curation.
Every score is test AUC ×100, the mean of the suite's three models, on that seed's split.

Per seed it prints:
- real only: the n + n real rows alone (the `real_only` method; 40 rows at n=20);
- + pool, + kept: the real rows plus the pool, or plus the rows the loop kept; the pool also
  at sample weights 0.25 and 0.1 (blend.synthetic_weight);
- + exemplar copies: the real rows plus, for each pool row, a copy of one of the real rows it
  was written from (of its own label where there is one), mean of 5 draws: what the rows add
  over resampling;
- TSTR pool / TRTR loop train: trained on the pool alone, or on the loop's real training rows
  alone (24 at n=20: the rows every exemplar comes from);
- coherence: how well an oracle (LightGBM on the seed's ~16k oracle rows, which the loop never
  sees) ranks the rows by their own labels (AUC), for the pool, for its rows written for a
  whole class rather than an error region (region rows sit near the model's mistakes by
  design, so they rank worse even when right), and for the real rows; and how often its
  label (probability 0.5 or more) is theirs;
- + oracle-agreeing pool: the real rows plus the pool rows whose label the oracle also gives,
  against as many pool rows drawn at random (mean of 5 draws). A diagnostic only: the loop has
  no oracle, and the selection carries some of the oracle's knowledge into the rows.
Then, over every batch of every seed: the batch's own effect on test AUC (added alone to the
real rows) against the change of the validation metric the loop decided on (its forest on its
training rows plus the batches kept so far, against the best so far), and against the change
of a 5-fold cross-validated AUC over the loop's training and validation rows (36 at n=20)
when the batch alone is added, scored with the suite's three models. The two signals are not
measured on the same footing as the test gain; they are what could have been known.

--llm-labeller N asks the embedded SmolLM2-135M whether each of N real test rows (seed 0's split)
earns more than $50,000 a year, zero-shot and with 6 labelled real training rows in the
prompt, and scores its probability of "yes" against the true labels (AUC), beside a random
forest trained on that seed's 40 real rows and scored on the same rows: does the generator
know anything about the label that 40 real rows do not?

--embedding-critic asks the same of the embedded sentence encoder (all-MiniLM-L6-v2): each row,
written as "column value, ..." without its label, is scored by its cosine to "This person earns
more than $50,000 a year." minus its cosine to "... less than ...". Per seed it prints that
score's AUC on 2,000 real test rows (zero-shot) and on the loop's real training and validation
rows, then drops the pool rows whose label the critic contradicts (a threshold fitted on those
real rows alone) and scores the real rows plus the rest, against as many random pool rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from synthloop.evals.bench import _featurize, _lgbm100, adult_suite, fit_and_score, run_script
from synthloop.graphs.nodes import exemplar_rows
from synthloop.tools.training import stratified_folds

DRAWS = 5  # random draws averaged for the exemplar-copy and same-size controls


def exemplar_copies(pool: pd.DataFrame, loop_train: pd.DataFrame, target: str,
                    rng: np.random.Generator) -> pd.DataFrame:
    """For each pool row that names its exemplars, a copy of one of them (of the row's own
    label where there is one)."""
    labels = loop_train[target].astype(str).str.strip().to_numpy()
    picks = []
    for sources, label in zip(exemplar_rows(pool), pool[target].astype(str).str.strip()):
        idx = sorted(sources)
        if idx:
            same = [i for i in idx if labels[i] == label] or idx
            picks.append(int(rng.choice(same)))
    return loop_train.iloc[picks].reset_index(drop=True)


def cross_validated_auc(suite, real: pd.DataFrame, batch: pd.DataFrame | None,
                        seed: int) -> float:
    """Out-of-fold AUC ×100 over the loop's real training and validation rows, mean of the
    suite's models, each fold fitted on the other real rows plus the batch's rows not written
    from a held-out row (the exemplar rule of ``blend.accept_on: cross_validation``, with the
    suite's models instead of the loop's)."""
    target, pos = suite.target, suite.positive
    y = real[target].astype(str).str.strip()
    sources = exemplar_rows(batch) if batch is not None else []
    out = np.zeros((len(suite.models), len(real)))
    for fit_idx, held in stratified_folds(y, 5, seed):
        parts = [real.iloc[fit_idx]]
        if batch is not None:
            parts.append(batch[real.columns][[not (s & set(held)) for s in sources]])
        train = pd.concat(parts, ignore_index=True)
        cols, pre = _featurize(train, target)
        for j, name in enumerate(suite.models):
            pipe = Pipeline([("pre", pre), ("model", suite.models[name](seed))]).fit(
                train[cols], train[target].astype(str).str.strip())
            out[j, held] = pipe.predict_proba(real.iloc[held][cols])[
                :, list(pipe.classes_).index(pos)]
    return 100 * float(np.mean([roc_auc_score(y == pos, o) for o in out]))


def seed_runs(suite, runs_dir: str, skipped: list[str]):
    """Each finished run under runs_dir (one per seed) with its split and candidate batches
    ({iteration: rows}); a run that wrote no batch goes to ``skipped`` instead."""
    runs = sorted(p for p in Path(runs_dir).iterdir() if (p / "summary.json").is_file())
    if not runs:
        sys.exit(f"No finished run under {runs_dir}: pass the runs/ folder of a bench --out.")
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        seed = int(yaml.safe_load((run / "spec.yaml").read_text())["seed"])
        batches = {}
        for path in sorted((run / "data" / "batches").glob("iter_*_candidate.parquet")):
            frame = pd.read_parquet(path)
            if len(frame):
                batches[int(path.name.split("_")[1])] = frame
        if not batches:
            stop = summary.get("stop_reason")
            skipped.append(f"seed {seed}: the loop wrote no batch (stop reason: {stop})")
            continue
        yield run, summary, seed, next(iter(suite.splits([seed]))), batches


def suite_auc(suite, seed: int, split, real: pd.DataFrame):
    """Test AUC ×100 (mean of the suite's models) of the real rows plus extra rows."""
    cols = list(real.columns)

    def auc_alone(train: pd.DataFrame, w: np.ndarray | None = None) -> float:
        return 100 * float(np.mean([fit_and_score(suite, m, seed, train, w, split.test)["roc_auc"]
                                    for m in suite.models]))

    def auc(*extra: pd.DataFrame, weight: float = 1.0) -> float:
        train = pd.concat([real, *[e[cols] for e in extra]], ignore_index=True)
        w = (None if weight == 1.0
             else np.r_[np.ones(len(real)), np.full(len(train) - len(real), weight)])
        return auc_alone(train, w)

    return auc, auc_alone


def main(data_dir: str, runs_dir: str, n: int = 20) -> None:
    suite = adult_suite(Path(data_dir), sizes=(n,))
    target, pos = suite.target, suite.positive
    per_seed, per_batch, skipped = [], [], []
    for run, summary, seed, split, batches in seed_runs(suite, runs_dir, skipped):
        cols = list(split.train.columns)
        real = split.train
        auc, auc_alone = suite_auc(suite, seed, split, real)
        pool = pd.concat(batches.values(), ignore_index=True)
        kept_path = run / "data" / "synthetic.parquet"
        kept = pd.read_parquet(kept_path) if kept_path.is_file() else pool.iloc[:0]
        loop_train = pd.read_parquet(run / "data" / "real_train.parquet")[cols]

        feats, pre = _featurize(split.oracle, target)
        oracle = Pipeline([("pre", pre), ("model", _lgbm100(seed))]).fit(
            split.oracle[feats], split.oracle[target].astype(str).str.strip())
        col = list(oracle.classes_).index(pos)

        def coherence(df: pd.DataFrame, oracle=oracle, feats=feats, col=col) -> tuple:
            p = oracle.predict_proba(df[feats])[:, col]
            y = (df[target].astype(str).str.strip() == pos).to_numpy()
            return 100 * roc_auc_score(y, p), (p >= 0.5) == y

        coh_pool, agrees = coherence(pool)
        whole_class = pool["_sl_region"].astype(str) == "True"  # not written for a region
        coh_whole = coherence(pool[whole_class])[0] if whole_class.sum() > 10 else np.nan
        coh_real, real_agrees = coherence(real)
        base = auc()
        rng = np.random.default_rng(seed)
        copies = np.mean([auc(exemplar_copies(pool, loop_train, target, rng))
                          for _ in range(DRAWS)])
        same_size = np.mean([auc(pool.sample(int(agrees.sum()), random_state=seed + d))
                             for d in range(DRAWS)])
        per_seed.append({
            "seed": seed, "pool rows": len(pool), "kept rows": len(kept), "real only": base,
            "+ pool": auc(pool), "+ pool, weight 0.25": auc(pool, weight=0.25),
            "+ pool, weight 0.1": auc(pool, weight=0.1),
            "+ kept": auc(kept) if len(kept) else base,
            "+ exemplar copies": copies,
            "TSTR pool": auc_alone(pool[cols]), "TRTR loop train": auc_alone(loop_train),
            "coherence pool": coh_pool, "coherence pool, whole-class rows": coh_whole,
            "coherence real": coh_real,
            "oracle agrees pool": 100 * agrees.mean(),
            "oracle agrees real": 100 * real_agrees.mean(),
            "+ oracle-agreeing pool": auc(pool[agrees]),
            "+ random pool rows, as many": same_size,
        })
        best = float(summary["baseline"]["validation"])
        decision_real = pd.concat(
            [loop_train, pd.read_parquet(run / "data" / "real_validation.parquet")[cols]],
            ignore_index=True)  # training split first: exemplars "train:i" index it
        cv_base = cross_validated_auc(suite, decision_real, None, seed)
        for k, frame in batches.items():
            rec = json.loads((run / "iterations" / f"iter_{k:03d}.json").read_text())
            if rec.get("validation_metric") is not None:
                per_batch.append({"seed": seed, "iteration": k, "rows": len(frame),
                                  "accepted": rec["accepted"],
                                  "validation change": rec["validation_metric"] - best,
                                  "cross-validated change": cross_validated_auc(
                                      suite, decision_real, frame, seed) - cv_base,
                                  "test gain": auc(frame) - base})
            best = rec.get("best_validation", best)
        print(f"seed {seed}: done", file=sys.stderr, flush=True)

    seeds = pd.DataFrame(per_seed)
    _print_per_seed(f"n={n} real rows per class; per seed (AUC ×100, mean of LightGBM, random "
                    "forest, logistic regression):", seeds, skipped)
    print("\nMean over seeds:")
    print(seeds.drop(columns=["seed"]).mean().round(2).to_string())
    for name in ["+ pool", "+ pool, weight 0.25", "+ pool, weight 0.1", "+ kept",
                 "+ exemplar copies", "+ oracle-agreeing pool", "+ random pool rows, as many"]:
        gain = seeds[name] - seeds["real only"]
        print(f"{name} minus real only: mean {gain.mean():+.2f}, seeds "
              + ", ".join(f"{g:+.2f}" for g in gain))
    batches = pd.DataFrame(per_batch)
    if len(batches) > 2:
        gain = batches["test gain"]
        print(f"\n{len(batches)} batches: test gain of a batch alone {gain.mean():+.2f} ± "
              f"{gain.std():.2f} (mean ± std); share positive {(gain > 0).mean():.2f}")
        signals = {"validation change": "the loop's forest on its validation rows",
                   "cross-validated change": "the 3 models, 5 folds over the loop's "
                                             "training and validation rows"}
        for signal, what in signals.items():
            r = batches[signal].corr(gain, method="spearman")
            within = [g[signal].corr(g["test gain"], method="spearman")
                      for _, g in batches.groupby("seed") if len(g) >= 3]
            up = batches[signal] >= 0
            print(f"{signal} ({what}): "
                  f"Spearman with the test gain {r:+.2f} over all batches, {np.nanmean(within):+.2f}"
                  f" within a seed (mean over {len(within)} seeds); batches it would keep "
                  f"(change >= 0): {int(up.sum())}, test gain {gain[up].mean():+.2f}; the others "
                  f"{gain[~up].mean():+.2f}")
        acc = batches[batches["accepted"]]
        if len(acc):
            print(f"accepted batches ({len(acc)}): test gain {acc['test gain'].mean():+.2f}; "
                  f"refused ({len(batches) - len(acc)}): "
                  f"{batches[~batches['accepted']]['test gain'].mean():+.2f}")


CLASS_SENTENCES = {">50K": "This person earns more than $50,000 a year.",
                   "<=50K": "This person earns less than $50,000 a year."}


def embedding_critic(data_dir: str, runs_dir: str, n: int = 20) -> None:
    """Does the embedded sentence encoder (all-MiniLM-L6-v2, the one the loop retrieves with)
    know the label, and does dropping the pool rows it contradicts help?"""
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    from synthloop.tools.text import model_path

    suite = adult_suite(Path(data_dir), sizes=(n,))
    target, pos = suite.target, suite.positive
    encoder = SentenceTransformer(str(model_path()), device="cpu")
    classes = encoder.encode(list(CLASS_SENTENCES.values()), normalize_embeddings=True)
    assert pos in CLASS_SENTENCES and len(CLASS_SENTENCES) == 2, "one sentence per class"
    sign = np.array([1.0 if c == pos else -1.0 for c in CLASS_SENTENCES])

    def score(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
        """Cosine to the positive class's sentence minus cosine to the other's, of the row
        written as 'column value, column value, ...' in the bench's column order, no label."""
        texts = [", ".join(f"{c} {row[c]}" for c in cols if c != target)
                 for _, row in df.iterrows()]
        return encoder.encode(texts, normalize_embeddings=True, batch_size=64) @ classes.T @ sign

    per_seed, skipped = [], []
    for run, _, seed, split, batches in seed_runs(suite, runs_dir, skipped):
        cols = list(split.train.columns)
        auc = suite_auc(suite, seed, split, split.train)[0]
        pool = pd.concat(batches.values(), ignore_index=True)
        seen = pd.concat([pd.read_parquet(run / "data" / f"real_{part}.parquet")[cols]
                          for part in ("train", "validation")], ignore_index=True)
        y_seen = (seen[target].astype(str).str.strip() == pos).to_numpy()
        y_pool = (pool[target].astype(str).str.strip() == pos).to_numpy()
        test = split.test.sample(min(2000, len(split.test)), random_state=seed)
        s_seen = score(seen, cols)
        mu, sd = s_seen.mean(), s_seen.std() + 1e-12
        # the threshold is calibrated on the rows the loop sees (36 at n=20), no other label
        calib = LogisticRegression().fit(((s_seen - mu) / sd)[:, None], y_seen)
        s_pool = (score(pool, cols) - mu) / sd
        agrees = (calib.predict_proba(s_pool[:, None])[:, 1] >= 0.5) == y_pool
        base = auc()
        kept = int(agrees.sum())
        per_seed.append({
            "seed": seed, "pool rows": len(pool),
            "critic AUC, test rows": 100 * roc_auc_score(
                test[target].astype(str).str.strip() == pos, score(test, cols)),
            "critic AUC, loop's real rows": 100 * roc_auc_score(y_seen, s_seen),
            "critic-agreeing rows": kept,
            "+ pool": auc(pool) - base,
            "+ critic-agreeing pool": auc(pool[agrees]) - base if kept else 0.0,
            "+ random pool rows, as many": np.mean([
                auc(pool.sample(kept, random_state=seed + d)) for d in range(DRAWS)]) - base,
        })
        print(f"seed {seed}: done", file=sys.stderr, flush=True)
    seeds = pd.DataFrame(per_seed)
    pd.set_option("display.width", 250)
    print(f"n={n}: the embedding critic; gains are test AUC ×100 over the real rows alone")
    print(seeds.round(2).to_string(index=False))
    for line in skipped:
        print(line)
    print("\nMean over seeds:")
    print(seeds.drop(columns=["seed"]).mean().round(2).to_string())


TEACHERS = {"logistic regression": ("logistic_regression",),
            "forest + logistic regression": ("random_forest", "logistic_regression"),
            "all three models": ("lightgbm", "random_forest", "logistic_regression")}


def _print_per_seed(title: str, table: pd.DataFrame, skipped: list[str]) -> None:
    """A per-seed table under its title, then the seeds left out and why."""
    pd.set_option("display.width", 250)
    print(title)
    print(table.round(2).to_string(index=False))
    for line in skipped:
        print(line)


def teacher_proba(suite, seed: int, fitted_on: pd.DataFrame, kinds, frame: pd.DataFrame):
    """The mean probability of the positive class of the suite's ``kinds``, fitted on
    ``fitted_on``, for the rows of ``frame``."""
    target = suite.target
    feats, _ = _featurize(fitted_on, target)
    out = []
    for kind in kinds:
        pre = _featurize(fitted_on, target)[1]
        pipe = Pipeline([("pre", pre), ("model", suite.models[kind](seed))]).fit(
            fitted_on[feats], fitted_on[target].astype(str).str.strip())
        out.append(pipe.predict_proba(frame[feats])[:, list(pipe.classes_).index(suite.positive)])
    return np.mean(out, axis=0)


def teacher(data_dir: str, runs_dir: str, n: int = 20) -> None:
    """Labels from a teacher instead of the generator (curation.teacher): the pool's rows,
    labelled softly by the mean probability of some of the suite's models fitted on real rows
    (each row once per class, weighted by that probability), added to the real rows; against
    the generator's labels, and against other inputs (a Gaussian copula's rows, SMOTE's, copies
    of the pool's exemplars) given the same teacher's labels."""
    from synthloop.evals.bench import m_gaussian_copula, m_smote

    suite = adult_suite(Path(data_dir), sizes=(n,))
    target, pos = suite.target, suite.positive
    rows, skipped = [], []
    for run, _, seed, split, batches in seed_runs(suite, runs_dir, skipped):
        real = split.train
        cols = list(real.columns)
        neg = next(c for c in real[target].astype(str).str.strip().unique() if c != pos)
        written = pd.concat(batches.values(), ignore_index=True)  # with its lineage columns
        pool = written[cols]
        loop_train = pd.read_parquet(run / "data" / "real_train.parquet")[cols]
        auc = suite_auc(suite, seed, split, real)[1]

        def proba(fitted_on, kinds, frame, seed=seed):
            return teacher_proba(suite, seed, fitted_on, kinds, frame)

        def soft(frame, p, real=real, neg=neg, auc=auc):
            both = pd.concat([real, frame.assign(**{target: pos}),
                              frame.assign(**{target: neg})], ignore_index=True)
            return auc(both, np.r_[np.ones(len(real)), p, 1 - p])

        base = auc(real)
        row = {"seed": seed, "pool rows": len(pool),
               "pool, generator's labels": auc(pd.concat([real, pool], ignore_index=True)) - base}
        for name, kinds in TEACHERS.items():
            row[f"pool, {name}"] = soft(pool, proba(real, kinds, pool)) - base
        kinds = TEACHERS["forest + logistic regression"]
        row["pool, forest + LR fitted on the loop's training rows only"] = soft(
            pool, proba(loop_train, kinds, pool)) - base
        copula = m_gaussian_copula(suite, split, len(pool), {}).train.iloc[len(real):][cols]
        smote = m_smote(suite, split, len(pool), {}).train.iloc[len(real):][cols]
        copies = exemplar_copies(written, loop_train, target, np.random.default_rng(seed))[cols]
        for name, frame in (("copula rows", copula), ("SMOTE rows", smote),
                            ("exemplar copies", copies)):
            row[f"{name}, forest + LR"] = soft(frame, proba(real, kinds, frame)) - base
        rows.append(row)
        print(f"seed {seed}: done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    _print_per_seed(f"n={n}: gain in test AUC ×100 (mean of the suite's three models) over the "
                    "real rows alone; teachers fitted on the real rows unless said", table, skipped)
    print("\nMean ± standard error over seeds (seeds with a gain):")
    for col in table.columns[2:]:
        g = table[col]
        print(f"  {col}: {g.mean():+.2f} ± {g.std(ddof=1) / np.sqrt(len(g)):.2f} "
              f"({int((g > 0.005).sum())} of {len(g)})")


def describe(row: pd.Series) -> str:
    return (f"age {row['age']}, {row['workclass']}, education {row['education']}, "
            f"{row['marital-status']}, occupation {row['occupation']}, {row['relationship']}, "
            f"{row['race']}, {row['sex']}, capital gain {row['capital-gain']}, capital loss "
            f"{row['capital-loss']}, {row['hours-per-week']} hours per week, from {row['country']}")


def llm_labeller(data_dir: str, n_rows: int) -> None:
    import math

    from llama_cpp import Llama

    from synthloop.llm.embedded import default_model_path

    suite = adult_suite(Path(data_dir), sizes=(20,))
    split = next(iter(suite.splits([0])))
    target = suite.target
    test = split.test.sample(n_rows, random_state=0).reset_index(drop=True)
    shots = split.train.sample(6, random_state=1)
    llm = Llama(model_path=default_model_path(), n_ctx=4096, n_threads=2, seed=0,
                verbose=False, logits_all=True)
    question = "Does this person earn more than $50,000 a year? Answer yes or no."
    y = (test[target].astype(str).str.strip() == suite.positive).to_numpy()
    forest = fit_and_score(suite, "random_forest", 0, split.train, None, test)["roc_auc"]
    print(f"random forest on the 40 real rows: AUC {100 * forest:.1f} on the same {n_rows} rows")
    for k in (0, len(shots)):
        scores = []
        for _, row in test.iterrows():
            chat = [{"role": "system", "content": "You are a census analyst."}]
            for _, shot in shots.head(k).iterrows():
                answer = "yes" if str(shot[target]).strip() == suite.positive else "no"
                chat += [{"role": "user", "content": f"{describe(shot)}. {question}"},
                         {"role": "assistant", "content": answer}]
            chat.append({"role": "user", "content": f"{describe(row)}. {question}"})
            out = llm.create_chat_completion(messages=chat, max_tokens=1, temperature=0,
                                             logprobs=True, top_logprobs=20)
            top = out["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            p = {w: sum(math.exp(t["logprob"]) for t in top if t["token"].strip().lower() == w)
                 for w in ("yes", "no")}
            scores.append(p["yes"] / (p["yes"] + p["no"]) if p["yes"] + p["no"] else 0.5)
        print(f"embedded LLM as a labeller, {k}-shot: AUC {100 * roc_auc_score(y, scores):.1f} "
              f"on {n_rows} real test rows ({int(y.sum())} earn >50K)", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("runs_dir", nargs="?")
    parser.add_argument("--n", type=int, default=20, choices=(20, 50),
                        help="real rows per class of the bench run (its --variants)")
    parser.add_argument("--llm-labeller", type=int, metavar="N")
    parser.add_argument("--embedding-critic", action="store_true",
                        help="only the embedding critic, on RUNS_DIR's pools")
    parser.add_argument("--teacher", action="store_true",
                        help="only teacher labels (curation.teacher), on RUNS_DIR's pools")
    args = parser.parse_args()
    if not args.runs_dir and not args.llm_labeller:
        parser.error("pass RUNS_DIR (a bench --out folder's runs/) or --llm-labeller N")
    if (args.embedding_critic or args.teacher) and not args.runs_dir:
        parser.error("--embedding-critic and --teacher read the pools of RUNS_DIR: pass it")
    if args.runs_dir:
        job = embedding_critic if args.embedding_critic else teacher if args.teacher else main
        run_script(lambda: job(args.data_dir, args.runs_dir, args.n))
    if args.llm_labeller:
        run_script(lambda: llm_labeller(args.data_dir, args.llm_labeller))
