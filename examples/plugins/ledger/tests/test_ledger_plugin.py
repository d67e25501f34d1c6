"""The plugin author's own test: synthloop's conformance kit on every component the plugin
registers, on the kit's toy table and on the ledger itself."""

from __future__ import annotations

import pytest
from synthloop_ledger import register
from synthloop_ledger.components import load_ledger

from synthloop.testing import Fixture, check_plugin, plugin_checks

LEDGER = Fixture.from_frame(load_ledger("transactions"), target="flagged", positive_class="yes")


@pytest.mark.parametrize("check", plugin_checks(register, LEDGER, source="synthloop-ledger"),
                         ids=str)
def test_conforms_on_the_ledger(check):
    check()


def test_conforms_on_the_toy_table():
    passed = check_plugin(register)

    assert set(passed) == {"data_loader:ledger", "rule_function:balanced",
                           "generator:balanced_llm", "validator:duplicate_postings",
                           "noise:ledger_rounding", "metric:audit_recall",
                           "agent_tool:ledger_profile"}
