"""The one place that knows band names: Sentinel-1/-2 bands, derived bands and band sets."""

from __future__ import annotations

# Sentinel-1 GRD backscatter, in dB.
S1_BANDS: tuple[str, ...] = ("VV", "VH")
# The same polarisations acquired before the event (bi-temporal change detection).
S1_PRE_BANDS: tuple[str, ...] = ("VV_pre", "VH_pre")
# Sentinel-2 L1C/L2A, in file order of Sen1Floods11 S2Hand and SEN12MS s2 (13 bands).
S2_BANDS: tuple[str, ...] = (
    "B1",
    "B2",
    "B3",
    "B4",
    "B5",
    "B6",
    "B7",
    "B8",
    "B8A",
    "B9",
    "B10",
    "B11",
    "B12",
)
# Bands computed from others (SYSTEMS.md §2, spectral indices, bi-temporal change):
#   RATIO       = (VH - VV) / (VH + VV)          on dB values
#   MAGNITUDE   = sqrt((VH^2 + VV^2) / 2)        on dB values
#   NDVI        = (B8 - B4) / (B8 + B4)
#   NDWI        = (B3 - B8) / (B3 + B8)          (McFeeters)
#   MNDWI       = (B3 - B11) / (B3 + B11)        (Xu; SWIR separates water from built-up)
#   VV_DIFF     = VV - VV_pre                    post minus pre-event (dB: negative where
#                                                newly flooded ground turned dark)
#   VV_LOGRATIO = log10(I_post / I_pre)          of the intensities I = 10^(dB/10), i.e.
#                                                (VV - VV_pre) / 10 on dB values
DERIVED_BANDS: dict[str, tuple[str, ...]] = {
    "RATIO": ("VV", "VH"),
    "MAGNITUDE": ("VV", "VH"),
    "NDVI": ("B8", "B4"),
    "NDWI": ("B3", "B8"),
    "MNDWI": ("B3", "B11"),
    "VV_DIFF": ("VV", "VV_pre"),
    "VV_LOGRATIO": ("VV", "VV_pre"),
}
# The same formulas in words, for exported models' sidecars and model cards.
DERIVED_FORMULAS: dict[str, str] = {
    "RATIO": "(VH - VV) / (VH + VV) on dB values",
    "MAGNITUDE": "sqrt((VH^2 + VV^2) / 2) on dB values",
    "NDVI": "(B8 - B4) / (B8 + B4)",
    "NDWI": "(B3 - B8) / (B3 + B8)",
    "MNDWI": "(B3 - B11) / (B3 + B11)",
    "VV_DIFF": "VV - VV_pre (dB)",
    "VV_LOGRATIO": "(VV - VV_pre) / 10 on dB values, i.e. log10 of the intensity ratio",
}
assert set(DERIVED_FORMULAS) == set(DERIVED_BANDS), "DERIVED_BANDS and DERIVED_FORMULAS disagree"
# DeepFlood auxiliary layers, stored as their own single-band arrays.
AUX_BANDS: tuple[str, ...] = ("SLOPE", "DTM")

ALL_BANDS: tuple[str, ...] = S1_BANDS + S1_PRE_BANDS + S2_BANDS + tuple(DERIVED_BANDS) + AUX_BANDS
# Derived bands that describe a change between the pre- and post-event acquisitions.
CHANGE_BANDS: tuple[str, ...] = ("VV_DIFF", "VV_LOGRATIO")

RGB: tuple[str, ...] = ("B4", "B3", "B2")
OPTICAL_PRIOR: tuple[str, ...] = ("B4", "B3", "B2", "NDVI")
RESUNET_BANDS: tuple[str, ...] = ("VV", "RATIO", "MAGNITUDE")
SARKD_BANDS: tuple[str, ...] = ("VV", "VH", "B2", "B3", "B4", "NDVI", "NDWI")

# CycleGAN output band configurations (SYSTEMS.md §4).
CYCLEGAN_BAND_SETS: dict[str, tuple[str, ...]] = {
    "rgb": ("B4", "B3", "B2"),
    "nir_swir_re": ("B8", "B11", "B5"),
    "rgb_nir": ("B4", "B3", "B2", "B8"),
}


def is_sar(band: str) -> bool:
    """True for bands measured or derived from SAR backscatter."""
    return band in S1_BANDS + S1_PRE_BANDS + CHANGE_BANDS or band in ("RATIO", "MAGNITUDE")
