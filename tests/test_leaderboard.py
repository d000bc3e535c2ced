"""The issue-2 demonstration on real FIRST data: replay sits within its CI of the real-vs-real
reference row; the pixel-statistics floor is clearly worse on image mean and std distances. Then the
leaderboard's honesty (failed, NaN, arrows, stale and foreign cells) and its formats, parsed, on run
directories written by hand."""
import csv
import io
import json
import os
import re
import shutil
import stat
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as ss

from radiobench.cli import main
from radiobench.leaderboard import COST_HEADERS, SMOKE_NOTE, collect, publish, render

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


def test_presets_are_never_mixed(first_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(first_run, other)
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


# -- run directories written by hand ------------------------------------------------------------------
def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def make_run(root: Path, rows: dict, fingerprint: str = "fp0", preset: str = "smoke") -> Path:
    """rows[name][seed]: {"metrics": [records], "fit": ..., "samples": ..., "error": ...} (each optional)."""
    _write(root / "manifest.json", {
        "identity": {"dataset": "synthetic", "preset": preset, "dataset_fingerprint": fingerprint},
        "dataset": {"name": "synthetic", "fingerprint": fingerprint, "reference_split": "test", "n_reference": 20},
        "reference_row": {"source": "valid"}})
    for name, seeds in rows.items():
        for seed, files in seeds.items():
            d = root / name / f"seed-{seed}"
            for r in files.get("metrics", []):
                _write(d / "metrics" / f"{r['metric']}.json", r)
            for key, rel in (("fit", "checkpoint/fit.json"), ("samples", "samples.json"), ("error", "error.json")):
                if key in files:
                    _write(d / rel, files[key])
    return root


def rec(metric, value=None, *, status="ok", ci=(None, None), direction="lower", config=None, inputs=None,
        fingerprint="fp0", preset="smoke", details=None):
    """A metric record as the runner writes it (``value`` None: the metric gave NaN)."""
    r = {"metric": metric, "status": status, "provenance": {"preset": preset, "dataset_fingerprint": fingerprint}}
    if config is not None:
        r["provenance"]["generator_config"] = config
    if status == "ok":
        r["result"] = {"metric": metric, "value": value, "ci_low": ci[0], "ci_high": ci[1], "direction": direction,
                       "fingerprints": {"dataset": fingerprint}, "details": details or {}}
    elif status == "skipped":
        r["reason"] = "the generator cannot be conditioned on ['mask']"
    else:
        r["error"] = "ValueError: boom"
    if inputs is not None:
        r["inputs"] = inputs
    return r


FIT = {"config": {"name": "g", "preset": "smoke", "lr": 1}, "cost": {"parameters": 2_500_000, "train_seconds": 90.0,
                                                                     "sample_seconds_per_image": 0.25}}


def cells_of(table, row_name):
    return {m: c.text() for m, c in next(r for r in table.rows if r.name == row_name).cells.items()}


def _significance_run(root: Path) -> Path:
    """Three seeds each. fid_byol: gan is better than the floor by its mean only, vae clearly, and vae is not
    clearly better than gan. ramis: gan clearly better than the floor and than vae."""
    values = {"pixel_floor": ([79.0, 80.0, 81.0], [1.64, 1.65, 1.66]), "gan": ([60.0, 90.0, 70.0], [2.0, 2.01, 2.02]),
              "vae": ([50.0, 51.0, 52.0], [1.35, 1.4, 1.45])}
    return make_run(root, {name: {s: {"metrics": [rec("fid_byol", fid[s]), rec("ramis", ramis[s], direction="higher")]}
                                  for s in range(3)} for name, (fid, ramis) in values.items()})


def test_only_significant_differences_are_marked(tmp_path):
    (table,) = collect([_significance_run(tmp_path / "run")])
    rows = {r.name: r for r in table.rows}
    # the floor is the row whose generator class says so (Generator.floor), whatever its name
    assert rows["pixel_floor"].floor and rows["pixel_floor"].reference
    marks = {(r.name, m): (r.cells[m].beats_floor, r.cells[m].best) for r in table.rows for m in ("fid_byol", "ramis")}
    assert marks == {("pixel_floor", "fid_byol"): (False, False), ("pixel_floor", "ramis"): (False, False),
                     ("gan", "fid_byol"): (False, False),  # 73.3 against 80.1: better by its mean, not at 95%
                     ("vae", "fid_byol"): (True, False),  # the best mean, not separated from gan's: no bold
                     ("gan", "ramis"): (True, True), ("vae", "ramis"): (False, False)}
    md = render([table], "md")
    assert "| gan | 3 | 73.3 ± 38 | **2.01 ± 0.025⁺** |" in md and "| vae | 3 | 51.0 ± 2.5⁺ | 1.40 ± 0.12 |" in md
    assert r"\textbf{2.01 $\pm$ 0.025$^{+}$}" in render([table], "tex")
    note = "Generators that differ at 95% (Welch test): fid_byol: none; ramis: gan beats vae (p = 0.0016)."
    assert note in table.notes and f"<p>{note}</p>" in render([table], "html")
    rows_csv = {(r["generator"], r["metric"]): r for r in csv.DictReader(io.StringIO(render([table], "csv")))}
    floor = [79.0, 80.0, 81.0]
    for name, seeds, beats in (("gan", [60.0, 90.0, 70.0], "False"), ("vae", [50.0, 51.0, 52.0], "True")):
        got = rows_csv[(name, "fid_byol")]
        assert float(got["p_vs_pixel_floor"]) == pytest.approx(ss.ttest_ind(seeds, floor, equal_var=False).pvalue)
        assert got["beats_pixel_floor"] == beats
    assert rows_csv[("pixel_floor", "fid_byol")]["p_vs_pixel_floor"] == ""
    # vae is worse than the floor on ramis at 95%: a small p, and no mark
    assert float(rows_csv[("vae", "ramis")]["p_vs_pixel_floor"]) < 0.05
    assert rows_csv[("vae", "ramis")]["beats_pixel_floor"] == "False"


def test_the_best_beats_every_other_generator_not_only_the_runner_up(tmp_path):
    run = make_run(tmp_path / "run", {  # b is clearly behind a; c is further behind but too noisy to separate
        "a": {s: {"metrics": [rec("fid_byol", v)]} for s, v in enumerate([10.0, 10.5, 11.0])},
        "b": {s: {"metrics": [rec("fid_byol", v)]} for s, v in enumerate([20.0, 20.5, 21.0])},
        "c": {0: {"metrics": [rec("fid_byol", 30.0, ci=(0.0, 200.0))]}},
    })
    (table,) = collect([run])
    assert not any(r.cells["fid_byol"].best for r in table.rows)
    assert "fid_byol: a beats b (p = 1.6e-05)" in table.notes[-1]
    shutil.rmtree(run / "c")
    (table,) = collect([run])
    assert [r.name for r in table.rows if r.cells["fid_byol"].best] == ["a"]
    shutil.rmtree(run / "b")  # a lone generator beats nobody: not bold, and no pairs to list
    (table,) = collect([run])
    assert not table.rows[0].cells["fid_byol"].best and table.notes == []


def test_failed_cells_say_failed_with_their_stage(tmp_path):
    run = make_run(tmp_path / "run", {
        "reference": {0: {"metrics": [rec("fid_byol", 1.0), rec("mean_w1", 0.1)]}},
        # failed at fit; its metric files come from an earlier attempt and are not current
        "dcgan": {0: {"metrics": [rec("fid_byol", 5.0)], "error": {"stage": "fit", "error": "RuntimeError: diverged"}}},
        "cvae": {0: {"fit": FIT, "error": {"stage": "sample", "error": "ValueError: 20x20, not 40x40"}}},
        "pggan": {0: {"error": {"stage": "fit/sample", "error": "OSError: disk full"}}},  # written before the split
        "edm": {0: {"metrics": [rec("fid_byol", status="error"), rec("mean_w1", 0.2)], "fit": FIT}},
        "vae": {0: {"metrics": [rec("fid_byol", 3.0, ci=(2.0, 4.0), config=FIT["config"]),
                                rec("mean_w1", 0.3, config=FIT["config"])], "fit": FIT},
                1: {"error": {"stage": "fit", "error": "RuntimeError: NaN loss"}}},
    })
    (table,) = collect([run])
    assert cells_of(table, "dcgan") == {"fid_byol": "failed (fit)", "mean_w1": "failed (fit)"}
    assert cells_of(table, "cvae") == {"fid_byol": "failed (sample)", "mean_w1": "failed (sample)"}
    assert cells_of(table, "pggan") == {"fid_byol": "failed (fit/sample)", "mean_w1": "failed (fit/sample)"}
    assert cells_of(table, "edm") == {"fid_byol": "failed (metric)", "mean_w1": "0.200"}
    # a failed seed joins its generator's row, and the other seed's value says it stands alone
    assert [r.name for r in table.rows].count("vae") == 1
    assert cells_of(table, "vae") == {"fid_byol": "3.00 [2.0, 4.0]; failed (fit) in 1 of 2 seeds",
                                      "mean_w1": "0.300; failed (fit) in 1 of 2 seeds"}
    vae = next(r for r in table.rows if r.name == "vae")
    assert vae.seeds == {0, 1} and vae.cells["fid_byol"].n_seeds == 1
    assert not any(r.cells["fid_byol"].best for r in table.rows if r.name in ("dcgan", "cvae", "pggan", "edm"))
    assert "| dcgan | 1 | failed (fit) | failed (fit) |" in render([table], "md")
    status = {(r["generator"], r["metric"]): r["status"] for r in csv.DictReader(io.StringIO(render([table], "csv")))}
    assert status[("cvae", "fid_byol")] == "failed (sample)" and status[("edm", "fid_byol")] == "failed (metric)"
    assert status[("vae", "mean_w1")] == "ok; failed (fit) in 1 of 2 seeds"


def test_nan_is_shown_as_nan_and_n_a_only_when_a_metric_does_not_apply(tmp_path):
    run = make_run(tmp_path / "run", {
        "gan": {0: {"metrics": [rec("fid_byol", None), rec("segmentation_iou", status="skipped")]}},
        "vae": {0: {"metrics": [rec("fid_byol", 3.0)]}, 1: {"metrics": [rec("fid_byol", None)]}},
        "edm": {0: {"metrics": [rec("fid_byol", 10.0, ci=(9.0, 11.0))]}},
        "flow": {0: {"metrics": [rec("fid_byol", 20.0, ci=(19.0, 21.0))]}},
    })
    (table,) = collect([run])
    assert cells_of(table, "gan") == {"fid_byol": "NaN", "segmentation_iou": "n/a"}
    assert cells_of(table, "vae") == {"fid_byol": "NaN"}  # one seed's NaN is not dropped from the mean
    best = [r.name for r in table.rows if r.cells["fid_byol"].best]
    assert best == ["edm"]  # NaN is not "lower" than 10
    rows = {(r["generator"], r["metric"]): r for r in csv.DictReader(io.StringIO(render([table], "csv")))}
    assert rows[("gan", "fid_byol")]["value"] == "nan" and rows[("gan", "fid_byol")]["status"] == "ok"
    assert rows[("gan", "segmentation_iou")]["value"] == "" and rows[("gan", "segmentation_iou")]["status"] == "skipped"


def test_arrows_come_from_the_metric_not_from_the_cells(tmp_path):
    run = make_run(tmp_path / "run", {
        "gan": {0: {"metrics": [rec("ramis", 1.5, ci=(1.4, 1.6), direction="lower"),  # a stored direction that is wrong
                                rec("classifier_accuracy", status="skipped"),  # no value anywhere in the column
                                rec("not_installed_score", 0.5, direction="higher"),
                                rec("not_installed_skip", status="skipped")]}},
        "vae": {0: {"metrics": [rec("ramis", 2.0, ci=(1.9, 2.1), direction="lower"),
                                rec("not_installed_score", 0.7, direction="higher")]}},
    })
    (table,) = collect([run])
    assert table.directions == {"ramis": "higher", "classifier_accuracy": "higher", "not_installed_score": "higher"}
    assert [r.name for r in table.rows if r.cells["ramis"].best] == ["vae"]
    md = render([table], "md")
    for head in ("ramis ↑", "classifier_accuracy ↑", "not_installed_score ↑", "not_installed_skip ?"):
        assert f" {head} |" in md, head
    assert any(n.startswith("? not_installed_skip: not installed") for n in table.notes)
    assert r"ramis $\uparrow$" in render([table], "tex")


def _custody_run(root: Path) -> Path:
    """Rows whose metric files were (or were not) computed from the row's current sample set and checkpoint."""
    config = {"name": "g", "preset": "smoke", "lr": 1.0, "zero_below": 0.0}  # 1.0 as 1: the same configuration
    fit = {**FIT, "config": {**FIT["config"], "zero_below": 0.5}}  # sampled with another zero_below than at fit
    samples = {"sha256": "s1", "checkpoint_sha256": "k1", "sampling": {"zero_below": 0.0}}
    good = {"samples_sha256": "s1", "checkpoint_sha256": "k1"}

    def row(value, samples=samples, inputs=good, **kw):
        return {0: {"metrics": [rec("fid_byol", value, ci=(value - 0.1, value + 0.1), config=kw.pop("config", config),
                                    inputs=inputs, **kw),
                                rec("mean_w1", 0.5, config=config, inputs=inputs and good)],
                    "fit": fit, "samples": samples}}

    return make_run(root, {
        "reference": {0: {"metrics": [rec("fid_byol", 0.5, inputs={"real_sha256": "r", "reference_sha256": "t"}),
                                      rec("mean_w1", 0.1, inputs={"real_sha256": "r", "reference_sha256": "t"})]}},
        "fresh": row(5.0),
        # drawn again with another zero_below into the same bytes: its metrics still score this very set
        "redrawn": row(6.0, config={**config, "zero_below": 0.3}),
        "resampled": row(1.0, samples={**samples, "sha256": "s2"}),
        "retrained": row(1.1, samples={**samples, "checkpoint_sha256": "k2"}),
        "otherdata": row(1.2, fingerprint="fp9"),
        "otherpreset": row(1.3, preset="cpu"),
        "otherconfig": row(1.4, config={**config, "lr": 2.0}),
        # written before custody was recorded: not checked, shown as before
        "legacy": row(3.0, inputs=None, samples={"sampling": {"zero_below": 0.0}}, preset="cpu"),
    })


def test_rows_with_stale_or_foreign_cells_are_marked(tmp_path):
    (table,) = collect([_custody_run(tmp_path / "run")])
    marks = {r.name: r.marks for r in table.rows}
    assert marks == {"real (valid vs test)": [], "fresh": [], "redrawn": [], "legacy": [], "resampled": ["stale"],
                     "retrained": ["stale"], "otherdata": ["foreign"], "otherpreset": ["foreign"],
                     "otherconfig": ["foreign"]}
    # a stale or foreign number never wins its column; the unverified legacy one still may
    assert [r.name for r in table.rows if r.cells["fid_byol"].best] == ["legacy"]
    md = render([table], "md")
    assert "| resampled [stale] | 1 |" in md and "| otherconfig [foreign] | 1 |" in md and "| legacy | 1 |" in md
    assert ("[stale] resampled: fid_byol, mean_w1 computed from another sample set or checkpoint than the row's "
            "current one; run it again to redo them") in table.notes
    assert sum(n.startswith("[foreign] ") for n in table.notes) == 3 and len(table.notes) == 7  # † and the pairs
    assert "[stale] retrained" in render([table], "tex") and "[foreign] otherdata" in render([table], "html")
    status = {(r["generator"], r["metric"]): r["status"] for r in csv.DictReader(io.StringIO(render([table], "csv")))}
    assert status[("resampled", "mean_w1")] == "ok; stale" and status[("otherconfig", "mean_w1")] == "ok"
    assert status[("otherconfig", "fid_byol")] == "ok; foreign" and status[("legacy", "fid_byol")] == "ok"
    for name in ("resampled", "retrained", "otherdata", "otherpreset", "otherconfig"):  # without these: no notes
        shutil.rmtree(tmp_path / "run" / name)
    (clean,) = collect([tmp_path / "run"])
    assert [n for n in clean.notes if not n.startswith("Generators that differ")] == []
    assert not any(r.marks for r in clean.rows)


def test_publish_copies_files_readable_by_everyone(tmp_path):
    old = os.umask(0o077)  # the user's umask: files 0600, folders 0700
    try:
        run = _custody_run(tmp_path / "run")
        for p in run.rglob("*"):
            p.chmod(0o700 if p.is_dir() else 0o600)
        copied = publish(run, tmp_path / "pub")
    finally:
        os.umask(old)
    assert len(copied) == len(list(run.rglob("*.json")))
    paths = [tmp_path / "pub", *(tmp_path / "pub").rglob("*")]
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()} == {0o644}
    assert {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()} == {0o755}


