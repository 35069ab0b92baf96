"""Sliding-window geometry and blending: coverage, reflection, partition of unity, no seams."""

from __future__ import annotations

import numpy as np
import pytest

from floodlab.predict.blend import StripBlender, StripModel, window_weights
from floodlab.predict.windows import StripPlan, axis_origins, check_window, reflect_index

SIZES = [1, 2, 5, 63, 64, 65, 200, 301]


@pytest.mark.parametrize("length", SIZES)
def test_reflect_index_matches_numpy_reflect_padding(length: int) -> None:
    pad = 3 * length + 5  # more than the scene: repeated reflection
    values = np.arange(length)
    expected = np.pad(values, pad, mode="reflect") if length > 1 else np.zeros(length + 2 * pad)
    got = values[reflect_index(np.arange(-pad, length + pad), length)]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("length", SIZES)
@pytest.mark.parametrize(("window", "overlap"), [(64, 16), (64, 32), (32, 0), (256, 64)])
def test_windows_cover_the_scene_and_its_margins(length: int, window: int, overlap: int) -> None:
    origins = axis_origins(length, window, overlap)
    assert origins[0] == -overlap
    assert np.all(np.diff(origins) == window - overlap)
    assert origins[-1] + window >= length + overlap


@pytest.mark.parametrize("kind", ["hann", "linear"])
@pytest.mark.parametrize("length", [1, 37, 200, 301])
def test_weights_sum_to_one_everywhere_in_the_scene(kind: str, length: int) -> None:
    window, overlap = 64, 16
    w1d = window_weights(window, overlap, kind)[window // 2]  # a middle row: the 1-D weight
    total = np.zeros(length + 2 * window)
    for x in axis_origins(length, window, overlap):
        total[x + window : x + 2 * window] += w1d  # shifted by `window` to stay positive
    np.testing.assert_allclose(total[window : window + length], 1.0, rtol=1e-6)


def test_bad_window_and_overlap_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap <= window // 2"):
        check_window(64, 40)
    with pytest.raises(ValueError, match="window >= 1"):
        check_window(0, 0)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (7, 300), (130, 129), (300, 200)])
def test_finished_rows_cover_each_scene_row_once_in_order(height: int, width: int) -> None:
    plan = StripPlan.for_scene(height, width, 64, 16)
    rows = [r for k in range(plan.n_strips) for r in range(*plan.finished_rows(k))]
    assert rows == list(range(height))


