"""Synthetic sources: deterministic, calibrated on a real chip, optically consistent, safe to write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from floodlab.bands import S2_BANDS
from floodlab.cli import main
from floodlab.data.otsu import otsu_water_mask
from floodlab.data.sources import get_reader
from floodlab.data.synth import MARKER, write_synthetic
from floodlab.errors import DataError

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
SPAIN = REALDATA / "sen1floods11" / "v1.1"
# Class means (VV, VH) in dB of the real chip Spain_7370579 by hand label.
REAL_MEANS = {"water": (-17.04, -25.15), "dry": (-9.30, -16.91)}


@pytest.fixture(scope="module")
def s11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "s11"
    return write_synthetic("sen1floods11", out, chips=12, size=64, seed=0, weak_chips=2)


def _all_pixels(root: Path) -> dict[str, bytes]:
    out = {}
    for tif in sorted(root.rglob("*.tif")):
        with rasterio.open(tif) as src:
            out[str(tif.relative_to(root))] = src.read().tobytes() + str(src.transform).encode()
    for csv in sorted(root.rglob("*.csv")):
        out[str(csv.relative_to(root))] = csv.read_bytes()
    return out


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    def make(name: str, seed: int) -> dict[str, bytes]:
        root = write_synthetic(
            "sen1floods11", tmp_path / name, chips=4, size=32, seed=seed, weak_chips=1
        )
        return _all_pixels(root)

    first = make("a", 0)
    assert first == make("b", 0)
    assert first != make("c", 1)


def test_sar_class_means_close_to_the_real_chip(s11: Path) -> None:
    reader = get_reader("sen1floods11", s11)
    vals: dict[int, list[np.ndarray]] = {0: [], 1: []}
    for ref in reader.list_chips():
        chip = reader.read(ref)
        for v in (0, 1):
            vals[v].append(chip.arrays["s1"][:, chip.arrays["label"] == v])
    for v, name in ((1, "water"), (0, "dry")):
        means = np.nanmean(np.concatenate(vals[v], axis=1), axis=1)
        assert np.abs(means - np.array(REAL_MEANS[name])).max() < 3.0, (name, means)
    # Water is darker than land in both polarisations by several dB.
    water = np.nanmean(np.concatenate(vals[1], axis=1), axis=1)
    dry = np.nanmean(np.concatenate(vals[0], axis=1), axis=1)
    assert (dry - water > 4.0).all()


@pytest.mark.skipif(not SPAIN.is_dir(), reason=f"real sample data not present at {SPAIN}")
def test_reference_means_are_those_of_the_real_chip() -> None:
    reader = get_reader("sen1floods11", SPAIN)
    chip = reader.read(reader.list_chips()[0])
    for v, name in ((1, "water"), (0, "dry")):
        means = chip.arrays["s1"][:, chip.arrays["label"] == v].mean(axis=1)
        np.testing.assert_allclose(means, REAL_MEANS[name], atol=0.01)


def test_optical_indices_agree_with_the_label(s11: Path) -> None:
    reader = get_reader("sen1floods11", s11)
    ndvi: dict[int, list[np.ndarray]] = {0: [], 1: []}
    ndwi: dict[int, list[np.ndarray]] = {0: [], 1: []}
    invalid = 0
    for ref in reader.list_chips():
        chip = reader.read(ref)
        s2, lab = chip.arrays["s2"], chip.arrays["label"]
        b3, b4, b8 = (s2[S2_BANDS.index(b)] for b in ("B3", "B4", "B8"))
        clear = b3 < 4000  # outside thick clouds
        for v in (0, 1):
            m = (lab == v) & clear
            ndvi[v].append(((b8 - b4) / (b8 + b4))[m])
            ndwi[v].append(((b3 - b8) / (b3 + b8))[m])
        invalid += int((lab == -1).sum())
        # SAR nodata is always an invalid label.
        assert (lab[np.isnan(chip.arrays["s1"][0])] == -1).all()
    assert invalid > 0
    assert np.nanmedian(np.concatenate(ndwi[1])) > 0 > np.nanmedian(np.concatenate(ndwi[0]))
    assert np.nanmedian(np.concatenate(ndvi[0])) > 0.2 > np.nanmedian(np.concatenate(ndvi[1]))


def test_weak_labels_are_otsu_of_the_weak_sar(s11: Path) -> None:
    reader = get_reader("sen1floods11", s11, labels=("weak",))
    for ref in reader.list_chips():
        chip = reader.read(ref)
        np.testing.assert_array_equal(
            chip.arrays["label_weak"], otsu_water_mask(chip.arrays["s1"][0])
        )


def test_chips_sit_at_their_event_in_wgs84(s11: Path) -> None:
    reader = get_reader("sen1floods11", s11)
    for ref in reader.list_chips():
        chip = reader.read(ref)
        assert chip.crs == "EPSG:4326"
        lon, lat = chip.transform[2], chip.transform[5]
        assert -180 < lon < 180 and -60 < lat < 60
        if ref.group == "Spain":
            assert abs(lon + 0.8) < 1 and abs(lat - 38.1) < 1


def test_refuses_to_overwrite_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        write_synthetic("sarkd", tmp_path, chips=3, size=32, seed=0)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_cli_synth_writes_and_rewrites(tmp_path: Path) -> None:
    out = tmp_path / "kd"
    runner = CliRunner()
    for _ in range(2):  # a second run replaces the earlier synthetic output
        res = runner.invoke(
            main, ["synth", "sarkd", "--out", str(out), "--chips", "3", "--size", "32"]
        )
        assert res.exit_code == 0, res.output
        assert f"source root: {out}" in res.output and "floodlab convert sarkd" in res.output
    assert (out / MARKER).is_file() and len(list(out.rglob("*.npy"))) == 3 * 8
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("")
    res = runner.invoke(main, ["synth", "sarkd", "--out", str(tmp_path / "other")])
    assert res.exit_code == 2 and "not empty" in res.output and "Traceback" not in res.output
