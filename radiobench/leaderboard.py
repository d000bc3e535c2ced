"""``radiobench leaderboard``: tables from run directories.

One table per (dataset, preset, dataset fingerprint): rows are generators plus the real-vs-real
reference row, columns are metrics as mean ± 95% CI over seeds (Student t; with one seed, the
bootstrap interval [low, high] of that seed), an arrow for the better direction, the best
non-reference entry marked, and cost columns. Cells computed with evaluator networks whose
fingerprints differ from the column's majority carry a dagger: they are not comparable.
"""
from __future__ import annotations

import csv
import html
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .runner import REFERENCE_ROW
from .stats import seed_interval
from .store import read_json
from .types import InputError

__all__ = ["Cell", "Table", "collect", "render", "publish", "FORMATS"]

FORMATS = ("md", "csv", "tex", "html")
REFERENCE_LABEL = "real ({} vs {})"
FLOOR_ROW = "pixel_floor"  # the structure-free reference that a generator must beat on structure metrics


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
    beats_floor: bool = False  # a generator's value is better than the pixel floor's (point values)

    def text(self, digits: int = 3, tex: bool = False) -> str:
        if self.status != "ok" or not math.isfinite(self.value):
            return {"skipped": "n/a", "error": "error", "missing": ""}.get(self.status, "")
        pm = r"$\pm$" if tex else "±"
        if self.n_seeds >= 2 and math.isfinite(self.low):
            s = f"{_fmt(self.value, digits)} {pm} {_fmt((self.high - self.low) / 2, 2)}"
        elif math.isfinite(self.low):
            s = f"{_fmt(self.value, digits)} [{_fmt(self.low, 2)}, {_fmt(self.high, 2)}]"
        else:
            s = _fmt(self.value, digits)
        if self.beats_floor:
            s += "$^{+}$" if tex else "⁺"
        return s + ("†" if self.incomparable and not tex else (r"$^\dagger$" if self.incomparable else ""))


def _fmt(x: float, digits: int) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:.{digits}g}" if math.isfinite(x) else "nan"
    mag = math.floor(math.log10(abs(x)))
    return f"{x:.{max(0, digits - 1 - mag)}f}" if -4 <= mag < 5 else f"{x:.{digits - 1}e}"


@dataclass
class Row:
    name: str
    reference: bool
    cells: dict[str, Cell] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    seeds: set[int] = field(default_factory=set)


@dataclass
class Table:
    dataset: str
    preset: str
    dataset_fingerprint: str
    n_reference: int
    metrics: list[str]
    directions: dict[str, str]
    rows: list[Row]
    runs: list[str]
    notes: list[str] = field(default_factory=list)


def collect(run_dirs: Iterable[str | Path]) -> list[Table]:
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for run in run_dirs:
        run = Path(run)
        mpath = run / "manifest.json"
        if not mpath.exists():
            raise InputError(f"{run} is not a radiobench run directory (no manifest.json)")
        manifest = read_json(mpath)
        key = (manifest["dataset"]["name"], manifest["identity"]["preset"], manifest["dataset"]["fingerprint"])
        ref_label = REFERENCE_LABEL.format(manifest.get("reference_row", {}).get("source", "train"),
                                           manifest["dataset"]["reference_split"])
        g = groups.setdefault(key, {"records": defaultdict(list), "costs": defaultdict(list), "runs": [],
                                    "n_reference": manifest["dataset"]["n_reference"], "ref_label": ref_label})
        g["runs"].append(str(run))
        for row_dir in sorted(p for p in run.iterdir() if p.is_dir()):
            for seed_dir in sorted(row_dir.glob("seed-*")):
                seed = int(seed_dir.name.split("-", 1)[1])
                recs = [read_json(m) for m in sorted((seed_dir / "metrics").glob("*.json"))]
                row_key = (row_dir.name, _configuration(recs))
                g["records"][row_key].extend((seed, r) for r in recs)
                fit = seed_dir / "checkpoint" / "fit.json"
                if fit.exists():
                    g["costs"][row_key].append(read_json(fit)["cost"])
                elif (seed_dir / "error.json").exists():
                    g["records"][row_key].append((seed, {"metric": None, "status": "error"}))
    return [_build_table(key, g) for key, g in sorted(groups.items())]


