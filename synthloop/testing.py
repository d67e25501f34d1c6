"""The conformance kit: checks a component must pass to plug into the loop, as scikit-learn's
estimator checks are for estimators. synthloop's own tests run them on every built-in.

A plugin author runs them on their package::

    from synthloop.testing import check_plugin
    from my_plugin import register

    def test_my_plugin_conforms():
        check_plugin(register)                      # on the kit's toy table
        check_plugin(register, Fixture.from_frame(my_df, target="label"))  # on your own data

or one test per check, so a failure names it::

    @pytest.mark.parametrize("check", plugin_checks(register), ids=str)
    def test_conformance(check):
        check()

Each check is a function ``check_x(name, obj, fixture)`` that raises :class:`ConformanceError`
with one line saying what is wrong and what the loop needs instead. What a component of each
kind is: :data:`synthloop.tools.registry.KINDS`.
"""

from __future__ import annotations

import inspect
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from synthloop.data import TableSchema, conform, infer_schema
from synthloop.errors import ConformanceError, DataError
from synthloop.tools.registry import KINDS, Registry

__all__ = ["Check", "Fixture", "SchemaFakeChatModel", "check_component", "check_plugin",
           "checks_for", "plugin_checks"]


# -- the data checks run on ---------------------------------------------------------------------
@dataclass
class Fixture:
    """Real-looking rows and their schema. ``Fixture.toy()`` is the kit's own small table
    (numbers, an integer, a category, a flag; label 'yes' is the rarer class);
    ``Fixture.from_frame`` uses yours, so domain components are checked on their domain."""

    frame: pd.DataFrame
    schema: TableSchema
    params: dict[tuple[str, str], dict] = field(default_factory=dict)  # (kind, name) -> params

    @classmethod
    def toy(cls, n: int = 240, seed: int = 0) -> Fixture:
        rng = np.random.default_rng(seed)
        x1 = rng.normal(0, 1, n).round(4)
        x2 = rng.uniform(0, 100, n).round(2)
        count = rng.integers(0, 20, n)
        cat = rng.choice(["a", "b", "c", "d"], n)
        flag = rng.random(n) < 0.3
        logit = 1.6 * x1 + 1.2 * (cat == "a") + 0.9 * flag - 2.0 + 0.01 * x2
        label = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
        df = pd.DataFrame({"x1": x1, "x2": x2, "count": count, "cat": cat, "flag": flag,
                           "label": label})
        return cls.from_frame(df, "label", "yes")

    @classmethod
    def from_frame(cls, df: pd.DataFrame, target: str, positive_class: str | None = None,
                   params: dict[tuple[str, str], dict] | None = None) -> Fixture:
        from synthloop.spec import DataSpec, LoopSpec

        spec = LoopSpec.model_construct(data=DataSpec.model_construct(
            source="fixture", target=target, positive_class=positive_class, text_column=None,
            drop_columns=[]), columns={})
        schema = infer_schema(df, spec)
        frame = conform(df[[*schema.feature_names(), schema.target]], schema)
        return cls(frame.reset_index(drop=True), schema, dict(params or {}))

    def params_for(self, kind: str, name: str) -> dict:
        return dict(self.params.get((kind, name), {}))

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.schema.target].astype(str).to_numpy()

    def region(self):
        """A region of the rows: the upper half of the first numeric column, for the rarer
        class."""
        from synthloop.tools.error_analysis import Condition, Region

        num = next((c.name for c in self.schema.columns if c.type in ("float", "int")), None)
        if num is None:
            return Region(id="r1", rule="True", conditions=[], label=self.schema.positive_class,
                          support=len(self.frame), errors=1, error_rate=0.5, positives=0,
                          recall=None)
        med = float(pd.to_numeric(self.frame[num]).median())
        cond = Condition(column=num, op=">", value=round(med, 6))
        inside = self.frame[pd.to_numeric(self.frame[num]) > med]
        return Region(id="r1", rule=cond.text(), conditions=[cond],
                      label=self.schema.positive_class, support=len(inside), errors=10,
                      error_rate=0.5, positives=int((inside[self.schema.target] ==
                                                     self.schema.positive_class).sum()),
                      recall=0.5)


