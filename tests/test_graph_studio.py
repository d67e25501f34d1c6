"""The loop graph for people and tools: 'synthloop graph' prints the compiled graph as mermaid
(the README shows the same diagram), and langgraph.json names a factory that LangGraph
Studio / 'langgraph dev' can load and run."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from synthloop.cli import app
from synthloop.graphs.loop import NODES
from tests.fakes import scripted

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


class TestGraphCommand:
    def test_mermaid_from_the_compiled_graph(self):
        result = runner.invoke(app, ["graph"])

        assert result.exit_code == 0, result.output
        text = result.stdout
        assert text.lstrip().startswith("---") and "graph TD;" in text
        for name, _ in NODES:
            assert re.search(rf"^\s*{name}\({name}\)$", text, re.M), name
        assert "decide -.-> report;" in text and "decide -.-> rewrite;" in text
        assert "accept --> analyse;" in text

    def test_the_readme_shows_the_same_diagram(self):
        result = runner.invoke(app, ["graph"])

        readme = (ROOT / "README.md").read_text()
        blocks = re.findall(r"```mermaid\n(.*?)```", readme, re.S)
        assert result.stdout in blocks, "README's diagram is stale: paste 'synthloop graph'"

    def test_bad_spec_is_one_line(self, tmp_path):
        result = runner.invoke(app, ["graph", str(tmp_path / "none.yaml")])

        assert result.exit_code == 2
        assert result.stderr.startswith("error: ") and "does not exist" in result.stderr


class TestLangGraphStudio:
    def test_langgraph_json_factory_loads_and_runs(self, cancer_csv, tmp_path, monkeypatch):
        # Setup: load the factory the way 'langgraph dev' does, from the file langgraph.json names
        config = json.loads((ROOT / "langgraph.json").read_text())
        assert config["dependencies"] == ["."]
        path, _, attr = config["graphs"]["synthloop"].partition(":")
        spec_file = tmp_path / "spec.yaml"
        spec_file.write_text(yaml.safe_dump({
            "name": "studio", "data": {"source": str(cancer_csv), "target": "diagnosis"},
            "model": {"kind": "logistic_regression"}, "budget": {"max_iterations": 1}}))
        monkeypatch.setenv("SYNTHLOOP_SPEC", str(spec_file))
        monkeypatch.setenv("SYNTHLOOP_RUNS_DIR", str(tmp_path / "runs"))
        monkeypatch.setenv("SYNTHLOOP_LLM_CACHE", "off")
        import synthloop.llm as llm

        monkeypatch.setattr(llm, "make_chat_model", lambda uri, **kw: scripted())
        mod_spec = importlib.util.spec_from_file_location("studio_graph", ROOT / path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)

        # Run: the server calls the factory with the run's config, then streams the graph
        graph = getattr(module, attr)({"configurable": {"thread_id": "t1"}})
        seen = []
        for update in graph.stream({"run_id": "t1"}, stream_mode="updates"):
            seen += list(update)
            if "analyse" in update:
                break

        # Assert: no checkpointer of its own (the server brings one), the loop's nodes, and
        # the run folder named by the thread
        assert graph.checkpointer is None
        assert {n for n, _ in NODES} <= set(graph.get_graph().nodes)
        assert seen == ["prepare", "train", "evaluate", "analyse"]
        run = tmp_path / "runs" / "t1"
        for rel in ("spec.yaml", "schema.json", "models/baseline.joblib", "analysis/iter_000.json"):
            assert (run / rel).is_file(), rel
