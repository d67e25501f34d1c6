"""The component registry and the plugin contract.

A package extends synthloop by declaring an entry point in the group ``synthloop.plugins`` that
points at a function ``register(registry)``; the function calls ``registry.add(kind, name,
obj)`` for each component. synthloop's own components register the same way (the ``builtin``
entry point of this distribution names :func:`register_builtins`).

The kinds, what a component of each kind is, and the spec key that selects it are in
:data:`KINDS`. ``synthloop plugins list`` shows what is installed; ``synthloop.testing`` checks
a component against its kind's contract.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from synthloop.errors import PluginError, SpecError

log = logging.getLogger(__name__)
GROUP = "synthloop.plugins"
BUILTIN_ENTRY_POINT = "synthloop.tools.registry:register_builtins"
BUILTIN_SOURCE = "synthloop"


@dataclass(frozen=True)
class Kind:
    name: str
    contract: str  # what a component of this kind is
    spec_key: str  # where a spec selects one


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("model", "factory(seed, **params) -> classifier with fit(X, y, sample_weight=) and "
         "predict_proba(X)", "model.kind"),
    Kind("metric", "class with name, goal='maximize', min_value, max_value, needs_threshold and "
         "compute(y_true, proba, classes, positive, **params) -> float", "metric.name"),
    Kind("generator", "class; Generator(**params).generate(request) -> (rows, stats)",
         "generator.kind"),
    Kind("validator", "object with name, violation (bool) and check(batch, context) -> "
         "{check name: mask of failing rows}", "validators"),
    Kind("rule_function", "vectorised function of column values, callable in rules",
         "rules"),
    Kind("error_analyser", "class; Analyser(**params).analyse(rows, proba, schema, *, "
         "threshold, settings, seed) -> (regions, summary)", "analysis.kind"),
    Kind("data_loader", "function(ref) -> DataFrame, for data.source 'NAME:ref'", "data.source"),
    Kind("agent_tool", "a LangChain tool, or factory(context) -> tool, for the rewrite agent",
         "agent.tools"),
    Kind("noise", "class; Noise(**params).apply(rows, schema, seed) -> (rows, counts)",
         "generator.noise.kind"),
)}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    obj: Any
    source: str  # the distribution that registered it ('synthloop' for built-ins)

    @property
    def summary(self) -> str:
        doc = getattr(self.obj, "description", None) if self.kind == "agent_tool" else None
        doc = doc if isinstance(doc, str) else (getattr(self.obj, "__doc__", None) or "")
        return doc.strip().splitlines()[0].strip() if doc.strip() else ""


class Registry:
    """Components by kind and name, each with the package it came from."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {k: {} for k in KINDS}
        self._source = BUILTIN_SOURCE
        self.packages: dict[str, str] = {}  # source -> version

    # -- the contract plugins call -----------------------------------------------------------
    def add(self, kind: str, name: str, obj: Any) -> None:
        """Register ``obj`` as a component of ``kind`` under ``name``."""
        if kind not in KINDS:
            raise PluginError(f"Unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}.")
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"{kind} name {name!r} must be an identifier (letters, digits, _).")
        have = self._items[kind].get(name)
        if have is not None:
            raise PluginError(f"{kind} '{name}' is registered twice (by {have.source} and by "
                              f"{self._source}); rename one of them.")
        problem = _shape_problem(kind, obj)
        if problem:
            raise PluginError(f"{kind} '{name}' from {self._source} {problem} "
                              f"(a {kind} is: {KINDS[kind].contract}).")
        self._items[kind][name] = Component(kind, name, obj, self._source)

    # -- lookups -----------------------------------------------------------------------------
    def components(self, kind: str) -> dict[str, Any]:
        return {name: c.obj for name, c in self._items[kind].items()}

    def names(self, kind: str) -> list[str]:
        return sorted(self._items[kind])

    def entries(self, kind: str | None = None) -> list[Component]:
        kinds = [kind] if kind else list(KINDS)
        return [c for k in kinds for _, c in sorted(self._items[k].items())]

    def listing(self) -> list[tuple[str, str, str]]:
        return [(c.kind, c.name, c.source) for c in self.entries()]

    def source(self, kind: str, name: str) -> str:
        return self._items[kind][name].source

    def get(self, kind: str, name: str) -> Any:
        """The component, or a SpecError that names the spec key and lists what is there."""
        if name in self._items[kind]:
            return self._items[kind][name].obj
        raise SpecError(unknown_message(self, kind, name))

    def has(self, kind: str, name: str) -> bool:
        return name in self._items[kind]

    @contextlib.contextmanager
    def loading(self, source: str, version: str = "") -> Iterator[Registry]:
        """Components added inside are attributed to ``source``."""
        previous, self._source = self._source, source
        self.packages.setdefault(source, version)
        try:
            yield self
        finally:
            self._source = previous


def unknown_message(registry: Registry, kind: str, name: str) -> str:
    spec = KINDS[kind]
    have = ", ".join(f"{c.name} ({c.source})" for c in registry.entries(kind)) or "none"
    return (f"Unknown {kind} {name!r} in the spec's {spec.spec_key}; installed: {have}. "
            "Pick one of these, or install the plugin that provides it "
            "(synthloop plugins list shows what is installed).")