class SchemaFakeChatModel(BaseChatModel):
    """A stand-in LLM: answers a call that carries a JSON schema (``response_format``) with a
    seeded random instance of that schema, and any other call with ``{}``. Counts its calls."""

    calls: list[dict] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "synthloop-schema-fake"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls.append(dict(kwargs))
        rf = kwargs.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema")
        rng = np.random.default_rng(int(kwargs.get("seed", 0)))
        content = json.dumps(_instance(schema, rng)) if schema else "{}"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=content))])


def _instance(schema: dict, rng: np.random.Generator) -> Any:
    if "enum" in schema:
        return schema["enum"][int(rng.integers(len(schema["enum"])))]
    if "anyOf" in schema:
        return _instance(schema["anyOf"][0], rng)
    kind = schema.get("type")
    if kind == "object":
        return {k: _instance(v, rng) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        n = schema.get("minItems", 1)
        if "prefixItems" in schema:
            return [_instance(s, rng) for s in schema["prefixItems"]]
        return [_instance(schema.get("items", {}), rng) for _ in range(n)]
    if kind == "integer":
        return int(rng.integers(schema.get("minimum", 0), schema.get("maximum", 10) + 1))
    if kind == "number":
        return round(float(rng.uniform(0, 1)), 4)
    if kind == "boolean":
        return bool(rng.random() < 0.5)
    return "x" * max(1, schema.get("minLength", 8))


# -- running checks ---------------------------------------------------------------------------
@dataclass
class Check:
    """One check bound to one component; call it to run it."""

    kind: str
    name: str
    check: Callable
    obj: Any
    fixture: Fixture

    def __call__(self) -> None:
        self.check(self.name, self.obj, self.fixture)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}:{self.check.__name__}"


def _fail(kind: str, name: str, check: str, message: str) -> ConformanceError:
    return ConformanceError(f"{kind} '{name}' fails {check}: {message}")


def checks_for(kind: str, name: str, obj: Any, fixture: Fixture | None = None) -> list[Check]:
    if kind not in KINDS:
        raise ConformanceError(f"Unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}.")
    fx = fixture or _toy()
    return [Check(kind, name, c, obj, fx) for c in CHECKS[kind]]


def check_component(kind: str, name: str, obj: Any, fixture: Fixture | None = None) -> list[str]:
    """Run every check of ``kind`` on one component; the names of the checks it passed, or
    the ConformanceError of the first it fails."""
    done = []
    for c in checks_for(kind, name, obj, fixture):
        c()
        done.append(c.check.__name__)
    return done


def plugin_checks(register: Callable, fixture: Fixture | None = None,
                  source: str = "plugin") -> list[Check]:
    """Every check of every component ``register(registry)`` adds (for pytest.parametrize)."""
    reg = Registry()
    with reg.loading(source):
        register(reg)
    return [c for comp in reg.entries() for c in checks_for(comp.kind, comp.name, comp.obj,
                                                            fixture)]


def check_plugin(register: Callable, fixture: Fixture | None = None) -> dict[str, list[str]]:
    """Run every check on every component a plugin's ``register`` adds; returns the checks
    passed by component ('kind:name'), or raises the first ConformanceError."""
    passed: dict[str, list[str]] = {}
    for c in plugin_checks(register, fixture):
        c()
        passed.setdefault(f"{c.kind}:{c.name}", []).append(c.check.__name__)
    return passed


_TOY: Fixture | None = None


