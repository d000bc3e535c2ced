"""Simulated ALMA fields for the reconstruction track (paper 002 Sect. 2): (sky model, dirty image) pairs.

Each field is a sky model of 2-D Gaussian sources on a zero background (:class:`SkyPrior`) observed with
ALMA Cycle 5 configuration C43-3 at 230 GHz, 20 min at transit, at the COSMOS declination (+02°12′21″),
with thermal noise of ``noise_ujy`` µJy/beam rms in the dirty image (paper 002: ~50 µJy), imaged with
natural weighting (:mod:`radiobench.interferometry`, ducc0.wgridder). 0.2″ pixels keep the 0.87″ beam at
≥ 4 pixels; the preset's resolution gives the field size (40 px = 8″ at cpu; paper 002 used 51.2″ fields).

``images`` are the sky models divided by the dataset's scale ``c`` (Jy/pixel; the largest sky pixel of all
splits, so nothing is clipped; paper 002 Eq. 1 takes the training maximum). ``extra`` holds the condition
images ``dirty`` (Jy/beam) and ``psf`` (2n × 2n, peak 1), ``sky`` (the images again, for the ``truth``
ceiling), the scale, and the true source table ``sources`` (row, col, flux Jy, FWHM major/minor px, PA rad,
S/N; NaN-padded) that the metrics score against.
Field i of a split depends only on (seed, split, i, the options).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from radiobench.datafetch import FetchError, extract_member, first_available, pip_download, verify_sha256
from radiobench.interferometry import SOURCE_FIELDS, ArrayLayout, Observation, SkyPrior, gaussian_sky
from radiobench.options import Option, Options
from radiobench.types import InputError, RadioImages, SurveyInfo

from ._common import MemoisedSplits, cache_root, cached_arrays, data_folder

ENV = "RADIOBENCH_ANTENNA_DIR"
CONFIGS = {  # antenna-configs/SHA256SUMS (CASA's simmos files, casadata 2025.9.22)
    "alma.cycle5.3": "4b91ef94309055b74435cee311717ef174f6901a2924feb083b161196cd63eb7",
    "vla.a": "e958cbdf312f056f6dd10222d69a93a4e1c4638a28167ff4325c2d9d6725ebb0",
    "vla.b": "b58863c19491efe159c83fda744ff5522e45ed09d50eb0f547c0e90b84ab54f4",
    "vla.c": "29e58deca107f542b9535ae3fd055da26d58138d530625ea9043e32c825cfd2f",
    "vla.d": "91fd52e137004a51ffcaacee297e3cdc2b3a6c8512688457ebb08827626e7924",
}
CASADATA = "casadata==2025.9.22"
COSMOS_DEC_DEG = 2 + 12 / 60 + 21 / 3600
SPLITS = ("train", "valid", "test")
HOW_TO_GET = (f"pass --data-dir (or set {ENV}) to a folder holding the CASA .cfg files, e.g. "
              "../shared/data/antenna-configs; otherwise they are taken from the casadata wheel (350 MB)")


def antenna_config(name: str, data_dir: Path | None) -> Path:
    """The checked .cfg file ``name``: from the user's folder, the cache, or the casadata wheel."""
    if name not in CONFIGS:
        raise InputError(f"alma_sim: unknown antenna configuration {name!r}; choose one of {sorted(CONFIGS)}")
    folder = data_folder(data_dir, ENV)
    if folder is not None:
        path = folder / f"{name}.cfg"
        if not path.is_file():
            raise InputError(f"alma_sim: {path} does not exist; {HOW_TO_GET}")
        verify_sha256(path, CONFIGS[name], hint="(not CASA's configuration file)")
        return path
    cached = cache_root() / "antenna-configs" / f"{name}.cfg"
    if cached.is_file():
        return cached

    def wheel() -> Path:
        with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
            whl = pip_download(CASADATA, tmp)
            extract_member(whl, f"casadata/__data__/alma/simmos/{name}.cfg", cached)
        try:
            verify_sha256(cached, CONFIGS[name])
        except InputError as err:
            cached.unlink()
            raise FetchError(str(err)) from None
        return cached

    cached.parent.mkdir(parents=True, exist_ok=True)
    return first_available([("casadata wheel", wheel)], f"antenna configuration {name}", HOW_TO_GET)[1]


