"""Running means of named loss components, accumulated over batches and DDP ranks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class LossMeans(Metric):
    """Mean of each named scalar over the batches it was given, sum-reduced across ranks.

    The names are fixed at construction so that every rank holds the same states (a
    requirement of the DDP reduction); a name missing from an update is simply not counted
    for that batch, and a name never updated reads NaN.

    Args:
        names: the component names tracked, e.g. ``("loss", "dice", "bce")``.
    """

    is_differentiable = False
    full_state_update = False
    sums: Tensor
    counts: Tensor

    def __init__(self, names: Sequence[str], **kwargs: object):
        super().__init__(**kwargs)
        self.names = tuple(dict.fromkeys(names))
        n = len(self.names)
        self.add_state("sums", torch.zeros(n, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", torch.zeros(n, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: Mapping[str, Tensor]) -> None:
        """Add one batch's scalar values (names not tracked are ignored)."""
        for i, name in enumerate(self.names):
            if name in values:
                self.sums[i] += values[name].detach().to(self.sums)
                self.counts[i] += 1

    def compute(self) -> dict[str, Tensor]:
        """Mean per name (NaN for a name without updates)."""
        means = torch.where(
            self.counts > 0,
            self.sums / self.counts.clamp_min(1),
            torch.full_like(self.sums, float("nan")),
        )
        return dict(zip(self.names, means, strict=True))