# -- the formats, parsed -------------------------------------------------------------------------------
class TableParser(HTMLParser):
    """Tables as lists of rows of (cell text, bold); headings and paragraphs as text."""

    def __init__(self):
        super().__init__()
        self.tables, self.headings, self.paragraphs, self.row_classes = [], [], [], []
        self._text, self._bold, self._in = None, False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self.row_classes.append(dict(attrs).get("class"))
        elif tag in ("td", "th", "h3", "p"):
            self._text, self._bold, self._in = "", False, tag
        elif tag == "b":
            self._bold = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append((self._text, self._bold))
        elif tag == "h3":
            self.headings.append(self._text)
        elif tag == "p":
            self.paragraphs.append(self._text)
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._text += data


def _format_run(root: Path) -> Path:
    """Names to escape (underscores; & and < in the run's path), several seeds, a failure, a NaN, n/a."""
    cfg = {"name": "my_gan", "preset": "smoke"}
    # the sampling cost in samples.json, where runs record it now (fit.json: the training cost only)
    fit = {**FIT, "cost": {"parameters": 2_500_000, "train_seconds": 90.0}}
    samples = {"cost": {"sample_seconds_per_image": 0.125, "nfe_per_sample": 1}}
    return make_run(root / "runs & <tests>", {
        "reference": {0: {"metrics": [rec("fid_byol", 1.25, ci=(0.5, 2.0)), rec("mean_w1", 0.0125, ci=(0.01, 0.02)),
                                      rec("segmentation_iou", 0.875, ci=(0.75, 0.9))]}},
        "my_gan": {s: {"metrics": [rec("fid_byol", v, config=cfg), rec("mean_w1", w, config=cfg),
                                   rec("segmentation_iou", status="skipped", config=cfg)],
                       "fit": fit, "samples": samples}
                   for s, v, w in ((0, 40.5, 0.03125), (1, 30.25, 0.0625), (2, 35.0, 0.046875))},
        "vae_2": {0: {"metrics": [rec("fid_byol", None), rec("mean_w1", 0.5, ci=(0.25, 0.75))], "fit": FIT}},
        "dc_gan": {0: {"error": {"stage": "fit", "error": "RuntimeError: diverged"}}},
    })