def _toy() -> Fixture:
    global _TOY
    if _TOY is None:
        _TOY = Fixture.toy()
    return _TOY


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Exactly equal values (dtype aside): a seeded component reproduces its floats bit for
    bit, and a relative tolerance would let a 1e-6 unseeded jitter pass on large values."""
    try:
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                      check_dtype=False, check_exact=True)
        return True
    except AssertionError:
        return False


def _split(fx: Fixture) -> tuple[pd.DataFrame, pd.DataFrame]:
    half = len(fx.frame) * 2 // 3
    return fx.frame.iloc[:half].reset_index(drop=True), fx.frame.iloc[half:].reset_index(drop=True)


# -- model ------------------------------------------------------------------------------------
def check_model_builds_without_work(name, factory, fx):
    """factory(seed) returns an unfitted classifier (sklearn contract: no learned attributes
    before fit, get_params for clone)."""
    from sklearn.base import clone

    est = factory(0, **fx.params_for("model", name))
    for attr in ("fit", "predict_proba"):
        if not callable(getattr(est, attr, None)):
            raise _fail("model", name, "check_model_builds_without_work", f"it has no {attr}()")
    learned = [a for a in vars(est) if a.endswith("_") and not a.startswith("_")]
    if learned:
        raise _fail("model", name, "check_model_builds_without_work",
                    f"learned attributes {learned} exist before fit; set them in fit")
    try:
        clone(est)
    except Exception as exc:
        raise _fail("model", name, "check_model_builds_without_work",
                    f"sklearn.base.clone fails ({exc}); give it get_params/set_params "
                    "(subclass sklearn.base.BaseEstimator)") from None


def _fit_model(name, factory, fx, seed=0, weights=False):
    from synthloop.tools.training import TabularModel

    train, test = _split(fx)
    w = np.linspace(0.5, 1.5, len(train)) if weights else None
    model = TabularModel(factory(seed, **fx.params_for("model", name)), fx.schema)
    return model.fit(train, sample_weight=w).predict_proba(test), test


def check_model_predicts_probabilities(name, factory, fx):
    """predict_proba gives one row per input row and one column per class, summing to 1."""
    proba, test = _fit_model(name, factory, fx)
    k = len(fx.schema.classes)
    if proba.shape != (len(test), k):
        raise _fail("model", name, "check_model_predicts_probabilities",
                    f"predict_proba has shape {proba.shape}, not {(len(test), k)}")
    if not np.all(np.isfinite(proba)) or proba.min() < -1e-9 or proba.max() > 1 + 1e-9 or \
            not np.allclose(proba.sum(axis=1), 1, atol=1e-6):
        raise _fail("model", name, "check_model_predicts_probabilities",
                    "probabilities must be finite, in [0, 1] and sum to 1 per row")


def check_model_takes_sample_weight(name, factory, fx):
    """fit takes sample_weight (synthetic rows are weighted)."""
    try:
        _fit_model(name, factory, fx, weights=True)
    except TypeError as exc:
        raise _fail("model", name, "check_model_takes_sample_weight",
                    f"fit(X, y, sample_weight=w) fails ({exc})") from None


def check_model_is_seeded(name, factory, fx):
    """The same seed gives the same predictions (runs replay exactly)."""
    a, _ = _fit_model(name, factory, fx, seed=3)
    b, _ = _fit_model(name, factory, fx, seed=3)
    if not np.array_equal(a, b):  # exactly: a tolerance would let a tiny unseeded jitter pass
        raise _fail("model", name, "check_model_is_seeded",
                    "two fits with seed 3 predict differently; pass the seed on as random_state "
                    "(and make multithreaded fits deterministic)")


def check_model_learns(name, factory, fx):
    """It ranks its own training rows better than chance."""
    from sklearn.metrics import roc_auc_score

    from synthloop.tools.training import TabularModel

    model = TabularModel(factory(0, **fx.params_for("model", name)), fx.schema).fit(fx.frame)
    pos = fx.schema.classes.index(fx.schema.positive_class)
    auc = roc_auc_score(fx.y == fx.schema.positive_class, model.predict_proba(fx.frame)[:, pos])
    if auc < 0.6:
        raise _fail("model", name, "check_model_learns",
                    f"ROC-AUC on its own training rows is {auc:.2f}; it does not learn")


# -- metric -----------------------------------------------------------------------------------
def _scores(fx: Fixture):
    rng = np.random.default_rng(0)
    k = len(fx.schema.classes)
    random = rng.dirichlet(np.ones(k), size=len(fx.frame))
    perfect = np.zeros((len(fx.frame), k))
    perfect[np.arange(len(fx.frame)), [fx.schema.classes.index(c) for c in fx.y]] = 1.0
    perfect = 0.9 * perfect + 0.1 / k
    return random, perfect


def _compute(metric, fx, proba) -> float:
    return metric.compute(fx.y, proba, fx.schema.classes, fx.schema.positive_class,
                          threshold=0.5, precision=0.5)


def check_metric_attributes(name, metric, fx):
    """name, goal 'maximize' (the loop maximises), min_value < max_value."""
    if getattr(metric, "name", None) != name:
        raise _fail("metric", name, "check_metric_attributes",
                    f"its name attribute is {getattr(metric, 'name', None)!r}; register it "
                    "under its name")
    if getattr(metric, "goal", "maximize") != "maximize":
        raise _fail("metric", name, "check_metric_attributes",
                    "goal must be 'maximize': the loop keeps batches that raise the metric")
    if not metric.min_value < metric.max_value:
        raise _fail("metric", name, "check_metric_attributes",
                    f"min_value {metric.min_value} is not below max_value {metric.max_value}")


def check_metric_in_range(name, metric, fx):
    """compute returns a finite float in [min_value, max_value] and takes threshold= and
    precision= (the loop passes both)."""
    for proba in _scores(fx):
        try:
            v = _compute(metric, fx, proba)
        except TypeError as exc:
            raise _fail("metric", name, "check_metric_in_range",
                        f"compute(y, proba, classes, positive, threshold=, precision=) fails "
                        f"({exc}); accept **params") from None
        if not isinstance(v, (float, int, np.floating)) or not math.isfinite(float(v)) or \
                not metric.min_value - 1e-9 <= float(v) <= metric.max_value + 1e-9:
            raise _fail("metric", name, "check_metric_in_range",
                        f"compute returned {v!r}, not a float in [{metric.min_value}, "
                        f"{metric.max_value}]")


def check_metric_prefers_good_predictions(name, metric, fx):
    """Predictions that match the labels score at least as well as random ones, the same
    inputs give the same value."""
    random, perfect = _scores(fx)
    r, p = _compute(metric, fx, random), _compute(metric, fx, perfect)
    if p < r:
        raise _fail("metric", name, "check_metric_prefers_good_predictions",
                    f"correct predictions score {p:.4f}, below random ones ({r:.4f})")
    if _compute(metric, fx, random) != r:
        raise _fail("metric", name, "check_metric_prefers_good_predictions",
                    "two computes on the same inputs differ")


# -- generator --------------------------------------------------------------------------------
def _gen_request(fx: Fixture, client, n_rows: int = 8):
    from synthloop.agents.generator import GenerationRequest
    from synthloop.agents.prompts import INITIAL_INSTRUCTION, PromptVersion
    from synthloop.spec import GeneratorSpec

    prompt = PromptVersion(id="check-gen", version=2, model="fake", temperature=0.8,
                           text=INITIAL_INSTRUCTION, focus_regions=[]).with_hash()
    train, _ = _split(fx)
    return GenerationRequest(client=client, prompt=prompt, regions=[fx.region()], train=train,
                             schema=fx.schema, rules=[], n_rows=n_rows,
                             settings=GeneratorSpec(rows_per_call=4), ranked_columns=[
                                 c.name for c in fx.schema.columns],
                             run_id="check", iteration=1, seed=5)


def _client():
    from synthloop.llm import LLMClient

    return LLMClient(model=SchemaFakeChatModel(), cache_dir=None)


def _make(kind, name, cls, fx):
    from synthloop.tools.registry import build

    return build(kind, name, cls, fx.params_for(kind, name))


def _init_check(kind: str):
    def check(name, cls, fx):
        params = fx.params_for(kind, name)
        obj = _make(kind, name, cls, fx)
        for key, value in params.items():
            if getattr(obj, key, object()) != value:
                raise _fail(kind, name, check.__name__,
                            f"parameter {key!r} is not stored as the attribute {key!r}; "
                            "__init__ stores its arguments as they are")
        learned = [a for a in vars(obj) if a.endswith("_") and not a.startswith("_")]
        if learned:
            raise _fail(kind, name, check.__name__,
                        f"__init__ sets {learned}; work belongs in the method the loop calls")

    check.__name__ = f"check_{kind}_init_stores_params"
    check.__doc__ = ("__init__ stores its arguments as attributes and does nothing else "
                     "(scikit-learn's contract), so constructing one is free.")
    return check


def check_generator_writes_schema_rows(name, cls, fx):
    """generate(request) returns (DataFrame, dict): at most n_rows rows, every column of the
    schema and the label, classes of the schema; it does not change the training rows."""
    request = _gen_request(fx, _client())
    before = request.train.copy()
    out = _make("generator", name, cls, fx).generate(request)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], pd.DataFrame)
            and isinstance(out[1], dict)):
        raise _fail("generator", name, "check_generator_writes_schema_rows",
                    "generate() must return (rows DataFrame, stats dict)")
    rows, _ = out
    if not _frames_equal(request.train, before):
        raise _fail("generator", name, "check_generator_writes_schema_rows",
                    "it changed the training rows it was given")
    if rows.empty:
        raise _fail("generator", name, "check_generator_writes_schema_rows",
                    "it wrote no row for a region with training rows in it")
    if len(rows) > request.n_rows:
        raise _fail("generator", name, "check_generator_writes_schema_rows",
                    f"it wrote {len(rows)} rows; request.n_rows is {request.n_rows}")
    missing = [c for c in [*fx.schema.feature_names(), fx.schema.target] if c not in rows.columns]
    if missing:
        raise _fail("generator", name, "check_generator_writes_schema_rows",
                    f"rows lack the column(s) {missing}")
    bad = set(rows[fx.schema.target].astype(str)) - set(fx.schema.classes)
    if bad:
        raise _fail("generator", name, "check_generator_writes_schema_rows",
                    f"rows carry class(es) {sorted(bad)}; set the label to a class of the schema")


def check_generator_is_seeded(name, cls, fx):
    """The same request gives the same rows (runs replay exactly)."""
    a, _ = _make("generator", name, cls, fx).generate(_gen_request(fx, _client()))
    b, _ = _make("generator", name, cls, fx).generate(_gen_request(fx, _client()))
    if not _frames_equal(a, b):
        raise _fail("generator", name, "check_generator_is_seeded",
                    "two identical requests gave different rows; seed from request.seed")


# -- validator --------------------------------------------------------------------------------
def _vctx(fx: Fixture):
    from synthloop.tools.validation import ValidationContext

    return ValidationContext(schema=fx.schema, rules=[])


def _batch(fx: Fixture) -> pd.DataFrame:
    return fx.frame.head(30).assign(_sl_region="True", _sl_row_id=[f"c:{i}" for i in range(30)])


def check_validator_attributes(name, v, fx):
    """A name and a bool ``violation`` (does failing count toward the batch's violation rate)."""
    if not isinstance(getattr(v, "name", None), str):
        raise _fail("validator", name, "check_validator_attributes", "it has no name string")
    if not isinstance(getattr(v, "violation", None), bool):
        raise _fail("validator", name, "check_validator_attributes",
                    "it needs violation = True or False")


def check_validator_masks(name, v, fx):
    """check(batch, context) returns {check name: bool mask, one per row} for a batch and for
    an empty batch, the same each time, and does not change the batch."""
    for batch in (_batch(fx), _batch(fx).iloc[:0]):
        before = batch.copy()
        out = v.check(batch, _vctx(fx))
        if not isinstance(out, dict) or not all(isinstance(k, str) for k in out):
            raise _fail("validator", name, "check_validator_masks",
                        "check() must return a dict of check name -> mask")
        for k, mask in out.items():
            arr = np.asarray(mask)
            if arr.shape != (len(batch),) or arr.dtype != bool:
                raise _fail("validator", name, "check_validator_masks",
                            f"mask '{k}' has shape {arr.shape} and dtype {arr.dtype}; give one "
                            f"bool per row ({len(batch)})")
        if not _frames_equal(batch, before):
            raise _fail("validator", name, "check_validator_masks", "it changed the batch")
        again = v.check(batch, _vctx(fx))
        if any(not np.array_equal(np.asarray(out[k]), np.asarray(again[k])) for k in out):
            raise _fail("validator", name, "check_validator_masks",
                        "two checks of the same batch differ")


# -- rule function ----------------------------------------------------------------------------
def check_rule_function_is_vectorised(name, fn, fx):
    """Called with columns (pandas Series, nulls included) it returns one value per row
    (or one scalar), without changing them."""
    nums = [c.name for c in fx.schema.columns if c.type in ("float", "int")]
    if not nums:
        return
    try:
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and
                  p.default is p.empty]
        n_args = max(1, len(params)) if not any(
            p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()) else 2
    except (TypeError, ValueError):  # numpy ufuncs have no signature: one argument
        n_args = 1
    cols = [nums[i % len(nums)] for i in range(n_args)]
    frame = fx.frame[cols].copy().astype(float)
    frame.iloc[0, 0] = np.nan
    before = frame.copy()
    with np.errstate(all="ignore"):
        out = fn(*[frame.iloc[:, i] for i in range(n_args)])
    if not np.isscalar(out) and len(np.asarray(out)) != len(frame):
        raise _fail("rule_function", name, "check_rule_function_is_vectorised",
                    f"{name}(...) of {len(frame)} rows returned {len(np.asarray(out))} values; "
                    "work on whole columns")
    if not _frames_equal(frame, before):
        raise _fail("rule_function", name, "check_rule_function_is_vectorised",
                    "it changed its arguments")


