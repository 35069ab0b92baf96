"""Full-scene prediction to GeoTIFF: georeferencing, nodata, seams, band files, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from floodlab.errors import DataError
from floodlab.predict.scene import OUTPUT_NODATA, predict_scene, rgb_path_for
from floodlab.predict.scene_io import SceneWriter


class ConvPredict:
    """A seeded conv net with sigmoid output: a cheap stand-in for a trained model.

    `layers` 3x3 convolutions give a receptive field of 2 * layers + 1 pixels.
    """

    def __init__(self, in_ch: int = 2, layers: int = 1, rgb: bool = False, seed: int = 0):
        torch.manual_seed(seed)
        mods: list[torch.nn.Module] = []
        ch = in_ch
        for i in range(layers):
            out = 1 if i == layers - 1 else 4
            mods += [torch.nn.Conv2d(ch, out, 3, padding=1)] + (
                [torch.nn.Tanh()] if out > 1 else []
            )
            ch = out
        self.net = torch.nn.Sequential(*mods).eval()
        self.rgb = rgb

    def full(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of a whole (B, C, H, W) image in one pass."""
        with torch.no_grad():
            return torch.sigmoid(self.net(torch.from_numpy(x))).numpy()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        prob = self.full(x)
        out = {"prob": prob}
        if self.rgb:
            out["rgb"] = (
                np.repeat(prob, 3, axis=1) * np.array([1.0, 0.5, 0.25], "f4")[:, None, None]
            )
        return out


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    descriptions: list[str] | None = None,
    nodata: float | None = float("nan"),
    crs: str = "EPSG:32631",
    res: tuple[float, float] = (10.0, 10.0),
) -> Path:
    """Write (C, H, W) float32 as a tiled GeoTIFF with a real CRS."""
    count, height, width = data.shape
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype="float32")
    profile.update(
        crs=crs, transform=Affine(res[0], 0.0, 500000.0, 0.0, -res[1], 4100000.0), nodata=nodata
    )
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(np.float32))
        for i, d in enumerate(descriptions or [], start=1):
            ds.set_band_description(i, d)
    return path


def sar_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(2, H, W) VV/VH in dB: smooth water bodies (dark) on land, with speckle."""
    rng = np.random.default_rng(seed)
    yy = np.arange(height, dtype=np.float32)[:, None]
    xx = np.arange(width, dtype=np.float32)[None, :]
    water = np.sin(yy / 37.0) + np.cos(xx / 23.0) > 0.8  # (H, W)
    out = rng.standard_normal((2, height, width), dtype=np.float32)
    out[0] = np.where(water, -20.0, -8.0) + 1.5 * out[0]  # VV
    out[1] = out[0] - 7.0 + out[1]  # VH
    return out


def db_normalize(x: np.ndarray) -> np.ndarray:
    """A fixed normalisation standing in for the run's saved one."""
    return np.nan_to_num((x + 14.0) / 6.0).astype(np.float32)


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as ds:
        return ds.read(), {
            "crs": ds.crs,
            "transform": ds.transform,
            "nodata": ds.nodata,
            "descriptions": ds.descriptions,
            "tags": ds.tags(),
            "shape": (ds.height, ds.width),
            "dtypes": ds.dtypes,
            "tiled": ds.profile.get("tiled"),
            "compress": ds.compression,
        }


def test_large_odd_sized_scene_keeps_georeferencing_and_nodata(tmp_path: Path) -> None:
    height, width = 2000, 3000  # not a multiple of the window
    data = sar_scene(height, width)
    data[:, 500:620, 1000:1333] = np.nan  # a nodata hole across window borders
    data[0, -3:, :50] = np.nan  # nodata in one band only still counts
    src = write_tif(tmp_path / "scene.tif", data, descriptions=["VV", "VH"])
    pixels: list[int] = []
    result = predict_scene(
        ConvPredict(),
        src,
        tmp_path / "flood.tif",
        bands=["VV", "VH"],
        normalize=db_normalize,
        batch_size=16,
        progress=pixels.append,
    )
    out, meta = read(result.path)
    with rasterio.open(src) as ds:
        assert meta["crs"] == ds.crs and meta["transform"] == ds.transform
    assert meta["shape"] == (height, width) and out.shape == (2, height, width)
    assert meta["descriptions"] == ("water_probability", "water_mask")
    assert meta["nodata"] == OUTPUT_NODATA and meta["tiled"]
    nodata = np.isnan(data).any(axis=0)
    assert (out[:, nodata] == OUTPUT_NODATA).all()
    prob, mask = out[0, ~nodata], out[1, ~nodata]
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    np.testing.assert_array_equal(mask, (prob >= 0.5).astype(np.float32))
    assert sum(pixels) == height * width
    assert result.valid_pixels == int((~nodata).sum())
    assert result.water_pixels == int(mask.sum())


