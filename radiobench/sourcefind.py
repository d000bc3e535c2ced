"""PyBDSF (Mohan & Rafferty 2015) on batches of 2-D images: per-image source tables and Gaussian model
images, with Table 5's settings of paper 000 (``TABLE5``).

``fits_header(survey, shape)`` builds the FITS header every image is given (celestial WCS, pixel scale,
restoring beam, frequency) from a dataset's ``SurveyInfo``; ``find_sources(images, header)`` runs PyBDSF on
each image and returns one ``SourceFit`` per image (a failure is recorded in it, never raised).

Speed: a plain ``bdsf.process_image`` call spends most of its time in PyBDSF's own ``gc.collect()`` calls,
which walk every object the process holds (torch's included). ``process_one`` freezes the collector around
the call (``gc.freeze`` moves the heap out of its reach; ``gc.disable`` stops automatic passes) and sets
``ncores=1``; ``find_sources`` spreads chunks of images over a spawned process pool (fresh interpreters:
nothing of the caller's heap, torch included; forkserver would leave its socket directory in $TMPDIR until
the caller exits). Each call works in a
temporary directory that is removed afterwards (PyBDSF writes its log beside its input), so nothing is left
behind. PyBDSF's arrays are transposed ((x, y) = (column, row)); the model images returned here are (row,
column) like the input.
"""
from __future__ import annotations

import gc
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .types import InputError, SurveyInfo

__all__ = ["TABLE5", "SourceFit", "fits_header", "process_one", "find_sources", "default_workers"]

# paper 000 Table 5: island threshold, pixel threshold, constant mean, rms map, hard thresholds
TABLE5: dict[str, Any] = {"thresh_isl": 5.0, "thresh_pix": 0.5, "mean_map": "const", "rms_map": True,
                          "thresh": "hard"}
MIN_PER_WORKER = 64  # images per pool worker below which ``find_sources`` starts fewer workers
POINTING_DEG = (180.0, 30.0)  # the (RA, Dec) every cutout is placed at: the images carry no position


@dataclass
class SourceFit:
    """PyBDSF's result for one image: the Gaussian model image (H, W) in the input's units (zeros when
    nothing was found), its source table and the beam area in pixels; ``error`` is PyBDSF's message
    when it failed (then ``model`` is None)."""

    model: np.ndarray | None
    sources: list[dict[str, float]] = field(default_factory=list)
    n_gaussians: int = 0
    beam_area_pix: float = float("nan")
    error: str | None = None

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def empty(self) -> bool:
        """PyBDSF ran but found no source."""
        return self.error is None and not self.sources


def fits_header(survey: SurveyInfo, shape: Sequence[int]) -> Any:
    """A 2-D FITS header (astropy ``Header``) for images of ``shape`` (H, W) of this survey: a SIN projection
    at ``POINTING_DEG`` with the survey's pixel scale, BMAJ/BMIN/BPA and RESTFREQ. InputError naming what is
    missing when the survey lacks pixel scale, beam or frequency."""
    from astropy.io import fits
    from astropy.wcs import WCS

    missing = [name for name, v in (("pixel_scale_arcsec", survey.pixel_scale_arcsec),
                                    ("beam_fwhm_arcsec", survey.beam_fwhm_arcsec),
                                    ("frequency_hz", survey.frequency_hz)) if v is None]
    if missing:
        raise InputError(f"survey {survey.name!r} gives no {', '.join(missing)}: PyBDSF needs the pixel scale, "
                         "restoring beam and frequency (the dataset's SurveyInfo)")
    if len(shape) != 2 or min(shape) < 1:
        raise InputError(f"PyBDSF runs on 2-D images; got shape {tuple(shape)}")
    pix = float(survey.pixel_scale_arcsec)  # type: ignore[arg-type]
    beam = tuple(float(b) for b in survey.beam_fwhm_arcsec)  # type: ignore[union-attr]
    freq = float(survey.frequency_hz)  # type: ignore[arg-type]
    if not (pix > 0 and np.isfinite(pix)) or len(beam) != 3 or not all(np.isfinite(beam)) \
            or beam[1] <= 0 or beam[0] < beam[1] or not (freq > 0 and np.isfinite(freq)):
        raise InputError(f"survey {survey.name!r}: pixel scale {pix}\", beam {beam} (bmaj >= bmin > 0 arcsec, "
                         f"bpa deg) and frequency {freq} Hz must be finite and positive")
    h, w = int(shape[0]), int(shape[1])
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = list(POINTING_DEG)
    wcs.wcs.crpix = [(w + 1) / 2, (h + 1) / 2]
    wcs.wcs.cdelt = [-pix / 3600, pix / 3600]
    header = fits.Header()
    header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, w, h
    header.update(wcs.to_header())
    header["BMAJ"], header["BMIN"], header["BPA"] = beam[0] / 3600, beam[1] / 3600, beam[2]
    header["RESTFREQ"] = freq
    header["BUNIT"] = "JY/BEAM"
    header["OBJECT"] = survey.name[:68]
    return header


