"""`floodlab convert geotiff`: a researcher's own folder of chips and masks becomes a store."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.errors import NotGeoreferencedWarning

from floodlab.cli import main
from floodlab.data.geotiff import write_raster
from floodlab.data.load.store import open_store

SIZE = 32
UTM = ("EPSG:32633", (10.0, 0.0, 500_000.0, 0.0, -10.0, 5_000_000.0))
LONLAT = ("EPSG:4326", (9e-05, 0.0, 14.0, 0.0, -9e-05, 45.0))
# chip -> (how its SAR is stored, grid, split in the CSV)
CHIPS: dict[str, tuple[str, tuple[str, tuple[float, ...]], str]] = {
    "ghana_01": ("stack", UTM, "train"),
    "ghana_02": ("stack", UTM, "train"),
    "ghana_03": ("stack", UTM, "val"),
    "spain_01": ("per-band", LONLAT, "train"),
    "spain_02": ("per-band", LONLAT, "train"),
    "spain_03": ("per-band", LONLAT, "test"),
}
ARGS = ["--images", "S1/*_{band}.tif", "--labels", "masks/*.tif", "--splits", "splits.csv"]
MAP_255 = ["--label-map", "255=1,0=0,other=invalid"]


def scene(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(2, H, W) VV, VH in dB (water dark, a NaN corner) and its uint8 0/255 mask with a
    few 7s (a cloud code the label map must turn invalid)."""
    rng = np.random.default_rng(k)
    water = np.zeros((SIZE, SIZE), dtype=bool)
    water[:, : 8 + 2 * k] = True
    vv = np.where(water, -20.0, -8.0) + rng.normal(0, 1, water.shape)
    sar = np.stack([vv, vv - 7.0]).astype(np.float32)
    sar[:, :2, -2:] = np.nan
    mask = np.where(water, 255, 0).astype(np.uint8)
    mask[-3:, :3] = 7
    return sar, mask


def write_folder(root: Path) -> dict[str, Any]:
    """The folder the issue describes; returns what each chip should read back as."""
    want: dict[str, Any] = {}
    for k, (chip, (layout, (crs, tf), _)) in enumerate(CHIPS.items()):
        sar, mask = scene(k)
        if layout == "stack":  # one undescribed 2-band file
            write_raster(root / "S1" / f"{chip}_VV_VH.tif", sar, crs=crs, transform=tf)
        else:  # one file per band
            for c, band in enumerate(("VV", "VH")):
                write_raster(root / "S1" / f"{chip}_{band}.tif", sar[c], crs=crs, transform=tf)
        # The last mask was exported as a plain image: no CRS, paired by its size.
        last = chip == "spain_03"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            write_raster(
                root / "masks" / f"{chip}.tif",
                mask,
                crs="" if last else crs,
                transform=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0) if last else tf,
            )
        label = np.select([mask == 255, mask == 0], [1, 0], -1).astype(np.int8)
        want[chip] = {"sar": sar, "label": label, "crs": crs, "transform": tf}
    rows = ["chip,split"] + [f"{c},{s}" for c, (_, _, s) in CHIPS.items() if c != "spain_02"]
    rows.append("S1/spain_02_VV.tif,train")  # a file of the chip names it too
    (root / "splits.csv").write_text("\n".join(rows) + "\n")
    return want


def convert(src: Path, out: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["convert", "geotiff", str(src), "--out", str(out), *args])


