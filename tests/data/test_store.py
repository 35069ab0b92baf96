"""Store access (bands by name, windows, derived bands), direct chunk I/O, normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from floodlab.data.chunks import ChunkReader, ChunkWriter
from floodlab.data.convert.pipeline import convert
from floodlab.data.derive import derive_band
from floodlab.data.load.normalize import (
    normalization_params,
    normalize,
    normalize_with_params,
    target,
)
from floodlab.data.load.store import open_store
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError, DatasetNotFoundError
from floodlab.specs import DataSpec


@pytest.fixture(scope="module")
def plain_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 hand chips of 40 px, no stored derived bands, lz4, 16 px chunks (edge chunks)."""
    base = tmp_path_factory.mktemp("plain")
    root = write_synthetic("sen1floods11", base / "raw", chips=8, size=40, seed=9, weak_chips=0)
    return convert("sen1floods11", root, base / "p.zarr", chunk=16, compression="lz4")


def test_missing_store_names_the_commands_that_create_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        open_store(tmp_path / "nope.zarr")
    msg = str(err.value)
    assert str(tmp_path / "nope.zarr") in msg
    assert "floodlab convert" in msg and "floodlab synth" in msg


def test_bands_by_name_across_modalities_and_windows(tiny_s1f11_store: Path) -> None:
    store = open_store(tiny_s1f11_store)
    assert store.bands("s1") == ("VV", "VH") and len(store.bands("s2")) == 13
    assert store.attrs["derived"] == ["RATIO", "MAGNITUDE", "NDVI", "NDWI"]
    i = int(store.split_indices("train")[0])
    full = store.read_bands(i, ["B4", "VV", "NDVI"])
    assert full.shape == (3, 64, 64) and full.dtype == np.float32
    win = store.read_bands(i, ["B4", "VV", "NDVI"], window=(5, 9, 20, 30))
    np.testing.assert_array_equal(win, full[:, 5:25, 9:39])
    with pytest.raises(DataError, match="available bands"):
        store.read_bands(i, ["SLOPE"])
    with pytest.raises(DataError, match="split 'nope' has no chips"):
        store.split_indices("nope")


def test_derived_bands_on_the_fly_equal_stored_and_formulas(
    tiny_s1f11_store: Path, plain_store: Path
) -> None:
    stored = open_store(tiny_s1f11_store)
    i = int(stored.split_indices("train")[0])
    names = ["RATIO", "MAGNITUDE", "NDVI", "NDWI"]
    phys = {b: stored.read_bands(i, [b])[0] for b in ["VV", "VH", "B3", "B4", "B8"]}
    for name in names:
        want = derive_band(name, phys.__getitem__)
        np.testing.assert_allclose(stored.read_bands(i, [name])[0], want, rtol=1e-6)
    plain = open_store(plain_store)
    assert "RATIO" not in plain.stored_bands() and "RATIO" in plain.available_bands()
    vv, vh = plain.read_bands(0, ["VV", "VH"])
    ratio = plain.read_bands(0, ["RATIO"])[0]
    np.testing.assert_allclose(ratio, (vh - vv) / (vh + vv), rtol=1e-6)
    values = {"VV": np.float32([-10.0]), "VH": np.float32([-20.0])}
    assert derive_band("RATIO", values.__getitem__)[0] == pytest.approx(1 / 3)
    assert derive_band("MAGNITUDE", values.__getitem__)[0] == pytest.approx(np.sqrt(250))


