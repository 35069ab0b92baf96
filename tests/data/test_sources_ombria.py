"""OMBRIA: the real PNG layout, per-patch stretched SAR kept as is, bi-temporal bands, splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.convert.pipeline import convert
from floodlab.data.geotiff import IDENTITY
from floodlab.data.load.dataset import FloodDataset
from floodlab.data.load.store import open_store
from floodlab.data.sources import get_reader
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError
from floodlab.specs import load_spec

ROOT = Path(__file__).resolve().parents[2]
OMBRIA = ROOT.parent / "shared" / "realdata" / "ombria"
needs_real = pytest.mark.skipif(
    not (OMBRIA / "OmbriaS1").is_dir(),
    reason="the real OMBRIA sample (shared/realdata/ombria) is absent",
)


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("ombria")
    raw = write_synthetic("ombria", base / "raw", chips=12, size=64, seed=3)
    return convert("ombria", raw, base / "ombria.zarr", derived=("MNDWI", "VV_DIFF"))


@needs_real
def test_the_real_layout_lists_the_official_splits_with_a_seeded_val_split() -> None:
    refs = get_reader("ombria", OMBRIA).list_chips()
    counts = {s: sum(r.split == s for r in refs) for s in ("train", "val", "test")}
    assert counts == {"train": 562, "val": 62, "test": 70}  # 624 train of which 10 % val
    again = get_reader("ombria", OMBRIA).list_chips()
    assert [r.split for r in again] == [r.split for r in refs]  # the same draw every time
    other = get_reader("ombria", OMBRIA, val_seed=1).list_chips()
    assert [r.split for r in other] != [r.split for r in refs]
    assert all(r.split == "test" for r in refs if "/test/" in r.files["s1"][0])


@needs_real
def test_a_real_patch_reads_as_stretched_vv_pair_optical_and_flood_mask(tmp_path: Path) -> None:
    from PIL import Image

    reader = get_reader("ombria", OMBRIA)
    ref = next(r for r in reader.list_chips() if r.split == "test")
    chip = reader.read(ref)
    assert chip.crs == "" and chip.transform == IDENTITY
    assert chip.bands == {"s1": ("VV", "VV_pre"), "s2": ("B11", "B8", "B3")}
    post = np.asarray(Image.open(ref.files["s1"][0]), dtype=np.float32)
    np.testing.assert_array_equal(chip.arrays["s1"][0], post)  # kept as 0..255
    mask = np.asarray(Image.open(ref.files["label"][0]))
    np.testing.assert_array_equal(chip.arrays["label"], (mask == 255).astype(np.int8))
    rgb = np.asarray(Image.open(ref.files["s2"][0]), dtype=np.float32)  # (H, W, 3)
    b11 = chip.arrays["s2"][0]
    dark = rgb[..., 0] == 0
    np.testing.assert_allclose(b11[~dark], rgb[..., 0][~dark] * 10000 / 255, rtol=1e-6)


@needs_real
def test_real_patches_convert_into_a_store_that_records_scaled_units(tmp_path: Path) -> None:
    # A few real patches of each split, in the real layout.
    src = tmp_path / "ombria"
    for split, n in (("train", 6), ("test", 3)):
        for folder in ("AFTER", "BEFORE", "MASK"):
            names = sorted((OMBRIA / "OmbriaS1" / split / folder).iterdir())[:n]
            (src / "OmbriaS1" / split / folder).mkdir(parents=True)
            for f in names:
                shutil.copy(f, src / "OmbriaS1" / split / folder / f.name)
    out = tmp_path / "o.zarr"
    result = CliRunner().invoke(main, ["convert", "ombria", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "scaled_0_255" in result.output and "per_patch" in result.output
    store = open_store(out)
    assert store.sar_units == "scaled_0_255" and store.chip_shape == (256, 256)
    assert store.attrs["split_counts"] == {"train": 5, "val": 1, "test": 3}
    assert "s2" not in store.modalities  # an S1-only copy is fine


def test_bi_temporal_samples_are_normalised_per_patch(synth_store: Path) -> None:
    spec = load_spec(
        ROOT / "experiments" / "quickstart.yaml",
        [
            "data.dataset=ombria",
            f"data.store={synth_store}",
            "data.synthetic=null",
            "data.image_bands=[VV_pre, VV, VV_DIFF]",
            "data.optical_bands=[B11, B8, B3, MNDWI]",
            "data.target_bands=[B11, B8, B3]",
            "data.normalize=per_patch",
            "data.patch_size=64",
            "model.sar_channels=3",
        ],
    )
    ds = FloodDataset(spec.data, "test", train=False)
    sample = ds[0]
    image = sample["image"].numpy()  # (3, 64, 64)
    assert image.shape == (3, 64, 64)
    np.testing.assert_allclose(image.reshape(3, -1).mean(axis=1), 0.0, atol=1e-4)
    np.testing.assert_allclose(image.reshape(3, -1).std(axis=1), 1.0, atol=1e-3)
    store = open_store(synth_store)
    raw = store.read_bands(ds.samples[0][1], ["VV", "VV_pre", "VV_DIFF", "MNDWI"])
    np.testing.assert_allclose(raw[2], raw[0] - raw[1], atol=1e-5)  # VV_DIFF = VV - VV_pre
    assert np.nanmax(np.abs(raw[3])) <= 1.0


def test_fixed_db_normalisation_is_refused_for_stretched_sar(synth_store: Path) -> None:
    spec = load_spec(
        ROOT / "experiments" / "resunet_sen1floods11.yaml",
        [
            "data.dataset=ombria",
            f"data.store={synth_store}",
            "data.synthetic=null",
            "data.image_bands=[VV]",
            "data.label_sources=[hand]",
            "model.in_channels=1",
            "data.normalize=sarkd_clip",
        ],
    )
    with pytest.raises(DataError, match=r"scaled_0_255.*data\.normalize: per_patch"):
        FloodDataset(spec.data, "train", train=True)