# -- error analyser ---------------------------------------------------------------------------
def _analysis_inputs(fx: Fixture):
    from synthloop.tools.training import BUILTIN_MODELS, TabularModel

    model = TabularModel(BUILTIN_MODELS["logistic_regression"](0), fx.schema)
    train, val = _split(fx)
    proba = model.fit(train).predict_proba(val)
    return val, proba


def check_error_analyser_regions(name, cls, fx):
    """analyse(rows, proba, schema, threshold=, settings=, seed=) returns (regions, summary):
    at most settings.max_regions regions whose rules evaluate on the rows, with classes of the
    schema; the same inputs give the same regions; the rows are not changed."""
    from synthloop.spec import AnalysisSpec
    from synthloop.tools.constraints import evaluate_region
    from synthloop.tools.error_analysis import Region

    rows, proba = _analysis_inputs(fx)
    before = rows.copy()
    settings = AnalysisSpec(max_regions=2, min_support=4)
    runs = []
    for _ in range(2):
        out = _make("error_analyser", name, cls, fx).analyse(
            rows, proba, fx.schema, threshold=0.5, settings=settings, seed=0)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            raise _fail("error_analyser", name, "check_error_analyser_regions",
                        "analyse() must return (regions list, summary dict)")
        try:
            regions = [r if isinstance(r, Region) else Region.model_validate(r) for r in out[0]]
        except Exception as exc:
            raise _fail("error_analyser", name, "check_error_analyser_regions",
                        f"a region is not a Region ({str(exc).splitlines()[0]})") from None
        runs.append([r.model_dump() for r in regions])
        if len(regions) > settings.max_regions:
            raise _fail("error_analyser", name, "check_error_analyser_regions",
                        f"{len(regions)} regions; settings.max_regions is {settings.max_regions}")
        for r in regions:
            if r.label not in fx.schema.classes:
                raise _fail("error_analyser", name, "check_error_analyser_regions",
                            f"region {r.id} asks for class {r.label!r}, not a class")
            try:
                evaluate_region(r.rule, rows)
            except Exception as exc:
                raise _fail("error_analyser", name, "check_error_analyser_regions",
                            f"region {r.id}'s rule {r.rule!r} does not evaluate ({exc})") from None
    if runs[0] != runs[1]:
        raise _fail("error_analyser", name, "check_error_analyser_regions",
                    "the same inputs gave different regions; seed from the seed argument")
    if not _frames_equal(rows, before):
        raise _fail("error_analyser", name, "check_error_analyser_regions", "it changed the rows")


