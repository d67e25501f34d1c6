"""The conformance kit (synthloop.testing) passes on every built-in component and catches
components that break their kind's contract, each with one line naming the check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthloop.errors import ConformanceError
from synthloop.testing import Fixture, check_component, check_plugin, checks_for
from synthloop.tools.noise import TypoMissingNoise
from synthloop.tools.registry import KINDS, load_registry
from synthloop.tools.training import BUILTIN_MODELS

BUILTINS = [c for c in load_registry().entries() if c.source == "synthloop"]


class TestEveryBuiltinConforms:
    def test_every_kind_has_a_builtin_and_checks(self):
        assert {c.kind for c in BUILTINS} == set(KINDS)
        assert all(checks_for(k, "x", None) for k in KINDS)

    @pytest.mark.parametrize("component", BUILTINS, ids=lambda c: f"{c.kind}:{c.name}")
    def test_builtin(self, component):
        passed = check_component(component.kind, component.name, component.obj)

        assert passed == [c.check.__name__ for c in checks_for(component.kind, component.name,
                                                               component.obj)]


# -- components that break their contract --------------------------------------------------------
class LabelNoise(TypoMissingNoise):
    """Flips labels: noise may not."""

    def apply(self, df, schema, seed):
        out = df.copy()
        out[schema.target] = schema.classes[0]
        return out, {}


class UnseededNoise(TypoMissingNoise):
    def apply(self, df, schema, seed):
        out = df.copy()
        col = next(c.name for c in schema.columns if c.type == "float")
        out[col] = out[col] + np.random.default_rng().normal(0, 1e-6, len(out))
        return out, {"jitter": len(out)}


class OutOfRangeNoise(TypoMissingNoise):
    def apply(self, df, schema, seed):
        out = df.copy()
        c = next(c for c in schema.columns if c.type == "float")
        out[c.name] = c.max * 10
        return out, {"scaled": len(out)}


class WorkInInit(TypoMissingNoise):
    def __init__(self, rate: float = 0.1):
        self.rate = rate * 2  # stores a changed value: not its argument
        self.fitted_ = True


class LowerIsBetter:
    name = "log_loss_ish"
    goal = "minimize"
    min_value, max_value = 0.0, 1.0

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **_):
        return 0.5


class OutOfRangeMetric(LowerIsBetter):
    name = "broken"
    goal = "maximize"

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **_):
        return 3.0


class PrefersWrong(LowerIsBetter):
    name = "contrary"
    goal = "maximize"

    @classmethod
    def compute(cls, y_true, proba, classes, positive, **_):
        p = np.asarray(proba)[:, list(classes).index(positive)]
        return float(1 - np.mean(p[np.asarray(y_true) == positive]))


class ShortMask:
    name = "short"
    violation = True

    def check(self, batch, context):
        return {"short": np.zeros(max(0, len(batch) - 1), bool)}


def unseeded_model(seed, **params):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=5, random_state=None)


def tool_returning_a_frame(ctx):
    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(lambda: ctx.train.head(2), name="frame_tool",
                                        description="Rows as a frame.")


def tool_without_example(ctx):
    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(lambda query: query, name="echo",
                                        description="Echoes the query.")


def loader_that_crashes(ref):
    if ref == "ok":
        return pd.DataFrame({"a": [1]})
    return {}["missing"]


loader_that_crashes.example = "ok"


class TestBrokenComponentsFail:
    @pytest.mark.parametrize("kind, obj, fragment", [
        ("noise", LabelNoise, "check_noise_keeps_labels_and_schema: it added or removed rows or "
                              "columns, or changed a label"),
        ("noise", UnseededNoise, "check_noise_is_seeded: two applies with seed 11 differ"),
        ("noise", OutOfRangeNoise, "noisy rows break the schema ({'range': 30})"),
        ("noise", WorkInInit, "__init__ sets ['fitted_']"),
        ("metric", LowerIsBetter, "goal must be 'maximize'"),
        ("metric", OutOfRangeMetric, "compute returned 3.0, not a float in [0.0, 1.0]"),
        ("metric", PrefersWrong, "correct predictions score"),
        ("validator", ShortMask, "mask 'short' has shape (29,)"),
        ("model", unseeded_model, "check_model_is_seeded: two fits with seed 3 predict "
                                  "differently"),
        ("agent_tool", tool_returning_a_frame, "it returned DataFrame; return a string"),
        ("agent_tool", tool_without_example, "argument 'query' has neither an enum nor an "
                                             "example"),
        ("data_loader", loader_that_crashes, "an unknown ref raised KeyError; raise "
                                             "synthloop.errors.DataError"),
    ])
    def test_the_kit_names_what_is_wrong(self, kind, obj, fragment):
        name = getattr(obj, "name", "x") if kind in ("metric", "validator") else "x"
        target = obj() if kind == "validator" else obj

        with pytest.raises(ConformanceError) as info:
            check_component(kind, name, target)

        message = str(info.value)
        assert message.startswith(f"{kind} '{name}' fails check_")
        assert fragment in message and "\n" not in message

    def test_params_must_be_stored_as_given(self):
        fx = Fixture.toy()
        fx.params[("noise", "x")] = {"rate": 0.3}

        with pytest.raises(ConformanceError, match="parameter 'rate' is not stored"):
            check_component("noise", "x", WorkInInit, fx)


class TestKitOnYourOwnData:
    def test_a_plugin_is_checked_on_its_own_rows(self, cancer_df):
        def register(registry):
            registry.add("model", "forest", BUILTIN_MODELS["random_forest"])
            registry.add("noise", "default_again", TypoMissingNoise)

        fx = Fixture.from_frame(cancer_df, target="diagnosis", positive_class="malignant")

        passed = check_plugin(register, fx)

        assert set(passed) == {"model:forest", "noise:default_again"}
        assert "check_model_learns" in passed["model:forest"]
        assert fx.schema.positive_class == "malignant"
