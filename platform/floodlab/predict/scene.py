"""Full-scene flood maps: sliding-window prediction of a GeoTIFF scene into a GeoTIFF.

Output (see `predict_scene`): a tiled, deflate-compressed float32 GeoTIFF with the
input's size, CRS and transform, and two bands:

* band 1 ``water_probability``: blended model probability in [0, 1];
* band 2 ``water_mask``: 1 where the probability is >= the threshold, else 0.

Both bands use nodata = 255 (`OUTPUT_NODATA`) wherever any input band had nodata (its
nodata value or NaN). A GeoTIFF holds one data type and one nodata value for all of its
bands, so the mask is stored as float32 holding exactly 0, 1 and 255: casting it to uint8
is lossless. A FLoRA model also writes its SAR-to-optical translation to
``<out>_rgb.tif`` (3 float32 bands in [0, 1], same nodata).

Pixels without data are fed to the model as 0 after normalisation (the training mean for
z-scores), which is what the training loop does with NaN inputs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from floodlab.data.units import units_provenance
from floodlab.errors import DataError
from floodlab.predict.blend import Normalize, PredictFn, StripBlender, StripModel, TileResult
from floodlab.predict.scene_io import BLOCK, OUTPUT_NODATA, SceneInputs, SceneWriter
from floodlab.predict.scene_ray import n_workers, tiles_on_ray
from floodlab.predict.windows import DEFAULT_BAND_COLS, StripPlan, check_window
from floodlab.writable import check_output

log = logging.getLogger(__name__)
# The most GDAL may cache while a scene is predicted (bytes): flat in the scene's size.
GDAL_CACHE_MAX = 64 * 2**20
# Output columns per band: a multiple of the output tile (`BLOCK`), so that every output
# tile is written whole, once, by one band.
BAND_COLS = DEFAULT_BAND_COLS


__all__ = ["OUTPUT_NODATA", "PredictFn", "SceneResult", "predict_scene", "rgb_path_for"]


@dataclass
class SceneResult:
    """What `predict_scene` wrote.

    Attributes:
        path: the flood map.
        rgb_path: the translated RGB, if written.
        height: rows.
        width: columns.
        valid_pixels: pixels where every input band had data.
        water_pixels: valid pixels with probability >= threshold.
    """

    path: Path
    rgb_path: Path | None
    height: int
    width: int
    valid_pixels: int
    water_pixels: int

    @property
    def water_fraction(self) -> float:
        """Share of valid pixels mapped as water (0 when no pixel is valid)."""
        return self.water_pixels / self.valid_pixels if self.valid_pixels else 0.0


def rgb_path_for(out_path: str | Path) -> Path:
    """``flood.tif`` -> ``flood_rgb.tif``: where a FLoRA translation is written."""
    p = Path(out_path)
    return p.with_name(f"{p.stem}_rgb{p.suffix or '.tif'}")


def predict_scene(
    predict_fn: PredictFn,
    inputs: str | Path | Sequence[str | Path],
    out_path: str | Path,
    *,
    bands: Sequence[str],
    input_bands: Sequence[str] | None = None,
    normalize: Normalize | None = None,
    window: int = 256,
    overlap: int = 64,
    batch_size: int = 8,
    threshold: float = 0.5,
    cog: bool = False,
    write_rgb: bool = False,
    address: str | None = None,
    parallel: int = 0,
    use_gpu: bool = False,
    tags: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
    units: str | None = None,
    overwrite: bool = False,
) -> SceneResult:
    """Predict a whole scene window by window and write the flood map GeoTIFF.

    The scene is processed in column bands of `BAND_COLS` columns, each top to bottom in
    tiles of `window` rows (`StripPlan`): each tile is read with a rasterio window,
    predicted window by window, blended with the `overlap` rows its band's previous
    tile left open (`StripBlender`), and its finished rows are written at once. A tile
    holds every window that touches its band (the windows where two bands meet are
    predicted for both), so bands never wait for each other, and reads, model inputs and
    outputs, carries and write buffers are all bounded by the band: memory does not grow
    with the scene's width or height. The output appears at `out_path` only when
    complete.

    Args:
        predict_fn: batched model, (B, C, h, w) normalised input -> {"prob", ["rgb"]}.
        inputs: one multi-band GeoTIFF, or one file per band (e.g. VV.tif, VH.tif).
        out_path: the flood map to write (see the module docstring for its bands).
        bands: the model's input bands in order; derived bands (RATIO, MAGNITUDE, NDVI,
            NDWI) are computed from their inputs unless an input names them.
        input_bands: names of every input band, in file order, overriding descriptions.
        normalize: the run's training normalisation, (C, h, w) -> (C, h, w); None keeps
            physical values (with NaN -> 0).
        window: window side (pixels); the model must accept it.
        overlap: overlap of neighbouring windows (pixels, at most window // 2).
        batch_size: windows per model call.
        threshold: probability at and above which a pixel is water in band 2.
        cog: write a Cloud-Optimised GeoTIFF (with overviews).
        write_rgb: also write the model's "rgb" output to `rgb_path_for(out_path)`.
        address: Ray cluster to spread tiles over (`floodlab.cluster.ray_env.ensure_ray`).
        parallel: Ray workers over tiles; 0 predicts in this process, unless `address`
            is given, which then uses the cluster's CPUs (at most 8 workers).
        use_gpu: give each Ray worker one GPU.
        tags: extra GeoTIFF metadata tags (e.g. the run).
        progress: called with the number of newly written pixels.
        overwrite: replace an existing `out_path` (and RGB sidecar); an input is never
            replaced.
        units: units of the SAR input bands (a `floodlab.data.units.SAR_UNITS` name:
            "db", "linear", "amplitude"), converted to dB; None expects dB and refuses
            bands that cannot be dB. Recorded in the FLOODLAB_SAR_UNITS tag.

    Returns:
        A `SceneResult`.

    Raises:
        DataError: missing, unreadable or corrupt inputs, inputs that do not match each
            other, or bands that cannot be found.
        UnitsError: SAR bands that cannot be in `units` (dB when None).
        OutputPathError: `out_path` cannot be written (checked before anything is read).
    """
    try:
        check_window(window, overlap)
    except ValueError as e:
        raise DataError(f"--window/--overlap: {e}") from None
    if not 0.0 <= threshold <= 1.0:
        raise DataError(f"--threshold: `0 <= threshold <= 1` must hold, but got {threshold}")
    paths = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    out_path = Path(out_path)
    written = [out_path, rgb_path_for(out_path)] if write_rgb else [out_path]
    for path in written:  # before anything is read: nothing is lost, nothing half-written
        check_output(path, option="-o/--out", inputs=paths, overwrite=overwrite)
    outputs = ("prob", "rgb") if write_rgb else ("prob",)
    with (
        SceneInputs(paths, input_bands, units) as scene,
        rasterio.Env(**_gdal_cache(scene, window, 5 if write_rgb else 2)),
    ):
        read_bands = scene.select(bands)
        plan = StripPlan.for_scene(scene.height, scene.width, window, overlap, _band_cols(scene))
        if plan.band_cols > BAND_COLS:
            log.warning(
                "%s is stored in compressed full-width strips: predicting in full-width "
                "strips, so memory grows with the scene's width. Re-save it tiled (e.g. "
                "gdal_translate -co TILED=YES -co COMPRESS=DEFLATE) for memory that does not",
                scene.compressed_strips()[0],
            )
        model = StripModel(predict_fn, plan, bands, read_bands, normalize, batch_size, outputs)
        log.info(
            "predicting %s: %dx%d px, %d windows of %d px (overlap %d) in %d tiles (%d bands)",
            paths[0],
            scene.width,
            scene.height,
            plan.n_windows,
            window,
            overlap,
            plan.n_tiles,
            plan.n_blocks,
        )
        all_tags = {
            "FLOODLAB_THRESHOLD": str(threshold),
            "FLOODLAB_WINDOW": str(window),
            "FLOODLAB_OVERLAP": str(overlap),
            "FLOODLAB_BANDS": ",".join(bands),
            "FLOODLAB_INPUTS": ",".join(Path(p).name for p in paths),
            "FLOODLAB_SAR_UNITS": _units_tag(units),
            **(tags or {}),
        }
        geo = {
            "width": scene.width,
            "height": scene.height,
            "crs": scene.crs,
            "transform": scene.transform,
        }
        writers: list[SceneWriter] = []
        try:  # from the first temporary file on, a failure removes every one of them
            writers.append(
                SceneWriter(
                    out_path,
                    descriptions=["water_probability", "water_mask"],
                    tags=all_tags,
                    cog=cog,
                    **geo,
                )
            )
            if write_rgb:
                writers.append(
                    SceneWriter(
                        rgb_path_for(out_path),
                        descriptions=["red", "green", "blue"],
                        tags=all_tags,
                        cog=cog,
                        **geo,
                    )
                )
            workers = n_workers(address, parallel)
            tiles: Generator[TileResult, None, None] = (
                tiles_on_ray(scene, plan, model, workers, address, use_gpu)
                if workers
                else (
                    model(k, j, scene.read_tile(plan.strip_rows(k), plan.block_cols(j)))
                    for k, j in plan.tiles()
                )
            )
            try:
                valid_px, water_px = _blend_and_write(plan, tiles, writers, threshold, progress)
            finally:
                tiles.close()  # stops Ray workers early on failure
            paths_written = [w.commit() for w in writers]
        except BaseException:
            for w in writers:
                w.discard()
            raise
    log.info("wrote %s (%.1f%% water)", out_path, 100 * water_px / max(valid_px, 1))
    return SceneResult(
        path=paths_written[0],
        rgb_path=paths_written[1] if write_rgb else None,
        height=plan.height,
        width=plan.width,
        valid_pixels=valid_px,
        water_pixels=water_px,
    )


def _band_cols(scene: SceneInputs) -> int:
    """Columns per band: `BAND_COLS`, or the whole width for compressed full-width strips.

    Such a file decompresses whole rows for any read, so bands would decompress each row
    once per band (measured 2.5x slower at 8 bands); one band reads it once, at the price
    of memory that grows with the width.
    """
    if scene.width <= BAND_COLS or not scene.compressed_strips():
        return BAND_COLS
    return scene.width


def _units_tag(units: str | None) -> str:
    """The FLOODLAB_SAR_UNITS tag: input units and their conversion to dB."""
    info = units_provenance(units)
    return f"{info['input']} ({info['conversion']})" if info["conversion"] != "none" else "db"


def _gdal_cache(scene: SceneInputs, window: int, outputs: int) -> dict[str, int]:
    """GDAL block-cache size for a scene (unless the user set GDAL_CACHEMAX).

    GDAL's default (5% of RAM) fills with every block read or written, so memory would
    grow with the scene. One tile's input blocks (the `overlap` rows the band's next
    tile reads again come from them) and one row of a band's output tiles are enough:
    written tiles need no cache. Between 16 MB and `GDAL_CACHE_MAX`.
    """
    if "GDAL_CACHEMAX" in os.environ:
        return {}
    band = min(scene.width, _band_cols(scene) + 2 * window)  # the columns one band reads
    inputs = sum(info.count for info in scene.infos)
    size = ((window + BLOCK) * inputs + BLOCK * outputs) * band * 4
    return {"GDAL_CACHEMAX": int(min(max(size, 16 * 2**20), GDAL_CACHE_MAX))}


def _blend_and_write(
    plan: StripPlan,
    tiles: Iterator[TileResult],
    writers: list[SceneWriter],
    threshold: float,
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Blend tiles in order, threshold, write finished pieces; return (valid, water) counts."""
    blender = StripBlender(plan)
    valid_px = water_px = 0
    for tile in tiles:
        done = blender.add(tile)
        if done is None:
            continue
        prob = done.values[0]  # (n, w), NaN at nodata
        water = prob >= threshold
        mask = np.where(done.valid, water.astype(np.float32), np.nan)
        writers[0].write_rows([prob, mask], done.col)  # no stacked copy of the rows
        if len(writers) > 1:
            writers[1].write_rows(done.values[1:4], done.col)
        valid_px += int(done.valid.sum())
        water_px += int((water & done.valid).sum())
        if progress is not None:
            progress(done.valid.size)
    return valid_px, water_px
