"""The text section of a text run's report (``report.json["text"]`` and its HTML).

The tabular sections (rule regions, column distributions, fidelity, coverage, privacy by
feature distance) do not apply to texts; a text run's report says so there and shows this
section instead: the gates of every batch, per-class recall before and after on the real
validation and holdout texts, the first analysis's error clusters re-scored with the final
model, what the kept synthetic texts look like (length, Self-BLEU, mean cosine against an
equal-size real sample), how close they come to real training texts compared with real
holdout texts (a nearest-neighbour privacy yardstick in embedding space), and a few examples.
Read after the loop, so it may read the holdout.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from synthloop.data import TableSchema
from synthloop.evals.classification import predict_labels
from synthloop.evals.diversity import MeanPairwiseCosine, SelfBLEU, tokenize
from synthloop.store import RunStore

NOT_FOR_TEXT = "does not apply to a text run (no table columns); see the Text section"
FIRST_ANALYSIS = "analysis/iter_000.json"
MAX_SAMPLE = 300  # texts compared for Self-BLEU and mean cosine (Self-BLEU grows with count)
N_EXAMPLES = 6

GATE_COLUMNS = ("iteration", "rows_generated", "malformed", "duplicates", "near_duplicates",
                "near_copies_rejected", "ungrounded", "grounded_share", "self_bleu",
                "mean_cosine", "diversity_collapsed", "label_accuracy", "label_contradictions",
                "judge_label_accuracy", "rows_accepted", "accepted", "reason")


def not_for_text(positive_class: str) -> dict[str, Any]:
    """The tabular sections of a text run's report."""
    return {
        "regions": {"source": FIRST_ANALYSIS, "rows_scored": "real validation",
                    "positive_class": positive_class, "regions": [], "note": NOT_FOR_TEXT},
        "distributions": {"columns": [], "note": NOT_FOR_TEXT},
        "fidelity": {"note": NOT_FOR_TEXT},
        "coverage": {"note": NOT_FOR_TEXT},
        "privacy": {"note": NOT_FOR_TEXT},
        "diversity": {"note": NOT_FOR_TEXT},
    }


def text_section(store: RunStore, spec, schema: TableSchema, summary: dict,
                 train: pd.DataFrame, val: pd.DataFrame, holdout: pd.DataFrame,
                 syn: pd.DataFrame, baseline, final) -> dict[str, Any]:
    from synthloop.graphs.context import EMBEDDINGS
    from synthloop.tools.text import Embedder

    col, target = schema.text_column, schema.target
    embedder = Embedder(cache_dir=store.root / EMBEDDINGS)
    t = spec.text
    out: dict[str, Any] = {
        "text_column": col, "features": t.features, **(summary.get("text") or {}),
        "thresholds": {"in_domain_similarity": t.in_domain_similarity,
                       "near_copy_similarity": t.near_copy_similarity,
                       "max_ungrounded": t.max_ungrounded, "max_self_bleu": t.max_self_bleu,
                       "max_mean_cosine": t.max_mean_cosine,
                       "label_min_confidence": t.label_min_confidence,
                       "llm_judge": t.llm_judge},
        "gates": [{k: r.get(k) for k in GATE_COLUMNS} for r in summary.get("iterations", [])],
    }
    preds = {}
    for split, frame in (("validation", val), ("holdout", holdout)):
        preds[split] = {name: predict_labels(m.predict_proba(frame), schema.classes,
                                             schema.positive_class, spec.metric.threshold)
                        for name, m in (("baseline", baseline), ("final", final))}
    out["class_recall"] = {
        "threshold": spec.metric.threshold if len(schema.classes) == 2 else "argmax",
        **{split: _recall(frame[target].astype(str).to_numpy(), preds[split], schema.classes)
           for split, frame in (("validation", val), ("holdout", holdout))},
    }
    out["clusters"] = _clusters(store, val[target].astype(str).to_numpy(), preds["validation"])
    out["synthetic"] = _synthetic(syn, train, holdout, col, target, embedder, spec.seed)
    out["examples"] = [
        {"label": str(r[target]), "text": _short(r[col], 300),
         "exemplars": str(r.get("_sl_exemplars", "")), "target": str(r.get("_sl_target", "")),
         "grounding": r.get("_sl_grounding"), "counterexample": bool(r.get("_sl_counterexample"))}
        for _, r in syn.head(N_EXAMPLES).iterrows()] if not syn.empty else []
    return out