def _check_header(header: Mapping[str, Any], shape: tuple[int, int]) -> None:
    for key in ("CTYPE1", "CTYPE2", "CDELT1", "CDELT2", "BMAJ", "BMIN", "BPA"):
        if key not in header:
            raise InputError(f"PyBDSF header lacks {key}: build it with radiobench.sourcefind.fits_header")
    if "RESTFREQ" not in header and "FREQ" not in header:
        raise InputError("PyBDSF header lacks RESTFREQ (the observing frequency)")
    if (header.get("NAXIS1"), header.get("NAXIS2")) not in ((shape[1], shape[0]), (None, None)):
        raise InputError(f"header is for {header.get('NAXIS2')}x{header.get('NAXIS1')} images; "
                         f"got {shape[0]}x{shape[1]}")
    if not (float(header["BMAJ"]) > 0 and float(header["BMIN"]) > 0):
        raise InputError("header beam BMAJ/BMIN must be positive (degrees)")


def _bdsf() -> Any:
    """The bdsf module, imported without its side effect on the caller: its ``gaul2srl`` sets
    ``numpy.seterr(divide='raise')`` for the whole process at import (restored here)."""
    saved = np.geterr()
    try:
        import bdsf
    finally:
        np.seterr(**saved)
    return bdsf


def _source_row(src: Any) -> dict[str, float]:
    ra, dec = src.posn_sky_centroid[:2]
    bmaj, bmin, bpa = src.size_sky[:3]
    return {"total_flux": float(src.total_flux), "peak_flux": float(src.peak_flux_max), "ra_deg": float(ra),
            "dec_deg": float(dec), "maj_arcsec": 3600 * float(bmaj), "min_arcsec": 3600 * float(bmin),
            "pa_deg": float(bpa), "n_gaussians": float(src.ngaus)}


def process_one(image: np.ndarray, header: Any, options: Mapping[str, Any] | None = None,
                workdir: str | Path | None = None, tuned: bool = True) -> SourceFit:
    """PyBDSF on one (H, W) image with ``header``; ``options`` over ``TABLE5``. ``tuned`` (default): the
    collector frozen around the call and ``ncores=1``; False: the plain call (for benchmarks). The FITS
    file and PyBDSF's log live in a temporary directory (inside ``workdir`` when given) that is removed."""
    import logging

    from astropy.io import fits

    bdsf = _bdsf()
    image = np.asarray(image, np.float32)
    kw = {**TABLE5, **(options or {}), "quiet": True}
    if tuned:
        kw["ncores"] = 1
    with tempfile.TemporaryDirectory(prefix="radiobench-pybdsf-", dir=workdir) as tmp:
        path = os.path.join(tmp, "image.fits")
        fits.PrimaryHDU(image, header=header).writeto(path)
        was_enabled, disabled = gc.isenabled(), logging.root.manager.disable
        logging.disable(logging.ERROR)  # PyBDSF logs pages per image (its own log file is in ``tmp``)
        if tuned:
            gc.freeze()
            gc.disable()
        try:
            # numpy errors ignored, as PyBDSF leaves them globally after its first moment analysis
            # (functions.momanalmask_gaus): every image gets the same state whatever came before it
            # (and its logger's deprecated ``warn`` calls silenced: one DeprecationWarning per message)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                img = bdsf.process_image(path, outdir=tmp, **kw)
            model = np.asarray(img.model_gaus_arr, np.float32).T.copy() if img.ngaus else np.zeros_like(image)
            return SourceFit(model=model, sources=[_source_row(s) for s in getattr(img, "sources", [])],
                             n_gaussians=int(img.ngaus), beam_area_pix=float(img.pixel_beamarea()))
        except Exception as exc:  # noqa: BLE001 - PyBDSF signals a bad image by any exception; recorded per image
            return SourceFit(model=None, error=f"{type(exc).__name__}: {exc}".strip()[:300])
        finally:
            logging.disable(disabled)
            if tuned:
                gc.unfreeze()
                if was_enabled:
                    gc.enable()


