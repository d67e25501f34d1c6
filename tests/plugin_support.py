"""Test helpers for plugins, agent tools and the review gate: the example plugin installed
(as a user would), a test plugin with one component of every kind (loaded through a real entry
point), scripts for the tool plan, a chat model with native tool calling, and a switch that
skips report.html (these tests are about the loop, not its figures)."""

from __future__ import annotations

import importlib
import json
import site
import subprocess
import sys
import sysconfig
from collections import Counter
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from synthloop.errors import DataError
from synthloop.tools import registry as registry_mod
from tests.fakes import Script, jittered_rows_reply, loop_script, rewrite_reply

ROOT = Path(__file__).resolve().parents[1]
LEDGER_DIR = ROOT / "examples" / "plugins" / "ledger"
PLAN_PREFIX = "You are about to improve"


# -- the example plugin, installed -------------------------------------------------------------
def ensure_ledger_installed() -> None:
    """pip-install examples/plugins/ledger into this interpreter's environment if it is not
    there (scripts/bootstrap.sh installs it too), and make it importable in this process."""
    try:
        distribution("synthloop-ledger")
        importlib.import_module("synthloop_ledger")
        return
    except (PackageNotFoundError, ImportError):
        pass
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "--no-deps", "--no-build-isolation", "-e", str(LEDGER_DIR)], check=True)
    site.addsitedir(sysconfig.get_paths()["purelib"])  # the editable install's .pth
    importlib.invalidate_caches()
    importlib.import_module("synthloop_ledger")
    registry_mod.reset_default_registry()  # reload with the plugin on next use


@pytest.fixture(scope="session")
def ledger_plugin():
    ensure_ledger_installed()
    return registry_mod.default_registry()


def fast_report(mp: pytest.MonkeyPatch) -> None:
    """The report node writes summary.json but skips report.html and the holdout lift's
    bootstrap CI (most of a small run's seconds); these tests are about the loop."""
    import synthloop.evals.report as report
    from synthloop.graphs import nodes

    class NoCI:
        @staticmethod
        def compute(*args, **kwargs):
            return {"ci_low": 0.0, "ci_high": 0.0}

    mp.setattr(report, "write_report", lambda *a, **k: None)
    mp.setattr(nodes, "HoldoutLift", NoCI)


@pytest.fixture
def no_report(monkeypatch):
    fast_report(monkeypatch)


# -- a plugin with one component of every kind -------------------------------------------------
CALLS: Counter = Counter()  # how often the loop used each test component


def _toy_model(seed: int, **params):
    """Logistic regression under another name (counts its builds)."""
    from sklearn.linear_model import LogisticRegression

    CALLS["model"] += 1
    return LogisticRegression(max_iter=2000, random_state=seed, **params)


class Top5Recall:
    """Recall among the top 5% scores."""

    name = "top5_recall"
    goal = "maximize"
    min_value, max_value = 0.0, 1.0
    needs_threshold = False

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **_):
        CALLS["metric"] += 1
        y = np.asarray(y_true).astype(str) == positive
        if not y.any():
            return 0.0
        k = max(1, int(0.05 * len(y)))
        top = np.argsort(-np.asarray(proba)[:, list(classes).index(positive)], kind="stable")[:k]
        return float(y[top].sum() / y.sum())


class CopyGenerator:
    """No LLM: copies of training rows of the region's class with numbers nudged."""

    def __init__(self, scale: float = 0.05):
        self.scale = scale

    def generate(self, request):
        CALLS["generator"] += 1
        rng = np.random.default_rng(request.seed + request.iteration)
        region = request.regions[0]
        pool = request.train[request.train[request.schema.target].astype(str) == region.label]
        rows = pool.sample(min(request.n_rows, len(pool)), random_state=int(rng.integers(1e6)))
        rows = rows.reset_index(drop=True).copy()
        for c in request.schema.columns:
            if c.type == "float":
                span = (c.max - c.min) or 1.0
                rows[c.name] = (rows[c.name] + rng.uniform(-1, 1, len(rows)) * self.scale * span
                                ).clip(c.min, c.max)
        return rows, {"rows_returned": len(rows)}


class OddRowsValidator:
    """Flags every third row (to see it counted)."""

    name = "every_third"
    violation = True

    def check(self, batch, context):
        CALLS["validator"] += 1
        return {"every_third_row": (np.arange(len(batch)) % 3) == 2}


class FixedRegionAnalyser:
    """One region: the upper half of a column."""

    def __init__(self, column: str = "mean_radius"):
        self.column = column

    def analyse(self, rows, proba, schema, *, threshold, settings, seed):
        from synthloop.tools.error_analysis import Condition, Region

        CALLS["error_analyser"] += 1
        med = float(pd.to_numeric(rows[self.column]).median())
        cond = Condition(column=self.column, op=">", value=round(med, 4))
        return [Region(id="r1", rule=cond.text(), conditions=[cond],
                       label=schema.positive_class, support=len(rows) // 2, errors=5,
                       error_rate=0.2, positives=3, recall=0.5)], {"rows": len(rows)}


