"""``radiobench report``: its table is the leaderboard's table object; its histograms come from any metric
whose result details carry them; real images beside generated ones whether or not ``replay`` ran (a note
when the data are not here); labelled axes on every plot; Poisson bands only over bins with counts; one
loss panel per generator; the figures other metric details hold."""
import html
import json

import numpy as np
import pytest
from test_leaderboard import TableParser, _format_run, expected_rows, make_run, rec

import radiobench.report as report
from radiobench.leaderboard import collect, html_tables
from radiobench.report import poisson_bands, write_report
from radiobench.runner import RunConfig, run


def smoke_run(out):
    """A real smoke run without ``replay``: the pixel floor scored by distribution and memorisation metrics."""
    run(RunConfig(generators=["pixel_floor"], dataset="synthetic", out=out, progress=False,
                  metrics=["pixel_w1", "mean_w1", "memorisation"]))
    return out


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return smoke_run(tmp_path_factory.mktemp("smoke") / "run")


@pytest.fixture
def figures(monkeypatch):
    """Every figure the report saves, by file name."""
    saved = {}
    real_save = report._save

    def save(fig, path, tight=True):
        saved[path.name] = fig
        fig.canvas.draw()  # the labels as rendered
        real_save(fig, path, tight)

    monkeypatch.setattr(report, "_save", save)
    return saved


def test_report_shows_the_leaderboard_table(tmp_path):
    run_dir = _format_run(tmp_path)
    index = write_report(run_dir, tmp_path / "report")
    page = TableParser()
    page.feed(index.read_text())
    (table,) = collect([run_dir])
    (rows,) = page.tables
    assert [[t for t, _ in r] for r in rows[1:]] == expected_rows(table)
    assert html_tables([table]) in index.read_text()
    assert "failed (fit)" in {t for r in rows for t, _ in r}
    assert page.paragraphs[1:1 + len(table.notes)] == table.notes


def test_report_plots_the_histograms_of_any_metric(tmp_path):
    hist = {"edges": [0.0, 0.5, 1.0], "counts": [3, 1], "density": [1.5, 0.5], "low": [1.0, 0.1], "high": [2.0, 1.0]}
    details = {"quantity": "peak", "histograms": {"real": hist, "generated": hist}}
    run_dir = make_run(tmp_path / "run", {  # neither is a built-in *_w1 metric
        "reference": {0: {"metrics": [rec("mean_ks", 0.5, details={**details, "quantity": "mean"})]}},
        "gan": {0: {"metrics": [rec("peak_emd", 0.25, details=details),
                                rec("mean_ks", 0.75, details={**details, "quantity": "mean"})]}},
    })
    write_report(run_dir, tmp_path / "report")
    assert {p.name for p in (tmp_path / "report").glob("hist_*.png")} == {"hist_peak.png", "hist_mean.png"}
    assert "<h4>peak distribution</h4><img src='hist_peak.png'" in (tmp_path / "report" / "index.html").read_text()


def test_poisson_bands_leave_empty_bins_out():
    h = {"edges": np.arange(7.0), "counts": [2, 3, 0, 0, 5, 0], "density": [0.2, 0.3, 0, 0, 0.5, 0],
         "low": [0.1, 0.2, 0.0, 0.0, 0.4, 0.0], "high": [0.3, 0.4, 0.18, 0.18, 0.6, 0.18]}
    bands = poisson_bands(h)
    assert [(x[0], x[-1]) for x, _, _ in bands] == [(0.0, 2.0), (4.0, 5.0)]  # bins 0-1 and bin 4 only
    assert all(np.all(lo > 0) and np.all(hi > lo) for _, lo, hi in bands)
    np.testing.assert_array_equal(bands[0][1], [0.1, 0.1, 0.2, 0.2])  # a step outline, not a line through centres


def test_real_images_without_replay_and_labelled_axes_on_every_plot(smoke, tmp_path, figures):
    index = write_report(smoke, tmp_path / "report")
    text = index.read_text()
    assert "<img src='samples_real.png'" in text and "<img src='samples_pixel_floor.png'" in text
    assert "class='note'" not in text
    assert {"hist_pixel.png", "hist_mean.png", "memorisation.png", "memorisation_pairs.png"} <= set(figures)
    for name, fig in figures.items():
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                assert ax.get_ylabel() or ax.get_xlabel(), f"{name}: colour bar without a label"
            elif ax.axison and not ax.images:  # a plot (image grids show images, with a labelled colour bar)
                assert ax.get_xlabel() and ax.get_ylabel(), f"{name}: a plot without axis labels"
    assert any(ax.get_label() == "<colorbar>" for ax in figures["samples_real.png"].axes)


