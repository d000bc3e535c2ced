"""Simulated interferometric observations for the reconstruction track (paper 002 Sect. 2).

Sky models of 2-D Gaussian sources on a zero background (Jy/pixel), observed by a real antenna layout
with earth rotation, thermal noise of a stated image-plane rms, and imaged with natural weighting:

    V(u, v) = Σ_pixels I(l, m) e^{−2πi(ul + vm)}            (sky → visibilities, ducc0.wgridder)
    D(l, m) = (1/N) Σ_k Re[V_k e^{2πi(u_k l + v_k m)}]      (dirty image, Jy/beam; PSF: V_k = 1)

so the PSF peaks at 1 and D = I ⊛ PSF + noise. Baselines rotate with the hour angle H (Thompson, Moran &
Swenson Sect. 4: local east-north-up → equatorial X, Y, Z → u, v, w). Array axis 0 of an image is l
(ducc0's x), axis 1 is m; positions in source tables are (row, col) pixel coordinates of that array.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from ducc0 import wgridder

from .types import InputError

__all__ = ["ArrayLayout", "Observation", "SkyPrior", "simulate", "gaussian_sky", "beam_fwhm", "f_norm"]

ARCSEC = math.pi / (180 * 3600)
SIDEREAL_DAY_S = 86164.0905
EPSILON = 1e-7  # gridder accuracy
LATITUDE_DEG = {"alma": -23.029, "vla": 34.079}  # antenna-configs/README.md


@dataclass(frozen=True)
class ArrayLayout:
    """Antenna positions in the local tangent plane (east, north, up; metres), CASA ``coordsys=LOC``."""

    enu: np.ndarray
    latitude_deg: float
    name: str = ""

    @classmethod
    def from_cfg(cls, path: str | Path, latitude_deg: float | None = None) -> ArrayLayout:
        path = Path(path)
        rows, header = [], ""
        for line in path.read_text().splitlines():
            if line.startswith("#"):
                header += line.lower()
            elif line.strip():
                rows.append([float(v) for v in line.split()[:3]])
        if "coordsys=loc" not in header.replace(" ", ""):
            raise InputError(f"{path}: expected a CASA configuration with '# coordsys=LOC'")
        if len(rows) < 2:
            raise InputError(f"{path}: fewer than two antennas")
        if latitude_deg is None:
            observatory = next((k for k in LATITUDE_DEG if k in header or path.name.startswith(k)), None)
            if observatory is None:
                raise InputError(f"{path}: unknown observatory; pass the array latitude")
            latitude_deg = LATITUDE_DEG[observatory]
        return cls(np.asarray(rows, np.float64), float(latitude_deg), path.stem)

    def baselines_xyz(self) -> np.ndarray:
        """Baseline vectors b_j − b_i (i < j) in equatorial X, Y, Z (metres)."""
        phi = math.radians(self.latitude_deg)
        e, n, u = self.enu.T
        xyz = np.stack([-math.sin(phi) * n + math.cos(phi) * u, e, math.cos(phi) * n + math.sin(phi) * u], 1)
        i, j = np.triu_indices(len(xyz), 1)
        return xyz[j] - xyz[i]

    def uvw(self, hour_angles: np.ndarray, dec_rad: float) -> np.ndarray:
        """(u, v, w) in metres for every baseline at every hour angle (rows: time-major)."""
        x, y, z = self.baselines_xyz().T
        h = np.asarray(hour_angles, np.float64)[:, None]
        sd, cd = math.sin(dec_rad), math.cos(dec_rad)
        u = np.sin(h) * x + np.cos(h) * y
        v = -sd * np.cos(h) * x + sd * np.sin(h) * y + cd * z
        w = cd * np.cos(h) * x - cd * np.sin(h) * y + sd * z
        return np.stack([u.ravel(), v.ravel(), w.ravel()], 1)


@dataclass(frozen=True)
class Observation:
    """An observation at transit: ``duration_s`` centred on H = 0, one dump every ``integration_s``."""

    layout: ArrayLayout
    dec_deg: float
    freqs_hz: tuple[float, ...]
    duration_s: float
    integration_s: float
    npix: int
    pixel_arcsec: float

    def __post_init__(self) -> None:
        if self.npix < 32 or self.npix % 2:
            raise InputError(f"npix must be even and at least 32 (ducc0.wgridder), got {self.npix}")
        if self.pixel_arcsec <= 0 or self.duration_s <= 0 or self.integration_s <= 0 or not self.freqs_hz:
            raise InputError("pixel size, duration, integration time and frequencies must be positive")

    @cached_property
    def uvw(self) -> np.ndarray:
        n = max(1, int(round(self.duration_s / self.integration_s)))
        t = (np.arange(n) - (n - 1) / 2) * self.integration_s
        return self.layout.uvw(2 * math.pi * t / SIDEREAL_DAY_S, math.radians(self.dec_deg))

    @property
    def freqs(self) -> np.ndarray:
        return np.asarray(self.freqs_hz, np.float64)

    @property
    def n_vis(self) -> int:
        return len(self.uvw) * len(self.freqs_hz)

    def _grid(self) -> dict:
        pix = self.pixel_arcsec * ARCSEC
        return {"uvw": self.uvw, "freq": self.freqs, "pixsize_x": pix, "pixsize_y": pix, "epsilon": EPSILON}

    def visibilities(self, sky: np.ndarray) -> np.ndarray:
        return wgridder.dirty2vis(dirty=np.ascontiguousarray(sky, np.float64), **self._grid())

    def image(self, vis: np.ndarray) -> np.ndarray:
        """Naturally weighted dirty image of ``vis``, normalised so that the PSF peaks at 1."""
        return wgridder.vis2dirty(vis=vis, npix_x=self.npix, npix_y=self.npix, **self._grid()) / self.n_vis

    @cached_property
    def psf(self) -> np.ndarray:
        return self.image(np.ones((len(self.uvw), len(self.freqs_hz)), np.complex128))

    def vis_sigma(self, image_rms: float) -> float:
        """Per-component visibility noise σ that gives ``image_rms`` (Jy/beam) in the dirty image: σ/√N."""
        return image_rms * math.sqrt(self.n_vis)

    def observe(self, sky: np.ndarray, image_rms: float, rng: np.random.Generator) -> np.ndarray:
        vis = self.visibilities(sky)
        if image_rms > 0:
            s = self.vis_sigma(image_rms)
            vis = vis + s * (rng.standard_normal(vis.shape) + 1j * rng.standard_normal(vis.shape))
        return self.image(vis)

    @cached_property
    def beam(self) -> tuple[float, float, float]:
        """Restoring beam (FWHM major, minor in pixels; position angle in rad) fitted to the PSF's main lobe."""
        return beam_fwhm(self.psf)