# -- data loader ------------------------------------------------------------------------------
def check_data_loader_loads(name, loader, fx):
    """Its ``example`` (a ref, or a function(folder) -> ref that makes one) loads a non-empty
    DataFrame, the same each time; an unknown ref is a DataError (one clear line), not a
    crash."""
    example = getattr(loader, "example", None)
    if example is None:
        raise _fail("data_loader", name, "check_data_loader_loads",
                    "give the loader an 'example' attribute: a ref that loads")
    with tempfile.TemporaryDirectory() as folder:
        ref = example(Path(folder)) if callable(example) else example
        a, b = loader(ref), loader(ref)
        if not isinstance(a, pd.DataFrame) or a.empty:
            raise _fail("data_loader", name, "check_data_loader_loads",
                        f"loader({ref!r}) returned {type(a).__name__}, not a non-empty DataFrame")
        if not _frames_equal(a, b):
            raise _fail("data_loader", name, "check_data_loader_loads",
                        "two loads of the same ref differ")
        try:
            loader(str(Path(folder) / "no-such-data-xyz" / "nothing"))
        except DataError:
            pass
        except Exception as exc:
            raise _fail("data_loader", name, "check_data_loader_loads",
                        f"an unknown ref raised {type(exc).__name__}; raise "
                        "synthloop.errors.DataError with what to fix") from None
        else:
            raise _fail("data_loader", name, "check_data_loader_loads",
                        "an unknown ref loaded something; raise DataError instead")


