"""The one plugin registry: datasets, generators, metrics and evaluator kinds discovered through entry points.

Built-ins and third-party packages register the same way, under the groups ``radiobench.datasets``,
``radiobench.generators``, ``radiobench.metrics`` (a class of the matching interface) and
``radiobench.evaluators`` (an ``EvaluatorSpec`` whose ``kind`` is the entry point's name). A plugin that fails
to import is kept as *broken* with its error, so the rest keep working and ``radiobench list``
can show what went wrong.

Names must match ``NAME_PATTERN`` (they become folder and file names in run directories); generators may
not take a name in ``RESERVED_NAMES`` (rows and folders the harness writes itself). When two entry points
in one group share a name, the built-in (distribution ``radiobench``) is kept and the other refused; two
third-party plugins with one name are both refused. Refused plugins are not imported; they are listed,
like broken ones, with the reason.
"""
from __future__ import annotations

import difflib
import re
import traceback
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from .interfaces import Dataset, Generator, Metric, Plugin
from .types import InputError

__all__ = [
    "Kind", "PluginEntry", "Registry", "registry", "UnknownPluginError", "BrokenPluginError", "NAME_PATTERN",
    "REFERENCE_ROW", "RESERVED_NAMES", "check_name",
]

Kind = Literal["datasets", "generators", "metrics", "evaluators"]
BASES: dict[Kind, type[Plugin]] = {"datasets": Dataset, "generators": Generator, "metrics": Metric}
KINDS: tuple[Kind, ...] = ("datasets", "generators", "metrics", "evaluators")
BUILTIN_DISTRIBUTION = "radiobench"
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")  # full match: lowercase identifier, at most 64 characters
REFERENCE_ROW = "reference"  # the real-vs-real row of a run directory
# names the harness writes into a run directory itself (the reference row; ``radiobench report``'s folder)
RESERVED_NAMES: dict[str, frozenset[str]] = {"generators": frozenset({REFERENCE_ROW, "report"})}


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
    cls: Any = None  # the plugin class (for an evaluator kind: its EvaluatorSpec)
    error: str | None = None  # one line
    traceback: str | None = None
    summary: dict[str, Any] | None = None  # cls.summary(), checked at load time
    refused: bool = False  # not imported at all: invalid or reserved name, or a name conflict

    @property
    def broken(self) -> bool:
        return self.cls is None

    def refuse(self, reason: str) -> None:
        """Mark as broken without importing it."""
        self.error, self.refused = reason, True

    @property
    def problem(self) -> str:
        """Why a broken entry cannot be used: ``(target) is refused: ...`` or ``(target) failed to load: ...``."""
        return f"({self.target}) {'is refused' if self.refused else 'failed to load'}: {self.error}"

    @property
    def source(self) -> str:
        return f"{self.distribution or 'an unknown distribution'} ({self.target})"


def check_name(kind: Kind, name: str) -> None:
    """Raise InputError unless ``name`` is a valid, unreserved plugin name of ``kind``."""
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(f"invalid {kind[:-1]} name {name!r}: names must be lowercase identifiers "
                         f"({NAME_PATTERN.pattern}: a letter, then letters, digits or underscores)")
    if name in RESERVED_NAMES.get(kind, ()):
        what = "the real-vs-real reference row" if name == REFERENCE_ROW else "a folder radiobench writes"
        raise InputError(f"{kind[:-1]} name {name!r} is reserved by radiobench (it names {what} of a run directory); "
                         f"rename the plugin")


class Registry:
    """Entry points loaded once (lazily); ``get`` returns the class or raises a helpful error."""

    def __init__(self) -> None:
        self._all: dict[Kind, list[PluginEntry]] | None = None

    def refresh(self) -> None:
        self._all = None

    def listing(self, kind: Kind) -> list[PluginEntry]:
        """Every entry point of ``kind``, by name, refused duplicates included (``radiobench list``)."""
        if self._all is None:
            self._all = {k: _discover(k) for k in KINDS}
        return self._all[kind]

    def entries(self, kind: Kind) -> dict[str, PluginEntry]:
        """One entry per name: the usable one, or (for a refused name) the first refused one."""
        out: dict[str, PluginEntry] = {}
        for e in self.listing(kind):
            if e.name not in out or (out[e.name].broken and not e.broken):
                out[e.name] = e
        return out

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
            raise BrokenPluginError(f"{kind[:-1]} {name!r} {entry.problem}")
        return entry.cls

    def dataset(self, name: str) -> type[Dataset]:
        return self.get("datasets", name)

    def generator(self, name: str) -> type[Generator]:
        return self.get("generators", name)

    def metric(self, name: str) -> type[Metric]:
        return self.get("metrics", name)


def _discover(kind: Kind) -> list[PluginEntry]:
    """Entries of one group: names checked, duplicate names resolved (see the module docstring), then loaded."""
    by_name: dict[str, list[tuple[PluginEntry, EntryPoint]]] = {}
    for ep in entry_points(group=f"radiobench.{kind}"):
        entry = PluginEntry(kind=kind, name=ep.name, target=ep.value,
                            distribution=getattr(getattr(ep, "dist", None), "name", None))
        same = by_name.setdefault(ep.name, [])
        if not any((e.distribution, e.target) == (entry.distribution, entry.target) for e, _ in same):
            same.append((entry, ep))  # (one distribution seen twice on sys.path counts once)
    out: list[PluginEntry] = []
    for name, same in sorted(by_name.items()):
        entries = [e for e, _ in same]
        builtin = next((e for e in entries if e.distribution == BUILTIN_DISTRIBUTION), None)
        for e, ep in same:
            if builtin is not None and e is not builtin:
                e.refuse(f"{kind[:-1]} {name!r} from {e.source} conflicts with the built-in {name!r} from "
                         f"{builtin.source}; the built-in is kept, rename the plugin")
            elif len(same) > 1 and builtin is None:
                e.refuse(f"{kind[:-1]} {name!r} is declared by {' and by '.join(x.source for x in entries)}; "
                         f"uninstall or rename all but one")
            else:
                try:
                    check_name(kind, name)
                except InputError as exc:
                    e.refuse(str(exc))
                else:
                    _load(e, ep)
        out.extend(sorted(entries, key=lambda e: (e.broken, e.distribution or "")))
    return out


def _load(entry: PluginEntry, ep: EntryPoint) -> None:
    """Import the plugin into ``entry.cls``, or record why it is broken."""
    try:
        obj = ep.load()
        if entry.kind == "evaluators":
            from .evaluators.base import EvaluatorSpec

            if not (isinstance(obj, EvaluatorSpec) and obj.kind == ep.name):
                raise TypeError(f"{ep.value} is not an EvaluatorSpec with kind {ep.name!r}")
            entry.cls, entry.summary = obj, {"name": ep.name, "description": f"evaluator network {obj.kind!r}"}
            return
        base = BASES[entry.kind]
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise TypeError(f"{ep.value} is not a subclass of radiobench.{base.__name__}")
        if getattr(obj, "name", "") != ep.name:
            obj.name = ep.name  # the entry-point name is the plugin's public name
        summary = obj.summary()
        if not isinstance(summary, dict):
            raise TypeError(f"{ep.value}.summary() returned {type(summary).__name__}, not a dict")
        entry.cls, entry.summary = obj, summary
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 -- a broken third-party plugin (even sys.exit()) must not take the others down
        entry.error = (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]
        entry.traceback = traceback.format_exc()


registry = Registry()
