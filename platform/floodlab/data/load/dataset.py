"""The training reader: patches of a converted store as sample dicts (floodlab.data.sample)."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from floodlab.data import sample as S
from floodlab.data.load.normalize import (
    check_sar_units,
    normalization_params,
    normalize_with_params,
)
from floodlab.data.load.store import Store, open_store
from floodlab.data.load.transforms import (
    Crop,
    augment_spatial,
    brightness_contrast,
    crop_for,
    pad,
)
from floodlab.errors import DataError
from floodlab.specs import DataSpec

log = logging.getLogger(__name__)

# Which label array holds a chip's label, by the chip's label source.
LABEL_ARRAY = {"hand": "label", "weak": "label_weak"}


class FloodDataset(Dataset):
    """Patches of one split of a converted Zarr store (see floodlab.data.load.store).

    Samples are dicts with the keys of `floodlab.data.sample`:

    - IMAGE (C, P, P) float32: `image_bands`, normalised (floodlab.data.load.normalize);
    - MASK (P, P) float32 {0, 1} and VALID (P, P) bool: VALID is the chip's label >= 0
      and every image band has data; MASK is 1 for water (or cloud) and 0 where invalid.
      `label: flood` takes each chip's label from its source (hand -> `label`, weak ->
      `label_weak`) and keeps only the chips of `label_sources`; `label: cloud` uses the
      binary cloud label (thin | thick); `label: none` (translation only) gives an all-zero
      MASK and an all-False VALID, so batches keep one structure across families;
    - OPTICAL (C_o, P, P) / TARGET (C_t, P, P) float32 when `optical_bands`/`target_bands`
      are set (a chip without optical data gives zeros; chips without the target bands are
      left out);
    - SAR_DB (P, P) float32: raw VV in dB, NaN at nodata (when the store has VV);
    - ID str; BAND str (band-agnostic mode).

    Training draws a random `patch_size` crop per sample and one random flip/rotation
    applied identically to every spatial array; brightness/contrast change the image only.
    Other splits use the centred crop. Chips smaller than the patch are padded with nodata
    (invalid labels). `whole_chip` reads every pixel of each chip instead (evaluation:
    `patch_size` is then ignored), and ``normalized=False`` leaves IMAGE and OPTICAL in
    physical units with NaN at nodata and keeps NaN in TARGET where the target had no
    data, for callers that normalise themselves (per window, like scene prediction).
    Band-agnostic mode (SAR-KD): in training every band of `agnostic_train_bands` (default:
    those of `floodlab.bands.SARKD_BANDS` the store has or can derive) is its own
    single-channel sample (len = chips x bands); otherwise `agnostic_val_bands`.

    Pixels are read straight from the Zarr chunk files (`Store.read_raw`, which reads the
    converter's layout directly and anything else through zarr-python), not through Dask:
    a Dask graph per patch costs far more than the read itself (benchmarks/loader.py
    measured Dask ~14x slower than direct reads for single patches). The store is opened
    lazily in each process, so the dataset pickles without open handles (DataLoader
    workers, Ray Train workers).

    Args:
        spec_data: the `data` section of the experiment spec.
        split: split name (e.g. spec_data.train_split).
        train: random crops and augmentation (True) or centred crops (False).
        seed: mixed into the per-sample random generator.
        whole_chip: samples are whole chips, not `patch_size` crops (evaluation only).
        normalized: normalise IMAGE and OPTICAL with `norm` (False: physical values).
        norm: normalisation parameters to apply (a trained run's, evaluated on another
            store); default those of `spec_data` resolved against this store.
    """

    def __init__(
        self,
        spec_data: DataSpec,
        split: str,
        *,
        train: bool,
        seed: int = 0,
        whole_chip: bool = False,
        normalized: bool = True,
        norm: dict[str, Any] | None = None,
    ):
        if whole_chip and train:
            raise ValueError(
                "whole_chip reads whole chips for evaluation; training draws patch_size crops"
            )
        self.spec = spec_data
        self.split = split
        self.train = train
        self.seed = int(seed)
        self.whole_chip = whole_chip
        self.normalized = normalized
        self.path = spec_data.store_path
        self._store: Store | None = None
        self._pid = -1
        store = self.store
        self._validate(store)
        self.chip_hw = store.chip_shape
        if norm is None:
            self.norm = normalization_params(spec_data, store)
        else:
            check_sar_units(str(norm.get("mode")), store)
            self.norm = norm
        chips = self._select_chips(store)
        self.label_sources = [str(store.label_sources[i]) for i in chips]
        self.ids = [str(store.ids[i]) for i in chips]
        self.samples: list[tuple[int, int, str | None]] = []  # (position, chip, band)
        if spec_data.band_agnostic:
            bands = self.agnostic_bands(store)
            present = {b: store.band_present(b) for b in bands}
            for pos, chip in enumerate(chips):
                for band in bands:
                    if present[band][chip]:  # a weak chip has no optical bands
                        self.samples.append((pos, int(chip), band))
        else:
            self.samples = [(pos, int(chip), None) for pos, chip in enumerate(chips)]
        self.sar_db = "VV" in store.available_bands()
        log.info("%s split %s: %d chips, %d samples", self.path, split, len(chips), len(self))

    # -- setup ---------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The store, opened once per process (never pickled)."""
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid = open_store(self.path), os.getpid()
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"], state["_pid"] = None, -1
        return state

    def agnostic_bands(self, store: Store) -> list[str]:
        """Bands that become single-channel samples in band-agnostic mode."""
        if not self.train:
            return list(self.spec.agnostic_val_bands)
        return self.spec.agnostic_bands(list(store.available_bands()))

    def _validate(self, store: Store) -> None:
        spec = self.spec
        store.check_bands(spec.image_bands if not spec.band_agnostic else [], "data.image_bands")
        store.check_bands(spec.optical_bands, "data.optical_bands")
        store.check_bands(spec.target_bands, "data.target_bands")
        if spec.band_agnostic:
            store.check_bands(spec.agnostic_val_bands, "data.agnostic_val_bands")
            store.check_bands(spec.agnostic_train_bands or [], "data.agnostic_train_bands")
        if spec.label == "flood":
            missing = [s for s in spec.label_sources if LABEL_ARRAY[s] not in store.modalities]
            if missing:
                raise DataError(
                    f"data.label_sources: store {store.path} has no {missing} labels (arrays: "
                    f"{store.modalities}); convert with those labels or change label_sources"
                )
        elif spec.label == "cloud" and "label" not in store.modalities:
            raise DataError(f"data.label: cloud needs a 'label' array; {store.path} has none")

    def _select_chips(self, store: Store) -> np.ndarray:
        spec = self.spec
        chips = store.split_indices(self.split)
        if spec.label == "flood":
            keep = np.isin(store.label_sources[chips], list(spec.label_sources))
            chips = chips[keep]
        need = [] if spec.band_agnostic else list(spec.image_bands)
        for band in need + list(spec.target_bands):
            chips = chips[store.band_present(band)[chips]]
        if chips.size == 0:
            raise DataError(
                f"{store.path}: split '{self.split}' has no chips with label sources "
                f"{spec.label_sources} and the bands {need + list(spec.target_bands)}"
            )
        if spec.limit_chips is not None:
            chips = chips[: spec.limit_chips]
        return chips

    # -- samples -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def _rng(self, k: int) -> np.random.Generator | None:
        if not self.train:
            return None
        # torch's generator is seeded per epoch and per DataLoader worker, so crops differ
        # between epochs yet repeat for the same torch seed.
        draw = int(torch.randint(0, 2**62, (1,)).item())
        return np.random.default_rng([self.seed, draw, k])

    def __getitem__(self, k: int) -> dict[str, Any]:
        pos, chip, band = self.samples[k]
        spec, store, rng = self.spec, self.store, self._rng(k)
        image_bands = [band] if band is not None else list(spec.image_bands)
        if self.whole_chip:
            crop = Crop((0, 0, *self.chip_hw), (0, 0, 0, 0))
        else:
            crop = crop_for(self.chip_hw, spec.patch_size, rng)
        label_name = None
        if spec.label == "flood":
            label_name = LABEL_ARRAY.get(self.label_sources[pos])
        elif spec.label == "cloud":
            label_name = "label"
        extra = ["VV"] if self.sar_db and "VV" not in image_bands else []
        bands = list(
            dict.fromkeys(image_bands + list(spec.optical_bands) + list(spec.target_bands) + extra)
        )
        plan = store.plan_bands(bands)
        request: dict[str, list[int] | None] = dict(plan)
        if label_name:
            request[label_name] = None
        raw = store.read_raw(chip, request, crop.window)  # only the bands the sample uses
        phys = pad(store.bands_from_raw(raw, bands, plan), crop, np.nan)  # (C_all, P, P)
        at = {b: c for c, b in enumerate(bands)}
        image = phys[[at[b] for b in image_bands]]
        has_data = np.all(np.isfinite(image), axis=0)  # (P, P)
        if label_name:
            label = pad(raw[label_name], crop, -1)
            valid = (label >= 0) & has_data
            mask = ((label == 1) & valid).astype(np.float32)
        else:
            valid = np.zeros(has_data.shape, dtype=bool)
            mask = np.zeros(has_data.shape, dtype=np.float32)
        out: dict[str, np.ndarray] = {
            S.IMAGE: normalize_with_params(image, self.norm, "image", bands=image_bands)
            if self.normalized
            else np.ascontiguousarray(image),
            S.MASK: mask,
            S.VALID: valid,
            "_has_data": has_data,
        }
        if spec.optical_bands:
            opt = phys[[at[b] for b in spec.optical_bands]]
            out[S.OPTICAL] = (
                normalize_with_params(opt, self.norm, "optical")
                if self.normalized
                else np.ascontiguousarray(opt)
            )
        if spec.target_bands:
            tgt = phys[[at[b] for b in spec.target_bands]]
            out[S.TARGET] = normalize_with_params(tgt, self.norm, "target")
            if not self.normalized:
                out[S.TARGET][:, ~np.isfinite(tgt).all(axis=0)] = np.nan
        if self.sar_db:
            out[S.SAR_DB] = np.ascontiguousarray(phys[at["VV"]])
        if rng is not None:
            aug = spec.augment
            out = augment_spatial(out, rng, aug.flips, aug.rot90)
            out[S.IMAGE] = brightness_contrast(
                out[S.IMAGE], rng, aug.brightness, aug.contrast, out["_has_data"]
            )
        out.pop("_has_data")
        sample: dict[str, Any] = {key: torch.from_numpy(a) for key, a in out.items()}
        sample[S.ID] = self.ids[pos]
        if band is not None:
            sample[S.BAND] = band
        return sample
