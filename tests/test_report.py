"""``radiobench report``: its table is the leaderboard's table object, and its histograms come from
any metric whose result details carry them (not from file names it knows)."""
from test_leaderboard import TableParser, _format_run, expected_rows, make_run, rec

from radiobench.leaderboard import collect, html_tables
from radiobench.report import write_report


def test_report_shows_the_leaderboard_table(tmp_path):
    run = _format_run(tmp_path)
    index = write_report(run, tmp_path / "report")
    page = TableParser()
    page.feed(index.read_text())
    (table,) = collect([run])
    (rows,) = page.tables
    assert [[t for t, _ in r] for r in rows[1:]] == expected_rows(table)
    assert html_tables([table]) in index.read_text()
    assert "failed (fit)" in {t for r in rows for t, _ in r} and page.paragraphs[1:] == table.notes


def test_report_plots_the_histograms_of_any_metric(tmp_path):
    hist = {"edges": [0.0, 0.5, 1.0], "counts": [3, 1], "density": [1.5, 0.5], "low": [1.0, 0.1], "high": [2.0, 1.0]}
    details = {"quantity": "peak", "histograms": {"real": hist, "generated": hist}}
    run = make_run(tmp_path / "run", {  # neither is a built-in *_w1 metric
        "reference": {0: {"metrics": [rec("mean_ks", 0.5, details={**details, "quantity": "mean"})]}},
        "gan": {0: {"metrics": [rec("peak_emd", 0.25, details=details),
                                rec("mean_ks", 0.75, details={**details, "quantity": "mean"})]}},
    })
    write_report(run, tmp_path / "report")
    assert {p.name for p in (tmp_path / "report").glob("hist_*.png")} == {"hist_peak.png", "hist_mean.png"}
    assert "<h4>peak distribution</h4><img src='hist_peak.png'>" in (tmp_path / "report" / "index.html").read_text()
