"""Normalisation of physical band values for models: the one place that knows the rules.

Every rule is a per-band affine map after an optional clip, ``y = clip(x, lo, hi) * scale +
offset``, followed by NaN -> 0 (nodata becomes the neutral value *after* scaling). The
per-band coefficients are JSON-able (`normalization_params`), so a run directory stores them
and a predictor re-applies them without the store (`normalize_with_params`).

Modes (`DataSpec.normalize`) and what they do per kind of band:

=================  ===============  =============  ==============  ==============  =========
mode               VV/VH (dB)       RATIO          MAGNITUDE (dB)  reflectance     indices
=================  ===============  =============  ==============  ==============  =========
zscore             (x - mean) / std of the store's training split, every band
per_patch          (x - mean) / std of the sample itself (its valid pixels), every band
sarkd_clip         [-22.225, 0]     [-1, 1]        [0, 22.225]     [0, 10000]      [-1, 1]
                   -> [0, 1]        -> [0, 1]      -> [0, 1]       -> [0, 1]       -> [0, 1]
minus1_1           [-25, 0]         [-1, 1]        [0, 25]         [0, 10000]      [-1, 1]
                   -> [-1, 1]       -> [-1, 1]     -> [-1, 1]      -> [-1, 1]      -> [-1, 1]
clip4000           [-25, 0]         [-1, 1]        [0, 25]         [0, 4000]       [-1, 1]
                   -> [0, 1]        -> [0, 1]      -> [0, 1]       -> [0, 1]       -> [0, 1]
=================  ===============  =============  ==============  ==============  =========

SAR-KD's published rule clips *raw values* to [-22.225, 0]; applied to optical bands in its
band-agnostic mode that would map every reflectance to 1, so optical bands use their own
physical range instead (reflectance / 10000, indices (x + 1) / 2), which keeps every
single-channel sample in [0, 1] like the SAR ones. Auxiliary layers (SLOPE, DTM) and change bands
(VV_DIFF, VV_LOGRATIO) have no fixed range and use z-scores in the fixed-range modes.

``per_patch`` suits data whose absolute level is lost, such as SAR stretched per patch to
0..255 (OMBRIA): each band of each sample (each window in scene prediction) is
standardised by its own valid pixels, so the model sees the same input whatever affine
stretch the patch got. The fixed-range modes need SAR in dB and refuse a store whose SAR
is in other units (`Store.sar_units`). Translation targets (`target`) map reflectance by
``target_clip`` to [0, 1] ([-1, 1] in minus1_1 mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from floodlab.bands import AUX_BANDS, CHANGE_BANDS, S1_BANDS, S1_PRE_BANDS
from floodlab.errors import DataError

Mode = Literal["zscore", "per_patch", "sarkd_clip", "minus1_1", "clip4000"]
MODES: tuple[str, ...] = ("zscore", "per_patch", "sarkd_clip", "minus1_1", "clip4000")
FIXED_RANGE_MODES: tuple[str, ...] = ("sarkd_clip", "minus1_1", "clip4000")  # dB ranges for SAR
# Coefficients of a band standardised by each sample's own valid pixels.
PER_PATCH: dict[str, Any] = {"lo": None, "hi": None, "per_patch": True}
# A per-patch band whose standard deviation is below this is constant: it is only centred.
PER_PATCH_MIN_STD = 1e-6
Which = Literal["image", "optical", "target"]

SARKD_DB_RANGE = (-22.225, 0.0)  # dB, SAR-KD's published clip
SAR_DB_RANGE = (-25.0, 0.0)  # dB, CycleGAN-style fixed SAR range
INDEX_RANGE = (-1.0, 1.0)  # normalised-difference indices and RATIO
REFLECTANCE_MAX = 10000.0  # reflectance x10000 (Sentinel-2 DN) of reflectance 1.0
CLOUD_CLIP = 4000.0  # cloud U-Net: reflectance clipped at 0.4


def band_kind(band: str) -> str:
    """Kind of a band for normalisation: sar_db, ratio, magnitude, index, aux, reflectance."""
    if band in S1_BANDS or band in S1_PRE_BANDS:
        return "sar_db"
    if band == "RATIO":
        return "ratio"
    if band == "MAGNITUDE":
        return "magnitude"
    if band in ("NDVI", "NDWI", "MNDWI"):
        return "index"
    if band in AUX_BANDS or band in CHANGE_BANDS:
        return "aux"
    return "reflectance"


def _range_map(lo: float, hi: float, out_lo: float, out_hi: float) -> dict[str, float]:
    """Coefficients mapping [lo, hi] (after clipping) linearly onto [out_lo, out_hi]."""
    scale = (out_hi - out_lo) / (hi - lo)
    return {"lo": lo, "hi": hi, "scale": scale, "offset": out_lo - lo * scale}


def _zscore(band: str, stats: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    st = (stats or {}).get(band)
    if not st or st.get("mean") is None or st.get("std") is None:
        raise DataError(
            f"band {band}: no training-split statistics for z-score normalisation; "
            f"re-convert the store with the band derived (floodlab convert ... --derive {band}) "
            "or choose a fixed-range data.normalize mode (sarkd_clip, minus1_1, clip4000)"
        )
    mean, std = float(st["mean"]), float(st["std"])
    std = std if std > 1e-12 else 1.0  # a constant band stays 0 instead of dividing by 0
    return {"lo": None, "hi": None, "scale": 1.0 / std, "offset": -mean / std}


def band_coefficients(
    band: str, mode: str, stats: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Clip range and affine coefficients of one input band under `mode` (see module doc).

    Args:
        band: band name (floodlab.bands).
        mode: one of MODES.
        stats: band -> {"mean", "std", ...}; needed for zscore and auxiliary layers.

    Returns:
        {"lo", "hi", "scale", "offset"}; lo/hi None mean no clipping.
    """
    if mode not in MODES:
        raise DataError(f"data.normalize: unknown mode '{mode}'; choose one of {list(MODES)}")
    if mode == "per_patch":
        return dict(PER_PATCH)
    kind = band_kind(band)
    if mode == "zscore" or kind == "aux":
        return _zscore(band, stats)
    out = (-1.0, 1.0) if mode == "minus1_1" else (0.0, 1.0)
    if kind == "sar_db":
        lo, hi = SARKD_DB_RANGE if mode == "sarkd_clip" else SAR_DB_RANGE
    elif kind == "magnitude":
        lo, hi = 0.0, -(SARKD_DB_RANGE if mode == "sarkd_clip" else SAR_DB_RANGE)[0]
    elif kind in ("ratio", "index"):
        lo, hi = INDEX_RANGE
    else:
        lo, hi = 0.0, CLOUD_CLIP if mode == "clip4000" else REFLECTANCE_MAX
    return _range_map(lo, hi, *out)


