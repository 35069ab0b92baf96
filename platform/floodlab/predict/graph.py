"""A run's self-contained inference graph: physical bands in, water probability out.

`InferenceGraph` puts the run's saved normalisation in front of its SAR-only network, so an
exported model (`floodlab.predict.export`) needs nothing from floodlab to be used:

* input ``image``: (B, C, H, W) float32, the model's input bands
  (`floodlab.predict.predictor.model_bands`) in physical
  units (SAR in the training store's units, dB or scaled_0_255; derived bands computed
  from them), NaN (any non-finite value) at nodata; any B, H and W;
* normalisation, as `floodlab.data.load.normalize.apply_coefficients` does it: per band
  ``clip(x, lo, hi) * scale + offset``, or for ``per_patch`` bands ``(x - mean) / std``
  over the sample's own finite pixels (statistics in float64; a constant band is only
  centred, a band without data is 0); then every nodata pixel becomes 0;
* outputs, in `OUTPUTS` order: ``prob`` (B, 1, H, W) float32 probability of water (cloud
  for the cloud U-Net) in [0, 1] and, for FLoRA, ``rgb`` (B, 3, H, W) its SAR-to-RGB
  translation in [0, 1].

Only what inference from the image alone runs is kept: FLoRA without its optical teacher
(fusion attends to its learned prior tokens), no discriminator, no distillation
projections, no SAR-KD teacher.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from floodlab.data.load.normalize import PER_PATCH_MIN_STD, saved_coefficients
from floodlab.errors import ExportError
from floodlab.predict.predictor import model_bands

# Families whose networks make a flood or cloud mask (CycleGAN only translates).
MASK_FAMILIES: tuple[str, ...] = ("flora", "resunet", "sarkd", "cloud_unet")
INPUT = "image"
PROB, RGB = "prob", "rgb"


def outputs_of(spec: Any) -> tuple[str, ...]:
    """The graph's outputs for a run's spec: ("prob",), or ("prob", "rgb") for FLoRA.

    Raises:
        ExportError: a family that makes no flood or cloud mask (CycleGAN).
    """
    kind = str(spec.model.kind)
    if kind not in MASK_FAMILIES or spec.data.label not in ("flood", "cloud"):
        raise ExportError(
            f"model.kind {kind} (data.label: {spec.data.label}) makes no flood or cloud mask; "
            f"export works for runs of {list(MASK_FAMILIES)}"
        )
    return (PROB, RGB) if kind == "flora" else (PROB,)


class SavedNormalization(nn.Module):
    """The saved per-band normalisation of a run as a graph: (B, C, H, W) physical -> model
    input, non-finite values -> 0 after normalisation (see the module docstring).

    Args:
        coefficients: one set per band (`floodlab.data.load.normalize.saved_coefficients`).
    """

    lo: Tensor
    hi: Tensor
    scale: Tensor
    offset: Tensor
    per_patch: Tensor

    def __init__(self, coefficients: Sequence[Mapping[str, Any]]):
        super().__init__()
        patch = [bool(c.get("per_patch")) for c in coefficients]

        def column(key: str, default: float) -> Tensor:
            values = [
                default if p or c.get(key) is None else float(c[key])
                for c, p in zip(coefficients, patch, strict=True)
            ]
            return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)

        self.register_buffer("lo", column("lo", -math.inf))
        self.register_buffer("hi", column("hi", math.inf))
        self.register_buffer("scale", column("scale", 1.0))
        self.register_buffer("offset", column("offset", 0.0))
        self.register_buffer("per_patch", torch.tensor(patch).view(1, -1, 1, 1))
        self.any_per_patch = any(patch)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) physical values, NaN at nodata -> (B, C, H, W) normalised."""
        valid = torch.isfinite(x)
        x = torch.where(valid, x, torch.zeros_like(x))
        y = torch.clamp(x, self.lo, self.hi) * self.scale + self.offset
        if self.any_per_patch:
            # Each sample's own finite pixels, per band, in float64 as numpy does.
            xd = x.to(torch.float64)
            n = valid.to(torch.float64).sum(dim=(2, 3), keepdim=True).clamp(min=1.0)
            mean = xd.sum(dim=(2, 3), keepdim=True) / n
            dev = torch.where(valid, xd - mean, torch.zeros_like(xd))
            std = torch.sqrt((dev * dev).sum(dim=(2, 3), keepdim=True) / n)
            std = torch.where(std > PER_PATCH_MIN_STD, std, torch.ones_like(std))
            y = torch.where(self.per_patch, ((xd - mean) / std).to(torch.float32), y)
        return torch.where(valid, y, torch.zeros_like(y))


class SegmentationAlone(nn.Module):
    """A single-network segmentation family (ResUNet, SAR-KD, cloud U-Net): ``(logits,)``."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(B, C, H, W) normalised -> ((B, 1, H, W) logits,)."""
        return (self.network(x),)


class FloraSarAlone(nn.Module):
    """FLoRA from SAR alone: ``(logits, rgb)``; a copy of the model without its teacher.

    Without an optical prior the model never runs the teacher (fusion attends to learned
    prior tokens), so the copy drops it and an exported file holds no teacher weights.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = copy.deepcopy(model)
        del self.model.teacher

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(B, 2, H, W) normalised SAR -> ((B, 1, H, W) logits, (B, 3, H, W) RGB)."""
        out = self.model(x, None)
        return out["seg"], out["rgb"]


class InferenceGraph(nn.Module):
    """Saved normalisation + SAR-only network + sigmoid: see the module docstring.

    Args:
        network: `SegmentationAlone` or `FloraSarAlone`.
        normalization: the run's `SavedNormalization` of the input bands.
    """

    def __init__(self, network: nn.Module, normalization: SavedNormalization):
        super().__init__()
        self.normalize = normalization
        self.network = network

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        """(B, C, H, W) physical bands -> (prob, [rgb]) in `outputs_of` order."""
        logits, *rest = self.network(self.normalize(image))
        return (torch.sigmoid(logits.float()), *rest)


def build_graph(trained: Any) -> InferenceGraph:
    """The inference graph of a loaded run (`floodlab.predict.restore.load_trained`).

    Returns:
        The graph in eval mode on the CPU.

    Raises:
        ExportError: a family that makes no mask.
        DataError: normalisation parameters that do not cover the model's bands.
    """
    spec = trained.spec
    outputs = outputs_of(spec)
    if not trained.normalization:
        raise ExportError(
            f"{trained.run.path}: the run has no normalization.json, so its input "
            "normalisation cannot be put in the graph; retrain it with this floodlab version"
        )
    model = trained.task.nets["model"]
    network = FloraSarAlone(model) if RGB in outputs else SegmentationAlone(model)
    coefficients = saved_coefficients(trained.normalization, "image", model_bands(spec))
    return InferenceGraph(network, SavedNormalization(coefficients)).eval()
