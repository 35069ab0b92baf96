"""Derived bands (SAR ratio/magnitude, spectral indices) from physical bands, in one place."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from floodlab.bands import DERIVED_BANDS


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float32, NaN where the denominator is 0 or an input is NaN."""
    num = num.astype(np.float32, copy=False)
    den = den.astype(np.float32, copy=False)
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan, dtype=np.float32)
    ok = den != 0
    np.divide(num, den, out=out, where=ok)
    return out


def _ratio(get: Callable[[str], np.ndarray]) -> np.ndarray:
    # SYSTEMS.md §2: (VH - VV) / (VH + VV) on dB values (both negative over land and water).
    vv, vh = get("VV"), get("VH")
    return _safe_ratio(vh - vv, vh + vv)


def _magnitude(get: Callable[[str], np.ndarray]) -> np.ndarray:
    # SYSTEMS.md §2: sqrt((VH^2 + VV^2) / 2) on dB values (a positive "loudness" in dB).
    vv = get("VV").astype(np.float32, copy=False)
    vh = get("VH").astype(np.float32, copy=False)
    return np.sqrt((vh * vh + vv * vv) / np.float32(2.0)).astype(np.float32, copy=False)


def _ndvi(get: Callable[[str], np.ndarray]) -> np.ndarray:
    # (NIR - red) / (NIR + red) on reflectance (any common scale; the x10000 factor cancels).
    b8, b4 = get("B8").astype(np.float32), get("B4").astype(np.float32)
    return _safe_ratio(b8 - b4, b8 + b4)


def _ndwi(get: Callable[[str], np.ndarray]) -> np.ndarray:
    # McFeeters NDWI: (green - NIR) / (green + NIR); open water is positive.
    b3, b8 = get("B3").astype(np.float32), get("B8").astype(np.float32)
    return _safe_ratio(b3 - b8, b3 + b8)


def _mndwi(get: Callable[[str], np.ndarray]) -> np.ndarray:
    # Xu's modified NDWI: (green - SWIR) / (green + SWIR); open water is positive, built-up
    # land (bright in SWIR) negative, which NDWI confuses with water.
    b3, b11 = get("B3").astype(np.float32), get("B11").astype(np.float32)
    return _safe_ratio(b3 - b11, b3 + b11)


def _vv_diff(get: Callable[[str], np.ndarray]) -> np.ndarray:
    # Post- minus pre-event VV (dB): open water that appeared turns strongly negative.
    return (get("VV").astype(np.float32) - get("VV_pre").astype(np.float32)).astype(np.float32)


def _vv_logratio(get: Callable[[str], np.ndarray]) -> np.ndarray:
    # log10 of the intensity ratio I_post / I_pre, with I = 10^(dB / 10): on dB values this
    # is the difference / 10, so it carries VV_DIFF's information on the log10 scale of
    # the change-detection literature (z-scores make the two identical).
    return (_vv_diff(get) / np.float32(10.0)).astype(np.float32)


FORMULAS: dict[str, Callable[[Callable[[str], np.ndarray]], np.ndarray]] = {
    "RATIO": _ratio,
    "MAGNITUDE": _magnitude,
    "NDVI": _ndvi,
    "NDWI": _ndwi,
    "MNDWI": _mndwi,
    "VV_DIFF": _vv_diff,
    "VV_LOGRATIO": _vv_logratio,
}
assert set(FORMULAS) == set(DERIVED_BANDS), "floodlab.bands.DERIVED_BANDS and FORMULAS disagree"


def is_derived(band: str) -> bool:
    """True if `band` is computed from other bands (floodlab.bands.DERIVED_BANDS)."""
    return band in FORMULAS


def inputs_of(band: str) -> tuple[str, ...]:
    """The physical bands a derived band is computed from."""
    if band not in FORMULAS:
        raise KeyError(f"Unknown derived band '{band}'; available: {sorted(FORMULAS)}")
    return DERIVED_BANDS[band]


def derive_band(name: str, get: Callable[[str], np.ndarray]) -> np.ndarray:
    """Compute one derived band from physical inputs.

    Args:
        name: a key of `floodlab.bands.DERIVED_BANDS`.
        get: returns a physical band by name (dB for VV/VH, reflectance for B*), any shape,
            NaN at nodata. Called only for the inputs of `name`.

    Returns:
        float32 array of the inputs' shape, NaN where an input is NaN or the formula is
        undefined (zero denominator).
    """
    if name not in FORMULAS:
        raise KeyError(f"Unknown derived band '{name}'; available: {sorted(FORMULAS)}")
    return FORMULAS[name](get)


def derive_stack(
    names: list[str] | tuple[str, ...], get: Callable[[str], np.ndarray]
) -> np.ndarray:
    """Stack several derived bands: (k, ...) float32 with `names` order (inputs cached)."""
    cache: dict[str, np.ndarray] = {}

    def cached(band: str) -> np.ndarray:
        if band not in cache:
            cache[band] = get(band)
        return cache[band]

    return np.stack([derive_band(n, cached) for n in names]).astype(np.float32, copy=False)
