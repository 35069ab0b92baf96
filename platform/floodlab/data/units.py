"""Units of SAR input: the one place that checks SAR values are dB and converts them to dB.

floodlab's SAR bands (VV, VH) are backscatter in dB. Files in other units are refused
unless their units are declared (`floodlab convert --units`, `floodlab predict --units`),
in which case they are converted here, for the converter and the scene predictor alike.

Plausibility rule for undeclared input (expected to be dB), per band:

1. The file's data type is floating point. Sentinel-1 dB products are float32; integer
   rasters hold digital numbers, counts or stretched values (uint8 0..255, uint16 DN).
2. Over the valid pixels (nodata, NaN, +-inf and exact zeros, a common untagged nodata,
   left out; checked when there are at least `MIN_VALUES`), the 1st percentile is
   negative. Calibrated backscatter of land and water lies mostly below 0 dB (water about
   -15 to -30 dB, land -5 to -20 dB, roughly -50..+30 dB in all; the real Sen1Floods11
   chip Spain_7370579 has VV p1 = -25 dB, VH p1 = -36 dB), whereas linear power
   (sigma0, typically 0.001..1) and amplitude are never negative. A percentile rather
   than the minimum keeps a few odd pixels from deciding.
3. The 1st and 99th percentiles lie within `DB_RANGE` (-100..+60 dB): wider than any
   calibrated backscatter, so values beyond it are scaled dB (e.g. dB x 100) or an
   untagged fill value.

Declared linear power or amplitude must not have a negative low tail (1st percentile
< 0 means the values are dB already). Declared dB is trusted as is (no check): the
escape hatch for unusual scenes, such as a chip that is all bright urban targets.

The vocabulary is a registry (`SAR_UNITS`): another unit registers a `SarUnits` with its
own conversion and its own check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from floodlab.errors import UnitsError

log = logging.getLogger(__name__)

MIN_VALUES = 100  # fewer valid values than this: only the data-type rule is applied
DB_RANGE = (-100.0, 60.0)  # dB; p1 and p99 of real backscatter lie well inside
LOW_Q, HIGH_Q = 0.01, 0.99  # the robust low and high tails
UNITS_HINT = (
    "declare the units with --units linear (power, converted with 10*log10) or --units "
    "amplitude (converted with 20*log10); values <= 0 then become nodata"
)


def _valid(values: np.ndarray) -> np.ndarray:
    """Finite, non-zero values as float64 (1-D)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[np.isfinite(x) & (x != 0.0)]


def _tails(values: np.ndarray) -> tuple[float, float] | None:
    """(p1, p99) of the valid values, or None when too few to judge."""
    x = _valid(values)
    if x.size < MIN_VALUES:
        return None
    lo, hi = np.quantile(x, [LOW_Q, HIGH_Q])
    return float(lo), float(hi)


def _check_db(values: np.ndarray, dtype: str) -> str | None:
    """Why `values` (stored as `dtype`) cannot be dB, or None when they can."""
    if not np.issubdtype(np.dtype(dtype), np.floating):
        found = _valid(values)
        rng = f" ({found.min():g}..{found.max():g})" if found.size else ""
        return (
            f"holds {dtype} values{rng}, which cannot be backscatter in dB "
            "(Sentinel-1 dB products are floating point; integers are counts, digital "
            "numbers or stretched values)"
        )
    tails = _tails(values)
    if tails is None:
        return None
    lo, hi = tails
    if lo >= 0.0:
        return (
            f"holds no negative values in its low tail (1st percentile {lo:.4g}, 99th "
            f"{hi:.4g}): it looks like linear power or amplitude, not dB, where most land "
            "and water backscatter lies below 0 dB"
        )
    if lo < DB_RANGE[0] or hi > DB_RANGE[1]:
        return (
            f"has 1st/99th percentiles {lo:.4g}/{hi:.4g}, outside the {DB_RANGE[0]:g}.."
            f"{DB_RANGE[1]:g} dB that calibrated backscatter stays within: it is scaled, "
            "or a fill value is not tagged as nodata (tag it, e.g. gdal_edit.py -a_nodata)"
        )
    return None


def _check_non_negative(values: np.ndarray, dtype: str) -> str | None:
    """Why `values` cannot be linear power or amplitude (a negative low tail), or None."""
    tails = _tails(values)
    if tails is None or tails[0] >= 0.0:
        return None
    return (
        f"has negative values (1st percentile {tails[0]:.4g}), which linear power and "
        "amplitude cannot have: it looks like dB already, so drop --units (or pass --units db)"
    )