class AlmaSim(MemoisedSplits):
    """Simulated (sky model, dirty image) fields; options: seed, n_train (2000), n_valid (200), n_test (200),
    noise_ujy (50), config ("alma.cycle5.3"), pixel_arcsec (0.2), mean_sources (2)."""

    name = "alma_sim"
    description = "simulated ALMA fields (paper 002): sky models of Gaussian sources with their dirty images"
    task: ClassVar[str] = "reconstruction"
    provides = frozenset({"dirty", "psf", "sky"})
    splits = SPLITS
    OPTIONS = Options(seed=Option(int, low=0), n_train=Option(int, low=0), n_valid=Option(int, low=0),
                      n_test=Option(int, low=0), noise_ujy=Option(float, low=0), config=Option(str, choices=CONFIGS),
                      pixel_arcsec=Option(float, low=1e-3), mean_sources=Option(float, low=1))

    def __init__(self, resolution: int | None = None, data_dir: str | Path | None = None, *, seed: int = 0,
                 n_train: int = 2000, n_valid: int = 200, n_test: int = 200, noise_ujy: float = 50.0,
                 config: str = "alma.cycle5.3", pixel_arcsec: float = 0.2, mean_sources: float = 2.0,
                 **options: Any):
        opts = {"seed": seed, "n_train": n_train, "n_valid": n_valid, "n_test": n_test, "noise_ujy": noise_ujy,
                "config": config, "pixel_arcsec": pixel_arcsec, "mean_sources": mean_sources}
        resolution = self.check_options(resolution, {**opts, **options})
        res = 40 if resolution is None else int(resolution)
        if res < 32 or res % 2:
            raise InputError(f"alma_sim: resolution must be even and at least 32 (the gridder's limit); got {res}")
        super().__init__(res, data_dir, **opts)
        self.sizes = {"train": int(n_train), "valid": int(n_valid), "test": int(n_test)}

    def observation(self, npix: int | None = None) -> Observation:
        path = antenna_config(self.options["config"], self.data_dir)
        layout = ArrayLayout.from_cfg(path)
        alma = self.options["config"].startswith("alma")
        freq, dec = (230e9, COSMOS_DEC_DEG) if alma else (1.4e9, 30.0)
        return Observation(layout, dec, (freq,), 1200.0, 30.0, npix or int(self.resolution),
                           float(self.options["pixel_arcsec"]))

    @property
    def noise(self) -> float:
        return float(self.options["noise_ujy"]) * 1e-6

    def _fields(self, split: str) -> dict[str, np.ndarray]:
        obs, prior = self.observation(), SkyPrior(mean_sources=float(self.options["mean_sources"]))

        def build() -> dict[str, np.ndarray]:
            sky, dirty, tables = [], [], []
            for i in range(self.sizes[split]):
                rng = np.random.default_rng([self.options["seed"], SPLITS.index(split), i, 2002])
                src = prior.sources(rng, obs, self.noise)
                s = gaussian_sky(src, obs.npix)
                sky.append(s)
                dirty.append(obs.observe(s, self.noise, rng))
                tables.append(src)
            k = max((len(t) for t in tables), default=0)
            table = np.full((len(tables), k, len(SOURCE_FIELDS)), np.nan)
            for i, t in enumerate(tables):
                table[i, :len(t)] = np.stack([t[f] for f in SOURCE_FIELDS], 1) if len(t) else np.zeros((0, 7))
            empty = np.zeros((0, obs.npix, obs.npix))
            return {"sky": np.stack(sky) if sky else empty, "dirty": np.stack(dirty) if dirty else empty,
                    "sources": table}

        return cached_arrays("alma_sim", [split, self.sizes[split], int(self.resolution), self.options], build)

    def scale(self) -> float:
        """c: the largest sky-model pixel of all splits (Jy/pixel)."""
        return max((float(self._fields(s)["sky"].max(initial=0.0)) for s in SPLITS), default=1.0) or 1.0

    def build_split(self, split: str) -> RadioImages:
        f, c = self._fields(split), self.scale()
        n, psf2 = len(f["sky"]), self.observation(2 * int(self.resolution)).psf
        return RadioImages(
            images=(sky := (f["sky"] / c).astype(np.float32)[:, None]),
            survey=self.survey(),
            ids=tuple(f"alma_sim-{self.options['seed']}-{split}-{i}" for i in range(n)),
            extra={"dirty": f["dirty"].astype(np.float32)[:, None], "sky": sky.copy(),
                   "psf": np.broadcast_to(psf2.astype(np.float32), (n, 1, *psf2.shape)),
                   "scale": np.full(n, c), "noise_rms": np.full(n, self.noise), "sources": f["sources"]},
        )

    def survey(self) -> SurveyInfo:
        obs = self.observation()
        b_maj, b_min, pa = obs.beam
        pix = float(self.options["pixel_arcsec"])
        return SurveyInfo(
            name=f"simulated {self.options['config']}",
            pixel_scale_arcsec=pix,
            beam_fwhm_arcsec=(b_maj * pix, b_min * pix, float(np.degrees(pa))),
            frequency_hz=float(obs.freqs[0]),
            units="sky model / c (Jy/pixel; c = extra['scale'])",
            noise_rms=self.noise,
            notes="Gaussian sources on zero background; dirty images (Jy/beam, natural weighting) in extra['dirty']",
        )