def test_overlapping_windows_match_a_single_full_image_pass(tmp_path: Path) -> None:
    data = sar_scene(200, 300)
    src = write_tif(tmp_path / "scene.tif", data, descriptions=["VV", "VH"])
    model = ConvPredict(layers=2)  # receptive field 5 px, far below the 16 px overlap
    overlap = 16
    padded = np.pad(db_normalize(data), ((0, 0), (overlap, overlap), (overlap, overlap)), "reflect")
    full = model.full(padded[None])[0, 0, overlap:-overlap, overlap:-overlap]

    def windowed(ov: int) -> np.ndarray:
        out = tmp_path / f"flood_{ov}.tif"
        predict_scene(
            model, src, out, bands=["VV", "VH"], normalize=db_normalize, window=64, overlap=ov
        )
        return read(out)[0][0]

    blended = windowed(overlap)
    assert np.abs(blended - full).max() < 2e-3
    # Without overlap, each window border shows the conv's zero padding: a visible seam.
    assert np.abs(windowed(0) - full).max() > 10 * np.abs(blended - full).max()


def test_a_scene_cut_into_column_bands_gives_the_one_band_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bands bound memory on wide scenes; they must not change a pixel, lose a column at
    # their edges, or write an output tile twice (a rewritten compressed tile is appended
    # to the file, which then grows).
    import floodlab.predict.scene as scene_mod

    monkeypatch.setenv("GDAL_CACHEMAX", "1")  # MB: tiles leave the cache as on large scenes
    data = sar_scene(300, 1100)
    data[:, 100:140, 200:800] = np.nan  # nodata across band edges
    src = write_tif(tmp_path / "scene.tif", data, descriptions=["VV", "VH"])
    model = ConvPredict(layers=3, rgb=True)

    def predict(band_cols: int, name: str) -> tuple[np.ndarray, np.ndarray, int]:
        monkeypatch.setattr(scene_mod, "BAND_COLS", band_cols)
        out = tmp_path / f"{name}.tif"
        predict_scene(model, src, out, bands=["VV", "VH"], normalize=db_normalize, window=64,
                      overlap=16, write_rgb=True)  # fmt: skip
        return read(out)[0], read(rgb_path_for(out))[0], out.stat().st_size

    one_map, one_rgb, one_size = predict(2**31 - 1, "one_band")
    banded_map, banded_rgb, banded_size = predict(256, "bands")  # 5 bands, the last 76 px
    np.testing.assert_allclose(banded_map, one_map, atol=1e-6)
    np.testing.assert_allclose(banded_rgb, one_rgb, atol=1e-6)
    assert (banded_map[:, 100:140, 200:800] == OUTPUT_NODATA).all()
    assert banded_size <= 1.02 * one_size


def test_the_writer_refuses_column_bands_out_of_order(tmp_path: Path) -> None:
    # A band written at the wrong place would put flood pixels somewhere else on the map.
    geo = {"crs": "EPSG:32631", "transform": Affine(10, 0, 0, 0, -10, 0)}
    writer = SceneWriter(tmp_path / "map.tif", width=512, height=300, descriptions=["p"], **geo)
    writer.write_rows(np.zeros((1, 200, 256), np.float32), col=0)
    with pytest.raises(ValueError, match=r"rows at column 256 .* has 200 of 300 rows"):
        writer.write_rows(np.zeros((1, 100, 256), np.float32), col=256)
    writer.write_rows(np.zeros((1, 100, 256), np.float32), col=0)
    with pytest.raises(RuntimeError, match="256 of 512 columns written"):
        writer.commit()
    writer.write_rows(np.ones((1, 300, 256), np.float32), col=256)
    out, _ = read(writer.commit())
    assert (out[0, :, :256] == 0).all() and (out[0, :, 256:] == 1).all()


