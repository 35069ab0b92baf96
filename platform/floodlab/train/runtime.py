"""Where a training process runs: a Ray Train worker, or a sweep trial's own process.

The worker function (`floodlab.train.worker.run_worker`) and its loop hooks speak to
this interface only; `RayTrainRuntime` serves it with Ray Train's API (DDP, collective
broadcast, reports that register checkpoints), `InTrialRuntime` within one process (a
sweep trial of one worker, `tune.in_trial`), where Ray Train's API is not available: Tune
owns the process's session.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader


class Runtime(ABC):
    """One rank's view of the training job it belongs to."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def prepare_model(self, net: nn.Module, *, find_unused_parameters: bool) -> nn.Module:
        """The net on this rank's device, wrapped for data parallelism where there is any."""

    def prepare_loader(self, loader: DataLoader[Any]) -> DataLoader[Any]:
        """The loader as this runtime feeds it (batches are moved to the device by the loop)."""
        return loader

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank."""
        return value

    @abstractmethod
    def report(
        self, metrics: dict[str, Any], *, epoch: int, checkpoint: Path | str | None, saved: bool
    ) -> None:
        """The epoch's metrics, and on rank 0 its checkpoint, just written.

        Args:
            metrics: the epoch's numeric metrics (the same on every rank).
            epoch: the epoch (1-based).
            checkpoint: rank 0's checkpoint directory, or its URL on object storage.
            saved: this epoch took a checkpoint (on some rank).
        """

    def epoch_done(self, metrics: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Called last in every epoch, once the epoch's files are written (default: nothing)."""


class RayTrainRuntime(Runtime):
    """A Ray Train V2 worker: DDP, Ray's collectives, reports that register checkpoints."""

    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()

    def prepare_model(self, net: nn.Module, *, find_unused_parameters: bool) -> nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(
            net, parallel_strategy_kwargs={"find_unused_parameters": find_unused_parameters}
        )

    def prepare_loader(self, loader: DataLoader[Any]) -> DataLoader[Any]:
        import ray.train.torch

        return ray.train.torch.prepare_data_loader(loader, add_dist_sampler=False)

    def broadcast(self, value: Any) -> Any:
        from ray.train.collective import broadcast_from_rank_zero

        return broadcast_from_rank_zero(value)

    def report(
        self, metrics: dict[str, Any], *, epoch: int, checkpoint: Path | str | None, saved: bool
    ) -> None:
        import ray.train

        from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name

        if not saved:
            ray.train.report(metrics)
            return
        ckpt = None
        if isinstance(checkpoint, Path):  # a local run: already in Ray's storage
            ckpt = ray.train.Checkpoint.from_directory(str(checkpoint))
        elif checkpoint is not None:  # uploaded to the run's URL, which is Ray's storage
            storage = ray.train.get_context().get_storage()
            ckpt = ray.train.Checkpoint(
                path=f"{storage.experiment_fs_path}/{checkpoint_dir_name(epoch)}",
                filesystem=storage.storage_filesystem,
            )
        # Already in the run's storage: Ray registers it without copying.
        ray.train.report(
            metrics,
            checkpoint=ckpt,
            checkpoint_dir_name=checkpoint_dir_name(epoch),
            checkpoint_upload_mode=ray.train.CheckpointUploadMode.NO_UPLOAD,
        )


class InTrialRuntime(Runtime):
    """The only rank, in a sweep trial's own process: no DDP, no Ray Train controller.

    What Ray Train does for its runs is done here: the run keeps its best
    `keep_checkpoints` (and the latest), and each epoch goes to Tune through `to_tune`,
    last in the epoch, since Tune may stop the trial at any report.
    """

    def __init__(
        self,
        device: torch.device,
        prune: Callable[[], object],
        to_tune: Callable[[dict[str, Any]], None],
    ) -> None:
        self.device = device
        self.prune, self.to_tune = prune, to_tune

    def prepare_model(self, net: nn.Module, *, find_unused_parameters: bool) -> nn.Module:
        return net.to(self.device)

    def report(
        self, metrics: dict[str, Any], *, epoch: int, checkpoint: Path | str | None, saved: bool
    ) -> None:
        if saved:
            self.prune()

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        self.to_tune(metrics)