@pytest.fixture
def format_run(tmp_path):
    run = _format_run(tmp_path)
    (table,) = collect([run])
    return run, table


def expected_rows(table):
    """Each row as the tables show it: label, seeds, metric cells, cost cells."""
    from radiobench.leaderboard import _cost_text

    return [[r.label(), str(len(r.seeds)), *(r.cells[m].text() if m in r.cells else "" for m in table.metrics),
             *_cost_text(r)] for r in table.rows]


def test_html_rows_and_cells_match_the_table(format_run):
    run, table = format_run
    page = TableParser()
    page.feed(render([table], "html"))
    (rows,) = page.tables
    arrows = {"lower": "↓", "higher": "↑"}
    heads = [f"{m} {arrows[table.directions[m]]}" for m in table.metrics]
    assert [t for t, _ in rows[0]] == ["generator", "seeds", *heads, *COST_HEADERS]
    assert [[t for t, _ in r] for r in rows[1:]] == expected_rows(table)
    assert [[b for _, b in r[2:2 + len(table.metrics)]] for r in rows[1:]] == [
        [r.cells[m].best if m in r.cells else False for m in table.metrics] for r in table.rows]
    assert page.row_classes[1:] == ["ref" if r.reference else None for r in table.rows]
    assert page.headings == [f"synthetic — preset smoke (dataset fingerprint fp0; reference split N = 20; runs: {run})"]
    got = {r[0][0]: [t for t, _ in r[2:5]] for r in rows[1:]}
    assert got == {"real (valid vs test)": ["1.25 [0.50, 2.0]", "0.0125 [0.010, 0.020]", "0.875 [0.75, 0.90]"],
                   "dc_gan": ["failed (fit)"] * 3,
                   "my_gan": ["35.2 ± 13", "0.0469 ± 0.039", "n/a"],
                   "vae_2": ["NaN", "0.500 [0.25, 0.75]", ""]}
    # my_gan: best mean_w1, beating vae_2's; fid_byol: no other value to beat (vae_2's is NaN)
    assert [b for _, b in rows[1:][2][2:5]] == [False, True, False]


