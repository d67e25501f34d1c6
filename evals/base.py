"""The one shape every metric has (SDMetrics' single-metric classes): a name, whether higher or
lower is better, the range of its value, and a ``compute`` classmethod."""

from __future__ import annotations

from typing import ClassVar


class Metric:
    name: ClassVar[str]
    goal: ClassVar[str] = "maximize"  # or "minimize"
    min_value: ClassVar[float] = 0.0
    max_value: ClassVar[float] = 1.0
