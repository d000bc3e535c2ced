"""``radiobench leaderboard``: tables from run directories.

One table per (dataset, preset, dataset fingerprint): rows are generators plus the real-vs-real
reference row, columns are metrics as mean ± 95% CI over seeds (Student t; with one seed, the
bootstrap interval [low, high] of that seed), an arrow for the better direction (the metric's own),
the best non-reference entry and the generators that beat the pixel floor marked where a Welch test
says so (``radiobench.stats.welch_p``; a note lists the pairs of generators it separates), and cost
columns. Cells computed with evaluator networks whose fingerprints differ from the column's majority
carry a dagger: they are not comparable. A cell says ``failed (stage)`` when a fit, a sampling or the
metric failed, ``NaN`` when the metric gave NaN and ``n/a`` when it does not apply. A row holding a
cell computed from another sample set or checkpoint than the row's own (stale), or for another
dataset version, preset or configuration (foreign), is marked; results written before their inputs
were recorded are not checked.

A column's protocol, its metric options other than the defaults (``--metric-option``; records written before
options were recorded read as the defaults) and the generated sets' size when it is not the reference split's
(``--n-generated``), is shown in its heading ("fid_byol ↓ (vs train, N_gen = 2000)"). Cells of one column
computed under different protocols are refused (InputError), as rows of different presets are never ranked
together.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from .registry import REFERENCE_ROW
from .stats import MeanError, seed_interval, welch_p
from .store import read_json, stable_hash
from .types import InputError

__all__ = ["Cell", "Table", "collect", "render", "html_tables", "publish", "FORMATS"]

FORMATS = ("md", "csv", "tex", "html")
REFERENCE_LABEL = "real ({} vs {})"
CUSTODY = {  # row marks, explained in the table's notes
    "stale": "computed from another sample set or checkpoint than the row's current one",
    "foreign": "computed for another dataset version, preset or generator configuration than the row's",
}


@dataclass
class Cell:
    value: float = math.nan
    low: float = math.nan
    high: float = math.nan
    n_seeds: int = 0
    status: str = "missing"  # ok | skipped | error | missing
    note: str = ""
    fingerprints: tuple[tuple[str, str], ...] = ()
    best: bool = False
    incomparable: bool = False
    beats_floor: bool = False  # a generator's value is better than the pixel floor's at 95% (Welch test)
    p_floor: float = math.nan  # that test's two-sided p-value
    values: tuple[float, ...] = ()  # the seeds' values behind ``value``
    failed: str = ""  # "failed (fit)", or "failed (metric) in 1 of 3 seeds" beside the other seeds' value
    custody: tuple[str, ...] = ()  # keys of CUSTODY
    details: dict[str, Any] = field(default_factory=dict)  # the lowest seed's result details (report figures)

    def text(self, digits: int = 3, tex: bool = False) -> str:
        if self.status != "ok":
            s = {"skipped": "n/a"}.get(self.status, "")
        else:
            pm = r"$\pm$" if tex else "±"
            if self.n_seeds >= 2 and math.isfinite(self.low):
                s = f"{_fmt(self.value, digits)} {pm} {_fmt((self.high - self.low) / 2, 2)}"
            elif math.isfinite(self.low):
                s = f"{_fmt(self.value, digits)} [{_fmt(self.low, 2)}, {_fmt(self.high, 2)}]"
            else:
                s = _fmt(self.value, digits)
            if self.beats_floor:
                s += "$^{+}$" if tex else "⁺"
            s += "†" if self.incomparable and not tex else (r"$^\dagger$" if self.incomparable else "")
        return "; ".join(p for p in (s, self.failed) if p)

    def error(self) -> MeanError:
        """The mean and its standard error for the Welch test: over the seeds' values, or one seed's interval."""
        return MeanError.of(self.values, self.low, self.high)

    def state(self) -> str:
        """The status as the CSV writes it: ok | skipped | missing | failed (stage), then any custody mark."""
        return "; ".join(p for p in (self.status if self.status != "error" else "", self.failed, *self.custody) if p)


def _fmt(x: float, digits: int) -> str:
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else str(x)
    if x == 0:
        return f"{x:.{digits}g}"
    mag = math.floor(math.log10(abs(x)))
    return f"{x:.{max(0, digits - 1 - mag)}f}" if -4 <= mag < 5 else f"{x:.{digits - 1}e}"


@dataclass
class Row:
    name: str
    reference: bool
    cells: dict[str, Cell] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    seeds: set[int] = field(default_factory=set)
    floor: bool = False  # the structure-free reference a generator must beat (``Generator.floor``)
    source: str = ""  # the row's folder in the run directories (a generator's name, or REFERENCE_ROW)

    @property
    def marks(self) -> list[str]:
        return sorted({m for c in self.cells.values() for m in c.custody})

    def label(self) -> str:
        """The name with its custody marks, as the rendered tables show it."""
        return self.name + "".join(f" [{m}]" for m in self.marks)


@dataclass
class Table:
    dataset: str
    preset: str
    dataset_fingerprint: str
    n_reference: int
    metrics: list[str]
    directions: dict[str, str]  # lower | higher; absent when unknown (a metric not installed, never computed)
    rows: list[Row]
    runs: list[str]
    notes: list[str] = field(default_factory=list)
    protocols: dict[str, tuple[str, ...]] = field(default_factory=dict)  # metric: its non-default protocol


def collect(run_dirs: Iterable[str | Path]) -> list[Table]:
    """The tables of these run directories: one per dataset, preset and data fingerprint. The directories are
    read in sorted order (each once), so a table does not depend on the order they are named in."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in sorted({Path(r) for r in run_dirs}):
        manifest = read_manifest(run)
        key = (manifest["dataset"]["name"], manifest["identity"]["preset"], manifest["dataset"]["fingerprint"])
        ref_label = REFERENCE_LABEL.format((manifest.get("reference_row") or {}).get("source", "train"),
                                           manifest["dataset"]["reference_split"])
        g = groups.setdefault(key, {"records": defaultdict(list), "costs": defaultdict(list), "failed": [],
                                    "runs": [], "n_reference": manifest["dataset"]["n_reference"],
                                    "ref_label": ref_label, "seen": {}, "origins": defaultdict(list)})
        g["runs"].append(str(run))
        for row_dir in sorted(p for p in run.iterdir() if p.is_dir()):
            for seed_dir in sorted(row_dir.glob("seed-*")):
                _read_seed(g, manifest, row_dir.name, seed_dir, str(run))
    return [_build_table(key, g) for key, g in sorted(groups.items())]


