"""The prompt rewrite agent: a usable reply becomes the next prompt version; a reply that fails
to parse or to validate is replaced by the deterministic fallback, which is counted and traced."""

from __future__ import annotations

import json

import pytest
import yaml
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from typer.testing import CliRunner

from synthloop.agents.prompts import INITIAL_INSTRUCTION, PromptVersion
from synthloop.agents.rewriter import (
    MAX_CHARS,
    RewriteReply,
    complete_sentences,
    cut_off,
    empty_ranges,
    rewrite_prompt,
)
from synthloop.cli import app
from synthloop.errors import LLMOutputError
from synthloop.llm import LLMClient, parse_reply
from synthloop.llm.client import chat
from synthloop.tools.error_analysis import Condition, Region
from tests.fakes import garbage_reply, loop_script, scripted
from tests.support import make_spec, run

GARBAGE = garbage_reply([], {})


def region(rid: str = "r1") -> Region:
    return Region(id=rid, rule="mean_radius > 15", label="malignant", support=20, errors=9,
                  error_rate=0.45, positives=12, recall=0.4,
                  conditions=[Condition(column="mean_radius", op=">", value=15.0)])


def initial_prompt() -> PromptVersion:
    return PromptVersion(id="p", version=1, model="m", temperature=0.8,
                         text=INITIAL_INSTRUCTION).with_hash()


def client_replying(*replies: str) -> LLMClient:
    return LLMClient(model=GenericFakeChatModel(messages=iter(replies)))


class TestRewritePrompt:
    def test_valid_reply_becomes_next_version(self):
        reply = json.dumps({"instruction": "Write rows of class malignant with mean_radius above "
                                           "15 and realistic, varied values.", "focus": ["r1"]})

        new, event = rewrite_prompt(client_replying(reply), initial_prompt(), [region()], [],
                                    iteration=1, temperature=0.8, seed=1)

        assert event is None
        assert new.author == "llm"
        assert new.version == 2 and new.parent == 1
        assert new.text.startswith("Write rows of class malignant")
        assert [r["id"] for r in new.focus_regions] == ["r1"]
        assert new.sha256 and new.sha256 != initial_prompt().sha256

    @pytest.mark.parametrize(("reply", "reason"), [
        (GARBAGE, "not JSON"),
        (json.dumps({"instruction": "Write rows."}), "does not fit RewriteReply"),
        (json.dumps({"instruction": "Write rows of class malignant with mean_radius above 15.",
                     "focus": ["r9"]}), "names none of the regions"),
        (json.dumps({"instruction": "short", "focus": ["r1"]}), "instruction too short"),
        (json.dumps({"instruction": INITIAL_INSTRUCTION, "focus": ["r1"]}),
         "instruction unchanged"),
        (json.dumps({"instruction": "Please write many more rows that look realistic and varied.",
                     "focus": ["r1"]}), "names neither the class nor a column"),
        (json.dumps({"instruction": "Write rows of class malignant where mean_radius > 15, "
                                    "error rate 0.45, recall of the class that",
                     "focus": ["r1"]}), "cut off mid-sentence"),
        (json.dumps({"instruction": "Write rows of class malignant where mean_radius > 15 and "
                                    "mean_radius <= 15, with realistic values.",
                     "focus": ["r1"]}),
         "a range no value is in: mean_radius > 15 and mean_radius <= 15"),
    ])
    def test_bad_reply_falls_back_with_reason(self, reply, reason):
        new, event = rewrite_prompt(client_replying(reply), initial_prompt(), [region()], [],
                                    iteration=3, temperature=0.8, seed=1)

        assert new.author == "fallback"
        assert "class 'malignant' where mean_radius > 15" in new.text
        assert [r["id"] for r in new.focus_regions] == ["r1"]
        assert event["kind"] == "fallback"
        assert event["node"] == "rewrite"
        assert event["iteration"] == 3
        assert reason in event["reason"]

    def test_a_last_sentence_cut_off_is_dropped(self):
        # Setup: the grammar's cap stopped the model mid-sentence, after one whole sentence
        whole = "Write rows of class malignant with mean_radius above 15 and varied values."
        cut = whole + " Also write rows where mean_radius > 15 and the error rate is 0.45, and"
        assert len(cut) < MAX_CHARS  # cut off by its dangling word, not by its length
        reply = json.dumps({"instruction": cut, "focus": ["r1"]})

        new, event = rewrite_prompt(client_replying(reply), initial_prompt(), [region()], [],
                                    iteration=1, temperature=0.8, seed=1)

        assert event is None and new.author == "llm"
        assert new.text == whole
        assert new.fallback_reason is None

    def test_a_reply_judged_without_its_cut_sentence_says_so(self):
        cut = ("Please write many more rows that look realistic and varied. Then write rows of "
               "class malignant where mean_radius > 15 and")
        reply = json.dumps({"instruction": cut, "focus": ["r1"]})

        new, event = rewrite_prompt(client_replying(reply), initial_prompt(), [region()], [],
                                    iteration=2, temperature=0.8, seed=1)

        assert new.author == "fallback"
        assert event["reason"] == (
            "instruction names neither the class nor a column of its focus regions "
            "(malignant, mean_radius) (judged without its cut-off last sentence)")
        assert new.fallback_reason == event["reason"]

    def test_a_reply_at_the_cap_without_an_ending_is_cut_off(self):
        whole = "Write rows of class malignant with mean_radius above 15 and varied values."
        cut = (whole + " Vary mean_radius" * 60)[:MAX_CHARS]

        assert cut_off(cut) and complete_sentences(cut) == whole
        assert cut_off("  " + cut[:-2])  # the cap counts what the model wrote, spaces too
        assert not cut_off(whole) and not cut_off("Write rows where mean_radius > 15.5")
        assert complete_sentences("Write rows where the age is 40 and") == ""
        # a model without the grammar may write more, ending without a full stop
        assert not cut_off(whole + " Vary mean_radius" * 60)

    @pytest.mark.parametrize(("text", "kept"), [
        # abbreviations and list numbers do not end a sentence
        ("Write rows of class malignant, e.g. with mean_radius 17, and vary it and", ""),
        ("Write rows as Dr. Smith says and", ""),
        ("Steps: 1. write rows of class malignant. 2. vary mean_radius and",
         "Steps: 1. write rows of class malignant."),
        ("Write rows where mean_radius > 15. Vary the rest and",
         "Write rows where mean_radius > 15."),
        # endings that are not cut off
        ("Write rows of class malignant of grade A", "Write rows of class malignant of grade A"),
        ("Write texts about failing to log in", "Write texts about failing to log in"),
        ("Write rows of class malignant (see e.g.)", "Write rows of class malignant (see e.g.)"),
    ])
    def test_what_is_kept_of_an_instruction(self, text, kept):
        assert complete_sentences(text) == kept

    @pytest.mark.parametrize(("text", "empty"), [
        ("x > 1 and x <= 1", True), ("x >= 1 and x <= 1", False), ("x < 3 and x > 5", True),
        ("x > 3 and x < 5", False), ("`a b` > 40 and `a b` <= 30", True),
        ("x > 5 and y <= 1", False), ("x > 1e3 and x < 10", True),
        ("x > -5 and x < -10", True), ("x >= 3 and x < 3", True), ("x >= 3 and x <= 3", False),
        ("x > 1 and x < 0.5.", True),
        # the number goes on past what a short match would read
        ("annual_inc > 50000 and annual_inc < 1,000,000", False),
        ("loan_amnt > 20000 and loan_amnt < 35k", False), ("x > 1 and x < 0,9", False),
        ("rate > 10 and rate < 5%", False),
        # two columns, one the tail of the other's dotted name
        ("worst.radius > 15 and radius < 10", False),
    ])
    def test_empty_ranges(self, text, empty):
        assert bool(empty_ranges(text)) is empty

    def test_llm_error_falls_back(self):
        # Setup: a model with no reply left fails on its call
        client = client_replying()

        new, event = rewrite_prompt(client, initial_prompt(), [region()], [], iteration=1,
                                    temperature=0.8, seed=1)

        assert new.author == "fallback"
        assert "LLM call" in event["reason"] and "failed" in event["reason"]