class ZeroNoise:
    """Rounds one float column to 1 decimal, counted."""

    def __init__(self, column: str = "mean_radius"):
        self.column = column

    def apply(self, df, schema, seed):
        CALLS["noise"] += 1
        out = df.copy()
        if self.column in out.columns:
            out[self.column] = pd.to_numeric(out[self.column]).round(1)
        return out, {"rounded": int(len(out))}


def ratio(a, b):
    """a / b, row by row."""
    CALLS["rule_function"] += 1
    return pd.to_numeric(pd.Series(a)) / pd.to_numeric(pd.Series(b)).replace(0, np.nan)


def cancer_loader(ref: str) -> pd.DataFrame:
    """'cancer:N' — the tests' breast-cancer rows (N malignant)."""
    from tests.support import cancer_frame

    CALLS["data_loader"] += 1
    try:
        return cancer_frame(n_malignant=int(ref))
    except ValueError:
        raise DataError(f"cancer:{ref}: give a number of malignant rows") from None


cancer_loader.example = "48"


def radius_tool(ctx):
    """The largest mean radius of a class."""
    from typing import Literal

    from langchain_core.tools import StructuredTool
    from pydantic import create_model

    Args = create_model("RadiusArgs", label=(Literal[tuple(ctx.schema.classes)], ...))

    def run(label: str) -> str:
        CALLS["agent_tool"] += 1
        y = ctx.train[ctx.schema.target].astype(str)
        col = "mean_radius" if "mean_radius" in ctx.train else ctx.schema.feature_names()[0]
        return f"largest {col} of {label}: {pd.to_numeric(ctx.train.loc[y == label, col]).max()}"

    return StructuredTool.from_function(run, name="max_radius", args_schema=Args,
                                        description="The largest mean_radius of a class.")


def register_test_plugin(registry) -> None:
    registry.add("model", "toy_logit", _toy_model)
    registry.add("metric", "top5_recall", Top5Recall)
    registry.add("generator", "copy", CopyGenerator)
    registry.add("validator", "every_third", OddRowsValidator())
    registry.add("rule_function", "ratio", ratio)
    registry.add("error_analyser", "fixed", FixedRegionAnalyser)
    registry.add("data_loader", "cancer", cancer_loader)
    registry.add("agent_tool", "max_radius", radius_tool)
    registry.add("noise", "round1", ZeroNoise)


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=registry_mod.GROUP)


def registry_with(monkeypatch, *extra: EntryPoint):
    """The registry loaded from the installed entry points plus ``extra``, made the process
    default for the test."""
    real = registry_mod.entry_points

    def patched(group):
        return [*real(group=group), *extra]

    monkeypatch.setattr(registry_mod, "entry_points", patched)
    reg = registry_mod.load_registry()
    monkeypatch.setattr(registry_mod, "_DEFAULT", reg)
    return reg


# -- LLM scripts for the agent's tools ---------------------------------------------------------
def plan_reply(calls: list[dict]) -> Script:
    def script(messages: list[BaseMessage], params: dict) -> str:
        return json.dumps({"calls": calls})
    return script


def with_plan(plan: Script, generate: Script = jittered_rows_reply,
              rewrite: Script = rewrite_reply) -> Script:
    """A whole loop's script: tool plans to ``plan``, the rest as ``loop_script``."""
    base = loop_script(generate, rewrite)

    def script(messages: list[BaseMessage], params: dict) -> str:
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        return plan(messages, params) if system.startswith(PLAN_PREFIX) else base(messages, params)
    return script


class NativeToolModel(BaseChatModel):
    """A chat model with native tool calling: ``bind_tools`` records the tools, and a call
    that has tools bound answers with ``tool_calls``; other calls go to ``script``."""

    script: Any
    tool_calls: list[dict] = Field(default_factory=list)
    calls: list[dict] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "native-tools-fake"

    def bind_tools(self, tools, **kwargs):
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        self.calls.append({"system": system, "tools": kwargs.get("tools"),
                           "user": "\n".join(str(m.content) for m in messages if m.type == "human")})
        if kwargs.get("tools"):
            msg = AIMessage(content="", tool_calls=[
                {"name": c["name"], "args": c["args"], "id": f"call_{i}", "type": "tool_call"}
                for i, c in enumerate(self.tool_calls)])
        else:
            msg = AIMessage(content=self.script(messages, kwargs))
        return ChatResult(generations=[ChatGeneration(message=msg)])
