"""The `data` section: which store, which bands, how samples are cut, normalised, augmented."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from floodlab.bands import ALL_BANDS
from floodlab.specs.base import Fraction, StoreLocation, StrictModel
from floodlab.specs.paths import closest


def registered_datasets() -> tuple[str, ...]:
    """The dataset names `data.dataset` accepts: those of `floodlab.data.registry`.

    The registry is the one declaration of datasets; it collects its entries by importing
    the readers (numpy, rasterio), which `import floodlab.specs` must not do. So the names
    are looked up here, when a spec is validated or the JSON schema is written, rather
    than copied into a `Literal` that would have to be kept in step by hand.
    """
    from floodlab.data.registry import dataset_names

    return dataset_names()


def _dataset_enum(schema: dict[str, Any]) -> None:
    """List the registered names as the JSON-schema `enum` of `data.dataset` (for editors)."""
    schema["enum"] = list(registered_datasets())


class SynthSpec(StrictModel):
    """Real-format synthetic data generated when the store does not exist yet."""

    chips: int = Field(
        32,
        ge=3,
        description="Number of synthetic chips (scenes are grouped so every split gets some).",
    )
    size: int = Field(
        256, ge=32, description="Chip side length in pixels (Sen1Floods11 chips are 512)."
    )
    seed: int = Field(0, description="Seed of the generator; the same seed writes the same files.")


class AugmentSpec(StrictModel):
    """Training-time augmentation, applied identically to image, mask, validity and priors."""

    flips: bool = Field(True, description="Random horizontal and vertical flips.")
    rot90: bool = Field(True, description="Random rotations by 0/90/180/270 degrees.")
    brightness: Fraction = Field(
        0.0, description="Max additive brightness shift in normalised units (0 = off)."
    )
    contrast: Fraction = Field(
        0.0, description="Max relative contrast change, factor in [1-c, 1+c] (0 = off)."
    )


class DataSpec(StrictModel):
    """Where samples come from and what a sample holds."""

    dataset: str = Field(
        description="Source dataset the store was converted from (a registered dataset name).",
        json_schema_extra=_dataset_enum,
    )
    store: StoreLocation | None = Field(
        None,
        description="The converted Zarr store: a path (local or a shared mount) or a URL on object storage (s3://bucket/x.zarr; endpoint and credentials from the storage library's own environment, e.g. AWS_ENDPOINT_URL); default data/<dataset>.zarr.",
    )
    source: str | None = Field(
        None, description="Raw dataset folder that `floodlab convert` reads; None means synthetic."
    )
    synthetic: SynthSpec | None = Field(
        None, description="Generate real-format synthetic raw data when the store is missing."
    )
    image_bands: list[str] = Field(
        description="Model input bands, by name, in order (see floodlab.bands)."
    )
    optical_bands: list[str] = Field(
        default_factory=list,
        description="Optical prior bands returned as `optical` (FLoRA teacher input).",
    )
    target_bands: list[str] = Field(
        default_factory=list,
        description="Optical bands returned as `target` for translation (FLoRA, CycleGAN).",
    )
    label_sources: list[Literal["hand", "weak"]] = Field(
        default_factory=lambda: list[Literal["hand", "weak"]](["hand"]),
        description="Which labels to train on: hand labels, weak (Otsu) labels, or both mixed.",
    )
    label: Literal["flood", "cloud", "none"] = Field(
        "flood",
        description="Label kind: flood water, cloud (thin|thick), or none (translation only).",
    )
    normalize: Literal["zscore", "per_patch", "sarkd_clip", "minus1_1", "clip4000"] = Field(
        "zscore",
        description=(
            "zscore: per-band mean/std of the store's training split; per_patch: each "
            "sample's own mean/std per band (for SAR stretched per patch, e.g. OMBRIA); "
            "sarkd_clip: clip to "
            "[-22.225, 0] then scale to [0, 1]; minus1_1: fixed ranges mapped to [-1, 1] "
            "(CycleGAN); clip4000: reflectance clipped at 4000 and scaled to [0, 1] (cloud U-Net)."
        ),
    )
    target_clip: float = Field(
        3000.0, gt=0, description="Reflectance (x10000) that maps to 1.0 in translation targets."
    )
    patch_size: int = Field(
        256,
        ge=16,
        description="Side of the square patch cut from each chip (random in training, centred otherwise).",
    )
    band_agnostic: bool = Field(
        False,
        description="SAR-KD mode: every band of a training patch is its own single-channel sample.",
    )
    agnostic_val_bands: list[str] = Field(
        default_factory=lambda: ["VV", "VH"],
        description="Bands used as single-channel validation samples in band-agnostic mode.",
    )
    agnostic_train_bands: list[str] | None = Field(
        None,
        description="Bands used as single-channel training samples in band-agnostic mode; default: SAR-KD's (VV, VH, B2, B3, B4, NDVI, NDWI) that the store holds. Choose bands where water looks alike (e.g. dark in VV, B11, B8): a one-channel model cannot tell which band it sees.",
    )
    train_split: str = Field("train", description="Split name used for training.")
    val_split: str = Field("val", description="Split name used for validation.")
    test_split: str = Field(
        "test", description="Split name used by `floodlab evaluate` by default."
    )
    augment: AugmentSpec = Field(default_factory=AugmentSpec, description="Training augmentation.")
    loader_workers: int = Field(
        0, ge=0, description="DataLoader worker processes per training worker."
    )
    limit_chips: int | None = Field(
        None, ge=1, description="Use at most this many chips per split (smoke runs)."
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        names = registered_datasets()
        if name not in names:
            hint = closest(name, names)
            did = f" (did you mean '{hint}'?)" if hint else ""
            raise ValueError(f"unknown dataset{did}; available: {list(names)}")
        return name

    @field_validator(
        "image_bands", "optical_bands", "target_bands", "agnostic_val_bands", "agnostic_train_bands"
    )
    @classmethod
    def _known_bands(cls, bands: list[str] | None) -> list[str] | None:
        if bands is None:
            return None
        unknown = [b for b in bands if b not in ALL_BANDS]
        if unknown:
            raise ValueError(f"unknown band(s) {unknown}; known bands: {list(ALL_BANDS)}")
        return bands

    @model_validator(mode="after")
    def _checks(self) -> DataSpec:
        if not self.image_bands:
            raise ValueError("data.image_bands must name at least one band")
        if not self.label_sources:
            raise ValueError("data.label_sources must name at least one of 'hand', 'weak'")
        if self.agnostic_train_bands is not None and not self.agnostic_train_bands:
            raise ValueError(
                "data.agnostic_train_bands must name at least one band, or be left out"
            )
        return self

    def agnostic_bands(self, available: list[str]) -> list[str]:
        """Band-agnostic training bands: `agnostic_train_bands`, else SAR-KD's the store has."""
        from floodlab.bands import SARKD_BANDS

        if self.agnostic_train_bands is not None:
            return list(self.agnostic_train_bands)
        return [b for b in SARKD_BANDS if b in available]

    @property
    def store_path(self) -> str:
        """The store location, defaulting to data/<dataset>.zarr."""
        return self.store or f"data/{self.dataset}.zarr"