MANIFEST_KEYS = {"identity": ("preset",), "dataset": ("name", "fingerprint", "reference_split", "n_reference")}


def read_manifest(run: Path) -> dict[str, Any]:
    """A run directory's manifest.json, or an InputError naming what is missing or unreadable."""
    path = run / "manifest.json"
    if not path.is_file():
        raise InputError(f"{run} is not a radiobench run directory (no manifest.json)")
    try:
        manifest = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); restore it or re-run into a new --out") from None
    ok = isinstance(manifest, dict) and all(
        isinstance(manifest.get(part), dict) and all(k in manifest[part] for k in keys)
        for part, keys in MANIFEST_KEYS.items())
    if not ok:
        raise InputError(f"{path} is not a radiobench manifest (it needs {MANIFEST_KEYS})")
    return manifest


def _read_record(path: Path) -> dict[str, Any]:
    """A metric record; one that does not read back as a record counts as a failed metric, never as a value."""
    rec = _optional_json(path)
    return rec if rec is not None else {"metric": path.stem, "status": "error", "error": f"unreadable record {path}"}


def _read_seed(g: dict[str, Any], manifest: dict[str, Any], name: str, seed_dir: Path, run: str) -> None:
    try:
        seed = int(seed_dir.name.split("-", 1)[1])
    except ValueError:  # not a folder the runner wrote
        return
    error = _optional_json(seed_dir / "error.json")
    if (seed_dir / "error.json").exists() and error is None:
        error = {"stage": "unknown", "error": "error.json does not read back"}
    if error is not None:  # its last fit or sampling failed: metric files of an earlier attempt are not current
        g["failed"].append((name, seed, error.get("stage", "fit/sample"), error.get("error", ""),
                            str(seed_dir / "error.json")))
        return
    recs = [_read_record(m) for m in sorted((seed_dir / "metrics").glob("*.json"))]
    if not recs:  # not evaluated yet (a run in progress): no configuration to show, nor to tell apart
        return
    fit = _optional_json(seed_dir / "checkpoint" / "fit.json")
    samples = _optional_json(seed_dir / "samples.json") or {}
    if samples.get("external"):  # scored by ``radiobench evaluate``: samples made elsewhere
        g.setdefault("external", set()).add(name)
    config = _configuration(recs)
    for r in recs:  # the options behind each configuration hash, to name a row by what differs
        options = (r.get("provenance") or {}).get("generator_config")
        if isinstance(options, dict) and stable_hash(_numbers_as_floats(options), 8) == config:
            g.setdefault("options", {})[config] = options
    # the same seed of a row in several runs (each run's reference row: seed 0) is one seed, never two:
    # identical records are kept once; different ones make a row per run
    seen = g["seen"].setdefault((name, config, seed), {}) if recs else {}
    signature = _signature(recs)
    if signature in seen.values():
        return
    origin = run if seen else ""
    seen[run] = signature
    row_key = (name, config, origin)
    g["origins"][row_key].append(run)
    g["records"][row_key].extend((seed, r, _custody(r, manifest, fit, samples)) for r in recs)
    if fit is not None:  # the sampling cost lives in samples.json (in fit.json in runs made before)
        g["costs"][row_key].append({**(fit.get("cost") or {}), **(samples.get("cost") or {})})


