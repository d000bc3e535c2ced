"""Evaluator kinds, registered like plugins (``radiobench.registry``): an ``EvaluatorSpec`` under the entry-point
group ``radiobench.evaluators`` (name = the spec's ``kind``), the built-ins as any other package would:

    [project.entry-points."radiobench.evaluators"]
    byol = "radiobench.evaluators.byol:SPEC"

``KINDS`` maps each usable kind to its spec; ``KINDS.broken`` says why the others (failed to load, not a spec
of their own name, an invalid name, a name two packages claim) cannot be used.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..registry import PluginEntry, registry
from .base import EvaluatorSpec

__all__ = ["KINDS", "EvaluatorKinds"]


class EvaluatorKinds(Mapping[str, EvaluatorSpec]):
    """kind -> ``EvaluatorSpec`` of every usable registered kind; ``broken``: kind -> why not."""

    @staticmethod
    def refresh() -> None:
        """Forget what was read: the next use reads the entry points again."""
        registry.refresh()

    @staticmethod
    def _entries() -> dict[str, PluginEntry]:
        return registry.entries("evaluators")

    @property
    def broken(self) -> dict[str, str]:
        return {name: e.problem for name, e in self._entries().items() if e.broken}

    def __getitem__(self, kind: str) -> EvaluatorSpec:
        entry = self._entries().get(kind)
        if entry is None or entry.broken:
            raise KeyError(kind)
        return entry.cls

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, e in self._entries().items() if not e.broken])

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __repr__(self) -> str:
        return f"EvaluatorKinds({list(self)}, broken={sorted(self.broken)})"


KINDS = EvaluatorKinds()