# -- agent tool -------------------------------------------------------------------------------
def _tool(name, obj, fx):
    from langchain_core.tools import BaseTool

    from synthloop.agents.tools import ToolContext

    train, _ = _split(fx)
    ctx = ToolContext(train=train, schema=fx.schema, regions=[fx.region()], rules=[], seed=0)
    tool = obj if isinstance(obj, BaseTool) else obj(ctx)
    if not isinstance(tool, BaseTool):
        raise _fail("agent_tool", name, "check_agent_tool_builds",
                    f"the factory returned {type(tool).__name__}, not a LangChain tool")
    return tool, ctx


def _example_args(tool, name) -> dict:
    from synthloop.agents.tools import args_schema

    given = (tool.metadata or {}).get("example_args")
    if given is not None:
        return dict(given)
    args = {}
    schema = args_schema(tool)
    for arg in schema.get("required", []):
        prop = schema["properties"][arg]
        if "enum" in prop:
            args[arg] = prop["enum"][0]
        elif prop.get("type") in ("integer", "number"):
            args[arg] = prop.get("minimum", 1)
        elif prop.get("type") == "boolean":
            args[arg] = True
        else:
            raise _fail("agent_tool", name, "check_agent_tool_answers",
                        f"argument '{arg}' has neither an enum nor an example; give the tool "
                        "metadata={'example_args': {...}}")
    return args


