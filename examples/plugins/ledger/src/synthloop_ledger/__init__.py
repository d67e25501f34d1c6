"""synthloop-ledger: journal entries as a synthloop domain.

``register(registry)`` is the whole contract with synthloop (the entry point in
pyproject.toml names it). It adds one component of most kinds:

- data_loader ``ledger``: ``data.source: ledger:transactions`` reads the packaged demo ledger;
- rule_function ``balanced``: the double-entry invariant, ``balanced(debit, credit)`` in rules;
- generator ``balanced_llm``: synthloop's LLM generator, then the code sets credit = -debit;
- validator ``duplicate_postings``: the same amount posted twice to an account in one batch;
- noise ``ledger_rounding``: amounts keyed in as whole units, postings shifted by an hour;
- metric ``audit_recall``: the share of flagged entries among the top-scored tenth (what an
  auditor reviews);
- agent_tool ``ledger_profile``: an account's entries in the training split, for the agent.
"""

from __future__ import annotations

from synthloop_ledger.components import (
    AuditRecall,
    BalancedLLMGenerator,
    DuplicatePostings,
    LedgerRounding,
    balanced,
    ledger_profile,
    load_ledger,
)

__version__ = "0.1.0"


def register(registry) -> None:
    registry.add("data_loader", "ledger", load_ledger)
    registry.add("rule_function", "balanced", balanced)
    registry.add("generator", "balanced_llm", BalancedLLMGenerator)
    registry.add("validator", "duplicate_postings", DuplicatePostings())
    registry.add("noise", "ledger_rounding", LedgerRounding)
    registry.add("metric", "audit_recall", AuditRecall)
    registry.add("agent_tool", "ledger_profile", ledger_profile)