def beam_fwhm(psf: np.ndarray) -> tuple[float, float, float]:
    """Gaussian fitted to the PSF above half maximum (second moments of the connected main lobe)."""
    from scipy import ndimage

    labels, _ = ndimage.label(psf >= 0.5 * psf.max())
    c = np.unravel_index(np.argmax(psf), psf.shape)
    lobe = labels == labels[c]
    r, q = np.nonzero(lobe)
    wts = psf[r, q]
    dr, dq = r - np.average(r, weights=wts), q - np.average(q, weights=wts)
    cov = np.cov(np.stack([dr, dq]), aweights=wts)
    evals, evecs = np.linalg.eigh(cov)
    k = 1 - math.log(2)  # weighted variance of a 2-D Gaussian inside its half-maximum ellipse, in σ² units
    sig = np.sqrt(evals / k)
    fwhm = sig * 2 * math.sqrt(2 * math.log(2))
    pa = math.atan2(evecs[1, 1], evecs[0, 1])
    return float(fwhm[1]), float(fwhm[0]), float(pa)


def f_norm(flux: np.ndarray, s_maj: np.ndarray, s_min: np.ndarray, noise: float,
           b_maj: float, b_min: float) -> np.ndarray:
    """Normalised injected flux (Béthermin et al. 2020; paper 002 Sect. 4.4), sizes in one unit:
    f = S/σ · b_min b_maj / √((b_min² + s_min²)(b_maj² + s_maj²))."""
    return flux / noise * b_min * b_maj / np.sqrt((b_min**2 + s_min**2) * (b_maj**2 + s_maj**2))