def check_agent_tool_builds(name, obj, fx):
    """A LangChain tool (or a factory(context) -> tool) with a description and an argument
    schema the plan grammar can use."""
    from synthloop.agents.tools import args_schema, plan_json_schema

    tool, _ = _tool(name, obj, fx)
    if not (tool.description or "").strip():
        raise _fail("agent_tool", name, "check_agent_tool_builds",
                    "it has no description; the agent picks tools by it")
    try:
        json.dumps(plan_json_schema([tool], 2))
        args_schema(tool)
    except Exception as exc:
        raise _fail("agent_tool", name, "check_agent_tool_builds",
                    f"its argument schema is not JSON ({exc})") from None


def check_agent_tool_answers(name, obj, fx):
    """Called with example arguments it returns text (or JSON), the same each time, without
    changing the training rows."""
    tool, ctx = _tool(name, obj, fx)
    before = ctx.train.copy()
    args = _example_args(tool, name)
    a, b = tool.invoke(dict(args)), tool.invoke(dict(args))
    if not isinstance(a, str):
        try:
            json.dumps(a)
        except TypeError:
            raise _fail("agent_tool", name, "check_agent_tool_answers",
                        f"it returned {type(a).__name__}; return a string") from None
    if a != b:
        raise _fail("agent_tool", name, "check_agent_tool_answers",
                    "two calls with the same arguments answered differently")
    if not _frames_equal(ctx.train, before):
        raise _fail("agent_tool", name, "check_agent_tool_answers", "it changed the training rows")


