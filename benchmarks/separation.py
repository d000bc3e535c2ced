"""Which rows a leaderboard's columns tell apart (issue 18): per metric, each reference row's value and interval
half-width, and the gaps real↔floor, real↔replay and floor↔best generator, signed so that positive means the
first row is better, with the Welch p-value the leaderboard's marks use and whether the two intervals are
disjoint. Reads the same run directories as ``radiobench leaderboard``::

    python benchmarks/separation.py runs/first-cpu [runs/first-cpu-ldm ...] [--metrics fid_byol,kid_byol]
"""
from __future__ import annotations

import argparse
import math

from radiobench.leaderboard import Cell, Row, Table, collect
from radiobench.registry import REFERENCE_ROW
from radiobench.stats import welch_p


def _hw(c: Cell) -> float:
    return (c.high - c.low) / 2 if math.isfinite(c.low) and math.isfinite(c.high) else math.nan


def _gap(table: Table, m: str, a: Cell | None, b: Cell | None) -> str:
    """'gap (p = …, disjoint|overlap)' with the gap positive when ``a`` is better."""
    if a is None or b is None or a.status != "ok" or b.status != "ok":
        return ""
    sign = -1 if table.directions.get(m) == "lower" else 1
    p = welch_p(a.error(), b.error())
    disjoint = a.high < b.low or b.high < a.low
    return f"{sign * (a.value - b.value):.3g} (p = {p:.2g}, {'disjoint' if disjoint else 'overlap'})"


def _ok(row: Row | None, m: str) -> Cell | None:
    c = row.cells.get(m) if row is not None else None
    return c if c is not None and c.status == "ok" and math.isfinite(c.value) else None


def report(table: Table, metrics: list[str]) -> str:
    real = next((r for r in table.rows if r.source == REFERENCE_ROW), None)
    floor = next((r for r in table.rows if r.floor), None)
    replay = next((r for r in table.rows if r.source == "replay"), None)
    lines = [f"### {table.dataset} / {table.preset} ({', '.join(table.runs)})", "",
             "| metric | real | replay | pixel floor | best generator | real↔floor | real↔replay | best↔floor |",
             "|---|---|---|---|---|---|---|---|"]
    for m in metrics or table.metrics:
        if m not in table.directions:
            continue
        sign = -1 if table.directions[m] == "lower" else 1
        gens = [(r, c) for r in table.rows if not r.reference and (c := _ok(r, m)) is not None]
        best = max(gens, key=lambda rc: sign * rc[1].value, default=(None, None))
        shown = [f"{c.value:.3g} ±{_hw(c):.2g}" if (c := _ok(r, m)) else "" for r in (real, replay, floor)]
        best_text = f"{best[0].name} {best[1].value:.3g} ±{_hw(best[1]):.2g}" if best[1] is not None else ""
        lines.append(f"| {m} | {' | '.join(shown)} | {best_text} | {_gap(table, m, _ok(real, m), _ok(floor, m))} | "
                     f"{_gap(table, m, _ok(real, m), _ok(replay, m))} | {_gap(table, m, best[1], _ok(floor, m))} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--metrics", default="", help="comma-separated (default: every column)")
    a = ap.parse_args()
    for table in collect(a.runs):
        print(report(table, [m for m in a.metrics.split(",") if m]), end="\n\n")


if __name__ == "__main__":
    main()
