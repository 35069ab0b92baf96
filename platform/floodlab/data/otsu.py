"""Otsu thresholding of SAR backscatter: weak water labels and the no-learning baseline."""

from __future__ import annotations

import numpy as np

# Histogram resolution: 256 bins over the value range is the classic choice and resolves
# thresholds to ~0.2 dB on a typical 50 dB backscatter range.
DEFAULT_BINS = 256


def otsu_threshold(values: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Otsu's threshold: the cut that maximises the between-class variance of a histogram.

    NaN and infinite values are ignored.

    Args:
        values: any-shaped array (e.g. VV backscatter in dB).
        bins: number of histogram bins over [min, max] of the finite values.

    Returns:
        The threshold, in the units of `values`; values below it form the lower class.
        A constant array returns its value; an array without finite values returns NaN.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2.0
    p = counts / counts.sum()
    w0 = np.cumsum(p)  # weight of the lower class for a cut after bin i
    w1 = 1.0 - w0
    m = np.cumsum(p * centers)  # unnormalised mean of the lower class
    mt = m[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m) ** 2 / (w0 * w1)  # sigma_b^2 for each cut
    between[~np.isfinite(between)] = -1.0
    # Several cuts can tie across empty bins: take the middle of the best plateau.
    best = np.flatnonzero(between >= between.max() - 1e-12 * max(between.max(), 1.0))
    i = int(best[len(best) // 2])
    return float(edges[i + 1])


def otsu_water_mask(vv_db: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Water where VV backscatter is below Otsu's threshold (open water is dark in SAR).

    Args:
        vv_db: (H, W) VV backscatter in dB, NaN at nodata (any shape works).
        threshold: a fixed threshold in dB instead of the image's own Otsu threshold.

    Returns:
        int8 array of `vv_db`'s shape: 1 water, 0 dry, -1 where VV is NaN (no data).
    """
    vv = np.asarray(vv_db, dtype=np.float32)
    t = otsu_threshold(vv) if threshold is None else threshold
    out = np.where(vv < t, 1, 0).astype(np.int8)
    out[~np.isfinite(vv)] = -1
    return out


# Visible Sentinel-2 bands: the brightness a cloud threshold reads.
VISIBLE_BANDS = ("B2", "B3", "B4")


def brightness_cloud_mask(image: np.ndarray, bands: list[str] | tuple[str, ...]) -> np.ndarray:
    """Cloud where a chip's brightness is above Otsu's threshold of its own brightness.

    The label-free baseline of cloud segmentation: brightness is the mean of the visible
    bands (B2, B3, B4) among `bands`, or of every band when none is visible.

    Args:
        image: (C, H, W) reflectance in `bands` order, NaN at nodata.
        bands: the band names of `image`'s channels.

    Returns:
        bool (H, W): True above the threshold (NaN pixels are False).
    """
    visible = [i for i, b in enumerate(bands) if b in VISIBLE_BANDS] or list(range(len(bands)))
    with np.errstate(invalid="ignore"):
        bright = np.asarray(image, dtype=np.float32)[visible].mean(axis=0)
        return np.asarray(bright > otsu_threshold(bright))