def _shape_problem(kind: str, obj: Any) -> str | None:
    """What is visibly wrong with a component, before any deeper check (synthloop.testing)."""
    if kind == "metric":
        missing = [a for a in ("name", "compute", "min_value", "max_value") if not hasattr(obj, a)]
        return f"lacks {', '.join(missing)}" if missing else None
    if kind == "validator":
        return None if callable(getattr(obj, "check", None)) else "has no check(batch, context)"
    if kind == "agent_tool":
        from langchain_core.tools import BaseTool

        return None if isinstance(obj, BaseTool) or callable(obj) else \
            "is neither a LangChain tool nor a factory(context) -> tool"
    return None if callable(obj) else "is not callable"


# -- built-ins and plugins ----------------------------------------------------------------------
def register_builtins(registry: Registry) -> None:
    """synthloop's own components, registered through the same contract as any plugin."""
    from synthloop.agents.generator import LLMRowGenerator
    from synthloop.agents.tools import BUILTIN_TOOLS
    from synthloop.data import BUILTIN_LOADERS
    from synthloop.evals.classification import PRIMARY_METRICS
    from synthloop.tools.constraints import BUILTIN_FUNCTIONS
    from synthloop.tools.copula import CopulaRowGenerator
    from synthloop.tools.error_analysis import TreeAnalyser
    from synthloop.tools.noise import TypoMissingNoise
    from synthloop.tools.training import BUILTIN_MODELS
    from synthloop.tools.validation import BUILTIN_VALIDATORS

    for name, factory in BUILTIN_MODELS.items():
        registry.add("model", name, factory)
    for name, metric in PRIMARY_METRICS.items():
        registry.add("metric", name, metric)
    registry.add("generator", "llm", LLMRowGenerator)
    registry.add("generator", "copula", CopulaRowGenerator)
    for validator in BUILTIN_VALIDATORS:
        registry.add("validator", validator.name, validator)
    for name, fn in BUILTIN_FUNCTIONS.items():
        registry.add("rule_function", name, fn)
    registry.add("error_analyser", "tree", TreeAnalyser)
    for name, loader in BUILTIN_LOADERS.items():
        registry.add("data_loader", name, loader)
    for name, factory in BUILTIN_TOOLS.items():
        registry.add("agent_tool", name, factory)
    registry.add("noise", "default", TypoMissingNoise)


def _package(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ep.name, ""
    return dist.metadata["Name"] or ep.name, dist.version or ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_plugin(registry: Registry, ep: EntryPoint) -> None:
    """Call one entry point's ``register(registry)``; any failure is one clear PluginError."""
    package, version = _package(ep)
    where = f"plugin '{ep.name}' of package '{package}' ({ep.value})"
    fix = f"reinstall '{package}', or uninstall it to run without it"
    try:
        register = ep.load()
    except Exception as exc:
        raise PluginError(f"The {where} cannot be loaded ({_first_line(exc)}); {fix}.") from None
    if not callable(register):
        raise PluginError(f"The {where} must point at a function register(registry); {fix}.")
    with registry.loading(package, version):
        try:
            register(registry)
        except PluginError as exc:
            raise PluginError(f"The {where} registered a bad component: {exc}") from None
        except Exception as exc:
            raise PluginError(f"The {where} failed in register(registry) ({_first_line(exc)}); "
                              f"{fix}.") from None


def load_registry() -> Registry:
    """Every component of every installed package of the ``synthloop.plugins`` group."""
    reg = Registry()
    seen: set[tuple[str, str]] = set()
    eps = [ep for ep in entry_points(group=GROUP)
           if (ep.name, ep.value) not in seen and not seen.add((ep.name, ep.value))]
    builtin = [ep for ep in eps if ep.value == BUILTIN_ENTRY_POINT]
    if builtin:
        load_plugin(reg, builtin[0])
    else:  # a source tree whose metadata is not installed: the built-ins all the same
        from synthloop import __version__

        with reg.loading(BUILTIN_SOURCE, __version__):
            register_builtins(reg)
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.value != BUILTIN_ENTRY_POINT:
            load_plugin(reg, ep)
    return reg


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process's registry, loaded once (``reset_default_registry`` reloads it)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_registry()
    return _DEFAULT


def reset_default_registry(registry: Registry | None = None) -> None:
    """Reload on next use (after installing a plugin), or use ``registry`` from now on."""
    global _DEFAULT
    _DEFAULT = registry


def spec_component(kind: str, name: str) -> None:
    """Raise SpecError if the spec names a component that is not installed."""
    reg = default_registry()
    if not reg.has(kind, name):
        raise SpecError(unknown_message(reg, kind, name))


def build(kind: str, name: str, factory: Any, params: dict[str, Any]) -> Any:
    """``factory(**params)``; parameters it does not take are one SpecError naming the key."""
    try:
        return factory(**params)
    except TypeError as exc:
        key = KINDS[kind].spec_key.rsplit(".", 1)[0]
        raise SpecError(f"The params of {kind} '{name}' ({key}.params) do not fit it: "
                        f"{_first_line(exc)}; see its docstring for what it takes.") from None