def _configuration(records: list[dict[str, Any]]) -> str:
    """Short hash of the generator configuration a seed's metrics were computed for ('' for real data)."""
    from .store import stable_hash

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


def _is_reference_generator(name: str) -> bool:
    if name == REFERENCE_ROW:
        return True
    try:
        from .registry import registry

        return bool(registry.generator(name).reference)
    except InputError:
        return False


def _build_table(key: tuple[str, str, str], g: dict[str, Any]) -> Table:
    dataset, preset, fp = key
    metrics: list[str] = []
    directions: dict[str, str] = {}
    rows: list[Row] = []
    notes: list[str] = []
    variants = Counter(name for name, _ in g["records"])
    for name, n in sorted(variants.items()):
        if n > 1:  # never average seeds of different configurations into one row
            notes.append(f"{name}: {n} configurations in these runs, one row each (by the hash of the "
                         "generator_config recorded in every metric file)")
    for (name, config), records in g["records"].items():
        label = g["ref_label"] if name == REFERENCE_ROW else name if variants[name] == 1 else f"{name} [{config}]"
        row = Row(name=label, reference=_is_reference_generator(name))
        by_metric: dict[str, list[tuple[int, dict]]] = defaultdict(list)
        for seed, rec in records:
            row.seeds.add(seed)
            if rec.get("metric"):
                by_metric[rec["metric"]].append((seed, rec))
        for m, recs in by_metric.items():
            if m not in metrics:
                metrics.append(m)
            row.cells[m] = _cell(recs)
            for _, rec in recs:
                if rec.get("status") == "ok":
                    directions[m] = rec["result"]["direction"]
        costs = g["costs"].get((name, config), [])
        if costs:
            row.cost = {
                "parameters": float(np.mean([c.get("parameters") or 0 for c in costs])),
                "train_min": float(np.mean([c.get("train_seconds") or 0 for c in costs])) / 60,
                "sample_s_per_img": float(np.mean([c.get("sample_seconds_per_image") or math.nan for c in costs])),
            }
        rows.append(row)
    rows.sort(key=lambda r: (r.name != g["ref_label"], r.reference is False, r.name))
    table = Table(dataset, preset, fp, g["n_reference"], sorted(metrics), directions, rows, g["runs"], notes)
    _mark(table)
    return table


def _cell(recs: list[tuple[int, dict]]) -> Cell:
    ok = [(s, r) for s, r in recs if r.get("status") == "ok" and r["result"]["value"] is not None]
    if not ok:
        statuses = {r.get("status") for _, r in recs}
        status = "error" if "error" in statuses else "skipped"
        note = next((r.get("reason") or r.get("error") or "" for _, r in recs), "")
        return Cell(status=status, note=note)
    values = [r["result"]["value"] for _, r in ok]
    fps = tuple(sorted({(k, v) for _, r in ok for k, v in r["result"].get("fingerprints", {}).items()}))
    if len(ok) >= 2:
        mean, lo, hi = seed_interval(values)
    else:
        res = ok[0][1]["result"]
        mean = res["value"]
        lo = res["ci_low"] if res["ci_low"] is not None else math.nan
        hi = res["ci_high"] if res["ci_high"] is not None else math.nan
    return Cell(value=mean, low=lo, high=hi, n_seeds=len(ok), status="ok", fingerprints=fps)


