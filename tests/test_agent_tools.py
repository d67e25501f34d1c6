"""The rewrite agent's tools: what the built-ins return, the plan-then-call path for models
without tool calling, native tool calling where the model has it, and failures that are
recorded without stopping anything."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from synthloop.agents.tools import (
    PLAN_SYSTEM,
    ToolContext,
    build_tools,
    consult_tools,
    plan_json_schema,
    supports_native_tools,
)
from synthloop.data import infer_schema
from synthloop.llm import LLMClient
from synthloop.spec import validate_spec
from synthloop.tools.constraints import evaluate_region
from synthloop.tools.error_analysis import Condition, Region
from synthloop.tools.registry import load_registry
from tests.fakes import garbage_reply, scripted
from tests.plugin_support import NativeToolModel, no_report, plan_reply, with_plan  # noqa: F401
from tests.support import base_spec, make_spec, run


@pytest.fixture(scope="module")
def tool_ctx(cancer_df):
    spec = validate_spec(base_spec("x.csv"))
    schema = infer_schema(cancer_df, spec)
    region = Region(id="r1", rule="mean_radius > 15", label="malignant", support=40, errors=9,
                    error_rate=0.2, positives=30, recall=0.7,
                    conditions=[Condition(column="mean_radius", op=">", value=15.0)])
    return ToolContext(train=cancer_df, schema=schema, regions=[region], rules=[], seed=1)


def tools_of(ctx, names="all"):
    tools, events = build_tools(load_registry(), names, ctx)
    assert events == []
    return {t.name: t for t in tools}


class TestBuiltinTools:
    def test_sample_real_rows_are_training_rows_of_the_region_and_class(self, tool_ctx,
                                                                         cancer_df):
        out = tools_of(tool_ctx)["sample_real_rows"].invoke({"region": "r1", "n": 3})

        header, *lines = out.splitlines()
        inside = cancer_df[(cancer_df.diagnosis == "malignant") & (cancer_df.mean_radius > 15)]
        assert header.startswith(f"{len(inside)} training rows of class 'malignant' lie in r1")
        rows = [json.loads(line) for line in lines]
        assert len(rows) == 3
        for r in rows:
            assert r["diagnosis"] == "malignant" and r["mean_radius"] > 15
            match = inside[np.isclose(inside.mean_radius, r["mean_radius"])]
            assert len(match) >= 1  # a real training row, not an invented one

    def test_column_stats_are_the_training_split_figures(self, tool_ctx, cancer_df):
        out = tools_of(tool_ctx)["column_stats"].invoke({"column": "mean_area"})

        malignant = cancer_df.loc[cancer_df.diagnosis == "malignant", "mean_area"]
        line = next(x for x in out.splitlines() if x.startswith("- malignant"))
        assert f"{len(malignant)} rows" in line
        assert f"median {malignant.quantile(0.5).round(4):g}" in line
        assert f"max {malignant.max():g}" in line

    def test_check_rule_counts_rows_per_class_and_reports_a_bad_rule(self, tool_ctx, cancer_df):
        tool = tools_of(tool_ctx)["check_rule"]

        out = tool.invoke({"expression": "mean_radius > 15 and mean_texture <= 20"})
        bad = tool.invoke({"expression": "radius >"})

        mask = evaluate_region("mean_radius > 15 and mean_texture <= 20", cancer_df)
        n_mal = int((mask & (cancer_df.diagnosis == "malignant")).sum())
        assert out.startswith(f"{int(mask.sum())} of {len(cancer_df)} training rows satisfy")
        assert f"malignant {n_mal} of 48" in out
        assert bad.startswith("the expression is not a valid rule: Rule 'radius >' does not parse")

    def test_arguments_are_narrowed_to_what_exists(self, tool_ctx):
        schema = plan_json_schema(list(tools_of(tool_ctx).values()), 3)

        by_tool = {o["properties"]["tool"]["enum"][0]: o["properties"]["args"]
                   for o in schema["properties"]["calls"]["items"]["anyOf"]}
        assert by_tool["sample_real_rows"]["properties"]["region"]["enum"] == ["r1"]
        assert "mean_radius" in by_tool["column_stats"]["properties"]["column"]["enum"]
        assert schema["properties"]["calls"]["maxItems"] == 3
        # check_rule's free-text expression is held to comparisons on real columns in a plan
        pattern = by_tool["check_rule"]["properties"]["expression"]["pattern"]
        assert re.match(pattern, "mean_radius > 15.5 and mean_texture <= 20")
        assert not re.match(pattern, "1.0.0.0") and not re.match(pattern, "radius > 1")


class TestPlanThenCall:
    def test_the_plan_is_run_and_recorded(self, tool_ctx):
        model = scripted(plan_reply([{"tool": "column_stats", "args": {"column": "mean_area"}},
                                     {"tool": "sample_real_rows", "args": {"region": "r1"}}]))
        client = LLMClient(model=model)
        tools = list(tools_of(tool_ctx, ["column_stats", "sample_real_rows"]).values())

        records, events = consult_tools(client, tools, tool_ctx.regions, tool_ctx.schema,
                                        mode="auto", max_calls=3, iteration=1, seed=5)

        assert events == []
        assert [(r["tool"], r["via"]) for r in records] == [("column_stats", "plan"),
                                                            ("sample_real_rows", "plan")]
        assert records[1]["args"] == {"region": "r1"} and "lie in r1" in records[1]["result"]
        (call,) = model.calls
        assert call["system"] == PLAN_SYSTEM
        grammar = call["params"]["response_format"]["json_schema"]["schema"]
        assert grammar == plan_json_schema(tools, 3)

    def test_failures_are_recorded_not_raised(self, tool_ctx):
        model = scripted(plan_reply([{"tool": "column_stats", "args": {"column": "nope"}},
                                     {"tool": "no_such_tool", "args": {}},
                                     {"tool": "check_rule", "args": {"expression": "x"}}]))
        tools = list(tools_of(tool_ctx, ["column_stats", "check_rule"]).values())

        records, events = consult_tools(LLMClient(model=model), tools, tool_ctx.regions,
                                        tool_ctx.schema, mode="plan", max_calls=3, iteration=2,
                                        seed=5)

        assert records[0]["error"].startswith("ValidationError")
        assert records[1]["error"] == "no tool 'no_such_tool'; tools are ['check_rule', " \
                                      "'column_stats']"
        assert "result" in records[2]  # a rule that does not parse is an answer, not a failure
        assert [(e["kind"], e["tool"], e["iteration"]) for e in events] == [
            ("tool_error", "column_stats", 2), ("tool_error", "no_such_tool", 2)]

    def test_a_plan_that_does_not_parse_is_a_counted_fallback(self, tool_ctx):
        tools = list(tools_of(tool_ctx, ["column_stats"]).values())

        records, events = consult_tools(LLMClient(model=scripted(garbage_reply)), tools,
                                        tool_ctx.regions, tool_ctx.schema, mode="auto",
                                        max_calls=2, iteration=1, seed=5)

        assert records == []
        (event,) = events
        assert event["kind"] == "fallback"
        assert event["reason"].startswith("tool plan failed, no tools used: The LLM reply is not")

    def test_a_tool_factory_that_fails_is_an_event(self, tool_ctx, monkeypatch):
        reg = load_registry()
        reg.add("agent_tool", "broken", lambda ctx: 1 / 0)

        tools, events = build_tools(reg, ["broken", "column_stats"], tool_ctx)

        assert [t.name for t in tools] == ["column_stats"]
        assert events[0]["tool"] == "broken" and "ZeroDivisionError" in events[0]["reason"]


class TestNativeToolCalling:
    def test_a_model_with_bind_tools_calls_them_itself(self, tool_ctx):
        model = NativeToolModel(script=garbage_reply, tool_calls=[
            {"name": "check_rule", "args": {"expression": "mean_radius > 15"}}])
        tools = list(tools_of(tool_ctx).values())

        records, events = consult_tools(LLMClient(model=model), tools, tool_ctx.regions,
                                        tool_ctx.schema, mode="auto", max_calls=2, iteration=1,
                                        seed=5)

        assert supports_native_tools(model) and not supports_native_tools(scripted())
        assert events == []
        assert [(r["tool"], r["via"]) for r in records] == [("check_rule", "native")]
        assert "training rows satisfy 'mean_radius > 15'" in records[0]["result"]
        (call,) = model.calls
        assert {t["function"]["name"] for t in call["tools"]} == set(tools_of(tool_ctx))

    def test_native_asked_of_a_model_without_it_says_so_and_plans(self, tool_ctx):
        model = scripted(plan_reply([{"tool": "column_stats", "args": {"column": "mean_area"}}]))
        tools = list(tools_of(tool_ctx, ["column_stats"]).values())

        records, events = consult_tools(LLMClient(model=model), tools, tool_ctx.regions,
                                        tool_ctx.schema, mode="native", max_calls=1,
                                        iteration=1, seed=5)

        assert records[0]["via"] == "plan"
        assert events[0]["kind"] == "fallback" and "has no native tool calling" in \
            events[0]["reason"]


class TestInTheLoop:
    @pytest.mark.usefixtures("no_report")
    def test_results_reach_the_rewrite_and_are_kept_with_the_prompt(self, spec_dict, tmp_path):
        # Setup: tools on, the plan asks for the rows of the first region
        spec = make_spec(spec_dict, agent={"tools": ["sample_real_rows", "column_stats"]})
        model = scripted(with_plan(plan_reply([{"tool": "sample_real_rows",
                                                "args": {"region": "r1", "n": 2}}])))

        # Run
        summary = run(spec, tmp_path, model)

        # Assert: plan call, then the rewrite call that shows the result, then generation
        kinds = [c["system"][:10] for c in model.calls]
        assert kinds[:2] == ["You are ab", "You improv"]
        rewrite_request = model.calls[1]["user"]
        assert "What the tools showed:" in rewrite_request
        assert 'sample_real_rows(region="r1", n=2):' in rewrite_request
        prompt = yaml.safe_load((tmp_path / "run/prompts/cancer-gen.v002.yaml").read_text())
        (rec,) = prompt["tool_calls"]
        assert rec["via"] == "plan"
        assert all(f"  {line}" in rewrite_request for line in rec["result"].splitlines())
        assert summary["fallbacks"] == 0
        assert summary["usage_by_node"]["rewrite"]["calls"] == 2  # plan + rewrite

    @pytest.mark.usefixtures("no_report")
    def test_native_calls_in_the_loop(self, spec_dict, tmp_path):
        from tests.fakes import loop_script

        spec = make_spec(spec_dict, agent={"tools": "all"})
        model = NativeToolModel(script=loop_script(), tool_calls=[
            {"name": "column_stats", "args": {"column": "mean_radius"}}])

        summary = run(spec, tmp_path, model)

        prompt = yaml.safe_load((tmp_path / "run/prompts/cancer-gen.v002.yaml").read_text())
        assert [(r["tool"], r["via"]) for r in prompt["tool_calls"]] == [("column_stats",
                                                                          "native")]
        assert summary["iterations"][0]["prompt_author"] == "llm"

    def test_tools_are_off_by_default(self, spec_dict):
        assert make_spec(spec_dict).agent.tools == []


@pytest.mark.embedded
class TestEmbeddedPlan:
    def test_the_embedded_model_writes_a_plan_the_grammar_holds_to(self, tool_ctx):
        # Setup: the real SmolLM2 (no native tool calling), every built-in tool
        from synthloop.llm import make_chat_model

        client = LLMClient(model=make_chat_model("embedded", seed=3))
        tools = list(tools_of(tool_ctx).values())

        # Run
        records, events = consult_tools(client, tools, tool_ctx.regions, tool_ctx.schema,
                                        mode="auto", max_calls=2, iteration=1, seed=11)

        # Assert: the plan parsed (no fallback), 1-2 calls of real tools, each with a result
        # or a recorded error
        assert not supports_native_tools(client.model)
        assert [e for e in events if e["kind"] == "fallback"] == []
        assert 1 <= len(records) <= 2
        for r in records:
            assert r["via"] == "plan" and r["tool"] in {t.name for t in tools}
            assert ("result" in r) != ("error" in r)
        assert client.take_usage("rewrite")["calls"] == 1


@pytest.fixture(scope="module")
def vocab():
    """The embedded model's vocabulary only (no weights run): what llama.cpp's grammar parser
    needs."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from synthloop.llm.embedded import default_model_path

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(default_model_path().encode(), params)
    yield llama_cpp.llama_model_get_vocab(model)
    llama_cpp.llama_model_free(model)


class TestPlanGrammarInLlamaCpp:
    def test_every_builtin_and_plugin_tool_plan_parses(self, vocab, tool_ctx):
        from synthloop.llm.embedded import grammar_problem
        from synthloop.testing import Fixture
        from tests.plugin_support import ensure_ledger_installed

        ensure_ledger_installed()
        from synthloop_ledger.components import load_ledger

        ledger = Fixture.from_frame(load_ledger("transactions"), "flagged", "yes")
        contexts = [tool_ctx, ToolContext(train=ledger.frame, schema=ledger.schema,
                                          regions=[ledger.region()], rules=[])]
        for ctx in contexts:
            tools, _ = build_tools(load_registry(), "all", ctx)

            assert grammar_problem(vocab, plan_json_schema(tools, 2)) is None

    def test_a_grammar_llama_cpp_refuses_is_an_error_not_a_crash(self, vocab):
        from synthloop.llm.embedded import grammar_problem

        schema = {"type": "object", "required": ["e"], "properties": {"e": {
            "type": "string", "pattern": "^(a|b) > [0-9]+(\\.[0-9]+)?$"}}}

        assert grammar_problem(vocab, schema).startswith("llama.cpp refuses the grammar")