class TestLLMOutputError:
    def test_message_shows_raw_reply_and_expected_fields(self):
        with pytest.raises(LLMOutputError) as info:
            parse_reply(GARBAGE, RewriteReply)

        msg = str(info.value)
        assert "not JSON" in msg
        assert GARBAGE in msg
        assert "['instruction', 'focus']" in msg
        assert info.value.raw == GARBAGE
        assert info.value.expected_fields == ["instruction", "focus"]
        assert "\n" not in msg

    def test_wrong_shape_names_the_field(self):
        raw = json.dumps({"instruction": 3, "focus": ["r1"]})

        with pytest.raises(LLMOutputError) as info:
            parse_reply(raw, RewriteReply)

        msg = str(info.value)
        assert "does not fit RewriteReply (instruction:" in msg
        assert raw in msg
        assert "['instruction', 'focus']" in msg

    def test_long_reply_is_shortened(self):
        raw = "x" * 1000

        with pytest.raises(LLMOutputError) as info:
            parse_reply(raw, RewriteReply)

        assert "x" * 300 + "…" in str(info.value)
        assert info.value.raw == raw

    def test_structured_call_raises_it(self):
        client = client_replying(GARBAGE)

        with pytest.raises(LLMOutputError, match="Expected a JSON object"):
            client.structured(chat("s", "u"), RewriteReply, node="rewrite")

    def test_fenced_json_parses(self):
        raw = '```json\n{"instruction": "x", "focus": ["r1"]}\n```'

        assert parse_reply(raw, RewriteReply).focus == ["r1"]