def test_direct_chunk_reads_and_writes_match_zarr(plain_store: Path, tmp_path: Path) -> None:
    arr = zarr.open_array(str(plain_store / "s2"), mode="r")
    reader = ChunkReader.open(plain_store / "s2")
    assert reader is not None and reader.blosc and arr.chunks[-1] == 16
    for sel in [(3, slice(None), slice(5, 37), slice(0, 40)), (0, 2, slice(30, 40), slice(31, 33))]:
        np.testing.assert_array_equal(reader.read(sel), arr[sel])
    # The store gives the same bands through zarr-python as through direct reads.
    bands, window = ["B8", "VV", "B2", "NDVI"], (3, 5, 30, 33)
    np.testing.assert_array_equal(
        open_store(plain_store).read_bands(2, bands, window),
        open_store(plain_store, direct_reads=False).read_bands(2, bands, window),
    )
    # Uncompressed chunks are read row range by row range: same values as zarr's.
    raw = zarr.open_group(str(tmp_path / "r.zarr"), mode="w")
    plain = raw.create_array(
        "x",
        shape=(2, 2, 40, 37),
        chunks=(1, 1, 16, 16),
        dtype="float32",
        fill_value=float("nan"),
        compressors=None,
    )
    plain[:] = np.random.default_rng(0).normal(size=(2, 2, 40, 37)).astype(np.float32)
    rows = ChunkReader.open(tmp_path / "r.zarr" / "x")
    for sel in [(1, 0, slice(3, 39), slice(15, 35)), (0, 1, slice(None), slice(None))]:
        np.testing.assert_array_equal(rows.read(sel), plain[sel])
    # Chunks written directly are read back by zarr itself (edge chunks, lz4, uint16).
    out = zarr.open_group(str(tmp_path / "w.zarr"), mode="w")
    out.create_array(
        "x",
        shape=(2, 3, 20, 20),
        chunks=(1, 1, 16, 16),
        dtype="uint16",
        fill_value=0,
        compressors=zarr.codecs.BloscCodec(cname="lz4"),
    )
    writer = ChunkWriter.open(tmp_path / "w.zarr" / "x")
    value = np.arange(3 * 20 * 20, dtype=np.uint16).reshape(3, 20, 20)
    writer.write(1, value)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "w.zarr" / "x"))[1], value)
    assert not zarr.open_array(str(tmp_path / "w.zarr" / "x"))[0].any()  # fill value


def test_normalisation_modes_and_saved_parameters(tiny_s1f11_store: Path) -> None:
    store = open_store(tiny_s1f11_store)
    x = np.array([[[-30.0, -22.225, -11.1125, 0.0, 5.0, np.nan]]], dtype=np.float32)
    np.testing.assert_allclose(
        normalize(x, ["VV"], "sarkd_clip")[0, 0], [0, 0, 0.5, 1, 1, 0], atol=1e-6
    )
    np.testing.assert_allclose(
        normalize(x, ["VV"], "minus1_1")[0, 0], [-1, -0.778, 0.111, 1, 1, 0], atol=1e-3
    )
    refl = np.array([[[0.0, 2000.0, 4000.0, 9000.0]]], dtype=np.float32)
    np.testing.assert_allclose(normalize(refl, ["B4"], "clip4000")[0, 0], [0, 0.5, 1, 1], atol=1e-6)
    np.testing.assert_allclose(
        normalize(refl, ["B4"], "minus1_1")[0, 0], [-1, -0.6, -0.2, 0.8], atol=1e-6
    )
    np.testing.assert_allclose(
        target(refl, ["B4"], "zscore", 3000.0)[0, 0], [0, 2 / 3, 1, 1], atol=1e-6
    )
    np.testing.assert_allclose(
        target(refl, ["B4"], "minus1_1", 4000.0)[0, 0], [-1, 0, 1, 1], atol=1e-6
    )
    # zscore with training statistics: the training split of VV becomes ~N(0, 1)
    vv = np.stack([store.read_bands(int(i), ["VV"]) for i in store.split_indices("train")])
    z = normalize(vv.reshape(1, -1, 1), ["VV"], "zscore", {"VV": store.stats("VV")})
    finite = np.isfinite(vv.reshape(-1))
    assert z[0, finite, 0].mean() == pytest.approx(0, abs=1e-4)
    assert z[0, finite, 0].std() == pytest.approx(1, abs=1e-3)
    assert (z[0, ~finite, 0] == 0).all()  # nodata -> 0 after normalisation
    spec = DataSpec(
        dataset="sen1floods11",
        store=str(tiny_s1f11_store),
        image_bands=["VV", "RATIO", "MAGNITUDE"],
        optical_bands=["B4", "NDVI"],
        target_bands=["B4", "B3", "B2"],
    )
    params = json.loads(json.dumps(normalization_params(spec, store)))  # JSON-able
    img = store.read_bands(0, spec.image_bands)
    stats = {b: store.stats(b) for b in spec.image_bands}
    np.testing.assert_allclose(
        normalize_with_params(img, params, "image"),
        normalize(img, spec.image_bands, "zscore", stats),
    )
    tgt = store.read_bands(0, spec.target_bands)
    np.testing.assert_allclose(
        normalize_with_params(tgt, params, "target"),
        target(tgt, spec.target_bands, "zscore", 3000.0),
    )
    with pytest.raises(DataError, match="do not cover"):
        normalize_with_params(img[:1], params, "image", bands=["B8"])