def test_latex_rows_columns_and_escaping(format_run):
    _, table = format_run
    tex = render([table], "tex")
    spec = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1)
    body = tex.split("\\toprule\n", 1)[1].split("\\bottomrule", 1)[0]
    head, rows = body.split("\\midrule\n")
    lines = [head.strip(), *rows.strip().split("\n")]
    assert len(lines) == 1 + len(table.rows) and all(line.endswith(r" \\") for line in lines)
    cells = [re.split(r"(?<!\\)&", line[:-3]) for line in lines]
    assert {len(c) for c in cells} == {len(spec)} == {2 + len(table.metrics) + len(COST_HEADERS)}
    names = [c[0].strip() for c in cells[1:]]
    assert names == [r"\textit{real (valid vs test)}", r"dc\_gan", r"my\_gan", r"vae\_2"]
    assert [c.strip() for c in cells[0][2:5]] == [r"fid\_byol $\downarrow$", r"mean\_w1 $\downarrow$",
                                                  r"segmentation\_iou $\uparrow$"]
    assert [c.strip() for c in cells[2][2:5]] == ["failed (fit)"] * 3 and cells[4][2].strip() == "NaN"
    assert cells[3][2].strip() == r"35.2 $\pm$ 13" and cells[3][3].strip() == r"\textbf{0.0469 $\pm$ 0.039}"
    assert re.search(r"(?<!\\)[_%#]", tex.replace("\\_", "").replace("\\%", "").replace("\\#", "")) is None
    assert r"runs \& <tests>" in tex