def _chunk(images: np.ndarray, header_text: str, options: dict[str, Any]) -> list[SourceFit]:
    from astropy.io import fits

    header = fits.Header.fromstring(header_text)
    return [process_one(im, header, options) for im in images]


# run first in each pool worker (by ``exec``, a builtin: nothing of radiobench is imported to run it): the
# ``radiobench`` package as a bare namespace, so that loading this module there does not run the package's
# ``__init__``, which imports torch (seconds per worker, and a larger heap for PyBDSF's collector)
_WORKER_INIT = (
    "import sys, types\n"
    "if 'radiobench' not in sys.modules:\n"
    "    pkg = types.ModuleType('radiobench')\n"
    "    pkg.__path__ = [{path!r}]\n"
    "    sys.modules['radiobench'] = pkg\n"
)


def default_workers() -> int:
    """Worker processes for ``find_sources``: the cores this process may use (``RADIOBENCH_PYBDSF_WORKERS``
    overrides)."""
    env = os.environ.get("RADIOBENCH_PYBDSF_WORKERS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def find_sources(images: np.ndarray, header: Any, options: Mapping[str, Any] | None = None,
                 workers: int | None = None, chunk: int = 16) -> list[SourceFit]:
    """PyBDSF (``TABLE5`` updated by ``options``) on each of ``images`` ((N, H, W) or (N, 1, H, W)), all given
    ``header`` (``fits_header``); one ``SourceFit`` per image in order. ``workers`` processes (default
    ``default_workers()``, one per ``MIN_PER_WORKER`` images at most; 1: in this process) each take ``chunk``
    images at a time. InputError before any
    work for a bad shape, non-finite pixels or a header that does not fit."""
    arr = np.asarray(images, np.float32)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise InputError(f"find_sources takes images (N, H, W) or (N, 1, H, W); got shape {np.shape(images)}")
    if not np.all(np.isfinite(arr)):
        raise InputError("find_sources: images hold NaN or infinite pixels")
    _check_header(header, arr.shape[1:])
    opts = dict(options or {})
    # a worker's start (a fresh interpreter importing bdsf: ~4 s CPU) costs ~36 tuned calls (benchmarks/README.md):
    # by default a worker per MIN_PER_WORKER images at most; given ``workers`` is taken as it comes
    cap = workers or max(1, min(default_workers(), len(arr) // MIN_PER_WORKER))
    workers = max(1, min(cap, -(-len(arr) // chunk) if len(arr) else 1))
    if workers == 1:
        return [process_one(im, header, opts) for im in arr]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    text = header.tostring()
    parts = [arr[i:i + chunk] for i in range(0, len(arr), chunk)]
    init = _WORKER_INIT.format(path=str(Path(__file__).resolve().parent))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=exec,
                             initargs=(init,)) as pool:
        return [fit for part in pool.map(_chunk, parts, [text] * len(parts), [opts] * len(parts)) for fit in part]
