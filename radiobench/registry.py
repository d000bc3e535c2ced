"""The one plugin registry: datasets, generators and metrics discovered through entry points.

Built-ins and third-party packages register the same way, under the groups
``radiobench.datasets``, ``radiobench.generators`` and ``radiobench.metrics``. A plugin that fails
to import is kept as *broken* with its error, so the rest keep working and ``radiobench list``
can show what went wrong.
"""
from __future__ import annotations

import difflib
import traceback
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Literal

from .interfaces import Dataset, Generator, Metric
from .types import InputError

__all__ = ["Kind", "PluginEntry", "Registry", "registry", "UnknownPluginError", "BrokenPluginError"]

Kind = Literal["datasets", "generators", "metrics"]
BASES = {"datasets": Dataset, "generators": Generator, "metrics": Metric}


class UnknownPluginError(InputError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class BrokenPluginError(InputError):
    pass


@dataclass
class PluginEntry:
    kind: Kind
    name: str
    target: str  # "module:attr"
    distribution: str | None
    cls: type | None = None
    error: str | None = None  # one line
    traceback: str | None = None

    @property
    def broken(self) -> bool:
        return self.cls is None


class Registry:
    """Entry points loaded once (lazily); ``get`` returns the class or raises a helpful error."""

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, PluginEntry]] | None = None

    def refresh(self) -> None:
        self._entries = None

    def entries(self, kind: Kind) -> dict[str, PluginEntry]:
        if self._entries is None:
            self._entries = {k: self._discover(k) for k in BASES}  # type: ignore[misc]
        return self._entries[kind]

    @staticmethod
    def _discover(kind: Kind) -> dict[str, PluginEntry]:
        found: dict[str, PluginEntry] = {}
        for ep in entry_points(group=f"radiobench.{kind}"):
            found[ep.name] = _load(kind, ep)
        return dict(sorted(found.items()))

    def names(self, kind: Kind, include_broken: bool = False) -> list[str]:
        return [n for n, e in self.entries(kind).items() if include_broken or not e.broken]

    def get(self, kind: Kind, name: str) -> type:
        entries = self.entries(kind)
        if name not in entries:
            singular = kind[:-1]
            close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownPluginError(
                f"unknown {singular} {name!r}{hint} (available: {', '.join(entries) or 'none'}; "
                f"`radiobench list` shows them all)"
            )
        entry = entries[name]
        if entry.broken:
            raise BrokenPluginError(f"{kind[:-1]} {name!r} ({entry.target}) failed to load: {entry.error}")
        return entry.cls  # type: ignore[return-value]

    def dataset(self, name: str) -> type[Dataset]:
        return self.get("datasets", name)

    def generator(self, name: str) -> type[Generator]:
        return self.get("generators", name)

    def metric(self, name: str) -> type[Metric]:
        return self.get("metrics", name)


def _load(kind: Kind, ep: EntryPoint) -> PluginEntry:
    dist = getattr(getattr(ep, "dist", None), "name", None)
    entry = PluginEntry(kind=kind, name=ep.name, target=ep.value, distribution=dist)
    try:
        obj = ep.load()
        base = BASES[kind]
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise TypeError(f"{ep.value} is not a subclass of radiobench.{base.__name__}")
        if getattr(obj, "name", "") != ep.name:
            obj.name = ep.name  # the entry-point name is the plugin's public name
        entry.cls = obj
    except Exception as exc:  # a broken third-party plugin must not take the others down
        entry.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        entry.traceback = traceback.format_exc()
    return entry


registry = Registry()