def test_compressed_full_width_strips_are_read_in_one_band(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Any read of a compressed strip decompresses the whole row: bands would repeat that
    # once per band, so such a file is predicted in one band, with a hint to tile it.
    import floodlab.predict.scene as scene_mod

    monkeypatch.setattr(scene_mod, "BAND_COLS", 256)
    data = sar_scene(100, 700)
    tiled = write_tif(tmp_path / "tiled.tif", data, descriptions=["VV", "VH"])
    striped = tmp_path / "striped.tif"
    with rasterio.open(tiled) as src:
        profile = {**src.profile, "tiled": False, "compress": "deflate"}
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        with rasterio.open(striped, "w", **profile) as dst:
            dst.write(src.read())
            dst.descriptions = src.descriptions
    model = ConvPredict(layers=2)
    kwargs = dict(bands=["VV", "VH"], normalize=db_normalize, window=64, overlap=16)
    with caplog.at_level("WARNING", logger="floodlab.predict.scene"):
        predict_scene(model, tiled, tmp_path / "from_tiled.tif", **kwargs)
        assert not caplog.records
        predict_scene(model, striped, tmp_path / "from_striped.tif", **kwargs)
    assert "striped.tif is stored in compressed full-width strips" in caplog.text
    assert "TILED=YES" in caplog.text
    np.testing.assert_allclose(
        read(tmp_path / "from_striped.tif")[0], read(tmp_path / "from_tiled.tif")[0], atol=1e-6
    )


def test_one_file_per_polarisation_gives_the_same_map(tmp_path: Path) -> None:
    data = sar_scene(150, 170)
    both = write_tif(tmp_path / "scene.tif", data, descriptions=["VV", "VH"])
    vv = write_tif(tmp_path / "S1_20200607_VV.tif", data[:1])  # named by file name only
    vh = write_tif(tmp_path / "S1_20200607_VH.tif", data[1:])
    kw = dict(bands=["VV", "VH"], normalize=db_normalize, window=64, overlap=16)
    predict_scene(ConvPredict(), both, tmp_path / "a.tif", **kw)
    predict_scene(ConvPredict(), [vh, vv], tmp_path / "b.tif", **kw)  # order does not matter
    np.testing.assert_array_equal(read(tmp_path / "a.tif")[0], read(tmp_path / "b.tif")[0])


def test_bands_are_found_by_description_order_or_the_users_list(tmp_path: Path) -> None:
    data = sar_scene(80, 90)
    kw = dict(bands=["VV", "VH"], normalize=db_normalize, window=32, overlap=8)
    ref = predict_scene(
        ConvPredict(),
        write_tif(tmp_path / "r.tif", data, descriptions=["VV", "VH"]),
        tmp_path / "r_out.tif",
        **kw,
    )
    swapped = write_tif(tmp_path / "s.tif", data[::-1], descriptions=["VH", "VV"])
    unnamed = write_tif(tmp_path / "u.tif", data)
    listed = write_tif(tmp_path / "l.tif", data[::-1])
    predict_scene(ConvPredict(), swapped, tmp_path / "s_out.tif", **kw)
    predict_scene(ConvPredict(), unnamed, tmp_path / "u_out.tif", **kw)
    predict_scene(ConvPredict(), listed, tmp_path / "l_out.tif", input_bands=["VH", "VV"], **kw)
    expected = read(ref.path)[0]
    for name in ("s_out", "u_out", "l_out"):
        np.testing.assert_array_equal(read(tmp_path / f"{name}.tif")[0], expected)


def test_derived_bands_are_computed_from_vv_and_vh(tmp_path: Path) -> None:
    data = sar_scene(40, 50)
    src = write_tif(tmp_path / "scene.tif", data, descriptions=["VV", "VH"])
    # Pass the RATIO channel through as the "probability" (no normalisation): the output
    # must be (VH - VV) / (VH + VV) of the input.
    predict_scene(
        lambda x: {"prob": x[:, 1:2]},
        src,
        tmp_path / "ratio.tif",
        bands=["VV", "RATIO", "MAGNITUDE"],
        window=32,
        overlap=8,
    )
    vv, vh = data.astype(np.float64)
    np.testing.assert_allclose(read(tmp_path / "ratio.tif")[0][0], (vh - vv) / (vh + vv), atol=1e-5)


def test_a_missing_band_is_named_with_the_expected_bands(tmp_path: Path) -> None:
    three = write_tif(tmp_path / "three.tif", np.zeros((3, 20, 20)))
    with pytest.raises(DataError, match=r"\['VV', 'VH'\].*three.tif.*--bands VV,VH"):
        predict_scene(
            ConvPredict(), three, tmp_path / "o.tif", bands=["VV", "VH"], window=16, overlap=4
        )
    only_vv = write_tif(tmp_path / "VV.tif", np.zeros((1, 20, 20)))
    with pytest.raises(DataError, match=r"\['VH'\] could not be found"):
        predict_scene(
            ConvPredict(), only_vv, tmp_path / "o.tif", bands=["VV", "RATIO"], window=16, overlap=4
        )
    # A band described as something else is never taken for VH just because of its place.
    optical = write_tif(tmp_path / "mixed.tif", np.zeros((2, 20, 20)), descriptions=["VV", "blue"])
    with pytest.raises(DataError, match=r"\['VH'\] could not be found.*'blue'"):
        predict_scene(
            ConvPredict(), optical, tmp_path / "o.tif", bands=["VV", "VH"], window=16, overlap=4
        )
    assert not (tmp_path / "o.tif").exists()


def test_missing_and_misaligned_inputs_are_named(tmp_path: Path) -> None:
    vv = write_tif(tmp_path / "VV.tif", np.zeros((1, 20, 20)))
    with pytest.raises(DataError, match=r"nope_VH\.tif: no such file"):
        predict_scene(
            ConvPredict(), [vv, tmp_path / "nope_VH.tif"], tmp_path / "o.tif", bands=["VV", "VH"]
        )
    vh = write_tif(tmp_path / "VH.tif", np.zeros((1, 20, 20)), res=(20.0, 20.0))
    with pytest.raises(DataError, match=r"VH\.tif are not co-registered"):
        predict_scene(ConvPredict(), [vv, vh], tmp_path / "o.tif", bands=["VV", "VH"])


def test_a_failure_midway_leaves_no_output_behind(tmp_path: Path) -> None:
    src = write_tif(tmp_path / "scene.tif", sar_scene(300, 100), descriptions=["VV", "VH"])
    calls = []

    def flaky(x: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("device lost")
        return {"prob": np.zeros((x.shape[0], 1, *x.shape[2:]), "f4")}

    with pytest.raises(RuntimeError, match="device lost"):
        predict_scene(
            flaky,
            src,
            tmp_path / "flood.tif",
            bands=["VV", "VH"],
            window=32,
            overlap=8,
            batch_size=2,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.tif"]


def test_cog_output_and_rgb_translation(tmp_path: Path) -> None:
    data = sar_scene(700, 600)
    data[:, :10] = np.nan
    src = write_tif(tmp_path / "scene.tif", data, descriptions=["VV", "VH"])
    result = predict_scene(
        ConvPredict(rgb=True),
        src,
        tmp_path / "flood.tif",
        bands=["VV", "VH"],
        normalize=db_normalize,
        window=128,
        overlap=32,
        cog=True,
        write_rgb=True,
    )
    assert result.rgb_path == rgb_path_for(tmp_path / "flood.tif") == tmp_path / "flood_rgb.tif"
    with rasterio.open(result.path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1)  # reduced-resolution levels for fast display
        assert ds.descriptions == ("water_probability", "water_mask")
    flood, _ = read(result.path)
    rgb, meta = read(result.rgb_path)
    assert rgb.shape == (3, 700, 600) and meta["descriptions"] == ("red", "green", "blue")
    np.testing.assert_allclose(rgb[0], flood[0])  # the stand-in model's "red" is its prob
    assert (rgb[:, :10] == OUTPUT_NODATA).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flood.tif", "flood_rgb.tif", "scene.tif"]


def test_outputs_never_replace_inputs_or_existing_files(tmp_path: Path) -> None:
    from floodlab.errors import OutputPathError

    src = write_tif(tmp_path / "scene.tif", sar_scene(64, 64), descriptions=["VV", "VH"])
    before = src.read_bytes()
    link = tmp_path / "link.tif"
    link.symlink_to(src)
    kw = {"bands": ["VV", "VH"], "normalize": db_normalize, "window": 32, "overlap": 8}
    for out in (src, link):  # the input itself, or a link to it
        with pytest.raises(OutputPathError, match="is the input"):
            predict_scene(ConvPredict(), src, out, **kw, overwrite=True)
    # The RGB sidecar is an output too: an existing one is not replaced without overwrite.
    sidecar = rgb_path_for(tmp_path / "flood.tif")
    sidecar.write_bytes(b"the user's own file")
    with pytest.raises(OutputPathError, match=r"flood_rgb\.tif: already exists.*--overwrite"):
        predict_scene(ConvPredict(rgb=True), src, tmp_path / "flood.tif", write_rgb=True, **kw)
    assert sidecar.read_bytes() == b"the user's own file"
    assert not (tmp_path / "flood.tif").exists()
    result = predict_scene(
        ConvPredict(rgb=True), src, tmp_path / "flood.tif", write_rgb=True, overwrite=True, **kw
    )
    assert read(result.rgb_path)[0].shape == (3, 64, 64)
    assert src.read_bytes() == before