def test_csv_header_and_values_round_trip_to_the_stored_numbers(format_run, capsys):
    run, table = format_run
    text = render([table], "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["dataset", "preset", "dataset_fingerprint", "generator", "reference_row", "metric",
                             "direction", "value", "ci_low", "ci_high", "n_seeds", "status", "best", "comparable",
                             "beats_pixel_floor", "p_vs_pixel_floor", "parameters", "train_minutes",
                             "sample_seconds_per_image"]
    assert len(rows) == len(table.rows) * len(table.metrics)
    by = {(r["generator"], r["metric"]): r for r in rows}
    stored = {}
    for f in run.glob("*/seed-*/metrics/*.json"):
        r = json.loads(f.read_text())
        if r["status"] == "ok":
            row = "real (valid vs test)" if f.parts[-4] == "reference" else f.parts[-4]
            stored.setdefault((row, r["metric"]), []).append(r["result"])
    assert set(stored) == {k for k, r in by.items() if r["status"].startswith("ok")}
    for key, results in stored.items():
        got = by[key]
        values = [np.nan if r["value"] is None else r["value"] for r in results]
        assert int(got["n_seeds"]) == len(results)
        if len(results) == 1:  # one seed: its own value and interval, exactly
            assert np.array_equal(float(got["value"]), values[0], equal_nan=True), key
            assert [float(got["ci_low"] or "nan"), float(got["ci_high"] or "nan")] == pytest.approx(
                [results[0]["ci_low"] or np.nan, results[0]["ci_high"] or np.nan], nan_ok=True)
        else:
            assert float(got["value"]) == pytest.approx(np.mean(values), rel=1e-15), key
            assert float(got["ci_low"]) < min(values) < max(values) < float(got["ci_high"])
    assert by[("dc_gan", "fid_byol")]["status"] == "failed (fit)" and by[("dc_gan", "fid_byol")]["value"] == ""
    costs = ("parameters", "train_minutes", "sample_seconds_per_image")
    assert [by[("my_gan", "fid_byol")][k] for k in costs] == ["2500000.0", "1.5", "0.125"]
    assert [by[("vae_2", "fid_byol")][k] for k in costs] == ["2500000.0", "1.5", "0.25"]  # a run made before
    assert main(["leaderboard", str(run), "--format", "csv"]) == 0
    assert capsys.readouterr().out == text


