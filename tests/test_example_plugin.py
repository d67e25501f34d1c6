"""The example plugin (examples/plugins/ledger), pip-installed, drives a loop: its data loader,
rule function, generator, validator, noise, metric and agent tool are the ones the run uses."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

from synthloop.spec import load_spec
from tests.fakes import scripted
from tests.plugin_support import (
    LEDGER_DIR,
    ensure_ledger_installed,
    fast_report,
    plan_reply,
    with_plan,
)
from tests.support import run

PLAN = [{"tool": "ledger_profile", "args": {"account": "suspense"}},
        {"tool": "check_rule", "args": {"expression": "manual == True and hour > 20"}}]


@pytest.fixture(scope="module")
def ledger_run(tmp_path_factory):
    ensure_ledger_installed()  # as scripts/bootstrap.sh does
    """The example spec, shortened (one iteration, a fast model), with a scripted LLM whose
    rows copy the exemplars with every number nudged, so debit and credit no longer cancel."""
    spec = load_spec(LEDGER_DIR / "ledger.yaml").with_overrides({
        "model.kind": "logistic_regression", "budget.max_iterations": 1,
        "budget.rows_per_iteration": 16, "blend.max_validation_drop": 1.0,
        "generator.noise.params": {"round_rate": 1.0, "hour_shift_rate": 0.0}})
    model = scripted(with_plan(plan_reply(PLAN)))
    runs = tmp_path_factory.mktemp("ledger")
    with pytest.MonkeyPatch.context() as mp:
        fast_report(mp)
        summary = run(spec, runs, model, run_id="ledger")
    return summary, runs / "ledger", model


class TestLedgerPluginDrivesALoop:
    def test_its_data_loader_and_metric(self, ledger_run):
        from synthloop_ledger.components import AuditRecall

        summary, folder, _ = ledger_run
        val = pd.read_parquet(folder / "data/real_validation.parquet")
        model = joblib.load(folder / "models/baseline.joblib")

        assert sum(summary["split"].values()) == 1200
        assert summary["metric"] == "audit_recall"
        assert summary["baseline"]["validation"] == round(AuditRecall.compute(
            val["flagged"], model.predict_proba(val), model.schema.classes, "yes"), 6)

    def test_its_generator_keeps_the_invariant(self, ledger_run):
        # (the last test shows the same LLM rows do not balance without it)
        _, folder, model = ledger_run
        generated = pd.read_parquet(folder / "data/batches/iter_001_generated.parquet")

        assert len(generated) == 16
        assert np.allclose(generated["debit"] + generated["credit"], 0)
        assert generated["_sl_generator"].str.startswith("scripted").all()  # the LLM wrote them

    def test_its_rule_validator_and_noise_are_applied(self, ledger_run):
        summary, folder, _ = ledger_run
        (record,) = summary["iterations"]
        checks = record["checks"]
        candidate = pd.read_parquet(folder / "data/batches/iter_001_candidate.parquet")

        assert checks["rule: balanced(debit, credit)"] == 0  # the generator balanced them
        assert "duplicate_posting" in checks
        assert checks["amounts_rounded"] == len(candidate) > 0  # round_rate 1.0
        assert (candidate["debit"] == candidate["debit"].round(0)).all()
        assert np.allclose(candidate["debit"] + candidate["credit"], 0)

    def test_its_agent_tool_is_called_and_recorded(self, ledger_run):
        _, folder, model = ledger_run
        prompt = yaml.safe_load((folder / "prompts/ledger-gen.v002.yaml").read_text())
        plan_call = next(c for c in model.calls if c["system"].startswith("You are about"))
        offered = plan_call["params"]["response_format"]["json_schema"]["schema"]
        tools = [o["properties"]["tool"]["enum"][0]
                 for o in offered["properties"]["calls"]["items"]["anyOf"]]

        assert tools == ["check_rule", "column_stats", "ledger_profile", "sample_real_rows"]
        calls = {r["tool"]: r for r in prompt["tool_calls"]}
        assert calls["ledger_profile"]["result"].startswith("account suspense: ")
        assert "training rows satisfy 'manual == True and hour > 20'" in \
            calls["check_rule"]["result"]

    def test_the_llm_generator_would_have_broken_the_rule(self, ledger_run, tmp_path):
        # the same spec with synthloop's own generator: rows that do not balance are
        # rejected by the plugin's rule function
        spec = load_spec(LEDGER_DIR / "ledger.yaml").with_overrides({
            "model.kind": "logistic_regression", "budget.max_iterations": 1,
            "budget.rows_per_iteration": 8, "generator.kind": "llm", "agent.tools": [],
            "generator.columns_per_row": None})
        model = scripted(with_plan(plan_reply(PLAN)))
        with pytest.MonkeyPatch.context() as mp:
            fast_report(mp)
            summary = run(spec, tmp_path, model)

        assert summary["iterations"][0]["checks"]["rule: balanced(debit, credit)"] == 8