def _optional_json(path: Path) -> dict[str, Any] | None:
    """A JSON object stored beside a row's metrics; None when missing or unreadable (the custody marks then
    show that the row cannot be verified)."""
    try:
        obj = read_json(path) if path.exists() else None
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _custody(rec: dict[str, Any], manifest: dict[str, Any], fit: dict[str, Any] | None,
             samples: dict[str, Any]) -> tuple[str, ...]:
    """Which keys of CUSTODY apply to a metric record; records without ``inputs`` (written before
    results recorded them) are not checked."""
    inputs = rec.get("inputs")
    if not isinstance(inputs, dict):
        return ()
    marks = []
    if any(inputs[k] != samples.get(s) for k, s in (("samples_sha256", "sha256"),
                                                      ("checkpoint_sha256", "checkpoint_sha256")) if k in inputs):
        marks.append("stale")
    prov = rec.get("provenance") or {}
    config = prov.get("generator_config") or {}
    # the training options of the row's checkpoint; its sampling options are the sample set's, which the
    # sample set's hash covers. Options on both sides only: one added to a plugin later has its default.
    trained = {k: v for k, v in (fit or {}).get("config", {}).items() if k not in samples.get("sampling", {})}
    if (prov.get("dataset_fingerprint") != manifest["dataset"]["fingerprint"]
            or prov.get("preset") != manifest["identity"]["preset"]
            or any(_numbers_as_floats(config[k]) != _numbers_as_floats(trained[k])
                   for k in config.keys() & trained.keys())):
        marks.append("foreign")
    return tuple(marks)


def _signature(records: list[dict[str, Any]]) -> str:
    """What two runs' records of one seed must share to be the same result (not when or where it ran)."""
    keys = ("metric", "status", "result", "reason", "error", "inputs")
    return stable_hash(sorted(({k: r.get(k) for k in keys} for r in records), key=lambda r: str(r["metric"])))


def _configuration(records: list[dict[str, Any]]) -> str:
    """Short hash of the generator configuration a seed's metrics were computed for ('' for real data)."""
    configs = sorted(stable_hash(_numbers_as_floats(r["provenance"]["generator_config"]), 8) for r in records
                     if (r.get("provenance") or {}).get("generator_config") is not None)
    return configs[0] if configs else ""


def _numbers_as_floats(obj: Any) -> Any:
    """The same configuration whether an option was written 45 or 45.0 (equal values, different JSON)."""
    if isinstance(obj, dict):
        return {k: _numbers_as_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_numbers_as_floats(v) for v in obj]
    return float(obj) if isinstance(obj, int) and not isinstance(obj, bool) else obj


def _generator_flag(name: str, flag: str) -> bool:
    """A generator plugin's class flag (``reference``, ``floor``); False for one that is not installed."""
    from .registry import registry

    entry = registry.entries("generators").get(name)
    return bool(entry and not entry.broken and getattr(entry.cls, flag, False))


def _direction(metric: str, records: Iterable[dict[str, Any]]) -> str | None:
    """The metric's own direction; the one its stored results name only when it is not installed."""
    try:
        from .registry import registry

        return registry.metric(metric).direction
    except InputError:
        return next((r["result"]["direction"] for r in records if r.get("status") == "ok"
                     and (r.get("result") or {}).get("direction") in ("lower", "higher")), None)