def _mark(table: Table) -> None:
    for m in table.metrics:
        cells = [(r, r.cells.get(m)) for r in table.rows]
        fp_counts = Counter(c.fingerprints for _, c in cells if c is not None and c.status == "ok")
        if len(fp_counts) > 1:
            majority = fp_counts.most_common(1)[0][0]
            for _, c in cells:
                if c is not None and c.status == "ok" and c.fingerprints != majority:
                    c.incomparable = True
            table.notes.append(f"† {m}: computed with different evaluator networks/data than the rest of its column")
        sign = -1 if table.directions.get(m, "lower") == "lower" else 1
        contenders = [(r, c) for r, c in cells if c is not None and c.status == "ok" and not c.incomparable]
        pool = [(r, c) for r, c in contenders if not r.reference] or []
        if pool:
            best = max(pool, key=lambda rc: sign * rc[1].value)
            best[1].best = True
        floor = next((c for r, c in contenders if r.name == FLOOR_ROW), None)
        for _, c in pool:
            c.beats_floor = floor is not None and sign * c.value > sign * floor.value


# -- rendering -------------------------------------------------------------------------------------
def render(tables: list[Table], fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return {"md": _markdown, "csv": _csv, "tex": _latex, "html": _html}[fmt](tables)


def _arrow(table: Table, m: str) -> str:
    return "↓" if table.directions.get(m, "lower") == "lower" else "↑"


def _title(t: Table) -> str:
    return (f"{t.dataset} — preset {t.preset} (dataset fingerprint {t.dataset_fingerprint}; "
            f"reference split N = {t.n_reference}; runs: {', '.join(t.runs)})")


def _cost_text(row: Row) -> list[str]:
    c = row.cost
    if not c:
        return ["", "", ""]
    params = f"{c['parameters'] / 1e6:.2f}M" if c["parameters"] else "0"
    samp = f"{c['sample_s_per_img']:.3g}" if math.isfinite(c["sample_s_per_img"]) else ""
    return [params, f"{c['train_min']:.1f}", samp]


COST_HEADERS = ["params", "train min", "s/img"]
LEGEND = ("Cells: mean ± 95% CI over seeds (Student t); with one seed, the 95% bootstrap interval [low, high]. "
          "Bold: best non-reference generator; ⁺: better than the pixel floor's value (compare the intervals "
          "before calling it a difference). Reference rows (real data, replay, pixel floor) show what a "
          "perfect generator, a memorising one and a structure-free one score.")


def _markdown(tables: list[Table]) -> str:
    out = io.StringIO()
    for t in tables:
        out.write(f"### {_title(t)}\n\n")
        heads = ["generator", "seeds"] + [f"{m} {_arrow(t, m)}" for m in t.metrics] + COST_HEADERS
        out.write("| " + " | ".join(heads) + " |\n|" + "---|" * len(heads) + "\n")
        for r in t.rows:
            cells = []
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                txt = c.text()
                cells.append(f"**{txt}**" if c.best else txt)
            name = f"*{r.name}*" if r.reference else r.name
            out.write("| " + " | ".join([name, str(len(r.seeds))] + cells + _cost_text(r)) + " |\n")
        out.write("\n" + LEGEND + "\n")
        for n in t.notes:
            out.write(f"\n{n}\n")
        out.write("\n")
    return out.getvalue()


def _csv(tables: list[Table]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["dataset", "preset", "dataset_fingerprint", "generator", "reference_row", "metric", "direction",
                "value", "ci_low", "ci_high", "n_seeds", "status", "best", "comparable", "beats_pixel_floor",
                "parameters", "train_minutes", "sample_seconds_per_image"])
    for t in tables:
        for r in t.rows:
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                w.writerow([t.dataset, t.preset, t.dataset_fingerprint, r.name, r.reference, m,
                            t.directions.get(m, ""), _num(c.value), _num(c.low), _num(c.high), c.n_seeds, c.status,
                            c.best, not c.incomparable, c.beats_floor, r.cost.get("parameters", ""),
                            r.cost.get("train_min", ""), r.cost.get("sample_s_per_img", "")])
    return buf.getvalue()


def _num(x: float) -> str:
    return "" if not math.isfinite(x) else repr(float(x))


def _tex_escape(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&").replace("#", r"\#")


def _latex(tables: list[Table]) -> str:
    out = io.StringIO()
    for t in tables:
        cols = "ll" + "c" * len(t.metrics) + "rrr"
        out.write("\\begin{table}\n\\centering\n\\small\n")
        out.write(f"\\caption{{{_tex_escape(_title(t))}. {_tex_escape(LEGEND).replace('⁺', '$^{+}$')}}}\n")
        out.write(f"\\begin{{tabular}}{{{cols}}}\n\\toprule\n")
        arrows = {m: r"$\downarrow$" if t.directions.get(m, "lower") == "lower" else r"$\uparrow$" for m in t.metrics}
        heads = ["generator", "seeds"] + [f"{_tex_escape(m)} {arrows[m]}" for m in t.metrics] + COST_HEADERS
        out.write(" & ".join(heads) + " \\\\\n\\midrule\n")
        for r in t.rows:
            cells = []
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                txt = c.text(tex=True)
                cells.append(f"\\textbf{{{txt}}}" if c.best else txt)
            name = f"\\textit{{{_tex_escape(r.name)}}}" if r.reference else _tex_escape(r.name)
            out.write(" & ".join([name, str(len(r.seeds))] + cells + _cost_text(r)) + " \\\\\n")
        out.write("\\bottomrule\n\\end{tabular}\n\\end{table}\n\n")
    return out.getvalue()


def _html(tables: list[Table]) -> str:
    out = io.StringIO()
    out.write("<!doctype html>\n<html><head><meta charset='utf-8'><title>radiobench leaderboard</title>\n"
              "<style>table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
              "td:first-child{text-align:left}.ref{font-style:italic;color:#555}</style></head><body>\n")
    for t in tables:
        out.write(f"<h3>{html.escape(_title(t))}</h3>\n<table>\n<tr>")
        heads = ["generator", "seeds"] + [f"{m} {_arrow(t, m)}" for m in t.metrics] + COST_HEADERS
        out.write("".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>\n")
        for r in t.rows:
            cls = " class='ref'" if r.reference else ""
            out.write(f"<tr{cls}><td>{html.escape(r.name)}</td><td>{len(r.seeds)}</td>")
            for m in t.metrics:
                c = r.cells.get(m, Cell())
                txt = html.escape(c.text())
                title = f" title='{html.escape(c.note)}'" if c.note else ""
                out.write(f"<td{title}>{'<b>' + txt + '</b>' if c.best else txt}</td>")
            out.write("".join(f"<td>{html.escape(x)}</td>" for x in _cost_text(r)) + "</tr>\n")
        out.write(f"</table>\n<p>{html.escape(LEGEND)}</p>\n")
        for n in t.notes:
            out.write(f"<p>{html.escape(n)}</p>\n")
    out.write("</body></html>\n")
    return out.getvalue()


PUBLISHED = ("manifest.json", "*/seed-*/metrics/*.json", "*/seed-*/checkpoint/fit.json",
             "*/seed-*/checkpoint/config.json", "*/seed-*/train/losses.csv", "*/seed-*/error.json",
             "*/seed-*/samples.json")


def publish(run: str | Path, dest: str | Path) -> list[Path]:
    """Copy the result files of a run (everything the tables are built from, no weights or images)
    into ``dest``, e.g. leaderboard/runs/first-cpu, so published tables can be rebuilt from the repo."""
    import shutil

    run, dest = Path(run), Path(dest)
    if not (run / "manifest.json").exists():
        raise InputError(f"{run} is not a radiobench run directory (no manifest.json)")
    copied = []
    for pattern in PUBLISHED:
        for src in sorted(run.glob(pattern)):
            target = dest / src.relative_to(run)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            copied.append(target)
    return copied
