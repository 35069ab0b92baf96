"""`floodlab evaluate` on a cloud run: the model beside a brightness threshold and all-cloud."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from floodlab.data.otsu import brightness_cloud_mask
from floodlab.predict.evaluate import evaluate_run
from floodlab.specs import load_spec
from floodlab.tracking import RunDir

ROOT = Path(__file__).resolve().parents[2]


def test_brightness_mask_splits_bright_from_dark_on_the_visible_bands() -> None:
    rng = np.random.default_rng(0)
    cloud = np.zeros((32, 32), bool)
    cloud[:, :12] = True
    visible = np.where(cloud, 5000.0, 900.0) + rng.normal(0, 50, (32, 32))
    nir = rng.uniform(0, 8000, (32, 32))  # bright but not visible: must not count
    image = np.stack([visible, visible, visible, nir]).astype(np.float32)
    image[:, 0, 0] = np.nan
    mask = brightness_cloud_mask(image, ["B4", "B3", "B2", "B8"])
    assert not mask[0, 0]
    assert (mask[1:] == cloud[1:]).all()


@pytest.fixture(scope="module")
def cloud_run(
    tmp_path_factory: pytest.TempPathFactory, untrained_run: Callable[..., RunDir]
) -> Path:
    from floodlab.data.convert.pipeline import convert
    from floodlab.data.synth import write_synthetic

    base = tmp_path_factory.mktemp("cloud")
    raw = write_synthetic("cloudsen12", base / "raw", chips=8, size=64, seed=3)
    store = convert("cloudsen12", raw, base / "cloud.zarr")
    spec = load_spec(
        ROOT / "experiments" / "cloud_unet_cloudsen12.yaml",
        [
            f"data.store={store}",
            "data.patch_size=32",
            "data.loader_workers=0",
            "model.decoder_widths=[32,16,16,8,8]",
        ],
    )
    return untrained_run(tmp_path_factory.mktemp("runs"), spec).path


def test_cloud_evaluation_reports_the_brightness_baseline(cloud_run: Path) -> None:
    report = evaluate_run(cloud_run, split="test")
    predictors = report["predictors"]
    assert set(predictors) == {"model", "brightness", "all_water"}
    assert (
        "Otsu's threshold of that chip's own brightness" in predictors["brightness"]["definition"]
    )
    with open(report["files"]["per_image"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["images"] > 0
    # The baseline's counts are those of the brightness mask of each whole chip.
    from torch.utils.data import DataLoader

    from floodlab.data import sample as S
    from floodlab.data.load.dataset import FloodDataset

    spec = load_spec(cloud_run / "spec.yaml")
    ds = FloodDataset(spec.data, "test", train=False, whole_chip=True, normalized=False)
    batch = next(iter(DataLoader(ds, batch_size=1)))
    truth = batch[S.MASK][0].numpy() > 0.5
    valid = batch[S.VALID][0].numpy().astype(bool)
    pred = brightness_cloud_mask(batch[S.IMAGE][0].numpy(), list(spec.data.image_bands))
    assert int(rows[0]["tp_brightness"]) == int((pred & truth & valid).sum())
    assert int(rows[0]["fp_brightness"]) == int((pred & ~truth & valid).sum())
