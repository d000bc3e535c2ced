"""PyBDSF on the dirty image: the classical source-finder row of the reconstruction track (paper 002 Table 2).

Each field's dirty image (Jy/beam) is given the dataset's FITS header (:func:`radiobench.sourcefind.fits_header`)
and searched by PyBDSF (Mohan & Rafferty 2015) with its default thresholds (island 3σ, peak 5σ), a zero
mean and a constant rms: interferometric images have no background level, and a 40-pixel field is too small
for an rms map. The method's catalogue is PyBDSF's source list (centroid converted back to pixels, total
flux in Jy); its image is the Gaussian model in Jy/pixel (model / beam area). A field where PyBDSF fails
yields no sources; their number is kept in the set's ``extra["pybdsf_failed"]``.
Paper 002 runs PyBDSF on the CLEAN image; on the dirty image it is the finder without deconvolution.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radiobench import Conditions, SampleBatch
from radiobench.localisation import FOUND_DTYPE, catalogue_array
from radiobench.options import Option, Options
from radiobench.sourcefind import find_sources, fits_header
from radiobench.types import SurveyInfo

from .clean import _Unlearned


class PyBDSFDirty(_Unlearned):
    name = "pybdsf_dirty"
    description = "PyBDSF on the dirty image (baseline): its source list and Gaussian model, no deconvolution"
    supports = frozenset({"dirty", "scale"})
    OPTIONS = Options(
        thresh_isl=Option(float, default=3.0, low=0, low_open=True, sampling=True),  # PyBDSF's defaults
        thresh_pix=Option(float, default=5.0, low=0, low_open=True, sampling=True),
    )

    def sample_batch(self, conditions: Conditions, seeds: Sequence[int]) -> SampleBatch:
        from astropy.wcs import WCS

        info = self.train_info["survey"]
        survey = SurveyInfo.from_dict(info) if isinstance(info, dict) else info
        dirty, scale = conditions.images["dirty"][:, 0], conditions.images["scale"]
        header = fits_header(survey, dirty.shape[1:])
        wcs = WCS(header)
        options = {**self.opt, "mean_map": "zero", "rms_map": False}
        fits = find_sources(dirty, header, options, workers=1)
        images = np.zeros((len(dirty), 1, *dirty.shape[1:]), np.float32)
        tables = []
        for i, fit in enumerate(fits):
            table = np.zeros(len(fit.sources), FOUND_DTYPE)
            if fit.sources:
                col, row = wcs.world_to_pixel_values([s["ra_deg"] for s in fit.sources],
                                                     [s["dec_deg"] for s in fit.sources])
                table["row"], table["col"] = row, col
                table["flux"] = [s["total_flux"] for s in fit.sources]
            tables.append(table)
            if fit.model is not None and fit.beam_area_pix > 0:
                images[i, 0] = np.clip(fit.model / fit.beam_area_pix / float(scale[i]), 0.0, 1.0)
        rows = dirty.shape[1] * dirty.shape[2]  # at most one source per pixel
        failed = np.array([fit.failed for fit in fits], np.uint8)
        return SampleBatch(images, {"catalogue": catalogue_array(tables, rows), "pybdsf_failed": failed})
