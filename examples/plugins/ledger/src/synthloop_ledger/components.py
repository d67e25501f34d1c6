"""The ledger plugin's components. Each follows its kind's contract (synthloop.tools.registry
.KINDS) and passes synthloop.testing's checks (see tests/test_ledger_plugin.py)."""

from __future__ import annotations

from importlib import resources
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import Field, create_model

from synthloop.agents.generator import GenerationRequest, LLMRowGenerator
from synthloop.errors import DataError

DATA_SETS = ("transactions",)


# -- data_loader ------------------------------------------------------------------------------
def load_ledger(ref: str) -> pd.DataFrame:
    """A data set packaged with the plugin: 'ledger:transactions' (journal entries, audit flag)."""
    if ref not in DATA_SETS:
        raise DataError(f"The ledger plugin has no data set {ref!r}; it has: "
                        f"{', '.join(DATA_SETS)} (write data.source: ledger:transactions).")
    path = resources.files("synthloop_ledger") / "data" / f"{ref}.csv"
    with resources.as_file(path) as p:
        return pd.read_csv(p)


load_ledger.example = "transactions"  # what the conformance kit loads


# -- rule_function ----------------------------------------------------------------------------
def balanced(*amounts, tolerance: float = 0.005):
    """True where the amounts of an entry sum to zero (to the cent): double entry."""
    total = sum(pd.to_numeric(pd.Series(a), errors="coerce").reset_index(drop=True)
                for a in amounts)
    return (total.abs() <= tolerance).to_numpy()


# -- generator --------------------------------------------------------------------------------
class BalancedLLMGenerator:
    """synthloop's LLM row generator, then code sets credit = -debit: the model writes the
    debit, the invariant is not left to it."""

    def __init__(self, debit: str = "debit", credit: str = "credit"):
        self.debit = debit
        self.credit = credit

    def generate(self, request: GenerationRequest) -> tuple[pd.DataFrame, dict]:
        rows, stats = LLMRowGenerator().generate(request)
        if rows.empty or self.debit not in rows.columns or self.credit not in rows.columns:
            return rows, {**stats, "invariant_repaired": 0}
        rows = rows.copy()
        debit = pd.to_numeric(rows[self.debit], errors="coerce").round(2)
        fixed = ~np.isclose(pd.to_numeric(rows[self.credit], errors="coerce"), -debit)
        rows[self.debit] = debit
        rows[self.credit] = -debit
        return rows, {**stats, "invariant_repaired": int(fixed.sum())}


# -- validator --------------------------------------------------------------------------------
class DuplicatePostings:
    """The same amount posted to the same account and counterparty twice in one batch."""

    name = "duplicate_postings"
    violation = True

    def check(self, batch: pd.DataFrame, context) -> dict[str, np.ndarray]:
        keys = [c for c in ("account", "counterparty", "debit") if c in batch.columns]
        if len(keys) < 3 or batch.empty:
            return {"duplicate_posting": np.zeros(len(batch), bool)}
        dup = batch[keys].astype(str).duplicated(keep="first").to_numpy()
        return {"duplicate_posting": dup}