def _build_table(key: tuple[str, str, str], g: dict[str, Any]) -> Table:
    dataset, preset, fp = key
    failed: dict[tuple[str, str, str], list[tuple[int, str, str, str]]] = defaultdict(list)
    for name, seed, stage, error, path in g["failed"]:  # a failed seed joins its generator's row when it has one
        configs = sorted({c for n, c, _ in g["records"] if n == name})
        config = configs[0] if len(configs) == 1 else "failed" if configs else ""
        failed[(name, config, "")].append((seed, stage, error, path))
    row_keys = list(dict.fromkeys([*g["records"], *failed]))
    notes: list[str] = []
    variants = Counter(name for name, _ in {(n, c) for n, c, _ in row_keys})
    for name, n in sorted(variants.items()):
        if n > 1:  # never average seeds of different configurations into one row
            notes.append(f"{name}: {n} configurations in these runs, one row each, named by the options in which "
                         "they differ (the generator_config recorded in every metric file)")
    split = {(n, c) for n, c, origin in row_keys if origin}

    def differing(name: str, config: str) -> str:
        """The options in which this configuration differs from the name's others (the hash if none are known)."""
        known = g.get("options", {})
        mine = known.get(config)
        others = [known.get(c) for n, c in {(n, c) for n, c, _ in row_keys} if n == name and c != config]
        if mine is None or any(o is None for o in others):
            return config
        keys = sorted(k for k in mine if any(_numbers_as_floats(o.get(k)) != _numbers_as_floats(mine[k])
                                             for o in others))
        return ", ".join(f"{k}={mine[k]}" for k in keys) or config

    def base(name: str, config: str) -> str:
        shown = f"{name} (external)" if name in g.get("external", ()) else name
        if name == REFERENCE_ROW:
            return g["ref_label"]
        return shown if variants[name] == 1 else f"{shown} [{differing(name, config)}]"

    def label(name: str, config: str, origin: str) -> str:
        runs = g["origins"].get((name, config, origin)) if (name, config) in split else None
        return f"{base(name, config)} [run {', '.join(runs)}]" if runs else base(name, config)

    for name, config in sorted(split):
        runs = sorted({r for k in row_keys if k[:2] == (name, config) for r in g["origins"].get(k, ())})
        notes.append(f"{base(name, config)}: runs {', '.join(runs)} hold different results for the same seed (e.g. "
                     "evaluator networks trained again); one row per run, never averaged as seeds")
    by_row: dict[tuple[str, str, str], dict[str, list[tuple[int, dict, tuple[str, ...]]]]] = {}
    for rk in row_keys:
        by_row[rk] = defaultdict(list)
        for entry in g["records"].get(rk, []):
            if entry[1].get("metric"):
                by_row[rk][entry[1]["metric"]].append(entry)
    metrics = sorted({m for by_metric in by_row.values() for m in by_metric})
    all_records = [e[1] for entries in g["records"].values() for e in entries]
    directions = {m: d for m in metrics if (d := _direction(m, (r for r in all_records if r.get("metric") == m)))}
    rows: list[Row] = []
    for rk, by_metric in by_row.items():
        name = rk[0]
        row = Row(name=label(*rk), reference=name == REFERENCE_ROW or _generator_flag(name, "reference"),
                  floor=_generator_flag(name, "floor"), source=name)
        seed_failures = failed.get(rk, [])
        row.seeds.update(e[0] for e in g["records"].get(rk, []))
        row.seeds.update(s for s, *_ in seed_failures)
        for m in metrics:
            if m in by_metric or seed_failures:
                row.cells[m] = _cell(by_metric.get(m, []), seed_failures)
        notes.extend(f"{row.name}: seed {s} failed ({stage}): {(error.splitlines() or [''])[0]} (see {path})"
                     for s, stage, error, path in seed_failures)
        costs = g["costs"].get(rk, [])
        if costs:
            row.cost = {
                "parameters": float(np.mean([c.get("parameters") or 0 for c in costs])),
                "train_min": float(np.mean([c.get("train_seconds") or 0 for c in costs])) / 60,
                "sample_s_per_img": float(np.mean([c.get("sample_seconds_per_image") or math.nan for c in costs])),
            }
        rows.append(row)
    rows.sort(key=lambda r: (not r.name.startswith(g["ref_label"]), r.reference is False, r.name))
    protocols = {m: p for m in metrics if (p := _column_protocol(m, by_row, preset, g["n_reference"], label))}
    if any("vs train" in p for p in protocols.values()):
        notes.append("vs train: scored against the training split instead of the reference split; the real row "
                     "is then every held-out real image (its own set and the reference split), generated rows "
                     "that return training images score near 0 there (see the memorisation column)")
    by_name = {label(*rk): _class_fidelity(by_metric.get("classifier_accuracy", []))
               for rk, by_metric in by_row.items()}
    fidelity = [f"{r.name} {by_name[r.name]}" for r in rows if by_name.get(r.name)]
    if fidelity:
        notes.append("Class fidelity, classifier_accuracy over the referee's accuracy on the real reference images "
                     "(per seed, then mean ± 95% CI over seeds; paper 000: 0.834 / 0.815 = 1.02 for EDM): "
                     + "; ".join(fidelity) + ".")
    table = Table(dataset, preset, fp, g["n_reference"], metrics, directions, rows, g["runs"], notes, protocols)
    _mark(table)
    return table


