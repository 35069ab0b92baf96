"""`floodlab evaluate` on real chips: the whole 512x512 Sen1Floods11 chip, whole OMBRIA patches."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.load.store import open_store
from floodlab.predict.evaluate import evaluate_run
from floodlab.specs import ExperimentSpec, load_spec
from floodlab.tracking import RunDir

WriteRun = Callable[[Path, ExperimentSpec], RunDir]

ROOT = Path(__file__).resolve().parents[2]
REALDATA = ROOT.parent / "shared" / "realdata"
REAL_S11 = REALDATA / "sen1floods11"
OMBRIA = REALDATA / "ombria"
needs_s11 = pytest.mark.skipif(
    not (REAL_S11 / "v1.1").is_dir(),
    reason=f"the real Sen1Floods11 sample is not present at {REAL_S11}",
)
needs_ombria = pytest.mark.skipif(
    not (OMBRIA / "OmbriaS1").is_dir(), reason=f"the real OMBRIA sample is absent at {OMBRIA}"
)


def convert_cli(*args: object) -> None:
    result = CliRunner().invoke(main, ["convert", *(str(a) for a in args)])
    assert result.exit_code == 0, result.output


def valid_pixels(store_path: Path, chip: int, bands: list[str]) -> int:
    """Pixels of a whole chip with a valid label and data in every band, from the store."""
    store = open_store(store_path)
    label = store.read_raw(chip, ["label"])["label"]
    data = np.isfinite(store.read_bands(chip, bands)).all(axis=0)
    return int(((label >= 0) & data).sum())


@needs_s11
def test_the_real_sen1floods11_chip_is_scored_whole(
    tiny_s1f11_store: Path, tmp_path: Path, untrained_run: WriteRun
) -> None:
    real = tmp_path / "s11.zarr"  # converted with the official split lists: a test chip
    convert_cli(
        "sen1floods11",
        REAL_S11 / "v1.1",
        "--out",
        real,
        "--option",
        f"splits_dir={REAL_S11 / 'split_lists'}",
    )
    # A run on VV, ratio and magnitude with 64 px patches and z-scores of its own store.
    spec = load_spec(
        ROOT / "experiments" / "resunet_sen1floods11.yaml",
        [
            f"data.store={tiny_s1f11_store}",
            "data.patch_size=64",
            "model.widths=[8,16]",
            "model.se_reduction=4",
        ],
    )
    run = untrained_run(tmp_path / "runs", spec)
    expected = valid_pixels(real, 0, ["VV", "VH"])
    assert 262_000 < expected < 512 * 512  # the label's 99 invalid pixels are left out
    for window, how in ((512, "one fully convolutional pass"), (256, "blended windows")):
        report = evaluate_run(
            run.path, store=str(real), window=window, resamples=100, overwrite=True
        )
        assert report["split"] == "test" and report["label_sources"] == ["hand"]
        assert how in report["evaluation"]["prediction"]
        rows = list(csv.DictReader(Path(report["files"]["per_image"]).read_text().splitlines()))
        assert [(r["id"], r["height"], r["width"]) for r in rows] == [
            ("Spain_7370579", "512", "512")
        ]
        assert int(rows[0]["valid_pixels"]) == expected
        water = report["predictors"]["all_water"]
        assert water["tp"] == 70_035 and water["tp"] + water["fp"] == expected


@needs_ombria
def test_real_ombria_patches_are_each_one_whole_256_row(
    tmp_path: Path, untrained_run: WriteRun
) -> None:
    src = tmp_path / "ombria"  # a few real patches of each split, in the real layout
    for split, n in (("train", 6), ("test", 3)):
        for folder in ("AFTER", "BEFORE", "MASK"):
            names = sorted((OMBRIA / "OmbriaS1" / split / folder).iterdir())[:n]
            (src / "OmbriaS1" / split / folder).mkdir(parents=True)
            for f in names:
                shutil.copy(f, src / "OmbriaS1" / split / folder / f.name)
    store = tmp_path / "o.zarr"
    convert_cli("ombria", src, "--out", store)
    spec = load_spec(
        ROOT / "experiments" / "resunet_sen1floods11.yaml",
        [
            "data.dataset=ombria",
            f"data.store={store}",
            "data.image_bands=[VV_pre, VV]",
            "data.label_sources=[hand]",
            "data.normalize=per_patch",
            "data.patch_size=128",
            "model.in_channels=2",
            "model.widths=[8,16]",
            "model.se_reduction=4",
        ],
    )
    run = untrained_run(tmp_path / "runs", spec)
    result = CliRunner().invoke(main, ["evaluate", str(run.path), "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    out = run.eval_dir("test")
    rows = list(csv.DictReader((out / "per_image.csv").read_text().splitlines()))
    opened = open_store(store)
    test_chips = [int(i) for i in opened.split_indices("test")]
    assert [r["id"] for r in rows] == [str(opened.ids[i]) for i in test_chips]
    assert len(rows) == 3 and all((r["height"], r["width"]) == ("256", "256") for r in rows)
    for r, chip in zip(rows, test_chips, strict=True):
        assert int(r["valid_pixels"]) == valid_pixels(store, chip, ["VV_pre", "VV"])
        assert float(r["water_fraction"]) > 0  # every OMBRIA mask has flood
    assert "scaled_0_255" in result.output  # Otsu on the stored, stretched values
    assert "each whole chip by its own statistics" in (out / "metrics.json").read_text()
