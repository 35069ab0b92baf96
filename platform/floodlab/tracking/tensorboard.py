"""TensorBoard events of one run: scalars, image panels and the HParams summary (rank 0 only)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

HParamValue = int | float | str | bool


def hparam_value(value: Any) -> HParamValue:
    """A value TensorBoard's HParams plugin accepts (lists and None become strings)."""
    if isinstance(value, bool | int | float | str):
        return value
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


class TensorBoardWriter:
    """Writes one run's TensorBoard events into its own event directory.

    Args:
        logdir: the run's TensorBoard directory.
        purge_step: on a restart from a checkpoint, the first step written again; TensorBoard
            hides events at or after it from the interrupted attempt, so curves never fold back.
    """

    def __init__(self, logdir: str | Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(str(self.logdir), purge_step=purge_step, flush_secs=30)
        self._scalar_tags: set[str] = set()

    def scalars(self, values: dict[str, Any], step: int) -> None:
        """Write every finite numeric value under its own tag (e.g. ``val/iou``)."""
        for tag, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not np.isfinite(value):
                continue
            self._writer.add_scalar(tag, float(value), step)
            self._scalar_tags.add(tag)

    def images(self, panels: dict[str, np.ndarray], step: int, prefix: str = "panels") -> None:
        """Write image panels: name -> (H, W, 3) uint8."""
        for name, image in panels.items():
            arr = np.asarray(image)
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=-1)
            if arr.dtype != np.uint8:
                arr = np.clip(arr * 255.0 if arr.max() <= 1.0 else arr, 0, 255).astype(np.uint8)
            self._writer.add_image(f"{prefix}/{name}", arr, step, dataformats="HWC")

    def hparams(self, hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
        """Write the HParams summary into this run's own event directory.

        The dashboard then lists this run with its hyperparameters beside its final
        metrics; the metric values come from the scalar tags of the same names.

        Args:
            hparams: dotted spec path -> value (searched fields for a sweep trial).
            metrics: metric tag -> final value; only tags written as scalars are kept.
        """
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        hp = {k: hparam_value(v) for k, v in hparams.items()}
        metric_dict = {
            k: float(v)
            for k, v in metrics.items()
            if k in self._scalar_tags and isinstance(v, int | float) and np.isfinite(v)
        }
        if not hp:
            return
        exp, ssi, sei = hparams_summary(hp, metric_dict)
        file_writer = self._writer._get_file_writer()
        for summary in (exp, ssi, sei):
            file_writer.add_summary(summary)

    def flush(self) -> None:
        """Flush pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self._writer.close()