def _recall(y: np.ndarray, preds: dict[str, np.ndarray], classes: list[str]) -> dict:
    out = {}
    for c in classes:
        m = y == c
        out[c] = {"support": int(m.sum()),
                  **{f"recall_{name}": float((p[m] == c).mean()) if m.any() else None
                     for name, p in preds.items()}}
    return out


def _clusters(store: RunStore, y: np.ndarray, preds: dict[str, np.ndarray]) -> dict:
    if not store.exists(FIRST_ANALYSIS):
        return {"note": f"no {FIRST_ANALYSIS} in the run folder", "targets": []}
    targets = store.read_json(FIRST_ANALYSIS).get("targets", [])
    rows = []
    for tg in targets:
        idx = np.asarray(tg.get("members", []), dtype=int)
        idx = idx[idx < len(y)]
        row = {k: tg.get(k) for k in ("id", "kind", "label", "predicted", "keywords")}
        row["texts"] = int(len(idx))
        for name, p in preds.items():
            row[f"right_{name}"] = float((p[idx] == y[idx]).mean()) if len(idx) else None
        rows.append(row)
    out: dict[str, Any] = {"source": FIRST_ANALYSIS, "targets": rows,
                           "meaning": "share of each cluster's misclassified validation texts "
                                      "the model classifies right (the loop aimed at them)"}
    if not rows:
        out["note"] = "the first analysis found no misclassified validation text"
    return out


def _synthetic(syn: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, col: str,
               target: str, embedder, seed: int) -> dict:
    if syn.empty:
        return {"texts": 0, "note": "no synthetic texts: no batch was kept"}
    s_texts = syn[col].astype(str).tolist()
    rng = np.random.default_rng(seed)
    n = min(len(s_texts), len(train), MAX_SAMPLE)
    s_idx = np.sort(rng.choice(len(s_texts), n, replace=False))
    r_idx = np.sort(rng.choice(len(train), n, replace=False))
    s_sample = [s_texts[i] for i in s_idx]
    r_sample = train[col].astype(str).iloc[r_idx].tolist()
    E_train = embedder.embed(train[col].astype(str).tolist())
    E_syn = embedder.embed(s_texts)
    E_hold = embedder.embed(holdout[col].astype(str).tolist())
    near_syn = (E_syn @ E_train.T).max(axis=1)
    near_hold = (E_hold @ E_train.T).max(axis=1)
    p95 = float(np.percentile(near_hold, 95))
    out: dict[str, Any] = {
        "texts": len(s_texts),
        "by_label": syn[target].astype(str).value_counts().sort_index().to_dict(),
        "words_median": {"synthetic": float(np.median([len(tokenize(x)) for x in s_texts])),
                         "real_train": float(np.median(
                             [len(tokenize(x)) for x in train[col].astype(str)]))},
        "sample_size": n,
        "nearest_train_cosine": {
            "synthetic_median": float(np.median(near_syn)),
            "holdout_median": float(np.median(near_hold)),
            "holdout_p95": p95,
            "share_synthetic_over_holdout_p95": float((near_syn > p95).mean()),
            "synthetic_max": float(near_syn.max()),
            "synthetic_hist": np.histogram(near_syn, bins=20, range=(0, 1))[0].tolist(),
            "holdout_hist": np.histogram(near_hold, bins=20, range=(0, 1))[0].tolist(),
        },
    }
    if n >= 2:
        out["self_bleu"] = {"synthetic": SelfBLEU.compute(s_sample),
                            "real_train_sample": SelfBLEU.compute(r_sample)}
        out["mean_cosine"] = {
            "synthetic": MeanPairwiseCosine.compute(embedder.embed(s_sample)),
            "real_train_sample": MeanPairwiseCosine.compute(embedder.embed(r_sample))}
    else:
        out["note"] = "one synthetic text: Self-BLEU and mean cosine need two"
    return out


