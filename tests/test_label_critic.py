"""curation.label_critic: the class sentences, read by the sentence encoder, drop synthetic rows
whose label they contradict; a critic that cannot rank the real rows is switched off."""

from __future__ import annotations

import hashlib
import json
import re

import joblib
import numpy as np
import pandas as pd
import pytest

from synthloop.errors import SpecError
from synthloop.tools.label_critic import LabelCritic, row_texts
from tests.fakes import loop_script, rows_from_frame_reply, scripted
from tests.support import make_spec, run

SENTENCES = {"malignant": "This tumour is malignant.", "benign": "This tumour is benign."}


class RadiusEncoder:
    """A stand-in for the sentence encoder that reads one thing from a row: its worst radius
    (large in malignant tumours); the sentences point to either end of that axis."""

    def __init__(self, *args, **kwargs):  # takes the Embedder's arguments
        pass

    def embed(self, texts):
        out = []
        for t in texts:
            if t in SENTENCES.values():
                out.append([1.0, 0.0] if "malignant" in t else [0.0, 1.0])
            else:
                z = (float(re.search(r"worst_radius ([\d.]+)", t).group(1)) - 17.0) / 5.0
                out.append([z, -z])
        return np.asarray(out)


class NoiseEncoder:
    """Reads nothing: a vector from the text's hash."""

    def embed(self, texts):
        return np.asarray([np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8],
                                                     16)).normal(size=4) for t in texts])


class TestLabelCritic:
    def test_rows_are_read_as_column_value_text_without_missing_cells(self):
        # numbers as a person writes them, whatever the dtype (conform stores ints as floats)
        frame = pd.DataFrame({"age": [52.0, 30.0], "job": ["Exec", None],
                              "rate": [0.1 + 0.2, 12345.678912]})
        assert row_texts(frame, ["age", "job", "rate"]) == ["age 52, job Exec, rate 0.3",
                                                            "age 30, rate 12345.6789"]

    def test_a_critic_at_min_auc_0_is_always_on(self, cancer_df, schema):
        critic = LabelCritic(SENTENCES, min_auc=0, embedder=NoiseEncoder()).fit(
            cancer_df, schema)
        assert critic.active

    def test_a_critic_that_reads_the_rows_drops_the_labels_it_contradicts(self, cancer_df,
                                                                          schema):
        critic = LabelCritic(SENTENCES, min_auc=0.6, embedder=RadiusEncoder()).fit(
            cancer_df, schema)

        assert critic.active and critic.auc_ > 0.9
        # the largest malignant tumours, labelled as they are and as the other class
        big = cancer_df[cancer_df.diagnosis == "malignant"].nlargest(10, "worst_radius")
        assert not critic.contradicted(big).any()
        assert critic.contradicted(big.assign(diagnosis="benign")).all()
        described = critic.describe()
        assert {k: described[k] for k in ("sentences", "real_rows", "min_auc", "active")} == {
            "sentences": SENTENCES, "real_rows": len(cancer_df), "min_auc": 0.6, "active": True}
        assert described["out_of_fold_auc"] == round(critic.auc_, 4)
        # classes balanced: the minority class is not called wrong wholesale
        assert set(described["real_rows_contradicted"]) == {"benign", "malignant"}
        assert max(described["real_rows_contradicted"].values()) < 0.2

    def test_a_critic_that_cannot_rank_the_real_rows_is_switched_off(self, cancer_df, schema):
        critic = LabelCritic(SENTENCES, min_auc=0.6, embedder=NoiseEncoder()).fit(
            cancer_df, schema)

        assert not critic.active and critic.auc_ < 0.6
        flipped = cancer_df.assign(diagnosis=np.where(cancer_df.diagnosis == "benign",
                                                      "malignant", "benign"))
        assert not critic.contradicted(flipped).any()
        assert critic.describe()["active"] is False

    def test_every_class_needs_a_sentence(self, cancer_df, schema):
        with pytest.raises(SpecError, match=r"one sentence for each class of 'diagnosis' "
                                            r"\(.*\); missing: malignant; not a class: bad\. "
                                            r"Give it as"):
            LabelCritic({"benign": "b", "bad": "x"}, 0.6, embedder=RadiusEncoder()).fit(
                cancer_df, schema)

    def test_stored_without_the_encoder(self, cancer_df, schema, tmp_path):
        critic = LabelCritic(SENTENCES, 0.6, embedder=RadiusEncoder()).fit(cancer_df, schema)
        joblib.dump(critic, tmp_path / "critic.joblib")

        back = joblib.load(tmp_path / "critic.joblib")
        assert back.embedder is None
        back.embedder = RadiusEncoder()
        np.testing.assert_array_equal(back.contradicted(cancer_df),
                                      critic.contradicted(cancer_df))


class TestInTheLoop:
    def test_rows_the_sentences_contradict_are_dropped_with_their_reason(
            self, spec_dict, cancer_df, monkeypatch, tmp_path):
        import synthloop.tools.text as text

        monkeypatch.setattr(text, "Embedder", RadiusEncoder)
        # every row copied from a malignant tumour, whatever class was asked for
        malignant = cancer_df[cancer_df.diagnosis == "malignant"]
        spec = make_spec(spec_dict, curation={"label_critic": SENTENCES,
                                              "confidence_percentile": 0})

        summary = run(spec, tmp_path, scripted(loop_script(
            generate=rows_from_frame_reply(malignant))), run_id="critic")

        (record,) = summary["iterations"]
        folder = tmp_path / "critic"
        assert json.loads((folder / "data" / "label_critic.json").read_text())["active"] is True
        rejected = pd.read_parquet(folder / "data" / "batches" / "iter_001_rejected.parquet")
        said = rejected["_sl_reject"] == "its label contradicts the class sentences"
        assert record["checks"]["contradicted"] == int(said.sum()) > 0
        # the stored critic contradicts every row dropped for it and none of the rows kept
        critic = joblib.load(folder / "data" / "label_critic.joblib")
        critic.embedder = RadiusEncoder()
        assert critic.contradicted(rejected[said]).all()
        curated = pd.read_parquet(folder / "data" / "batches" / "iter_001_curated.parquet")
        assert len(curated) and not critic.contradicted(curated).any()

    def test_off_by_default(self, spec_dict, cancer_df, tmp_path):
        malignant = cancer_df[cancer_df.diagnosis == "malignant"]
        summary = run(make_spec(spec_dict), tmp_path, scripted(loop_script(
            generate=rows_from_frame_reply(malignant))), run_id="plain")

        assert summary["iterations"][0]["checks"]["contradicted"] == 0
        assert not (tmp_path / "plain" / "data" / "label_critic.json").exists()

    def test_a_class_without_a_sentence_fails_before_any_llm_call(self, spec_dict, tmp_path):
        calls = []

        def never(messages, params):
            calls.append(1)
            raise AssertionError("no LLM call expected")

        spec = make_spec(spec_dict, curation={"label_critic": {"benign": "Benign."}})
        with pytest.raises(SpecError, match="missing: malignant"):
            run(spec, tmp_path, scripted(never), run_id="nosentence")
        assert calls == []


class TestSpec:
    def test_class_names_are_text_and_an_empty_critic_is_refused(self, spec_dict):
        spec = make_spec(spec_dict, curation={"label_critic": {0: "No.", 1: "Yes."}})
        assert spec.curation.label_critic == {"0": "No.", "1": "Yes."}
        with pytest.raises(SpecError, match="curation.label_critic is empty"):
            make_spec(spec_dict, curation={"label_critic": {}})
