"""The component registry. Built-in components register through the same hook plugins use:
a ``register(registry)`` function found in the ``synthloop.plugins`` entry-point group."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from synthloop.errors import PluginError

log = logging.getLogger(__name__)
KINDS = ("model", "metric", "generator", "validator", "rule_function", "error_analyser",
         "data_loader", "agent_tool", "noise")


class Registry:
    def __init__(self) -> None:
        self._items: dict[str, dict[str, tuple[Any, str]]] = {k: {} for k in KINDS}

    def add(self, kind: str, name: str, obj: Any, source: str = "synthloop") -> None:
        if kind not in self._items:
            raise PluginError(f"Unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}.")
        self._items[kind][name] = (obj, source)

    def components(self, kind: str) -> dict[str, Any]:
        return {name: obj for name, (obj, _) in self._items[kind].items()}

    def listing(self) -> list[tuple[str, str, str]]:
        return [(k, n, src) for k, items in self._items.items() for n, (_, src) in items.items()]


def register_builtins(registry: Registry) -> None:
    from synthloop.evals.classification import PRIMARY_METRICS
    from synthloop.tools.training import BUILTIN_MODELS

    for name, factory in BUILTIN_MODELS.items():
        registry.add("model", name, factory)
    for name, metric in PRIMARY_METRICS.items():
        registry.add("metric", name, metric)


def load_registry() -> Registry:
    """Built-ins plus every installed plugin; a failing plugin is one clear error."""
    reg = Registry()
    register_builtins(reg)
    for ep in entry_points(group="synthloop.plugins"):
        if ep.value == "synthloop.tools.registry:register_builtins":
            continue
        try:
            ep.load()(reg)
        except Exception as exc:
            raise PluginError(f"Plugin '{ep.name}' ({ep.value}) failed to register: {exc}") from None
    return reg
