"""Evaluator kinds, registered like plugins: an ``EvaluatorSpec`` under the entry-point group
``radiobench.evaluators`` (name = the spec's ``kind``), the built-ins as any other package would:

    [project.entry-points."radiobench.evaluators"]
    byol = "radiobench.evaluators.byol:SPEC"

Read on first use. A kind that fails to load, is not an ``EvaluatorSpec`` of its own name, or whose name
two packages claim (a built-in one wins) is kept in ``KINDS.broken`` with the reason; the rest work.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points

from .base import EvaluatorSpec

__all__ = ["GROUP", "KINDS", "EvaluatorKinds"]

GROUP = "radiobench.evaluators"
KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")  # kinds name cache directories and fingerprint keys
BUILTIN_DISTRIBUTION = "radiobench"


class EvaluatorKinds(Mapping[str, EvaluatorSpec]):
    """kind -> ``EvaluatorSpec`` of every usable registered kind, by name; ``broken``: kind -> why not."""

    def __init__(self) -> None:
        self._specs: dict[str, EvaluatorSpec] | None = None
        self._broken: dict[str, str] = {}

    def refresh(self) -> None:
        """Forget what was read: the next use reads the entry points again."""
        self._specs = None

    @property
    def broken(self) -> dict[str, str]:
        self._load()
        return dict(self._broken)

    def _load(self) -> dict[str, EvaluatorSpec]:
        if self._specs is None:
            self._specs, self._broken = _discover()
        return self._specs

    def __getitem__(self, kind: str) -> EvaluatorSpec:
        return self._load()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"EvaluatorKinds({sorted(self._load())}, broken={sorted(self._broken)})"


def _distribution(ep: EntryPoint) -> str | None:
    return getattr(getattr(ep, "dist", None), "name", None)


def _discover() -> tuple[dict[str, EvaluatorSpec], dict[str, str]]:
    by_name: dict[str, dict[str, EntryPoint]] = {}
    for ep in entry_points(group=GROUP):  # one distribution seen twice on sys.path counts once
        by_name.setdefault(ep.name, {}).setdefault(ep.value, ep)
    specs: dict[str, EvaluatorSpec] = {}
    broken: dict[str, str] = {}
    for name, targets in sorted(by_name.items()):
        eps = list(targets.values())
        if len(eps) > 1:
            eps = [ep for ep in eps if _distribution(ep) == BUILTIN_DISTRIBUTION] or eps
        if len(eps) > 1:
            broken[name] = f"registered by several packages ({', '.join(sorted(targets))}); uninstall all but one"
            continue
        ep = eps[0]
        if not KIND_NAME.fullmatch(name):
            broken[name] = f"({ep.value}) invalid kind name: kinds are lowercase identifiers ({KIND_NAME.pattern})"
            continue
        try:
            spec = ep.load()
        except Exception as err:  # a broken plugin must not take the other kinds down with it
            broken[name] = f"({ep.value}) failed to load: {type(err).__name__}: {err}"
            continue
        if not isinstance(spec, EvaluatorSpec) or spec.kind != name:
            broken[name] = f"({ep.value}) is not an EvaluatorSpec with kind {name!r}"
            continue
        specs[name] = spec
    return specs, broken


KINDS = EvaluatorKinds()
