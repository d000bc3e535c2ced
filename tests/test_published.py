"""The published leaderboards render byte-identically from the result files stored beside them."""
from __future__ import annotations

from pathlib import Path

import pytest

from radiobench.leaderboard import collect, render

ROOT = Path(__file__).resolve().parents[1] / "leaderboard"
TABLES = {
    "first-cpu": ["runs/first-cpu", "runs/first-cpu-edm", "runs/first-cpu-vae-gan"],
    "mirabest-cpu": ["runs/mirabest-cpu"],
    "alma_sim-cpu": ["runs/alma_sim-cpu", "runs/alma_sim-cpu-mean", "runs/alma_sim-cpu-detect"],
}


@pytest.mark.parametrize("fmt", ["md", "csv", "tex", "html"])
@pytest.mark.parametrize("name", sorted(TABLES))
def test_published_table_regenerates(name: str, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT.parent)  # the tables name their run directories relative to the repository
    runs = [f"leaderboard/{r}" for r in TABLES[name]]
    text = render(collect(runs), fmt)
    assert text.encode() == (ROOT / f"{name}.{fmt}").read_bytes()
    assert render(collect(runs[::-1]), fmt) == text  # whatever order the directories are named in
