"""Adapters from a trained run (or task) to the batched `PredictFn` that scene prediction calls."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from floodlab.predict.blend import Normalize


def model_bands(spec: Any) -> list[str]:
    """The bands a run's model predicts from: `data.image_bands`, or for band-agnostic
    SAR-KD students the first of `data.agnostic_val_bands` (VV by default), as in their
    validation."""
    data = spec.data
    return [data.agnostic_val_bands[0]] if data.band_agnostic else list(data.image_bands)


class TaskPredictFn:
    """A `PredictFn` over a trained Task: numpy batch -> ``task.predict`` -> numpy outputs.

    The device is chosen on first use in the process that runs it (a Ray worker may
    have a GPU the driver lacks): "auto" takes CUDA when available.

    Args:
        task: the trained task.
        device: "auto", "cpu" or "cuda".
        optical_from: FLoRA fused with its optical prior: the input's channels from this
            index on are the (normalised) optical prior, the ones before it the image;
            None predicts from the image alone.
    """

    def __init__(self, task: Any, device: str = "auto", optical_from: int | None = None):
        self.task, self.device, self.optical_from = task, device, optical_from
        self._device: Any = None

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(B, C, h, w) normalised input -> {"prob": (B, 1, h, w), ["rgb": (B, 3, h, w)],
        ["optical": (B, C_eo, h, w)] (CycleGAN's translation)}."""
        import torch

        from floodlab.data.sample import IMAGE, OPTICAL

        if self._device is None:
            name = self.device
            if name == "auto":
                name = "cuda" if torch.cuda.is_available() else "cpu"
            self._device = torch.device(name)
            self.task.to(self._device)
            self.task.eval()
        x = torch.from_numpy(batch).to(self._device)
        with torch.inference_mode():
            if self.optical_from is None:
                out = self.task.predict({IMAGE: x})
            else:
                c = self.optical_from
                out = self.task.predict({IMAGE: x[:, :c], OPTICAL: x[:, c:]}, with_optical=True)
        keep = ("prob", "rgb", "optical")
        return {k: v.float().cpu().numpy() for k, v in out.items() if k in keep}


@dataclass
class RunPredictor:
    """What `predict_scene` needs from a trained run.

    Attributes:
        predict_fn: the run's model as a `PredictFn`.
        normalize: the run's saved training normalisation of the image bands.
        bands: the model's input bands, in order.
        write_rgb: whether the model translates SAR to RGB (FLoRA).
    """

    predict_fn: TaskPredictFn
    normalize: Normalize
    bands: list[str]
    write_rgb: bool

    @classmethod
    def from_trained(cls, trained: Any, device: str = "auto") -> RunPredictor:
        """Build from `floodlab.predict.restore.load_trained(...)`'s result.

        Band-agnostic (SAR-KD) students predict from the first of
        ``data.agnostic_val_bands`` (VV by default), as in their validation.
        """
        from floodlab.data.load.normalize import normalize_with_params

        bands = model_bands(trained.spec)
        normalize = functools.partial(
            normalize_with_params, params=trained.normalization, which="image", bands=bands
        )
        return cls(
            predict_fn=TaskPredictFn(trained.task, device),
            normalize=normalize,
            bands=bands,
            write_rgb=trained.spec.model.kind == "flora",
        )