def target_coefficients(band: str, mode: str, target_clip: float) -> dict[str, Any]:
    """Coefficients of a translation-target band: reflectance / target_clip -> [0, 1]
    ([-1, 1] in minus1_1 mode); non-reflectance targets use their fixed input range."""
    out = (-1.0, 1.0) if mode == "minus1_1" else (0.0, 1.0)
    if band_kind(band) == "reflectance":
        return _range_map(0.0, float(target_clip), *out)
    fixed_mode = "minus1_1" if mode == "minus1_1" else "sarkd_clip"
    return band_coefficients(band, fixed_mode)


def _standardise(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the finite values of `x` (a constant or empty band: zeros)."""
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape, dtype=np.float32)
    values = x[finite].astype(np.float64)
    mean, std = values.mean(), values.std()
    return ((x - mean) / (std if std > PER_PATCH_MIN_STD else 1.0)).astype(np.float32)


def apply_coefficients(array: np.ndarray, coefs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Apply per-band coefficients to (C, ...) physical values; NaN -> 0 afterwards.

    Returns:
        float32 array of the same shape (a new array; the input is not modified).
    """
    if array.shape[0] != len(coefs):
        raise ValueError(f"array has {array.shape[0]} bands but {len(coefs)} coefficient sets")
    out = np.empty(array.shape, dtype=np.float32)
    for c, co in enumerate(coefs):
        x = array[c].astype(np.float32, copy=False)
        if co.get("per_patch"):
            out[c] = _standardise(x)
            continue
        if co.get("lo") is not None:
            x = np.clip(x, co["lo"], co["hi"])  # NaN survives clipping, handled below
        np.multiply(x, np.float32(co["scale"]), out=out[c])
        out[c] += np.float32(co["offset"])
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def normalize(
    array: np.ndarray,
    bands: Sequence[str],
    mode: str,
    stats: Mapping[str, Mapping[str, Any]] | None = None,
) -> np.ndarray:
    """Normalise model inputs.

    Args:
        array: (C, H, W) physical values (dB, reflectance x10000, indices), NaN at nodata.
        bands: the C band names.
        mode: a `DataSpec.normalize` mode.
        stats: band -> statistics of the training split (`Store.stats`), for zscore/aux.

    Returns:
        (C, H, W) float32, NaN replaced by 0 after normalisation.
    """
    return apply_coefficients(array, [band_coefficients(b, mode, stats) for b in bands])


def target(array: np.ndarray, bands: Sequence[str], mode: str, target_clip: float) -> np.ndarray:
    """Translation target (C, H, W) float32 in [0, 1] (or [-1, 1] for minus1_1); NaN -> 0."""
    return apply_coefficients(array, [target_coefficients(b, mode, target_clip) for b in bands])


def check_sar_units(mode: str, store: Any) -> None:
    """Refuse a fixed-range mode (dB ranges) on a store whose SAR is not in dB.

    Raises:
        DataError: `mode` is in FIXED_RANGE_MODES and ``store.sar_units`` is not "dB".
    """
    if mode in FIXED_RANGE_MODES and store.sar_units != "dB":
        raise DataError(
            f"data.normalize: {mode} maps fixed dB ranges, but store {store.path} holds SAR "
            f"in {store.sar_units} (stretched per patch: absolute dB is lost); use "
            "data.normalize: per_patch"
        )


def normalization_params(spec_data: Any, store: Any) -> dict[str, Any]:
    """JSON-able normalisation parameters for a data spec, resolved against a store.

    Args:
        spec_data: a `DataSpec`.
        store: an open `floodlab.data.load.store.Store` (training-split statistics).

    Returns:
        {"mode", "target_clip", "image"|"optical"|"target": {"bands", "coefficients",
        "mean", "std"}}; "image" holds every band-agnostic band in band-agnostic mode.
    """
    mode = spec_data.normalize
    check_sar_units(mode, store)
    image_bands = list(spec_data.image_bands)
    if spec_data.band_agnostic:
        image_bands = spec_data.agnostic_bands(list(store.available_bands()))
        image_bands += [b for b in spec_data.agnostic_val_bands if b not in image_bands]
    stats = {b: store.stats(b) for b in store.available_bands() if store.has_stats(b)}

    def section(bands: list[str], which: str) -> dict[str, Any]:
        if which == "target":
            coefs = [target_coefficients(b, mode, spec_data.target_clip) for b in bands]
        else:
            coefs = [band_coefficients(b, mode, stats) for b in bands]
        return {
            "bands": bands,
            "coefficients": coefs,
            "mean": [stats.get(b, {}).get("mean") for b in bands],
            "std": [stats.get(b, {}).get("std") for b in bands],
        }

    params: dict[str, Any] = {
        "mode": mode,
        "target_clip": float(spec_data.target_clip),
        "image": section(image_bands, "image"),
    }
    if spec_data.optical_bands:
        params["optical"] = section(list(spec_data.optical_bands), "optical")
    if spec_data.target_bands:
        params["target"] = section(list(spec_data.target_bands), "target")
    return params


def normalize_with_params(
    array: np.ndarray,
    params: Mapping[str, Any],
    which: Which = "image",
    bands: Sequence[str] | None = None,
) -> np.ndarray:
    """Re-apply saved parameters (`normalization_params`) without the store.

    Args:
        array: (C, H, W) physical values, NaN at nodata.
        params: the saved parameters.
        which: "image", "optical" or "target".
        bands: the C bands of `array` when they are a subset/reordering of the section's
            bands (band-agnostic single-band samples); default: the section's bands.

    Returns:
        (C, H, W) float32.
    """
    return apply_coefficients(array, saved_coefficients(params, which, bands))


def saved_coefficients(
    params: Mapping[str, Any], which: Which = "image", bands: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The saved per-band coefficients (`normalization_params`) of some bands, in order.

    Args:
        params: the saved parameters.
        which: "image", "optical" or "target".
        bands: the bands wanted; default: every band of the section, in its order.

    Returns:
        One coefficient set per band, as `apply_coefficients` takes them.

    Raises:
        DataError: the section is missing or does not cover a band.
    """
    if which not in params:
        raise DataError(
            f"normalisation parameters have no '{which}' section (have: "
            f"{[k for k in ('image', 'optical', 'target') if k in params]})"
        )
    section = params[which]
    by_band = dict(zip(section["bands"], section["coefficients"], strict=True))
    names = list(bands) if bands is not None else list(section["bands"])
    missing = [b for b in names if b not in by_band]
    if missing:
        raise DataError(
            f"normalisation parameters '{which}' do not cover band(s) {missing}; "
            f"they hold {section['bands']}"
        )
    return [dict(by_band[b]) for b in names]