def _class_fidelity(entries: list[tuple[int, dict, Any]]) -> str:
    """A row's classifier accuracy relative to the referee's on the real reference images of the same record
    (paper 000 compares 83.4% on generated with 81.5% on real images): "0.64 ± 0.05 (referee on real images
    0.79)"; one seed: its bootstrap interval over that seed's real accuracy. '' where no seed has both."""
    pairs = [(r["result"], real["accuracy"]) for _, r, _ in entries if r.get("status") == "ok"
             and (real := (r["result"].get("details") or {}).get("real_reference") or {}).get("accuracy")]
    if not pairs or any(res["value"] is None for res, _ in pairs):
        return ""
    ratios = np.asarray([res["value"] / real for res, real in pairs])
    referee = _fmt(float(np.mean([real for _, real in pairs])), 3)
    if len(pairs) >= 2:
        mean, lo, hi = seed_interval(ratios)
        return f"{_fmt(mean, 3)} ± {_fmt((hi - lo) / 2, 2)} (referee on real images {referee}, {len(pairs)} seeds)"
    (res, real), = pairs
    if res.get("ci_low") is None or res.get("ci_high") is None:
        return f"{_fmt(ratios[0], 3)} (referee on real images {referee})"
    return (f"{_fmt(ratios[0], 3)} [{_fmt(res['ci_low'] / real, 2)}, {_fmt(res['ci_high'] / real, 2)}] "
            f"(referee on real images {referee})")


def _column_protocol(metric: str, by_row: dict[tuple[str, str, str], dict[str, list[tuple[int, dict, Any]]]],
                     preset: str, n_reference: int, label: Any) -> tuple[str, ...]:
    """The protocol every ok cell of ``metric``'s column was computed under (() for the defaults): its options,
    then the generated rows' set size; InputError when its cells differ in either."""
    defaults = _option_defaults(metric, preset)
    options: dict[tuple[str, ...], list[str]] = defaultdict(list)
    sizes: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for rk, by_metric in by_row.items():
        for seed, rec, _ in by_metric.get(metric, []):
            if rec.get("status") == "ok":
                cell = f"{label(*rk)} seed {seed}"
                options[_options_shown(rec, defaults)].append(cell)
                if rk[0] != REFERENCE_ROW:
                    sizes[_size_shown(rec, n_reference)].append(cell)
    for what, seen in (("metric options", options), ("numbers of generated images", sizes)):
        if len(seen) > 1:
            found = "; ".join(f"{', '.join(p) or 'the defaults'}: {', '.join(cells)}" for p, cells in seen.items())
            raise InputError(f"{metric}: cells of one column were computed under different {what} ({found}); "
                             "re-run those rows with the same --metric-option and --n-generated, or tabulate their "
                             "run directories separately")
    return next(iter(options), ()) + next(iter(sizes), ())


def _option_defaults(metric: str, preset: str) -> dict[str, Any]:
    """The metric's options at ``preset`` when it is installed (a metric that declares none: as built without
    arguments); {} otherwise (every recorded option is then shown)."""
    from .registry import registry

    try:
        cls = registry.metric(metric)
        return cls.OPTIONS.defaults(preset) if cls.OPTIONS is not None else cls().options
    except Exception:  # not installed, or not buildable without arguments
        return {}


def _options_shown(rec: dict[str, Any], defaults: dict[str, Any]) -> tuple[str, ...]:
    """A record's options other than ``defaults``: "vs train" for against=train, else "key=value"."""
    options = rec.get("options")
    if not isinstance(options, dict):
        options = {}
    return tuple(f"vs {v}" if k == "against" else f"{k}={json.dumps(v)}" for k, v in sorted(options.items())
                 if k not in defaults or _numbers_as_floats(v) != _numbers_as_floats(defaults[k]))


def _size_shown(rec: dict[str, Any], n_reference: int) -> tuple[str, ...]:
    """A generated row's set size when it is not the reference split's ("N_gen = 2000"); records written before
    the size was recorded drew the reference split's."""
    n = (rec.get("provenance") or {}).get("n_generated")
    return (f"N_gen = {n}",) if isinstance(n, int) and n != n_reference else ()