@dataclass(frozen=True)
class SkyPrior:
    """Random sky models: a field is empty with ``p_empty``, else holds 1 + Poisson(mean_sources − 1)
    Gaussians at least ``min_separation`` beam FWHMs apart (a 64-pixel cpu field is 1/16 of paper 002's area:
    without it, blends would be far more common than there); FWHM major uniform in ``fwhm_arcsec``, axis
    ratio uniform in ``axis_ratio``, position angle uniform; S/N (``f_norm`` against the dirty image's noise)
    log-uniform in ``snr``."""

    p_empty: float = 0.1
    mean_sources: float = 3.0
    fwhm_arcsec: tuple[float, float] = (0.2, 1.0)
    axis_ratio: tuple[float, float] = (0.5, 1.0)
    snr: tuple[float, float] = (1.0, 30.0)
    margin_pix: int = 4
    min_separation: float = 1.0

    def sources(self, rng: np.random.Generator, obs: Observation, noise: float) -> np.ndarray:
        """Structured array of sources: row, col, flux (Jy), fwhm_maj, fwhm_min (pixels), pa (rad), snr."""
        n = 0 if rng.random() < self.p_empty else 1 + rng.poisson(self.mean_sources - 1)
        lo, hi = self.margin_pix, obs.npix - 1 - self.margin_pix
        min_d = self.min_separation * obs.beam[0]
        pos: list[tuple[float, float]] = []
        while len(pos) < n:  # rejection sampling (a few sources in a 64-pixel field always fit)
            p = (rng.uniform(lo, hi), rng.uniform(lo, hi))
            if all(math.hypot(p[0] - q[0], p[1] - q[1]) >= min_d for q in pos):
                pos.append(p)
        row, col = np.array([p[0] for p in pos]), np.array([p[1] for p in pos])
        maj = rng.uniform(*self.fwhm_arcsec, n) / obs.pixel_arcsec
        mnr = maj * rng.uniform(*self.axis_ratio, n)
        pa = rng.uniform(0, math.pi, n)
        snr = np.exp(rng.uniform(math.log(self.snr[0]), math.log(self.snr[1]), n))
        b_maj, b_min, _ = obs.beam
        flux = snr * noise / f_norm(np.ones(n), maj, mnr, 1.0, b_maj, b_min)
        out = np.zeros(n, SOURCE_DTYPE)
        for name, values in zip(SOURCE_FIELDS, (row, col, flux, maj, mnr, pa, snr)):
            out[name] = values
        return out


SOURCE_FIELDS = ("row", "col", "flux", "fwhm_maj", "fwhm_min", "pa", "snr")  # pixels, Jy, rad, f_norm
SOURCE_DTYPE = np.dtype([(name, "f8") for name in SOURCE_FIELDS])


def gaussian_sky(sources: np.ndarray, npix: int) -> np.ndarray:
    """Sum of elliptical Gaussians (Jy/pixel), each scaled so that its pixels sum to its flux."""
    r, c = np.mgrid[0:npix, 0:npix].astype(np.float64)
    sky = np.zeros((npix, npix))
    to_sigma = 1 / (2 * math.sqrt(2 * math.log(2)))
    for s in sources:
        sa, sb = s["fwhm_maj"] * to_sigma, s["fwhm_min"] * to_sigma
        dr, dc = r - s["row"], c - s["col"]
        a = dr * math.cos(s["pa"]) + dc * math.sin(s["pa"])
        b = -dr * math.sin(s["pa"]) + dc * math.cos(s["pa"])
        g = np.exp(-0.5 * ((a / sa) ** 2 + (b / sb) ** 2))
        sky += s["flux"] * g / g.sum()
    return sky


@dataclass
class Simulation:
    sky: np.ndarray  # (n, npix, npix) Jy/pixel
    dirty: np.ndarray  # (n, npix, npix) Jy/beam
    psf: np.ndarray  # (npix, npix)
    sources: list[np.ndarray] = field(default_factory=list)
    noise: float = 0.0


def simulate(n: int, obs: Observation, noise: float, seed: int, prior: SkyPrior | None = None) -> Simulation:
    """``n`` (sky model, dirty image) pairs, deterministic from ``seed``."""
    prior = prior or SkyPrior()
    rng = np.random.default_rng([seed, 2002])
    skies, dirties, tables = [], [], []
    for _ in range(n):
        src = prior.sources(rng, obs, noise)
        sky = gaussian_sky(src, obs.npix)
        skies.append(sky)
        dirties.append(obs.observe(sky, noise, rng))
        tables.append(src)
    shape = (0, obs.npix, obs.npix)
    return Simulation(np.stack(skies) if skies else np.zeros(shape), np.stack(dirties) if dirties else np.zeros(shape),
                      obs.psf, tables, noise)