@pytest.mark.parametrize("manifest", ["{not json", "[]", '{"identity": {}}'])
def test_a_broken_manifest_is_one_clear_error_and_writes_nothing(tmp_path, capsys, manifest):
    run = make_run(tmp_path / "run", {"reference": {0: {"metrics": [rec("mean_w1", 0.1)]}}})
    (run / "manifest.json").write_text(manifest)
    for argv in (["leaderboard", str(run)], ["report", str(run)], ["publish", str(run), "--to", str(tmp_path / "pub")]):
        assert main(argv) == 2
        assert "manifest.json" in capsys.readouterr().err
    assert not (run / "report").exists() and not (tmp_path / "pub").exists()


def test_report_of_a_missing_run_creates_nothing(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert not (tmp_path / "missing").exists()


def test_an_unreadable_metric_record_is_a_failed_cell_not_a_value(tmp_path):
    run = make_run(tmp_path / "run", {"reference": {0: {"metrics": [rec("mean_w1", 0.1)]}},
                                      "edm": {0: {"metrics": [rec("mean_w1", 0.2), rec("pixel_w1", 0.3)]}}})
    (run / "edm" / "seed-0" / "metrics" / "pixel_w1.json").write_text('{"status": "ok", "result": {"val')
    cells = cells_of(collect([run])[0], "edm")
    assert cells["mean_w1"].startswith("0.2") and cells["pixel_w1"].startswith("failed")


def test_the_floor_row_is_the_generator_whose_class_says_so():
    from radiobench.leaderboard import _generator_flag

    assert _generator_flag("pixel_floor", "floor") and not _generator_flag("replay", "floor")
    assert not _generator_flag("edm", "floor") and not _generator_flag("not_installed", "floor")


# -- merged run directories, failed rows, smoke tables (issue 19) ---------------------------------------
def _two_runs(root: Path, second_ref: float) -> list[Path]:
    """Two runs of one dataset and preset, each with its own reference row at seed 0 (as every run has)."""
    ref = {"real_sha256": "r", "reference_sha256": "t"}
    a = make_run(root / "a", {"reference": {0: {"metrics": [rec("fid_byol", 5.13, ci=(4.0, 6.0), inputs=ref)]}},
                              "gan": {0: {"metrics": [rec("fid_byol", 40.0, ci=(30.0, 50.0))]}}})
    b = make_run(root / "b", {"reference": {0: {"metrics": [rec("fid_byol", second_ref, ci=(4.0, 6.0), inputs=ref)]}},
                              "vae": {0: {"metrics": [rec("fid_byol", 60.0, ci=(50.0, 70.0))]}}})
    # when and where a run ran is not part of its result
    record = b / "reference" / "seed-0" / "metrics" / "fid_byol.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "seconds": 12.5,
                                  "provenance": {"preset": "smoke", "dataset_fingerprint": "fp0", "platform": "b"}}))
    return [a, b]


def test_identical_reference_rows_of_merged_runs_are_one_row_not_two_seeds(tmp_path):
    (table,) = collect(_two_runs(tmp_path, 5.13))
    refs = [r for r in table.rows if r.name.startswith("real")]
    assert [r.name for r in refs] == ["real (valid vs test)"] and refs[0].seeds == {0}
    cell = refs[0].cells["fid_byol"]
    assert cell.n_seeds == 1 and cell.text() == "5.13 [4.0, 6.0]"  # its own interval, not "5.13 ± 0"
    assert "| *real (valid vs test)* | 1 | 5.13 [4.0, 6.0] |" in render([table], "md")
    assert not any("hold different results" in n for n in table.notes)


