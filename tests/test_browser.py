"""The report in a real browser: headless Chromium (Debian's ``chromium``, driven by ``playwright`` through its
executable path; nothing downloaded) loads a smoke run's report with no console errors or failed loads, every
image decodes, and a screenshot of the page is not blank. Skipped when Chromium is absent, except under
RADIOBENCH_REQUIRE_BROWSER=1 (CI), where its absence fails."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium() -> str | None:
    """The Chromium binary: RADIOBENCH_CHROMIUM, else Debian's (the binary behind its /usr/bin wrapper), else PATH's."""
    given = os.environ.get("RADIOBENCH_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    return next((c for c in CANDIDATES if Path(c).exists()), None) or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    required = os.environ.get("RADIOBENCH_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("RADIOBENCH_REQUIRE_BROWSER=1 but playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if path is None:
        if required:
            pytest.fail("RADIOBENCH_REQUIRE_BROWSER=1 but no Chromium found (apt-get install chromium)")
        pytest.skip("no Chromium found: apt-get install chromium (or set RADIOBENCH_CHROMIUM) to run the browser check")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    from test_report import smoke_run

    from radiobench.report import write_report

    return write_report(smoke_run(tmp_path_factory.mktemp("browser") / "run"))


def test_the_report_renders_in_chromium(browser, report_page, tmp_path):
    from PIL import Image

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"failed to load {r.url}: {r.failure}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 400 else None)
    page.goto(report_page.as_uri(), wait_until="load")
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])")
    assert not errors, errors
    assert len(images) >= 5, images  # real, generated, two histograms, memorisation
    assert all(complete and width > 0 for _, complete, width in images), [i for i in images if not i[2]]
    assert page.title() == "radiobench report"
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L"), dtype=float)
    (tmp_path / "report.png").write_bytes(page.screenshot(full_page=True))
    assert shot.shape[1] == 1200 and shot.shape[0] > 2000, shot.shape  # the whole page: tables and figures
    assert shot.std() > 20, f"the page looks blank (pixel standard deviation {shot.std():.1f})"
    assert (shot < 60).mean() > 0.02  # dark image pixels painted (inferno maps empty sky to black)
    page.close()
