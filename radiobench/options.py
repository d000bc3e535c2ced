"""Declared plugin options (generators, datasets, metrics): one table per plugin, checked before any work.

A plugin lists its options as ``OPTIONS = Options(name=Option(...), ...)``. Each ``Option`` says its type
and range, its default at each preset (smoke/cpu/paper) and whether it is a sampling option (changes how
samples are drawn, not the trained weights). ``Options.resolve`` gives a preset's values updated by the
caller's, each checked (values arrive JSON-parsed from the CLI: ints, floats, strings, lists, bools, null);
a bad or unknown one is an InputError naming the option, what it must be and the value.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .store import jsonable
from .types import InputError

__all__ = ["Option", "Options", "POSITIVE", "PROBABILITY", "AGAINST", "EVALUATOR_SEED"]

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


@dataclass(frozen=True)
class Option:
    """One option. ``kind``: int, float, bool or str, or a one-element tuple (``(int,)``: a list of ints);
    ``default``: its value at every preset not in ``presets`` (a callable: computed from the preset name);
    ``choices``: the allowed values of a str option, or special values beside the type (``"auto"``);
    ``low``/``high``: inclusive bounds (``low_open``/``high_open``: exclusive) of numbers and list items;
    ``recorded``: part of ``Generator.config()`` (False: display only, as ``progress`` of EDM)."""

    kind: type | tuple[type]
    default: Any = None
    presets: Mapping[str, Any] = field(default_factory=dict)
    sampling: bool = False
    nullable: bool = False
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    recorded: bool = True

    def default_at(self, preset: str) -> Any:
        value = self.presets.get(preset, self.default)
        return value(preset) if callable(value) else value

    def expected(self) -> str:
        """What a valid value is, in words (for error messages)."""
        item = self.kind[0] if isinstance(self.kind, tuple) else self.kind
        text = _NAMES[item] + self._range()
        if item is str and self.choices:
            text = "one of " + ", ".join(map(repr, self.choices))
        elif self.choices:
            text += " or " + " or ".join(map(repr, self.choices))
        if isinstance(self.kind, tuple):
            text = f"a list of {text.replace('an integer', 'integers').replace('a number', 'numbers')}"
        return text + (" or null" if self.nullable else "")

    def _range(self) -> str:
        lo = None if self.low is None else ("> " if self.low_open else "≥ ") + f"{self.low:g}"
        hi = None if self.high is None else ("< " if self.high_open else "≤ ") + f"{self.high:g}"
        if lo and hi:
            return f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        return f" {lo or hi}" if lo or hi else ""

    def valid(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(self.kind, tuple):
            return isinstance(value, (list, tuple)) and all(self._scalar(self.kind[0], v) for v in value)
        return value in self.choices if self.kind is str and self.choices else (
            self._scalar(self.kind, value) or (isinstance(value, str) and value in self.choices))

    def _scalar(self, item: type, v: Any) -> bool:
        if item is bool or isinstance(v, bool):  # a bool is no number, a number no bool
            return item is bool and isinstance(v, bool)
        if item is str:
            return isinstance(v, str)
        if not isinstance(v, int if item is int else (int, float)) or not math.isfinite(v):
            return False
        return not ((self.low is not None and (v <= self.low if self.low_open else v < self.low))
                    or (self.high is not None and (v >= self.high if self.high_open else v > self.high)))


class Options(dict[str, Option]):
    """A plugin's options by name (see module docstring)."""

    def __init__(self, *bases: Mapping[str, Option], **options: Option):
        super().__init__()
        for b in bases:
            self.update(b)
        self.update(options)

    def with_defaults(self, **values: Any) -> Options:
        """A copy with new defaults: a plain value for every preset, or a dict {preset: value}."""
        out = Options(self)
        for k, v in values.items():
            out[k] = replace(self[k], presets=v) if isinstance(v, dict) else replace(self[k], default=v, presets={})
        return out

    @property
    def sampling(self) -> frozenset[str]:
        return frozenset(k for k, o in self.items() if o.sampling)

    def defaults(self, preset: str) -> dict[str, Any]:
        """Every option's value at ``preset``."""
        return {k: o.default_at(preset) for k, o in self.items()}

    def check(self, owner: str, given: Mapping[str, Any]) -> None:
        """InputError for an unknown option or a value of the wrong type or range."""
        unknown = sorted(set(given) - set(self))
        if unknown:
            raise InputError(f"{owner} has no option(s) {unknown}; it knows {', '.join(sorted(self)) or 'none'}")
        for k, v in given.items():
            if not self[k].valid(v):
                raise InputError(f"{owner}: option {k!r} must be {self[k].expected()}; got {v!r}")

    def resolve(self, owner: str, preset: str, given: Mapping[str, Any]) -> dict[str, Any]:
        """The preset's values updated by ``given`` (checked), lists as JSON stores them."""
        self.check(owner, given)
        return jsonable({**self.defaults(preset), **given})

    def recorded(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` without the display-only options."""
        return {k: v for k, v in values.items() if k not in self or self[k].recorded}


POSITIVE = Option(float, low=0.0, low_open=True)  # learning rates, scales, physical quantities
PROBABILITY = Option(float, low=0.0, high=1.0, high_open=True)  # dropout, Adam's β, EMA decay

# metric options the harness acts on (``radiobench.interfaces.Metric``)
# the real set a generated set is scored against: the reference split, or the training split
AGAINST = Option(str, default="reference", choices=("reference", "train"))
EVALUATOR_SEED = Option(int, default=0, low=0)  # the seed the metric's evaluator networks are trained with