# -- noise ------------------------------------------------------------------------------------
def check_noise_keeps_labels_and_schema(name, cls, fx):
    """apply(rows, schema, seed) returns (rows, counts): the same rows, labels and provenance
    columns, values still inside the schema (the rows were validated before the noise), counts
    of ints; the input is not changed."""
    from synthloop.tools.validation import schema_violations

    rows = _batch(fx)
    before = rows.copy()
    out = _make("noise", name, cls, fx).apply(rows, fx.schema, 11)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], pd.DataFrame)
            and isinstance(out[1], dict)):
        raise _fail("noise", name, "check_noise_keeps_labels_and_schema",
                    "apply() must return (rows DataFrame, counts dict)")
    noisy, counts = out
    if not _frames_equal(rows, before):
        raise _fail("noise", name, "check_noise_keeps_labels_and_schema",
                    "it changed its input; work on a copy")
    keep = [fx.schema.target, "_sl_region", "_sl_row_id"]
    if len(noisy) != len(rows) or list(noisy.columns) != list(rows.columns) or \
            not _frames_equal(noisy[keep], rows[keep]):
        raise _fail("noise", name, "check_noise_keeps_labels_and_schema",
                    "it added or removed rows or columns, or changed a label or provenance")
    bad = {k: int(m.sum()) for k, m in schema_violations(noisy, fx.schema).items() if m.any()}
    if bad:
        raise _fail("noise", name, "check_noise_keeps_labels_and_schema",
                    f"noisy rows break the schema ({bad}); keep values valid")
    if not all(isinstance(k, str) and isinstance(v, (int, np.integer)) for k, v in counts.items()):
        raise _fail("noise", name, "check_noise_keeps_labels_and_schema",
                    "counts must map names to ints")


def check_noise_is_seeded(name, cls, fx):
    """The same seed gives the same noise (a replayed batch gets the same rows)."""
    a, _ = _make("noise", name, cls, fx).apply(_batch(fx), fx.schema, 11)
    b, _ = _make("noise", name, cls, fx).apply(_batch(fx), fx.schema, 11)
    if not _frames_equal(a, b):
        raise _fail("noise", name, "check_noise_is_seeded",
                    "two applies with seed 11 differ; draw from np.random.default_rng(seed)")


CHECKS: dict[str, list[Callable]] = {
    "model": [check_model_builds_without_work, check_model_predicts_probabilities,
              check_model_takes_sample_weight, check_model_is_seeded, check_model_learns],
    "metric": [check_metric_attributes, check_metric_in_range,
               check_metric_prefers_good_predictions],
    "generator": [_init_check("generator"), check_generator_writes_schema_rows,
                  check_generator_is_seeded],
    "validator": [check_validator_attributes, check_validator_masks],
    "rule_function": [check_rule_function_is_vectorised],
    "error_analyser": [_init_check("error_analyser"), check_error_analyser_regions],
    "data_loader": [check_data_loader_loads],
    "agent_tool": [check_agent_tool_builds, check_agent_tool_answers],
    "noise": [_init_check("noise"), check_noise_keeps_labels_and_schema, check_noise_is_seeded],
}
