"""Tools the rewrite agent may call before it writes the new instruction.

Built-in: ``sample_real_rows(region)`` (real training rows inside an error region),
``column_stats(column)`` (a column's figures by class) and ``check_rule(expression)`` (how many
training rows of each class satisfy an expression). Plugins add more (kind ``agent_tool``): a
LangChain tool, or a factory ``make(context) -> tool`` that closes over the
:class:`ToolContext`. Tools see the training split only, never validation or holdout rows.

Two ways to call them. A chat model with native tool calling (``bind_tools``: OpenAI-compatible
servers, hosted APIs) picks calls itself. A model without it (the embedded SmolLM2) writes a
plan, a JSON object ``{"calls": [{"tool": ..., "args": {...}}]}`` constrained by a JSON-schema
grammar built from the tools' argument schemas, and the code runs it. Either way the results go
into the rewrite request and are recorded in the prompt version (``tool_calls``); a tool that
fails, or a plan that does not parse, is recorded as an event and never stops the loop.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, create_model

from synthloop.data import TableSchema
from synthloop.errors import LLMError, RuleError
from synthloop.llm import LLMClient, chat
from synthloop.tools.constraints import check_columns, evaluate_region, parse_rule
from synthloop.tools.error_analysis import Region

MAX_RESULT_CHARS = 1200


@dataclass(frozen=True)
class ToolContext:
    """What a tool may read: the training split, the schema, the current error regions, the
    spec's rules and the run's seed."""

    train: pd.DataFrame
    schema: TableSchema
    regions: list[Region]
    rules: list[str]
    seed: int = 0

    def region(self, region_id: str) -> Region:
        for r in self.regions:
            if r.id == region_id:
                return r
        raise ValueError(f"no region {region_id!r}; regions are {[r.id for r in self.regions]}")


def _choice(values: list[str]):
    """A Literal of ``values`` (a JSON-schema enum, so a grammar keeps a small model on them)."""
    return Literal[tuple(values)] if values else str


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (np.floating, float)):
        return round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _rows_json(df: pd.DataFrame, columns: list[str]) -> str:
    return "\n".join(json.dumps({c: _plain(r[c]) for c in columns}) for _, r in df.iterrows())


# -- built-in tools ---------------------------------------------------------------------------
def sample_real_rows(ctx: ToolContext) -> BaseTool:
    ids = [r.id for r in ctx.regions]
    Args = create_model(
        "SampleRealRowsArgs",
        region=(_choice(ids), Field(description="The id of an error region, e.g. r1.")),
        n=(int, Field(3, ge=1, le=5, description="How many rows.")),
    )

    def run(region: str, n: int = 3) -> str:
        reg = ctx.region(region)
        target = ctx.schema.target
        rows = ctx.train[ctx.train[target].astype(str) == reg.label]
        if reg.conditions:
            rows = rows[evaluate_region(reg.rule, rows)]
        if rows.empty:
            return f"no training rows of class '{reg.label}' in {region} ({reg.rule})"
        rng = np.random.default_rng(ctx.seed)
        take = np.sort(rng.choice(len(rows), size=min(n, len(rows)), replace=False))
        cols = [*ctx.schema.feature_names(), target]
        return (f"{len(rows)} training rows of class '{reg.label}' lie in {region} ({reg.rule}); "
                f"{len(take)} of them:\n" + _rows_json(rows.iloc[take], cols))

    return StructuredTool.from_function(
        run, name="sample_real_rows", args_schema=Args,
        description="Real training rows inside an error region, of the class the region asks "
                    "for, as JSON lines.")


def column_stats(ctx: ToolContext) -> BaseTool:
    names = [c.name for c in ctx.schema.columns if c.type != "text"]
    Args = create_model("ColumnStatsArgs",
                        column=(_choice(names), Field(description="A column of the table.")))

    def run(column: str) -> str:
        col = ctx.schema.column(column)
        y = ctx.train[ctx.schema.target].astype(str)
        lines = [f"{column} ({col.type}) in the training split, by class:"]
        for cls in ctx.schema.classes:
            s = ctx.train.loc[y == cls, column]
            nulls = int(s.isna().sum())
            if col.type in ("float", "int"):
                v = pd.to_numeric(s, errors="coerce").dropna()
                if v.empty:
                    lines.append(f"- {cls}: no values ({nulls} null)")
                    continue
                q = v.quantile([0, 0.25, 0.5, 0.75, 1]).round(4).tolist()
                lines.append(f"- {cls}: {len(v)} rows, min {q[0]:g}, p25 {q[1]:g}, median "
                             f"{q[2]:g}, p75 {q[3]:g}, max {q[4]:g}, {nulls} null")
            else:
                top = s.dropna().astype(str).value_counts(normalize=True).head(5)
                shares = ", ".join(f"{k} {v:.0%}" for k, v in top.items())
                lines.append(f"- {cls}: {len(s)} rows; {shares or 'no values'}; {nulls} null")
        return "\n".join(lines)

    return StructuredTool.from_function(
        run, name="column_stats", args_schema=Args,
        description="A column's range and quartiles (numbers) or most common values "
                    "(categories), for each class, in the training split.")


def check_rule(ctx: ToolContext) -> BaseTool:
    class Args(BaseModel):
        expression: str = Field(description="A rule such as 'mean_radius > 15 and "
                                            "mean_texture <= 20'.", max_length=200)

    def run(expression: str) -> str:
        try:
            rule = parse_rule(expression)
            check_columns(rule, ctx.schema.feature_names(), ctx.schema.target)
            mask = evaluate_region(expression, ctx.train)
        except RuleError as exc:
            return f"the expression is not a valid rule: {exc}"
        y = ctx.train[ctx.schema.target].astype(str).to_numpy()
        parts = []
        for cls in ctx.schema.classes:
            n = int((y == cls).sum())
            k = int((mask & (y == cls)).sum())
            parts.append(f"{cls} {k} of {n}" + (f" ({k / n:.0%})" if n else ""))
        return (f"{int(mask.sum())} of {len(mask)} training rows satisfy {expression!r}: "
                + ", ".join(parts))

    tool = StructuredTool.from_function(
        run, name="check_rule", args_schema=Args,
        description="How many training rows of each class satisfy an expression over the "
                    "columns (test a guess about a region before writing the instruction).")
    meta: dict[str, Any] = {}
    first = next((r.rule for r in ctx.regions if r.conditions), None)
    if first:
        meta["example_args"] = {"expression": first}
    pattern = _expression_pattern(ctx.schema)
    if pattern:  # a plan's grammar: one or two comparisons on real columns, nothing else
        meta["plan_args_schema"] = {
            "type": "object", "required": ["expression"],
            "properties": {"expression": {"type": "string", "pattern": pattern}}}
    tool.metadata = meta or None
    return tool


def _expression_pattern(schema: TableSchema) -> str | None:
    """A regex (the subset llama.cpp grammars take) of 'col > 1.5' or "col == 'a'" conditions,
    one or two joined by 'and', over the columns whose names need no quoting."""
    def alt(items):
        return "(" + "|".join(items) + ")"

    nums = [c.name for c in schema.columns if c.type in ("float", "int") and c.name.isidentifier()]
    # (no backslash anywhere: llama.cpp's grammar parser refuses the escapes the converter
    # writes for one, and a grammar it refuses ends the process)
    cats = [c for c in schema.columns if c.type in ("category", "bool") and c.name.isidentifier()
            and (c.type == "bool" or (c.categories and len(c.categories) <= 12 and all(
                str(v).replace(" ", "").replace("-", "").replace("_", "").isalnum()
                for v in c.categories)))]
    conds = []
    if nums:
        conds.append(f"{alt(nums)} (>|<=) -?[0-9]{{1,7}}([.][0-9]{{1,4}})?")
    for c in cats:
        values = alt(["True", "False"]) if c.type == "bool" else \
            "'" + alt([str(v) for v in c.categories]) + "'"
        conds.append(f"{c.name} == {values}")
    if not conds:
        return None
    cond = alt(conds)
    return f"^{cond}( and {cond})?$"


BUILTIN_TOOLS = {"sample_real_rows": sample_real_rows, "column_stats": column_stats,
                 "check_rule": check_rule}


# -- building the tool list -----------------------------------------------------------------
def build_tools(registry, names: list[str] | str, ctx: ToolContext
                ) -> tuple[list[BaseTool], list[dict]]:
    """The tools the spec names ('all': every registered one), built for ``ctx``; a factory
    that fails is an event, not an error."""
    wanted = registry.names("agent_tool") if names == "all" else list(names)
    tools, events = [], []
    for name in wanted:
        obj = registry.get("agent_tool", name)
        try:
            tool = obj if isinstance(obj, BaseTool) else obj(ctx)
            if not isinstance(tool, BaseTool):
                raise TypeError(f"the factory returned {type(tool).__name__}, not a LangChain tool")
        except Exception as exc:
            events.append(_tool_event(name, f"could not be built: {type(exc).__name__}: {exc}"))
            continue
        if tool.name != name:
            tool = tool.model_copy(update={"name": name})
        tools.append(tool)
    return tools, events


def _tool_event(tool: str, reason: str, iteration: int | None = None) -> dict:
    return {"kind": "tool_error", "node": "rewrite", "iteration": iteration, "tool": tool,
            "reason": reason.splitlines()[0][:300]}


def args_schema(tool: BaseTool) -> dict:
    """The JSON schema of the arguments the model fills in (injected ones left out)."""
    schema = tool.tool_call_schema
    schema = schema if isinstance(schema, dict) else schema.model_json_schema()
    return _clean(schema)


def _clean(schema: Any) -> Any:
    """Titles and defaults dropped, ``const`` as a one-value ``enum`` (grammars take both)."""
    if isinstance(schema, dict):
        out = {k: _clean(v) for k, v in schema.items() if k not in ("title", "default")}
        if "const" in out:
            out["enum"] = [out.pop("const")]
        return out
    if isinstance(schema, list):
        return [_clean(v) for v in schema]
    return schema


def run_tool(tools: dict[str, BaseTool], name: str, args: Any, via: str) -> dict:
    """One call's record: tool, args, via, and its result or the error it raised."""
    rec: dict[str, Any] = {"tool": name, "args": args if isinstance(args, dict) else {},
                           "via": via}
    tool = tools.get(name)
    if tool is None:
        rec["error"] = f"no tool {name!r}; tools are {sorted(tools)}"
        return rec
    try:
        result = tool.invoke(rec["args"])
    except Exception as exc:
        rec["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return rec
    text = result if isinstance(result, str) else json.dumps(result, default=str)
    rec["result"] = text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " …"
    return rec


# -- calling them ---------------------------------------------------------------------------
PLAN_SYSTEM = (
    "You are about to improve the instruction of a data generator. First look at the data: "
    "choose the tool calls that show which rows the generator should write for the regions "
    "where the model is wrong. Reply with JSON: "
    '{"calls": [{"tool": "...", "args": {...}}, ...]}.'
)
NATIVE_SYSTEM = (
    "You are about to improve the instruction of a data generator. First look at the data: "
    "call the tools that show which rows the generator should write for the regions where the "
    "model is wrong."
)


class PlannedCall(BaseModel):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolPlan(BaseModel):
    calls: list[PlannedCall]


def plan_args_schema(tool: BaseTool) -> dict:
    """The arguments' schema for a plan's grammar: the tool's, or the narrower one it gives in
    ``metadata["plan_args_schema"]`` (a small model writes valid calls only)."""
    return (tool.metadata or {}).get("plan_args_schema") or args_schema(tool)


def plan_json_schema(tools: list[BaseTool], max_calls: int) -> dict:
    """ToolPlan's schema with each call tied to one tool's argument schema (a grammar for
    models that take one)."""
    items = {"anyOf": [{"type": "object",
                        "properties": {"tool": {"type": "string", "enum": [t.name]},
                                       "args": plan_args_schema(t)},
                        "required": ["tool", "args"]} for t in tools]}
    return {"type": "object",
            "properties": {"calls": {"type": "array", "items": items, "minItems": 1,
                                     "maxItems": max_calls}},
            "required": ["calls"]}


def tools_request(regions: list[Region], schema: TableSchema, tools: list[BaseTool],
                  max_calls: int) -> str:
    lines = ["Regions where the model is wrong:"]
    lines += [f"- {r.describe()}" for r in regions]
    lines += ["", f"Columns: {', '.join(schema.feature_names())}; label: {schema.target} "
                  f"({', '.join(schema.classes)}).", "", "Tools:"]
    for t in tools:
        props = args_schema(t).get("properties", {})
        lines.append(f"- {t.name}({', '.join(props)}): {t.description}")
    lines += ["", f"Choose at most {max_calls} calls."]
    return "\n".join(lines)


def supports_native_tools(model: BaseChatModel | None) -> bool:
    return model is not None and type(model).bind_tools is not BaseChatModel.bind_tools


def consult_tools(client: LLMClient, tools: list[BaseTool], regions: list[Region],
                  schema: TableSchema, *, mode: str, max_calls: int, iteration: int,
                  seed: int) -> tuple[list[dict], list[dict]]:
    """Let the model call ``tools`` (natively, or through a plan the code runs); returns the
    call records and the events (tool errors, a plan that failed, a fallback)."""
    if not tools or client is None:
        return [], []
    events: list[dict] = []
    native = supports_native_tools(client.model)
    if mode == "native" and not native:
        events.append({"kind": "fallback", "node": "rewrite", "iteration": iteration,
                       "reason": f"{client.model_id} has no native tool calling; the tools "
                                 "were called through a plan"})
    via = "native" if native and mode != "plan" else "plan"
    request = tools_request(regions, schema, tools, max_calls)
    try:
        if via == "native":
            calls = [(c["name"], c.get("args", {})) for c in client.tool_calls(
                chat(NATIVE_SYSTEM, request), tools, node="rewrite", seed=seed)]
        else:
            plan = client.structured(
                chat(PLAN_SYSTEM, request), ToolPlan, json_schema=plan_json_schema(tools, max_calls),
                schema_name="ToolPlan", node="rewrite", temperature=0.0, max_tokens=240, seed=seed)
            calls = [(c.tool, c.args) for c in plan.calls]
    except LLMError as exc:
        events.append({"kind": "fallback", "node": "rewrite", "iteration": iteration,
                       "reason": f"tool {via} failed, no tools used: {exc}"[:500]})
        return [], events
    by_name = {t.name: t for t in tools}
    records = [run_tool(by_name, name, args, via) for name, args in calls[:max_calls]]
    events += [_tool_event(r["tool"], r["error"], iteration) for r in records if "error" in r]
    return records, events


def tool_results_text(records: list[dict]) -> list[str]:
    """The lines the rewrite request shows for the tool calls."""
    if not records:
        return []
    lines = ["", "What the tools showed:"]
    for r in records:
        args = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in r["args"].items())
        out = r.get("result") if "result" in r else f"(failed: {r['error']})"
        lines.append(f"- {r['tool']}({args}):")
        lines += [f"  {line}" for line in str(out).splitlines()]
    return lines
