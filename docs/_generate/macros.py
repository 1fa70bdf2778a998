"""Figures inside prose pages (mkdocs-macros): pages with ``render_macros: true`` call these.

A figure comes from its benchmark's saved result (``benchmarks/results/<name>.json``) and a default
from ``covertype.config.Settings``, so a page never carries a hand-typed copy that could drift.
"""

from __future__ import annotations

from typing import Any

from covertype.benchmark_results import load_results
from covertype.config import Settings


def define_env(env: Any) -> None:
    results = load_results()

    @env.macro
    def measured(name: str) -> bool:
        """Whether a benchmark has a saved result."""
        return name in results

    @env.macro
    def bench(name: str, *path: str | int, digits: int = 3) -> str:
        """One figure of a benchmark's latest result, or where to measure it when none is saved."""
        if name not in results:
            return "(not measured yet: see [the benchmarks](../reference/benchmarks.md), `make bench*`)"
        value: Any = results[name]["figures"]
        for key in path:
            value = value[key]  # a wrong key fails the build: the page names a figure that does not exist
        return _number(value, digits)

    @env.macro
    def ratio(name: str, label: str, digits: int = 3) -> str:
        """A ratio of a benchmark's latest result, measured against its baseline in the same run."""
        if name not in results:
            return "(not measured yet: see [the benchmarks](../reference/benchmarks.md), `make bench*`)"
        return f"{_number(results[name]['ratios'][label], digits)}x"

    @env.macro
    def default(variable: str) -> str:
        """A setting's default, by its variable name."""
        for field in Settings.model_fields.values():
            if field.validation_alias == variable:
                return f"`{field.default}`"
        raise KeyError(f"no setting reads {variable}")


def _number(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)