def failed(result: Any, out: Path, *needles: str) -> str:
    """The error text of a conversion that must stop cleanly: exit 2, no traceback, no store."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not out.exists()
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Path]:
    """The folder, what it should read back as, and its converted store."""
    root = tmp_path_factory.mktemp("own") / "mychips"
    want = write_folder(root)
    out = root.parent / "mychips.zarr"
    result = convert(root, out, *ARGS, *MAP_255, "--derive", "RATIO,MAGNITUDE", "--workers", "1")
    assert result.exit_code == 0, result.output
    return root, want, out


def test_own_folder_converts_with_its_bands_crs_labels_and_splits(own) -> None:
    _, want, out = own
    store = open_store(out)
    assert list(store.ids) == sorted(CHIPS)
    assert store.bands("s1") == ("VV", "VH") and store.sar_units == "dB"
    for i, chip in enumerate(store.ids):
        np.testing.assert_array_equal(store.read_bands(i, ["VV", "VH"]), want[chip]["sar"])
        assert store.crs(i) == want[chip]["crs"]  # each chip keeps its own CRS
        assert store.transform(i) == pytest.approx(want[chip]["transform"])
        label = store.read_raw(i, ["label"])["label"]
        np.testing.assert_array_equal(label, want[chip]["label"])  # 255 -> 1, 0 -> 0, 7 -> -1
        valid = store.read_raw(i, ["valid"])["valid"]
        assert not valid[:2, -2:].any() and not valid[-3:, :3].any()  # NaN SAR, unmapped code
    assert dict(zip(store.ids, store.splits, strict=True)) == {
        c: s for c, (_, _, s) in CHIPS.items()
    }
    assert store.attrs["provenance"]["splits"]["method"] == "official"
    options = store.attrs["provenance"]["options"]["reader_options"]
    assert options["images"] == ["S1/*_{band}.tif"] and options["label_map"] == MAP_255[1]


def test_one_epoch_trains_on_the_converted_folder_and_maps_a_scene(
    own, one_epoch, predict, tmp_path: Path
) -> None:
    record, run = one_epoch(own[2], "geotiff", tmp_path / "runs")
    assert math.isfinite(record["train/loss"]) and 0.0 <= record["val/iou"] <= 1.0
    # A scene in the folder's own layout: one file per band, in geographic coordinates.
    bands = [own[0] / "S1" / f"spain_03_{b}.tif" for b in ("VV", "VH")]
    crs, transform, mask = predict(run, bands, tmp_path / "map.tif")
    assert crs == rasterio.crs.CRS.from_user_input(LONLAT[0])
    assert tuple(transform)[:6] == pytest.approx(LONLAT[1])
    assert mask.shape == (SIZE, SIZE) and (mask[:2, -2:] == 255).all()  # NaN SAR: nodata


def test_second_run_resumes_nothing_and_folders_give_splits(own, tmp_path: Path) -> None:
    root, _, out = own
    again = convert(root, out, *ARGS, *MAP_255)
    assert again.exit_code == 0 and "already a complete store" in again.output
    # train/ val/ test/ folders: the split folder is part of the chip id too.
    for split, chip in (("train", "a"), ("train", "b"), ("val", "c"), ("test", "d")):
        sar, mask = scene(len(chip))
        write_raster(tmp_path / "src" / split / "img" / f"{chip}.tif", sar, crs=UTM[0],
                     transform=UTM[1], descriptions=("VV", "VH"))  # fmt: skip
        write_raster(tmp_path / "src" / split / "mask" / f"{chip}.tif", mask // 255, crs=UTM[0],
                     transform=UTM[1])  # fmt: skip
    folders = tmp_path / "folders.zarr"
    result = convert(
        tmp_path / "src", folders, "--images", "*/img/*.tif", "--labels", "*/mask/*.tif"
    )
    assert result.exit_code == 0, result.output
    store = open_store(folders)
    assert dict(zip(store.ids, store.splits, strict=True)) == {
        "train_a": "train", "train_b": "train", "val_c": "val", "test_d": "test"
    }  # fmt: skip
    assert store.bands("s1") == ("VV", "VH")  # from the band descriptions


def test_unmatched_stems_name_the_file_and_the_fix(own, tmp_path: Path) -> None:
    root = tmp_path / "src"
    write_folder(root)
    (root / "masks" / "ghana_02.tif").unlink()
    text = failed(convert(root, tmp_path / "s.zarr", *ARGS, *MAP_255), tmp_path / "s.zarr")
    assert "ghana_02_VV_VH.tif (chip 'ghana_02') has no file matching 'masks/*.tif'" in text
    assert "fix the patterns" in text
    (root / "S1" / "spain_01_VH.tif").unlink()  # a per-band chip without its VH file
    write_raster(root / "masks" / "ghana_02.tif", scene(1)[1], crs=UTM[0], transform=UTM[1])
    failed(
        convert(root, tmp_path / "s.zarr", *ARGS, *MAP_255),
        tmp_path / "s.zarr",
        "chip 'spain_01' lacks ['VH']",
        "add the missing files",
    )


def test_a_mask_of_another_size_names_both_files(tmp_path: Path) -> None:
    root = tmp_path / "src"
    write_folder(root)
    small = np.zeros((SIZE // 2, SIZE // 2), dtype=np.uint8)
    write_raster(root / "masks" / "ghana_01.tif", small, crs=UTM[0], transform=UTM[1])
    failed(
        convert(root, tmp_path / "s.zarr", *ARGS, *MAP_255),
        tmp_path / "s.zarr",
        "ghana_01_VV_VH.tif is 32x32 pixels but",
        "masks/ghana_01.tif is 16x16",
        "re-export them on one grid",
    )


def test_unknown_band_names_name_the_file_and_the_flag(tmp_path: Path) -> None:
    root = tmp_path / "src"
    write_folder(root)
    sar, _ = scene(0)
    for chip in CHIPS:  # described HH, HV: not floodlab bands
        for f in (root / "S1").glob(f"{chip}_*.tif"):
            f.unlink()
        crs, tf = CHIPS[chip][1]
        write_raster(root / "S1" / f"{chip}.tif", sar, crs=crs, transform=tf,
                     descriptions=("HH", "HV"))  # fmt: skip
    args = ["--images", "S1/*.tif", "--labels", "masks/*.tif", *MAP_255]
    failed(
        convert(root, tmp_path / "s.zarr", *args),
        tmp_path / "s.zarr",
        "S1/ghana_01.tif band 1: unknown band name 'HH'",
        "--bands",
    )
    failed(convert(root, tmp_path / "s.zarr", *args, "--bands", "VV,XX"), tmp_path / "s.zarr",
           "--bands: unknown band name 'XX'")  # fmt: skip
    ok = convert(root, tmp_path / "ok.zarr", *args, "--bands", "vv,vh")
    assert ok.exit_code == 0, ok.output
    assert open_store(tmp_path / "ok.zarr").bands("s1") == ("VV", "VH")


def test_label_values_outside_the_map_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "src"
    write_folder(root)
    failed(
        convert(root, tmp_path / "s.zarr", *ARGS),  # 0/255 masks, default 1=water,0=dry
        tmp_path / "s.zarr",
        "masks/ghana_01.tif: label values 7, 255 are not in the label map",
        "--label-map 255=1,0=0",
        "other=invalid",
    )
    failed(convert(root, tmp_path / "s.zarr", *ARGS, "--label-map", "255=wet"),
           tmp_path / "s.zarr", "the class must be 1/water, 0/dry or -1/invalid")  # fmt: skip


def test_a_splits_csv_naming_unknown_chips_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "src"
    write_folder(root)
    with (root / "splits.csv").open("a") as f:
        f.write("kenya_09,test\n")
    failed(
        convert(root, tmp_path / "s.zarr", *ARGS, *MAP_255),
        tmp_path / "s.zarr",
        "splits.csv names 1 chip(s) that are not in the source: 'kenya_09' (row 8)",
        "fix the CSV",
    )


def test_a_flag_of_another_reader_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["convert", "sen1floods11", str(tmp_path), "--out", str(tmp_path / "s.zarr"),
               "--images", "S1/*.tif"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--images: the sen1floods11 reader has no option 'images'" in result.output
    assert "--images is for geotiff" in result.output