def test_different_reference_rows_of_merged_runs_are_a_row_per_run(tmp_path):
    a, b = _two_runs(tmp_path, 7.5)
    (table,) = collect([a, b])
    refs = {r.name: r.cells["fid_byol"] for r in table.rows if r.reference}
    assert {n: (c.text(), c.n_seeds) for n, c in refs.items()} == {
        f"real (valid vs test) [run {a}]": ("5.13 [4.0, 6.0]", 1),
        f"real (valid vs test) [run {b}]": ("7.50 [4.0, 6.0]", 1)}
    assert [r.name for r in table.rows][2:] == ["gan", "vae"]  # the reference rows first
    assert (f"real (valid vs test): runs {a}, {b} hold different results for the same seed (e.g. evaluator "
            "networks trained again); one row per run, never averaged as seeds") in table.notes
    assert f"| *real (valid vs test) [run {b}]* | 1 | 7.50 [4.0, 6.0] |" in render([table], "md")
    # the same generator seed in two runs: the same rule
    shutil.copytree(a / "gan", b / "gan")
    (table,) = collect([a, b])
    assert [r.name for r in table.rows if r.name.startswith("gan")] == ["gan"]
    assert next(r for r in table.rows if r.name == "gan").cells["fid_byol"].n_seeds == 1


def test_a_failed_generator_is_never_a_blank_row(tmp_path):
    error = {"stage": "fit", "error": "RuntimeError: diverged"}
    run = make_run(tmp_path / "run", {"dc_gan": {0: {"error": error}}})  # no metric at all: no cell to say it
    (table,) = collect([run])
    path = run / "dc_gan" / "seed-0" / "error.json"
    note = f"dc_gan: seed 0 failed (fit): RuntimeError: diverged (see {path})"
    assert table.metrics == [] and note in table.notes
    assert f"\n{note}\n" in render([table], "md") and f"<p>{note}</p>" in render([table], "html")
    assert r"dc\_gan: seed 0 failed (fit)" in render([table], "tex")


def test_smoke_tables_say_their_numbers_rank_nothing(tmp_path):
    rows = {"gan": {0: {"metrics": [rec("fid_byol", 40.0, ci=(30.0, 50.0))]}}}
    smoke = collect([make_run(tmp_path / "smoke", rows)])
    assert "rank nothing" in SMOKE_NOTE
    md, page, tex = (render(smoke, f) for f in ("md", "html", "tex"))
    assert md.split("\n")[2] == f"**{SMOKE_NOTE}**"  # under the heading, before any number
    assert f"</h3>\n<table>\n<caption><b>{SMOKE_NOTE}</b></caption>\n<tr>" in page
    assert "\\caption{synthetic" in tex and SMOKE_NOTE in tex
    cpu = collect([make_run(tmp_path / "cpu", rows, preset="cpu")])
    assert not any("rank nothing" in render(cpu, f) for f in ("md", "html", "tex"))


def test_the_legend_names_only_the_reference_rows_the_table_has(tmp_path):
    gan = {0: {"metrics": [rec("fid_byol", 40.0, ci=(30.0, 50.0))]}}
    ref = {0: {"metrics": [rec("fid_byol", 5.0, ci=(4.0, 6.0))]}}
    md = render(collect([make_run(tmp_path / "a", {"reference": ref, "gan": gan})]), "md")
    assert "The reference row (real data) shows what a perfect generator scores." in md
    assert "replay" not in md and "floor" not in md and "⁺" not in md
    md = render(collect([make_run(tmp_path / "b", {"reference": ref, "replay": gan, "pixel_floor": gan})]), "md")
    assert ("⁺: better than the pixel floor in that test." in md and "Reference rows (real data, replay, pixel floor) "
            "show what a perfect generator, a memorising one and a structure-free one score." in md)
    md = render(collect([make_run(tmp_path / "c", {"replay": gan, "gan": gan})]), "md")
    assert "The reference row (replay) shows what a memorising generator scores." in md and "real data" not in md
    assert "eference row" not in render(collect([make_run(tmp_path / "d", {"gan": gan})]), "md")