# -- noise ------------------------------------------------------------------------------------
class LedgerRounding:
    """Keyed-in amounts rounded to whole units (both sides, so entries stay balanced) and
    postings shifted by an hour by batch processing; values stay inside the schema."""

    def __init__(self, round_rate: float = 0.2, hour_shift_rate: float = 0.1):
        self.round_rate = round_rate
        self.hour_shift_rate = hour_shift_rate

    def apply(self, df: pd.DataFrame, schema, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
        out = df.copy()
        rng = np.random.default_rng(seed)
        counts = {"amounts_rounded": 0, "hours_shifted": 0}
        if out.empty:
            return out, counts
        names = {c.name: c for c in schema.columns}
        if "debit" in names and "credit" in names:
            hit = rng.random(len(out)) < self.round_rate
            debit = pd.to_numeric(out["debit"], errors="coerce")
            rounded = debit.round(0).clip(names["debit"].min, names["debit"].max)
            hit &= rounded.notna().to_numpy() & (-rounded).between(
                names["credit"].min, names["credit"].max).to_numpy()
            out.loc[hit, "debit"] = rounded[hit]
            out.loc[hit, "credit"] = -rounded[hit]
            counts["amounts_rounded"] = int(hit.sum())
        if "hour" in names:
            hit = rng.random(len(out)) < self.hour_shift_rate
            hour = pd.to_numeric(out["hour"], errors="coerce")
            shifted = (hour + 1).clip(names["hour"].min, names["hour"].max)
            hit &= (shifted != hour).fillna(False).to_numpy()
            out.loc[hit, "hour"] = shifted[hit]
            counts["hours_shifted"] = int(hit.sum())
        return out, counts


# -- metric -----------------------------------------------------------------------------------
class AuditRecall:
    """Recall of the flagged class among the tenth of entries the model scores highest (an
    auditor reviews that many)."""

    name: ClassVar[str] = "audit_recall"
    goal: ClassVar[str] = "maximize"
    min_value: ClassVar[float] = 0.0
    max_value: ClassVar[float] = 1.0
    needs_threshold: ClassVar[bool] = False
    top_share: ClassVar[float] = 0.1

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **_) -> float:
        y = np.asarray(y_true).astype(str) == str(positive)
        if not y.any():
            return 0.0
        scores = np.asarray(proba)[:, list(classes).index(positive)]
        k = max(1, int(round(cls.top_share * len(y))))
        top = np.argsort(-scores, kind="stable")[:k]
        return float(y[top].sum() / y.sum())


# -- agent_tool -------------------------------------------------------------------------------
def ledger_profile(ctx) -> BaseTool:
    """An account's entries in the training split: how many, how many flagged, and how the
    flagged ones differ (amounts, manual, weekend, hour)."""
    has = {c.name: c for c in ctx.schema.columns}
    accounts = list(has["account"].categories or []) if "account" in has else []
    Args = create_model("LedgerProfileArgs", account=(
        Literal[tuple(accounts)] if accounts else str,
        Field(description="An account of the ledger, e.g. cash.")))
    target, positive = ctx.schema.target, ctx.schema.positive_class

    def run(account: str) -> str:
        if "account" not in has:
            return "this table has no 'account' column"
        rows = ctx.train[ctx.train["account"].astype(str) == account]
        if rows.empty:
            return f"no training entries for account {account!r}"
        flagged = rows[rows[target].astype(str) == positive]
        lines = [f"account {account}: {len(rows)} training entries, {len(flagged)} "
                 f"'{positive}' ({len(flagged) / len(rows):.0%})"]
        for name, part in (("flagged", flagged), ("others", rows.drop(flagged.index))):
            if part.empty:
                continue
            desc = [f"{name}:"]
            if "debit" in part:
                d = pd.to_numeric(part["debit"], errors="coerce")
                desc.append(f"debit median {d.median():.0f} (p90 {d.quantile(0.9):.0f})")
            for flag in ("manual", "weekend"):
                if flag in part:
                    desc.append(f"{flag} {part[flag].astype(bool).mean():.0%}")
            if "hour" in part:
                h = pd.to_numeric(part["hour"], errors="coerce")
                desc.append(f"posted outside 7-20h {((h < 7) | (h > 20)).mean():.0%}")
            lines.append(" ".join(desc))
        return "\n".join(lines)

    tool = StructuredTool.from_function(
        run, name="ledger_profile", args_schema=Args,
        description="An account's journal entries in the training split: count, share flagged, "
                    "and how flagged entries differ (amount, manual, weekend, posting hour).")
    if not accounts:
        tool.metadata = {"example_args": {"account": "cash"}}
    return tool