def _log10_to_db(factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def convert(values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        positive = np.isfinite(x) & (x > 0)
        out = np.full(x.shape, np.nan, dtype=np.float32)
        out[positive] = factor * np.log10(x[positive])
        return out

    return convert


def _identity(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


@dataclass(frozen=True)
class SarUnits:
    """One unit SAR input may come in.

    Attributes:
        name: the value of `--units`.
        description: what the values are, for help and provenance.
        conversion: how values become the stored values, in words (provenance).
        convert: float values with NaN at nodata -> float32 stored values (dB), NaN at
            nodata (values that have no dB equivalent become NaN).
        check: (values, on-disk dtype) -> why the values cannot be in this unit, or None.
        stored: the unit of the converted values ("dB" for backscatter).
    """

    name: str
    description: str
    conversion: str
    convert: Callable[[np.ndarray], np.ndarray]
    check: Callable[[np.ndarray, str], str | None] | None
    stored: str = "dB"


SAR_UNITS: dict[str, SarUnits] = {}


def register_sar_units(units: SarUnits) -> SarUnits:
    """Add a unit to the vocabulary (its name becomes a valid `--units` value)."""
    SAR_UNITS[units.name] = units
    return units


register_sar_units(SarUnits("db", "backscatter in dB (declared)", "none", _identity, check=None))
register_sar_units(
    SarUnits(
        "linear",
        "linear backscatter power (sigma0/gamma0)",
        "10*log10(x); x <= 0 -> nodata",
        _log10_to_db(10.0),
        check=_check_non_negative,
    )
)
register_sar_units(
    SarUnits(
        "amplitude",
        "backscatter amplitude (square root of power)",
        "20*log10(x); x <= 0 -> nodata",
        _log10_to_db(20.0),
        check=_check_non_negative,
    )
)


def _check_scaled_0_255(values: np.ndarray, dtype: str) -> str | None:
    """Why `values` cannot be a 0..255 stretch (values outside 0..255), or None."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size and (x.min() < 0.0 or x.max() > 255.0):
        return f"has values {x.min():g}..{x.max():g}, outside the 0..255 of a stretched image"
    return None


# Per-patch stretched backscatter (e.g. OMBRIA): each patch's own min..max mapped to 0..255.
# Absolute backscatter is lost, so nothing converts it to dB: the values are kept, recorded
# as this unit, and everything that assumes dB (fixed dB normalisation ranges) refuses it.
SCALED_0_255 = register_sar_units(
    SarUnits(
        "scaled_0_255",
        "backscatter stretched per patch to 0..255 (absolute dB lost; compare within a patch)",
        "none",
        _identity,
        check=_check_scaled_0_255,
        stored="scaled_0_255",
    )
)

# Undeclared input: expected to be dB, checked with the plausibility rule.
EXPECTED_DB = SarUnits("db", "backscatter in dB (checked)", "none", _identity, check=_check_db)


def sar_units(name: str | None) -> SarUnits:
    """The unit called `name`; None means undeclared (dB expected and checked).

    Raises:
        UnitsError: an unknown name, listing the known ones.
    """
    if name is None:
        return EXPECTED_DB
    key = str(name).strip().lower()
    if key not in SAR_UNITS:
        raise UnitsError(f"--units {name}: unknown SAR units; choose one of {sorted(SAR_UNITS)}")
    return SAR_UNITS[key]


def check_sar(values: np.ndarray, *, dtype: str, units: str | None, where: str) -> None:
    """Refuse SAR values that cannot be in `units` (None: dB expected).

    Args:
        values: one band's values (any shape), NaN at nodata.
        dtype: the on-disk data type of the band, e.g. "uint8".
        units: declared units, or None.
        where: the file and band, for the message (e.g. "scene.tif band 1 (VV)").

    Raises:
        UnitsError: naming `where`, the reason and the fix.
    """
    unit = sar_units(units)
    problem = unit.check(values, dtype) if unit.check is not None else None
    if problem is None:
        return
    if units is None:
        raise UnitsError(
            f"{where}: {problem}. floodlab's SAR bands are backscatter in dB; if the file "
            f"holds other units, {UNITS_HINT}."
        )
    raise UnitsError(f"{where}: declared --units {unit.name}, but the band {problem}.")


def sar_to_db(
    values: np.ndarray,
    bands: Sequence[str],
    *,
    dtype: str,
    units: str | None,
    where: str,
) -> np.ndarray:
    """Check SAR bands against their units and convert them to dB.

    Args:
        values: (C, H, W) float values with NaN at nodata, one channel per band.
        bands: the band names of the channels, for messages.
        dtype: the on-disk data type of the values.
        units: declared units (a `SAR_UNITS` name), or None for dB expected.
        where: the file the values come from.

    Returns:
        (C, H, W) float32 dB with NaN at nodata (values <= 0 of linear units too).

    Raises:
        UnitsError: a band that cannot be in `units`, naming the file and band.
    """
    for c, band in enumerate(bands):
        check_sar(values[c], dtype=dtype, units=units, where=f"{where} band {c + 1} ({band})")
    return sar_units(units).convert(values)


def units_provenance(units: str | None) -> dict[str, Any]:
    """What a store or map records about its SAR input units and their conversion."""
    unit = sar_units(units)
    return {
        "input": unit.name,
        "declared": units is not None,
        "conversion": unit.conversion,
        "stored": unit.stored,
    }
