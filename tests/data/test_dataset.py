"""FloodDataset: sample structure, aligned augmentation, label sources, band-agnostic mode,
DataLoader workers, and ensure_store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from floodlab.bands import S1_BANDS
from floodlab.data import sample as S
from floodlab.data.convert.pipeline import convert
from floodlab.data.convert.prepare import ensure_store
from floodlab.data.load.dataset import FloodDataset
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.errors import DataError, DatasetNotFoundError
from floodlab.specs import DataSpec

THRESHOLD_DB = -14.0


class ThresholdReader(SourceReader):
    """Chips of 24 px whose label is exactly VV < -14 dB (NaN corner = invalid)."""

    name = "threshold"

    def list_chips(self) -> list[ChipRef]:
        return [ChipRef(f"t{i}", f"g{i}", "train", {"s1": (f"/raw/t{i}",)}) for i in range(3)]

    def read(self, ref: ChipRef) -> Chip:
        rng = np.random.default_rng(int(ref.id[1:]))
        s1 = rng.normal(-13, 5, (2, 24, 24)).astype(np.float32)
        s1[:, :3, :5] = np.nan  # an asymmetric nodata corner reveals misaligned flips
        label = np.where(np.isnan(s1[0]), -1, s1[0] < THRESHOLD_DB).astype(np.int8)
        return Chip(ref, {"s1": s1, "label": label}, {"s1": S1_BANDS}, "", (1, 0, 0, 0, 1, 0))


def spec_for(store: Path, **kw) -> DataSpec:
    base = {"dataset": "sen1floods11", "store": str(store), "image_bands": ["VV", "VH"]}
    return DataSpec(**(base | kw))


def test_sample_keys_shapes_and_dtypes(tiny_s1f11_store: Path) -> None:
    spec = spec_for(
        tiny_s1f11_store,
        image_bands=["VV", "RATIO", "MAGNITUDE"],
        optical_bands=["B4", "B3", "B2", "NDVI"],
        target_bands=["B4", "B3", "B2"],
        patch_size=32,
    )
    ds = FloodDataset(spec, "train", train=True, seed=1)
    s = ds[0]
    assert set(s) == {S.IMAGE, S.MASK, S.VALID, S.OPTICAL, S.TARGET, S.SAR_DB, S.ID}
    assert s[S.IMAGE].shape == (3, 32, 32) and s[S.IMAGE].dtype == torch.float32
    assert s[S.OPTICAL].shape == (4, 32, 32) and s[S.TARGET].shape == (3, 32, 32)
    assert s[S.MASK].dtype == torch.float32 and s[S.VALID].dtype == torch.bool
    assert s[S.SAR_DB].shape == (32, 32) and isinstance(s[S.ID], str)
    assert torch.isfinite(s[S.IMAGE]).all() and (s[S.MASK][~s[S.VALID]] == 0).all()
    assert float(s[S.TARGET].min()) >= 0 and float(s[S.TARGET].max()) <= 1
    # Hand chips only by default; validation crops are centred and repeatable.
    val = FloodDataset(spec, "val", train=False)
    assert all(src == "hand" for src in val.label_sources)
    assert torch.equal(val[0][S.IMAGE], val[0][S.IMAGE])
    big = FloodDataset(spec_for(tiny_s1f11_store, patch_size=80), "val", train=False)[0]
    assert big[S.IMAGE].shape == (2, 80, 80) and not big[S.VALID][:8].any()  # padded invalid


def test_augmentation_keeps_image_mask_valid_aligned(tmp_path: Path) -> None:
    store = convert("threshold", "/raw", tmp_path / "t.zarr", reader=ThresholdReader("/raw"))
    spec = spec_for(store, patch_size=16, augment={"flips": True, "rot90": True})
    ds = FloodDataset(spec, "train", train=True, seed=0)
    vv_stats = ds.norm["image"]["coefficients"][0]
    torch.manual_seed(0)
    for k in range(12):
        s = ds[k % len(ds)]
        valid, mask, vv = s[S.VALID].numpy(), s[S.MASK].numpy(), s[S.SAR_DB].numpy()
        assert np.array_equal(valid, np.isfinite(vv))
        assert np.array_equal(mask.astype(bool), valid & (vv < THRESHOLD_DB))
        # The normalised image moved with the mask too.
        thr = THRESHOLD_DB * vv_stats["scale"] + vv_stats["offset"]
        assert np.array_equal(mask.astype(bool), valid & (s[S.IMAGE][0].numpy() < thr))


def test_label_sources_limit_and_missing_bands(tiny_s1f11_store: Path) -> None:
    both = FloodDataset(
        spec_for(tiny_s1f11_store, label_sources=["hand", "weak"]), "train", train=False
    )
    hand = FloodDataset(spec_for(tiny_s1f11_store), "train", train=False)
    assert set(both.label_sources) == {"hand", "weak"} and len(both) > len(hand)
    weak_k = both.label_sources.index("weak")
    sample = both[weak_k]
    assert sample[S.VALID].any()  # weak chips take MASK/VALID from label_weak
    limited = FloodDataset(spec_for(tiny_s1f11_store, limit_chips=2), "train", train=False)
    assert len(limited) == 2
    none = FloodDataset(
        spec_for(tiny_s1f11_store, label="none", target_bands=["B4"]), "val", train=False
    )
    assert not none[0][S.VALID].any() and not none[0][S.MASK].any()
    with pytest.raises(DataError, match="available bands"):
        FloodDataset(spec_for(tiny_s1f11_store, image_bands=["SLOPE"]), "train", train=True)


def test_band_agnostic_lengths(tiny_s1f11_store: Path) -> None:
    spec = spec_for(
        tiny_s1f11_store,
        band_agnostic=True,
        normalize="sarkd_clip",
        image_bands=["VV"],
        patch_size=64,
    )
    train = FloodDataset(spec, "train", train=True)
    val = FloodDataset(spec, "val", train=False)
    n_train, n_val = len(train.ids), len(val.ids)
    assert len(train) == 7 * n_train  # VV VH B2 B3 B4 NDVI NDWI, all present on hand chips
    assert len(val) == 2 * n_val and {val[k][S.BAND] for k in range(len(val))} == {"VV", "VH"}
    s = train[3]
    assert s[S.BAND] == "B3" and s[S.IMAGE].shape == (1, 64, 64)
    assert float(s[S.IMAGE].min()) >= 0 and float(s[S.IMAGE].max()) <= 1


def test_band_agnostic_training_bands_can_be_chosen(tiny_s1f11_store: Path) -> None:
    # Bands where water looks alike (dark): the chosen ones, in order, and nothing else.
    spec = spec_for(
        tiny_s1f11_store,
        band_agnostic=True,
        agnostic_train_bands=["VH", "VV"],
        normalize="sarkd_clip",
        image_bands=["VV"],
        patch_size=64,
    )
    train = FloodDataset(spec, "train", train=True)
    assert len(train) == 2 * len(train.ids)
    assert [train[k][S.BAND] for k in range(2)] == ["VH", "VV"]
    with pytest.raises(DataError, match=r"data\.agnostic_train_bands"):
        FloodDataset(
            spec_for(tiny_s1f11_store, band_agnostic=True, agnostic_train_bands=["VV_pre"]),
            "train",
            train=True,
        )


def test_dataloader_with_two_workers(tiny_s1f11_store: Path) -> None:
    spec = spec_for(tiny_s1f11_store, image_bands=["VV", "RATIO"], patch_size=32)
    ds = FloodDataset(spec, "train", train=True)
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert sum(len(b[S.ID]) for b in batches) == len(ds)
    assert batches[0][S.IMAGE].shape == (4, 2, 32, 32)


def test_ensure_store_synthesises_once_and_explains_when_it_cannot(tmp_path: Path) -> None:
    spec = spec_for(
        tmp_path / "q" / "s.zarr",
        synthetic={"chips": 4, "size": 32, "seed": 0},
        image_bands=["VV", "RATIO"],
    )
    path = ensure_store(spec)
    assert path == tmp_path / "q" / "s.zarr" and (tmp_path / "q" / "s.zarr.raw").is_dir()
    stamp = (path / "zarr.json").stat().st_mtime_ns
    assert ensure_store(spec) == path and (path / "zarr.json").stat().st_mtime_ns == stamp
    assert len(FloodDataset(spec, "train", train=True)) > 0
    missing = spec_for(tmp_path / "none.zarr", source="raw/s11")
    with pytest.raises(DatasetNotFoundError, match=r"floodlab convert sen1floods11 raw/s11"):
        ensure_store(missing)