def test_without_the_data_the_report_says_so(smoke, tmp_path):
    manifest = json.loads((smoke / "manifest.json").read_text())
    moved = tmp_path / "published"
    import shutil

    shutil.copytree(smoke, moved, ignore=shutil.ignore_patterns("report"))
    manifest["dataset"]["fingerprint"] = "0" * 16  # a dataset this machine does not have
    (moved / "manifest.json").write_text(json.dumps(manifest))
    text = html.unescape(write_report(moved, tmp_path / "report").read_text())
    assert "samples_real.png" not in text and not (tmp_path / "report" / "samples_real.png").exists()
    assert "Real images are not shown: the dataset 'synthetic' on this machine is not the one this run used" in text
    assert "Memorisation pairs are not shown" in text
    assert "<img src='samples_pixel_floor.png'" in text  # what the run holds is still shown


def test_loss_curves_one_panel_per_generator(tmp_path, figures):
    run_dir = make_run(tmp_path / "run", {"big": {0: {}}, "small": {0: {}}})
    for name, scale in (("big", 50.0), ("small", 1.0)):
        f = run_dir / name / "seed-0" / "train" / "losses.csv"
        f.parent.mkdir(parents=True)
        f.write_text("step,loss\n" + "".join(f"{i},{scale * (1 + 1 / (i + 1))}\n" for i in range(100)))
    text = write_report(run_dir, tmp_path / "report").read_text()
    assert "<img src='losses.png'" in text
    panels = figures["losses.png"].axes
    assert [ax.get_title() for ax in panels] == ["big", "small"]
    assert panels[0].get_ylim()[0] > 10 and panels[1].get_ylim()[1] < 5  # each on its own scale


def test_figures_of_what_the_metric_details_hold(tmp_path, figures):
    cm = {"accuracy": 0.5, "ci": [0.4, 0.6], "confusion": [[3, 1], [2, 2]]}
    classifier = {"class_names": ["FRI", "FRII"], "generated": cm, "real_reference": {**cm, "accuracy": 0.75}}
    memo = {"threshold": 0.8, "threshold_rule": "quantile 0.99 of real", "hist_generated": [0, 2, 5, 1],
            "hist_real": [1, 3, 3, 1], "bin_edges": [0, 0.25, 0.5, 0.75, 1.0], "most_similar": []}
    iou = {"per_image_iou_histogram": [0, 0, 1, 3, 6]}
    relation = {"relation": {"x": "peak flux (Jy/beam)", "y": "integrated flux (Jy)", "xscale": "log",
                             "real": {"x": [0.1, 1.0], "y": [0.2, 2.0]},
                             "generated": {"x": [0.1, 1.0], "y": [0.3, 1.5]}}}
    run_dir = make_run(tmp_path / "run", {"gan": {0: {"metrics": [
        rec("classifier_accuracy", 0.5, direction="higher", details=classifier), rec("memorisation", 0.1, details=memo),
        rec("segmentation_iou", 0.6, direction="higher", details=iou), rec("flux_relation", 0.2, details=relation)]}}})
    text = write_report(run_dir, tmp_path / "report").read_text()
    for png in ("confusion.png", "memorisation.png", "segmentation_iou.png", "relation_flux_relation.png"):
        assert f"<img src='{png}'" in text and (tmp_path / "report" / png).stat().st_size > 0
    real, gan = figures["confusion.png"].axes[:2]
    assert [t.get_text() for t in gan.texts] == ["3", "1", "2", "2"] and "0.75" in real.get_title()
    assert figures["relation_flux_relation.png"].axes[0].get_xscale() == "log"


def test_augmentation_utility_figure_against_real_only_training(tmp_path, figures):
    """Issue 15: each generator's gain per seed, its mean and interval, against the real-only zero line."""
    def gain(v, lo, hi):
        return rec("augmentation_gain", v, ci=(lo, hi), direction="higher",
                   details={"real_only": 0.79, "augmented": 0.79 + v})

    run_dir = make_run(tmp_path / "run", {
        "edm": {s: {"metrics": [gain(v, v - 0.03, v + 0.03)]} for s, v in enumerate([0.01, 0.02, 0.03])},
        "dcgan": {0: {"metrics": [gain(-0.02, -0.05, 0.01)]}},
        "cvae": {0: {"metrics": [rec("fid_byol", 3.0)]}},  # not scored on it: not in the figure
    })
    text = write_report(run_dir, tmp_path / "report").read_text()
    assert "<img src='augmentation_gain.png'" in text
    ax = figures["augmentation_gain.png"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["dcgan", "edm"]
    dots = [c.get_offsets()[:, 1].tolist() for c in ax.collections if len(c.get_offsets())]
    assert [0.01, 0.02, 0.03] in [[round(v, 6) for v in d] for d in dots] and [-0.02] in dots
    assert "real-only training (0.790" in ax.get_legend().get_texts()[0].get_text()
    assert ax.get_ylabel() == "gain in accuracy on real test images"
