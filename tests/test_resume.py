"""Resume: a run interrupted mid-iteration and resumed ends exactly where an uninterrupted run
with the same seed ends, and finished work is not redone."""

from __future__ import annotations

import pandas as pd
import pytest

from synthloop.errors import RunStoreError
from synthloop.graphs import loop, nodes
from synthloop.runner import resume_run, run_loop
from tests.fakes import call_kind, loop_script, raise_on_call, scripted
from tests.support import base_spec, make_spec

RUN_ID = "resumable"


def records(summary: dict) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in summary["iterations"]]


def user_texts(model) -> list[tuple[str, str]]:
    return [(c["system"], c["user"]) for c in model.calls]


class TestResume:
    @pytest.fixture(scope="class")
    def home(self, tmp_path_factory):
        return tmp_path_factory.mktemp("resume")

    @pytest.fixture(scope="class")
    def spec(self, home, cancer_df):
        cancer_df.to_csv(home / "cancer.csv", index=False)
        return make_spec(base_spec(home / "cancer.csv"),
                         budget={"max_iterations": 2, "patience": 5})

    @pytest.fixture(scope="class")
    def full(self, spec, home):
        """An uninterrupted run (SQLite checkpoints on disk, as in production), shared by the
        tests of this class, which only read it."""
        model = scripted()
        summary = run_loop(spec, home / "full", chat_model=model, run_id=RUN_ID,
                           cache_dir=None)
        return summary, model

    def test_interrupted_mid_generation_resumes_to_the_same_result(self, spec, full, home,
                                                                   tmp_path):
        # Setup: in the full run, find iteration 2's rewrite call; interrupt the run on the
        # second generator call after it (the generate node of iteration 2 is half done)
        full_summary, full_model = full
        kinds = [call_kind(c["system"]) for c in full_model.calls]
        second_rewrite = [i for i, k in enumerate(kinds) if k == "rewrite"][1]
        first_gen_of_iter2 = second_rewrite + 1
        assert kinds[first_gen_of_iter2: first_gen_of_iter2 + 2] == ["generate", "generate"]
        stop_at = first_gen_of_iter2 + 1
        interrupted = scripted(raise_on_call(loop_script(), lambda i, _: i == stop_at,
                                             KeyboardInterrupt))
        runs = tmp_path / "interrupted"

        # Run: the interrupted run, then its resume with a fresh model
        with pytest.raises(KeyboardInterrupt):
            run_loop(spec, runs, chat_model=interrupted, run_id=RUN_ID, cache_dir=None)
        assert not (runs / RUN_ID / "summary.json").exists()
        resumed_model = scripted()
        resumed = resume_run(RUN_ID, runs, chat_model=resumed_model, cache_dir=None)

        # Assert: same synthetic data and iteration records as the uninterrupted run
        assert resumed["synthetic_sha256"] == full_summary["synthetic_sha256"]
        assert resumed["synthetic_rows"] == full_summary["synthetic_rows"] > 0
        assert records(resumed) == records(full_summary)
        assert resumed["stop_reason"] == full_summary["stop_reason"]
        assert resumed["final"] == full_summary["final"]
        pd.testing.assert_frame_equal(
            pd.read_parquet(runs / RUN_ID / "data/synthetic.parquet"),
            pd.read_parquet(home / "full" / RUN_ID / "data/synthetic.parquet"))
        # finished work is not redone: the resume starts at the interrupted node (generate
        # of iteration 2) and makes exactly the calls the full run made from there on
        assert user_texts(resumed_model) == user_texts(full_model)[first_gen_of_iter2:]
        assert len(interrupted.calls) + len(resumed_model.calls) == \
            len(full_model.calls) + (stop_at + 1 - first_gen_of_iter2)

    def test_interrupted_in_a_node_without_llm_resumes(self, spec, full, tmp_path, monkeypatch):
        # Setup: the accept node of iteration 2 dies once (as if the process were killed)
        full_summary, full_model = full
        state = {"armed": True}
        real_accept = nodes.accept

        def dying_accept(st, ctx):
            if st["iteration"] == 2 and state["armed"]:
                state["armed"] = False
                raise KeyboardInterrupt
            return real_accept(st, ctx)

        monkeypatch.setattr(loop, "NODES", [(n, dying_accept if n == "accept" else f)
                                            for n, f in loop.NODES])
        runs = tmp_path / "killed"
        first = scripted()
        with pytest.raises(KeyboardInterrupt):
            run_loop(spec, runs, chat_model=first, run_id=RUN_ID, cache_dir=None)

        # Run
        again = scripted()
        resumed = resume_run(RUN_ID, runs, chat_model=again, cache_dir=None)

        # Assert: every LLM call was already made; the resume makes none
        assert again.calls == []
        assert len(first.calls) == len(full_model.calls)
        assert resumed["synthetic_sha256"] == full_summary["synthetic_sha256"]
        assert records(resumed) == records(full_summary)

    def test_resuming_a_finished_run_returns_its_summary(self, full, home):
        full_summary, _ = full
        model = scripted()

        again = resume_run(RUN_ID, home / "full", chat_model=model, cache_dir=None)

        assert again == full_summary
        assert model.calls == []

    def test_unknown_run_is_a_clear_error(self, home, full):
        with pytest.raises(RunStoreError, match=f"No run 'nope'.*the newest is {RUN_ID}"):
            resume_run("nope", home / "full", chat_model=scripted())

    def test_existing_run_id_is_refused_and_left_alone(self, spec, full, home):
        model = scripted()

        with pytest.raises(RunStoreError, match="already exists"):
            run_loop(spec, home / "full", chat_model=model, run_id=RUN_ID, cache_dir=None)

        assert model.calls == []
        assert (home / "full" / RUN_ID / "summary.json").is_file()