def _short(text: Any, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- HTML ---------------------------------------------------------------------------------
def text_html(sec: dict, table, note, png, figure) -> str:
    """The Text section; ``table``, ``note``, ``png`` and ``figure`` are the report's own
    helpers (one look for the whole page)."""
    parts = ["<h2>Text: gates, classes, clusters and synthetic texts</h2>"]
    corpus = sec.get("corpus") or {}
    thr = sec["thresholds"]
    parts.append(
        f"<p>Text column '{html.escape(str(sec['text_column']))}', classifier on "
        f"{html.escape(str(sec['features']))}; exemplars retrieved from the Chroma collection "
        f"'{html.escape(str(corpus.get('collection')))}' ({corpus.get('records')} records, "
        f"splits {html.escape(str(corpus.get('splits')))}). Grounded: cosine ≥ "
        f"{thr['in_domain_similarity']} to a real training text of the label; near copy: "
        f"cosine ≥ {thr['near_copy_similarity']} to any real text (or verbatim); a batch is "
        f"blocked over {thr['max_ungrounded']:.0%} ungrounded, Self-BLEU over "
        f"{thr['max_self_bleu']} or mean cosine over {thr['max_mean_cosine']}.</p>")
    gates = sec["gates"]
    if gates:
        heads = ["iteration", "generated", "malformed", "duplicates", "near dup.", "near copies",
                 "ungrounded", "grounded share", "Self-BLEU", "mean cosine", "collapsed",
                 "label accuracy", "label removed", "judge accuracy", "accepted rows", "kept",
                 "reason"]
        rows = [[g[k] for k in GATE_COLUMNS] for g in gates]
        parts.append(table(heads, rows, text_cols=(16,)))
        fig = figure(6.5, 3.0)
        ax = fig.add_subplot()
        xs = [g["iteration"] for g in gates]
        for key, label in (("grounded_share", "grounded share"), ("self_bleu", "Self-BLEU"),
                           ("mean_cosine", "mean cosine"), ("label_accuracy", "label accuracy")):
            ys = [np.nan if g.get(key) is None else g[key] for g in gates]
            ax.plot(xs, ys, marker="o", label=label)
        ax.set_xticks(xs)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
        ax.grid(alpha=.3)
        parts.append(png(fig))
    else:
        parts.append(note("no batch was generated"))
    cr = sec["class_recall"]
    rows = [[split, c, v["support"], v["recall_baseline"], v["recall_final"]]
            for split in ("validation", "holdout") for c, v in cr[split].items()]
    parts.append(f"<h3>Recall per class (threshold {html.escape(str(cr['threshold']))})</h3>"
                 + table(["split", "class", "texts", "recall baseline", "recall final"], rows,
                         text_cols=(0, 1)))
    cl = sec["clusters"]
    parts.append("<h3>Error clusters of the first analysis</h3>")
    if cl.get("targets"):
        rows = [[t["id"], t["kind"], t["label"], t.get("predicted"),
                 ", ".join(t.get("keywords") or []), t["texts"], t["right_baseline"],
                 t["right_final"]] for t in cl["targets"]]
        parts.append(f"<p>{html.escape(cl['meaning'])}.</p>" + table(
            ["target", "kind", "label", "read as", "keywords", "texts", "right: baseline",
             "right: final"], rows, text_cols=(0, 1, 2, 3, 4)))
    parts.append(note(cl.get("note")))
    syn = sec["synthetic"]
    parts.append("<h3>Synthetic texts kept</h3>")
    if not syn.get("texts"):
        return "".join(parts) + note(syn.get("note"))
    near = syn["nearest_train_cosine"]
    rows = [["texts", syn["texts"], None],
            ["by label", ", ".join(f"{k}: {v}" for k, v in syn["by_label"].items()), None],
            ["median words", syn["words_median"]["synthetic"], syn["words_median"]["real_train"]],
            ["nearest training text, median cosine", near["synthetic_median"],
             near["holdout_median"]],
            ["share closer than 95% of holdout texts", near["share_synthetic_over_holdout_p95"],
             0.05]]
    if "self_bleu" in syn:
        rows += [[f"Self-BLEU-4 ({syn['sample_size']} texts)", syn["self_bleu"]["synthetic"],
                  syn["self_bleu"]["real_train_sample"]],
                 [f"mean pairwise cosine ({syn['sample_size']} texts)",
                  syn["mean_cosine"]["synthetic"], syn["mean_cosine"]["real_train_sample"]]]
    parts.append(table(["figure", "synthetic", "real (train sample / holdout)"], rows,
                       text_cols=(0,)))
    fig = figure(6.5, 2.6)
    ax = fig.add_subplot()
    edges = np.linspace(0, 1, 21)
    for key, colour, label in (("holdout_hist", "#4c72b0", "real holdout"),
                               ("synthetic_hist", "#dd8452", "synthetic")):
        counts = np.asarray(near[key], dtype=float)
        ax.stairs(counts / max(1.0, counts.sum()), edges, fill=True, alpha=.45, color=colour,
                  label=label)
    ax.set_xlabel("cosine to the nearest real training text")
    ax.legend(fontsize=7)
    parts.append(png(fig))
    if sec["examples"]:
        parts.append(table(["label", "text", "exemplars (Chroma ids)", "grounding"],
                           [[e["label"], e["text"], e["exemplars"], e["grounding"]]
                            for e in sec["examples"]], text_cols=(0, 1, 2)))
    return "".join(parts)