def test_unreadable_row_files_never_take_the_table_down(tmp_path):
    run = _custody_run(tmp_path / "run")
    (run / "fresh" / "seed-0" / "samples.json").write_text('{"sha256": "s')  # truncated
    (run / "resampled" / "seed-0" / "checkpoint" / "fit.json").write_text("{")
    _write(run / "retrained" / "seed-0" / "error.json", {})
    (run / "retrained" / "seed-0" / "error.json").write_text("[1, 2")
    (run / "fresh" / "seed-x").mkdir()
    table = collect([run])[0]
    rows = {r.name: r for r in table.rows}
    assert "stale" in rows["fresh"].marks  # its sample set can no longer be verified
    assert cells_of(table, "retrained")["fid_byol"].startswith("failed")
    render([table], "md")


def test_a_seed_still_running_neither_splits_its_row_nor_counts(tmp_path):
    config = {"name": "g", "preset": "smoke", "lr": 1}
    done = {"metrics": [rec("pixel_w1", 0.5, ci=(0.4, 0.6), config=config)], "fit": FIT}
    run = make_run(tmp_path / "run", {"g": {0: done, 1: done, 2: {"fit": FIT}}})  # seed 2: trained, not scored
    (table,) = collect([run])
    (row,) = [r for r in table.rows if r.name.startswith("g")]
    assert row.name == "g" and set(row.seeds) == {0, 1} and not any("configurations" in n for n in table.notes)


def test_cells_of_other_evaluators_or_unrecorded_weights_are_daggered(tmp_path):
    """A cell's evaluator is its training fingerprint and, in records since weights were hashed, its weights'
    sha256. Other training, other weights, or no recorded weights beside recorded ones: daggered, out of the
    ranking (retraining from one fingerprint on another machine gave other weights: benchmarks/README.md)."""
    def fid(value, **evaluator):
        r = rec("fid_byol", value)
        r["result"]["fingerprints"].update(evaluator)
        return r

    same, other_weights = {"byol": "b1", "byol_weights": "w1"}, {"byol": "b1", "byol_weights": "w2"}
    rows = {"pixel_floor": {s: {"metrics": [fid(80.0 + s, **same)]} for s in range(3)},
            "new": {s: {"metrics": [fid(50.0 + s, **same)]} for s in range(3)},
            "old": {s: {"metrics": [fid(60.0 + s, byol="b1")]} for s in range(3)},
            "retrained": {s: {"metrics": [fid(40.0 + s, **other_weights)]} for s in range(3)},
            "other": {s: {"metrics": [fid(45.0 + s, byol="b2")]} for s in range(3)}}
    table = collect([make_run(tmp_path / "run", rows)])[0]
    marks = {r.name: r.cells["fid_byol"].incomparable for r in table.rows}
    assert marks == {"pixel_floor": False, "new": False, "old": True, "retrained": True, "other": True}
    assert cells_of(table, "retrained")["fid_byol"].endswith("†") and "†" not in cells_of(table, "new")["fid_byol"]
    assert [n for n in table.notes if n.startswith("†")] == ["† fid_byol: computed with different evaluator "
                                                              "networks/data than the rest of its column"]
    assert "beats" not in " ".join(n for n in table.notes if "old" in n or "retrained" in n)  # out of the tests
    # one evaluator throughout (recorded weights or not): no dagger
    legacy = {name: {s: {"metrics": [fid(v + s, byol="b1")]} for s in range(3)}
              for name, v in (("pixel_floor", 80.0), ("old", 60.0))}
    table = collect([make_run(tmp_path / "legacy", legacy)])[0]
    assert not any(n.startswith("†") for n in table.notes)
    assert not any(c.incomparable for r in table.rows for c in r.cells.values())


def test_class_fidelity_is_accuracy_over_the_referees_real_accuracy_per_seed(tmp_path):
    """Paper 000 compares 83.4% on generated with 81.5% on real images: the note gives each row's ratio, per seed
    against that seed's record of the referee on real images, then the Student-t interval over seeds."""
    def acc(value, real, ci=(None, None)):
        return rec("classifier_accuracy", value, ci=ci, direction="higher",
                   details={"real_reference": {"accuracy": real}})

    run = make_run(tmp_path / "run", {
        "edm": {s: {"metrics": [acc(v, r)]} for s, (v, r) in enumerate([(0.6, 0.8), (0.5, 0.8), (0.7, 0.7)])},
        "gan": {0: {"metrics": [acc(0.4, 0.8, ci=(0.32, 0.48))]}},
        "vae": {0: {"metrics": [rec("fid_byol", 3.0)]}},  # no accuracy: no ratio
    })
    (table,) = collect([run])
    (note,) = [n for n in table.notes if n.startswith("Class fidelity")]
    ratios = np.array([0.75, 0.625, 1.0])
    half = ss.t.ppf(0.975, 2) * ratios.std(ddof=1) / np.sqrt(3)
    assert f"edm {ratios.mean():.3f} ± {half:.2f} (referee on real images 0.767, 3 seeds)" in note
    assert "gan 0.500 [0.40, 0.60] (referee on real images 0.800)" in note and "vae" not in note