def _cell(entries: list[tuple[int, dict, tuple[str, ...]]], seed_failures: list[tuple[int, str, str, str]]) -> Cell:
    """One metric of one row over its seeds; ``seed_failures``: (seed, stage, error, error.json path) of seeds
    whose fit or sampling failed."""
    recs = [(s, r) for s, r, _ in entries]
    failures = [(stage, error) for _, stage, error, _ in seed_failures]
    failures += [("metric", r.get("error") or "") for _, r in recs if r.get("status") == "error"]
    custody = tuple(sorted({m for _, _, marks in entries for m in marks}))
    failed = ""
    if failures:
        failed = f"failed ({', '.join(sorted({stage for stage, _ in failures}))})"
        if len(failures) < len(entries) + len(seed_failures):
            failed += f" in {len(failures)} of {len(entries) + len(seed_failures)} seeds"
    ok = [(s, r) for s, r in recs if r.get("status") == "ok"]
    if not ok:
        skipped = any(r.get("status") != "error" for _, r in recs)
        note = (recs[0][1].get("reason") or recs[0][1].get("error") or "") if recs else failures[0][1]
        return Cell(status="skipped" if skipped else "error", note=note, failed=failed, custody=custody)
    values = [math.nan if r["result"]["value"] is None else r["result"]["value"] for _, r in ok]
    fps = tuple(sorted({(k, v) for _, r in ok for k, v in r["result"].get("fingerprints", {}).items()}))
    if not all(map(math.isfinite, values)):  # a seed's NaN is the cell's: no mean over the others
        mean, lo, hi = float(np.mean(values)), math.nan, math.nan
    elif len(ok) >= 2:
        mean, lo, hi = seed_interval(np.asarray(values))
    else:
        res = ok[0][1]["result"]
        mean = res["value"]
        lo = res["ci_low"] if res["ci_low"] is not None else math.nan
        hi = res["ci_high"] if res["ci_high"] is not None else math.nan
    details = min(ok, key=lambda sr: sr[0])[1]["result"].get("details") or {}
    return Cell(value=mean, low=lo, high=hi, n_seeds=len(ok), status="ok", note=failures[0][1] if failures else "",
                fingerprints=fps, failed=failed, custody=custody, details=details, values=tuple(values))


ALPHA = 0.05  # the significance level of every mark


def _mark_evaluators(table: Table, metric: str, cells: list[Cell]) -> None:
    """Dagger the cells computed with other evaluator networks (or data) than most of the column. An evaluator is
    its training fingerprint and, in records since weights were hashed, its weights' sha256; a record without the
    weights is not matched to one with them, as retraining from the same fingerprint on another machine gave other
    weights and values (benchmarks/README.md, "Do retrained evaluators reproduce a published table?")."""
    counts = Counter(c.fingerprints for c in cells)
    if len(counts) < 2:
        return
    majority = counts.most_common(1)[0][0]
    for c in cells:
        c.incomparable = c.fingerprints != majority
    table.notes.append(f"† {metric}: computed with different evaluator networks/data than the rest of its column")


def _mark(table: Table) -> None:
    pairs: dict[str, list[str]] = {}  # metric: "a beats b (p = …)" for the generators the test separates
    for m in table.metrics:
        cells = [(r, r.cells.get(m)) for r in table.rows]
        _mark_evaluators(table, m, [c for _, c in cells if c is not None and c.status == "ok"])
        if m not in table.directions:
            table.notes.append(f"? {m}: not installed, and no stored result says whether lower or higher is better")
            continue
        sign = -1 if table.directions[m] == "lower" else 1
        contenders = [(r, c) for r, c in cells if c is not None and c.status == "ok" and not c.incomparable
                      and not c.custody and math.isfinite(c.value)]
        pool = sorted(((r, c) for r, c in contenders if not r.reference), key=lambda rc: -sign * rc[1].value)
        floor = next((c for r, c in contenders if r.floor), None)
        err = {id(c): c.error() for _, c in pool}
        if floor is not None:
            floor_error = floor.error()
            for _, c in pool:
                c.p_floor = welch_p(err[id(c)], floor_error)
                c.beats_floor = c.p_floor < ALPHA and sign * c.value > sign * floor.value
        wins = {(a.name, b.name): p for (a, ca), (b, cb) in combinations(pool, 2)  # a's value is the better one
                if (p := welch_p(err[id(ca)], err[id(cb)])) < ALPHA and sign * ca.value > sign * cb.value}
        if len(pool) > 1:  # the best only where it beats every other generator of its column
            pool[0][1].best = all((pool[0][0].name, r.name) in wins for r, _ in pool[1:])
            pairs[m] = [f"{a} beats {b} (p = {p:.2g})" for (a, b), p in wins.items()]
    if pairs:
        table.notes.append("Generators that differ at 95% (Welch test): " + "; ".join(
            f"{m}: {', '.join(found) or 'none'}" for m, found in pairs.items()) + ".")
    for mark, meaning in CUSTODY.items():
        for r in table.rows:
            if mark in r.marks:
                affected = [m for m in table.metrics if m in r.cells and mark in r.cells[m].custody]
                table.notes.append(f"[{mark}] {r.name}: {', '.join(affected)} {meaning}; run it again to redo them")