class TestFallbackInTheLoop:
    def test_garbage_rewrite_is_counted_and_traced(self, spec_dict, tmp_path):
        # Setup: the rewrite agent replies garbage; the generator is fine
        spec = make_spec(spec_dict, budget={"max_iterations": 2})
        model = scripted(loop_script(rewrite=garbage_reply))

        # Run
        summary = run(spec, tmp_path, model, run_id="fb")

        # Assert: both rewrites fell back, each counted and traced with its reason
        assert [r["prompt_author"] for r in summary["iterations"]] == ["fallback", "fallback"]
        assert summary["fallbacks"] == 2
        events = [e for e in summary["events"] if e["kind"] == "fallback"]
        assert [e["iteration"] for e in events] == [1, 2]
        assert all(e["node"] == "rewrite" and "not JSON" in e["reason"] for e in events)
        assert all(GARBAGE[:40] in e["reason"] for e in events)
        saved = yaml.safe_load((tmp_path / "fb/prompts/cancer-gen.v002.yaml").read_text())
        assert saved["author"] == "fallback"
        assert saved["fallback_reason"] == events[0]["reason"]
        # and runs show says why, in one line, under the prompt's diff heading
        shown = CliRunner().invoke(app, ["runs", "show", "fb", "--runs-dir", str(tmp_path)])
        lines = shown.output.splitlines()
        head = lines.index(next(x for x in lines if "prompt v1 → v2" in x))
        assert lines[head + 1].startswith("the LLM's rewrite was not used: The LLM reply is not JSON")
        assert len(lines[head + 1]) <= 240
        # a run written before versions kept the reason: it comes from summary.json's events
        for path in (tmp_path / "fb/prompts").glob("*.yaml"):
            kept = yaml.safe_load(path.read_text())
            kept.pop("fallback_reason", None)
            path.write_text(yaml.safe_dump(kept))
        older = CliRunner().invoke(app, ["runs", "show", "fb", "--runs-dir", str(tmp_path),
                                         "--json"])
        diffs = json.loads(older.stdout)["prompt_diffs"]
        assert [d["fallback_reason"] for d in diffs] == [e["reason"] for e in events]
        # the loop went on: the fallback prompt was sent to the generator
        assert summary["iterations"][0]["rows_generated"] > 0
        assert model.calls_of("generate")[0]["system"] == saved["text"]

    def test_valid_rewrite_is_not_a_fallback(self, spec_dict, tmp_path):
        spec = make_spec(spec_dict, budget={"max_iterations": 2})
        model = scripted()

        summary = run(spec, tmp_path, model, run_id="ok")

        assert [r["prompt_author"] for r in summary["iterations"]] == ["llm", "llm"]
        assert summary["fallbacks"] == 0
        assert not [e for e in summary["events"] if e["kind"] == "fallback"]
        saved = yaml.safe_load((tmp_path / "ok/prompts/cancer-gen.v003.yaml").read_text())
        assert saved["author"] == "llm" and saved["parent"] == 2
        assert model.calls_of("generate")[-1]["system"] == saved["text"]

    @staticmethod
    def run_rewriting(mode: str, spec_dict, folder, run_id: str):
        """A two-iteration loop with agent.rewrite ``mode`` and a tool the agent would
        otherwise call: its summary and model, after what every such mode must show."""
        spec = make_spec(spec_dict, budget={"max_iterations": 2},
                         agent={"rewrite": mode, "tools": ["column_stats"]})
        model = scripted()
        summary = run(spec, folder, model, run_id=run_id)
        assert [r["prompt_author"] for r in summary["iterations"]] == [mode, mode]
        assert model.calls_of("rewrite") == [] and summary["fallbacks"] == 0
        return summary, model

    def test_the_template_alone_makes_no_rewrite_call(self, spec_dict, tmp_path):
        summary, model = self.run_rewriting("template", spec_dict, tmp_path, "tpl")

        assert model.calls_of("generate")
        saved = yaml.safe_load((tmp_path / "tpl/prompts/cancer-gen.v002.yaml").read_text())
        assert "class 'malignant' where" in saved["text"] and saved["tool_calls"] == []
        assert model.calls_of("generate")[0]["system"] == saved["text"]
        assert summary["usage_by_node"].get("rewrite", {}).get("calls", 0) == 0

    def test_initial_keeps_the_first_instruction_and_follows_the_regions(self, spec_dict, tmp_path):
        _, model = self.run_rewriting("initial", spec_dict, tmp_path, "ini")

        # every generation call of both iterations had the first instruction as its system
        assert {c["system"] for c in model.calls_of("generate")} == {INITIAL_INSTRUCTION}
        for k in (1, 2):
            saved = yaml.safe_load(
                (tmp_path / f"ini/prompts/cancer-gen.v{k + 1:03d}.yaml").read_text())
            regions = yaml.safe_load((tmp_path / f"ini/analysis/iter_{k - 1:03d}.json").read_text())
            assert saved["text"] == INITIAL_INSTRUCTION and saved["tool_calls"] == []
            assert [r["rule"] for r in saved["focus_regions"]] == \
                [r["rule"] for r in regions["regions"]]