@pytest.mark.parametrize(("height", "width"), [(1, 1), (7, 300), (130, 129), (300, 900)])
@pytest.mark.parametrize("band_cols", [1, 50, 128, 4096])
def test_finished_cols_cover_each_scene_column_once_in_order(
    height: int, width: int, band_cols: int
) -> None:
    plan = StripPlan.for_scene(height, width, 64, 16, band_cols)
    cols = [c for j in range(plan.n_blocks) for c in range(*plan.finished_cols(j))]
    assert cols == list(range(width))
    assert plan.n_blocks == -(-width // band_cols)


@pytest.mark.parametrize("band_cols", [1, 50, 128])
def test_a_band_reads_every_window_that_touches_its_columns(band_cols: int) -> None:
    # A band blends on its own: a window it missed would leave its pixels short of weight.
    plan = StripPlan.for_scene(64, 500, 64, 16, band_cols)
    for j in range(plan.n_blocks):
        c0, c1 = plan.finished_cols(j)
        touching = [int(o) for o in plan.col_origins if o < c1 and o + 64 > c0]
        assert plan.block_origins(j).tolist() == touching
        x0, x1 = plan.block_span(j)
        assert x0 <= c0 - 16 and x1 >= c1 + 16  # each column has its full overlap around it
    assert plan.tiles()[: plan.n_strips] == [(k, 0) for k in range(plan.n_strips)]


def test_bands_must_be_at_least_one_column() -> None:
    with pytest.raises(ValueError, match="band_cols >= 1"):
        StripPlan.for_scene(100, 100, 64, 32, band_cols=0)


def _blend_scene(
    scene: np.ndarray, window: int, overlap: int, predict_fn, band_cols: int = 4096
) -> np.ndarray:
    """Blend a (C, H, W) scene in memory through the same tile machinery as predict_scene."""
    _, height, width = scene.shape
    plan = StripPlan.for_scene(height, width, window, overlap, band_cols)
    model = StripModel(predict_fn, plan, ["VV"], ["VV"], None, 4, ("prob",))
    blender = StripBlender(plan)
    out = np.full((height, width), -1.0, dtype=np.float32)
    for k, j in plan.tiles():
        raw = scene[:, plan.strip_rows(k)][:, :, plan.block_cols(j)]
        done = blender.add(model(k, j, raw))
        if done is not None:
            n, w = done.valid.shape
            out[done.start : done.start + n, done.col : done.col + w] = done.values[0]
    return out


@pytest.mark.parametrize(("height", "width"), [(1, 1), (50, 31), (129, 200), (300, 257)])
@pytest.mark.parametrize("band_cols", [7, 100, 4096])
def test_a_pixelwise_model_gives_back_its_input_exactly(
    height: int, width: int, band_cols: int
) -> None:
    # Each window predicts the pixel's own value, so any misplaced window or tile, wrong
    # crop or weight that does not sum to one shows up as a difference from the input.
    scene = np.random.default_rng(0).random((1, height, width), dtype=np.float32)
    out = _blend_scene(scene, 64, 16, lambda x: {"prob": x[:, :1]}, band_cols)
    np.testing.assert_allclose(out, scene[0], atol=1e-6)


def _box_sigmoid(x: np.ndarray) -> dict[str, np.ndarray]:
    """A 9x9 box filter then sigmoid: window borders change the output, so seams would show."""
    pad = np.pad(x[:, :1], ((0, 0), (0, 0), (4, 4), (4, 4)), mode="edge")
    h, w = x.shape[2:]
    box = sum(pad[:, :, i : i + h, j : j + w] for i in range(9) for j in range(9)) / 81.0
    return {"prob": 1.0 / (1.0 + np.exp(-box))}


@pytest.mark.parametrize("overlap", [0, 16, 32])
def test_column_bands_do_not_change_the_map(overlap: int) -> None:
    # The same windows, blended in bands of 7 to 128 columns, must give the map that one
    # band over the whole width gives: bands change memory, never the result.
    scene = np.random.default_rng(2).normal(size=(1, 200, 700)).astype(np.float32)
    whole = _blend_scene(scene, 64, overlap, _box_sigmoid, band_cols=4096)
    for band_cols in (7, 100, 128):
        tiled = _blend_scene(scene, 64, overlap, _box_sigmoid, band_cols)
        np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_read_only_tiles_are_blended_like_writable_ones() -> None:
    # Tiles that come back from Ray's object store are read-only views.
    scene = np.random.default_rng(3).normal(size=(1, 150, 300)).astype(np.float32)
    plan = StripPlan.for_scene(150, 300, 64, 16, band_cols=100)
    model = StripModel(_box_sigmoid, plan, ["VV"], ["VV"], None, 4, ("prob",))
    out = np.full((150, 300), -1.0, dtype=np.float32)
    blender = StripBlender(plan)
    for k, j in plan.tiles():
        tile = model(k, j, scene[:, plan.strip_rows(k)][:, :, plan.block_cols(j)])
        for a in (tile.acc, tile.weight, tile.valid):
            a.flags.writeable = False
        done = blender.add(tile)
        if done is not None:
            n, w = done.valid.shape
            out[done.start : done.start + n, done.col : done.col + w] = done.values[0]
    np.testing.assert_allclose(out, _blend_scene(scene, 64, 16, _box_sigmoid, 100), atol=1e-6)


def test_tiles_out_of_order_are_refused() -> None:
    plan = StripPlan.for_scene(100, 300, 64, 16, band_cols=100)
    model = StripModel(lambda x: {"prob": x[:, :1]}, plan, ["VV"], ["VV"], None, 4, ("prob",))
    scene = np.zeros((1, 100, 300), dtype=np.float32)
    tile = model(0, 1, scene[:, plan.strip_rows(0)][:, :, plan.block_cols(1)])
    with pytest.raises(ValueError, match=r"expected \(strip 0, block 0\)"):
        StripBlender(plan).add(tile)


def test_nodata_pixels_come_out_as_nan_and_do_not_leak() -> None:
    scene = np.full((1, 100, 90), 0.25, dtype=np.float32)
    scene[0, 40:45, 10:80] = np.nan
    out = _blend_scene(scene, 32, 8, lambda x: {"prob": x[:, :1]})
    assert np.isnan(out[40:45, 10:80]).all()
    valid = ~np.isnan(scene[0])
    # Nodata reaches the model as 0: with a pixelwise model it cannot leak to neighbours.
    np.testing.assert_allclose(out[valid], 0.25, atol=1e-6)


def test_scene_windows_are_normalised_each_by_their_own_statistics() -> None:
    # A per-sample normalisation (data.normalize: per_patch) sees one window at a time, as
    # training saw one patch: with windows tiling the scene, every window comes out
    # standardised on its own, whatever the scene's width.
    scene = np.random.default_rng(1).normal(5.0, 3.0, (1, 64, 96)).astype(np.float32)
    scene[0, :, 48:] += 40.0  # a much brighter right half

    def standardise(x: np.ndarray) -> np.ndarray:
        return ((x - x.mean()) / x.std()).astype(np.float32)

    plan = StripPlan.for_scene(64, 96, 32, 0)
    model = StripModel(
        lambda x: {"prob": x[:, :1]}, plan, ["VV"], ["VV"], standardise, 4, ("prob",)
    )
    tile = model(0, 0, scene[:, plan.strip_rows(0)][:, :, plan.block_cols(0)])
    for x0 in (0, 32, 64):
        block = tile.acc[0, :, x0 : x0 + 32]
        assert abs(block.mean()) < 1e-4 and block.std() == pytest.approx(1.0, abs=1e-4)