# -- rendering -------------------------------------------------------------------------------------
def render(tables: list[Table], fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return {"md": _markdown, "csv": _csv, "tex": _latex, "html": _html}[fmt](tables)


def _arrow(table: Table, m: str, tex: bool = False) -> str:
    arrows = (r"$\downarrow$", r"$\uparrow$") if tex else ("↓", "↑")
    return {"lower": arrows[0], "higher": arrows[1]}.get(table.directions.get(m, ""), "?")


def _heads(t: Table, tex: bool = False) -> list[str]:
    metrics = [f"{_tex_escape(m) if tex else m} {_arrow(t, m, tex)}" + _protocol_text(t, m, tex) for m in t.metrics]
    return ["generator", "seeds", *metrics, *COST_HEADERS]


def _protocol_text(t: Table, m: str, tex: bool = False) -> str:
    """' (vs train, N_gen = 2000)' for a column of a non-default protocol, else ''."""
    text = ", ".join(t.protocols.get(m, ()))
    return f" ({_tex_escape(text) if tex else text})" if text else ""


def _title(t: Table) -> str:
    return (f"{t.dataset} — preset {t.preset} (dataset fingerprint {t.dataset_fingerprint}; "
            f"reference split N = {t.n_reference}; runs: {', '.join(t.runs)})")


SMOKE_NOTE = ("Preset smoke: tiny networks trained for seconds, to check that everything runs; these numbers rank "
              "nothing (run the cpu or paper preset to compare generators).")


def _caveat(t: Table) -> list[str]:
    """What a reader must know before reading the numbers (shown above the table)."""
    return [SMOKE_NOTE] if t.preset == "smoke" else []


def _cost_text(row: Row) -> list[str]:
    c = row.cost
    if not c:
        return ["", "", ""]
    params = f"{c['parameters'] / 1e6:.2f}M" if c["parameters"] else "0"
    samp = f"{c['sample_s_per_img']:.3g}" if math.isfinite(c["sample_s_per_img"]) else ""
    return [params, f"{c['train_min']:.1f}", samp]


COST_HEADERS = ["params", "train min", "s/img"]
LEGEND_CELLS = ("Cells: mean ± 95% CI over seeds (Student t); with one seed, the 95% bootstrap interval [low, high]. "
                "Differences are tested two-sided at 95% by Welch's t on the difference of two rows' means: over seeds "
                "where a row has several, over images where it has one (its bootstrap interval read as a normal "
                "standard error); not paired, as the stored records hold no per-image values.")
LEGEND_FLOOR = "⁺: better than the pixel floor in that test."
LEGEND_BOLD = ("Bold: the best non-reference generator, only where it beats every other one of its column in that test "
               "(no bold otherwise, nor for a lone generator).")

REFERENCE_ROLES = (("real data", "perfect"), ("replay", "memorising"), ("pixel floor", "structure-free"))


def _legend(t: Table) -> str:
    """The legend, naming only the reference rows the table has (and the floor's mark only beside a floor row)."""
    has = {"real data": any(r.source == REFERENCE_ROW for r in t.rows),
           "replay": any(r.source == "replay" for r in t.rows), "pixel floor": any(r.floor for r in t.rows)}
    roles = [(n, adj) for n, adj in REFERENCE_ROLES if has[n]]
    what = _and([f"a {adj} {'one' if i else 'generator'}" for i, (_, adj) in enumerate(roles)])
    names = ", ".join(n for n, _ in roles)
    refs = (f"Reference rows ({names}) show what {what} score." if len(roles) > 1
            else f"The reference row ({names}) shows what {what} scores." if roles else "")
    return " ".join(p for p in (LEGEND_CELLS, LEGEND_FLOOR if has["pixel floor"] else "", LEGEND_BOLD, refs) if p)


def _and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def _markdown(tables: list[Table]) -> str:
    out = io.StringIO()
    for t in tables:
        out.write(f"### {_title(t)}\n\n")
        out.writelines(f"**{c}**\n\n" for c in _caveat(t))
        heads = _heads(t)
        out.write("| " + " | ".join(heads) + " |\n|" + "---|" * len(heads) + "\n")
        for r in t.rows:
            cells = []
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                txt = c.text()
                cells.append(f"**{txt}**" if c.best else txt)
            name = f"*{r.label()}*" if r.reference else r.label()
            out.write("| " + " | ".join([name, str(len(r.seeds))] + cells + _cost_text(r)) + " |\n")
        out.write("\n" + _legend(t) + "\n")
        for n in t.notes:
            out.write(f"\n{n}\n")
        out.write("\n")
    return out.getvalue()


def _csv(tables: list[Table]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["dataset", "preset", "dataset_fingerprint", "generator", "reference_row", "metric", "direction",
                "value", "ci_low", "ci_high", "n_seeds", "status", "best", "comparable", "beats_pixel_floor",
                "p_vs_pixel_floor", "parameters", "train_minutes", "sample_seconds_per_image"]
               + (["protocol"] if any(t.protocols for t in tables) else []))
    for t in tables:
        for r in t.rows:
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                w.writerow([t.dataset, t.preset, t.dataset_fingerprint, r.name, r.reference, m,
                            t.directions.get(m, ""), repr(float(c.value)) if c.status == "ok" else _num(c.value),
                            _num(c.low), _num(c.high), c.n_seeds, c.state(),
                            c.best, not c.incomparable, c.beats_floor, _num(c.p_floor), r.cost.get("parameters", ""),
                            r.cost.get("train_min", ""), r.cost.get("sample_s_per_img", "")]
                           + (["; ".join(t.protocols.get(m, ()))] if any(t.protocols for t in tables) else []))
    return buf.getvalue()


def _num(x: float) -> str:
    return "" if not math.isfinite(x) else repr(float(x))


def _tex_escape(s: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        s = s.replace(char, escaped)
    return s


def _tex_text(s: str) -> str:
    return _tex_escape(s).replace("⁺", "$^{+}$").replace("†", r"$^\dagger$")


def _latex(tables: list[Table]) -> str:
    out = io.StringIO()
    for t in tables:
        cols = "ll" + "c" * len(t.metrics) + "rrr"
        out.write("\\begin{table}\n\\centering\n\\small\n")
        caption = _tex_text(" ".join([*_caveat(t), _legend(t), *t.notes]))
        out.write(f"\\caption{{{_tex_escape(_title(t))}. {caption}}}\n")
        out.write(f"\\begin{{tabular}}{{{cols}}}\n\\toprule\n")
        out.write(" & ".join(_heads(t, tex=True)) + " \\\\\n\\midrule\n")
        for r in t.rows:
            cells = []
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                txt = c.text(tex=True)
                cells.append(f"\\textbf{{{txt}}}" if c.best else txt)
            name = f"\\textit{{{_tex_escape(r.label())}}}" if r.reference else _tex_escape(r.label())
            out.write(" & ".join([name, str(len(r.seeds))] + cells + _cost_text(r)) + " \\\\\n")
        out.write("\\bottomrule\n\\end{tabular}\n\\end{table}\n\n")
    return out.getvalue()


HTML_HEAD = ("<!doctype html>\n<html><head><meta charset='utf-8'><title>radiobench leaderboard</title>\n"
             "<style>table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             "td:first-child{text-align:left}.ref{font-style:italic;color:#555}</style></head><body>\n")


def _html(tables: list[Table]) -> str:
    return HTML_HEAD + html_tables(tables) + "</body></html>\n"


def html_tables(tables: list[Table]) -> str:
    """Each table as an HTML heading, table, legend and notes: the body of the leaderboard page and of the report."""
    out = io.StringIO()
    for t in tables:
        out.write(f"<h3>{html.escape(_title(t))}</h3>\n<table>\n")
        out.writelines(f"<caption><b>{html.escape(c)}</b></caption>\n" for c in _caveat(t))
        out.write("<tr>")
        out.write("".join(f"<th>{html.escape(h)}</th>" for h in _heads(t)) + "</tr>\n")
        for r in t.rows:
            cls = " class='ref'" if r.reference else ""
            out.write(f"<tr{cls}><td>{html.escape(r.label())}</td><td>{len(r.seeds)}</td>")
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                txt = html.escape(c.text())
                title = f" title='{html.escape(c.note)}'" if c.note else ""
                out.write(f"<td{title}>{'<b>' + txt + '</b>' if c.best else txt}</td>")
            out.write("".join(f"<td>{html.escape(x)}</td>" for x in _cost_text(r)) + "</tr>\n")
        out.write(f"</table>\n<p>{html.escape(_legend(t))}</p>\n")
        for n in t.notes:
            out.write(f"<p>{html.escape(n)}</p>\n")
    return out.getvalue()


PUBLISHED = ("manifest.json", "*/seed-*/metrics/*.json", "*/seed-*/checkpoint/fit.json",
             "*/seed-*/checkpoint/config.json", "*/seed-*/train/losses.csv", "*/seed-*/error.json",
             "*/seed-*/samples.json")


def publish(run: str | Path, dest: str | Path) -> list[Path]:
    """Copy the result files of a run (everything the tables are built from, no weights or images)
    into ``dest``, e.g. leaderboard/runs/first-cpu, so published tables can be rebuilt from the repo.
    The copies are readable by everyone (files 0644, folders 0755), whatever the run's own modes."""
    import shutil

    run, dest = Path(run), Path(dest)
    read_manifest(run)
    made = not dest.exists()
    copied = []
    for pattern in PUBLISHED:
        for src in sorted(run.glob(pattern)):
            target = dest / src.relative_to(run)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            target.chmod(0o644)
            copied.append(target)
    for folder in sorted({p for t in copied for p in t.relative_to(dest).parents}):
        if folder != Path(".") or made:  # dest itself only when publish made it
            (dest / folder).chmod(0o755)
    return copied
