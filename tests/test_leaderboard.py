"""The issue-2 demonstration on real FIRST data: replay sits within its CI of the real-vs-real
reference row; the pixel-statistics floor is clearly worse on image mean and std distances."""
import csv
import io

import pytest

from radiobench.cli import main
from radiobench.leaderboard import collect, render

DISTANCES = ["pixel_w1", "pixel_ks", "mean_w1", "mean_ks", "std_w1", "std_ks"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "first").exists():
        pytest.skip("real FIRST data not available")
    out = tmp_path_factory.mktemp("first-run")
    rc = main(["run", "--generators", "replay,pixel_floor", "--dataset", "first", "--data-dir",
               str(SHARED_DATA / "first"), "--preset", "smoke", "--metrics", ",".join(DISTANCES),
               "--out", str(out), "-q"])
    assert rc == 0
    return out


def test_replay_matches_reference_and_floor_is_worse(first_run):
    (table,) = collect([first_run])
    rows = {r.name: r for r in table.rows}
    ref, replay, floor = rows["real (valid vs test)"], rows["replay"], rows["pixel_floor"]
    assert ref.reference and replay.reference and floor.reference
    for m in DISTANCES:
        c = replay.cells[m]
        assert c.low <= ref.cells[m].value <= c.high or ref.cells[m].low <= c.value <= ref.cells[m].high, m
    for m in ("mean_ks", "std_ks", "mean_w1", "std_w1"):
        # each point estimate lies outside the other's 95% interval
        assert floor.cells[m].value > ref.cells[m].high and ref.cells[m].value < floor.cells[m].low, m


def test_formats(first_run, capsys):
    tables = collect([first_run])
    md = render(tables, "md")
    assert "| *real (valid vs test)* |" in md and "mean_w1 ↓" in md and "preset smoke" in md
    rows = list(csv.DictReader(io.StringIO(render(tables, "csv"))))
    assert {r["generator"] for r in rows} == {"real (valid vs test)", "replay", "pixel_floor"}
    assert all(r["preset"] == "smoke" for r in rows)
    tex = render(tables, "tex")
    assert r"\begin{tabular}" in tex and r"$\downarrow$" in tex and "pixel\\_w1" in tex
    assert "<table>" in render(tables, "html")
    assert main(["leaderboard", str(first_run), "--format", "csv"]) == 0
    assert "mean_ks" in capsys.readouterr().out


def test_presets_are_never_mixed(first_run, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(first_run, other)
    import json

    m = json.loads((other / "manifest.json").read_text())
    m["identity"]["preset"] = "cpu"
    (other / "manifest.json").write_text(json.dumps(m))
    tables = collect([first_run, other])
    assert sorted(t.preset for t in tables) == ["cpu", "smoke"]


def test_report_writes_plots(first_run):
    main(["report", str(first_run)])
    report = first_run / "report"
    assert (report / "index.html").exists() and (report / "hist_mean.png").exists()
    assert (report / "samples_pixel_floor.png").exists()


def test_cli_errors_are_clear(capsys):
    assert main(["run", "--generators", "replai", "--dataset", "first"]) == 2
    assert "did you mean 'replay'" in capsys.readouterr().err
    assert main(["run", "--generators", "replay", "--dataset", "first", "--preset", "gpu"]) == 2
    assert "unknown preset 'gpu'" in capsys.readouterr().err
    assert main(["leaderboard", "/nonexistent"]) == 2


def test_published_results_rebuild_the_same_table(first_run, tmp_path):
    assert main(["publish", str(first_run), "--to", str(tmp_path / "pub")]) == 0
    assert not list((tmp_path / "pub").rglob("*.npz")) and not list((tmp_path / "pub").rglob("*.safetensors"))
    assert render(collect([tmp_path / "pub"]), "csv") == render(collect([first_run]), "csv")


def test_cells_better_than_the_pixel_floor_are_marked():
    from radiobench.leaderboard import Cell, Row, Table, _mark

    def row(name, reference, fid, ramis):
        cells = {"fid": Cell(fid, fid - 1, fid + 1, 3, "ok"), "ramis": Cell(ramis, ramis - 0.1, ramis + 0.1, 3, "ok")}
        return Row(name, reference, cells)

    rows = [row("pixel_floor", True, 80.0, 1.65), row("replay", True, 30.0, 2.1), row("gan", False, 60.0, 1.5),
            row("vae", False, 90.0, 1.7)]
    table = Table("first", "cpu", "fp", 200, ["fid", "ramis"], {"fid": "lower", "ramis": "higher"}, rows, ["r"])
    _mark(table)
    marks = {(r.name, m): r.cells[m].beats_floor for r in rows for m in ("fid", "ramis")}
    assert marks == {("pixel_floor", "fid"): False, ("pixel_floor", "ramis"): False, ("replay", "fid"): False,
                     ("replay", "ramis"): False, ("gan", "fid"): True, ("gan", "ramis"): False,
                     ("vae", "fid"): False, ("vae", "ramis"): True}
    md = render([table], "md")
    assert "60.0 ± 1.0⁺" in md and "90.0 ± 1.0 |" in md and "$^{+}$" in render([table], "tex")
