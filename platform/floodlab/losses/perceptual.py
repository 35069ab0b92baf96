"""LPIPS (Zhang et al., CVPR 2018), AlexNet variant, from a local weights file only.

The learned perceptual distance compares unit-normalised AlexNet activations at five
depths, weights each channel by a learned 1x1 layer, averages over space and sums over
depths. Nothing is downloaded: the user gives one local file (a ``state_dict`` saved
with ``torch.save``) holding

- AlexNet's convolutions under torchvision's names, ``features.{0,3,6,8,10}.{weight,bias}``;
- LPIPS v0.1's channel weights under the ``lpips`` package's names, ``lin{0..4}.model.1.weight``.

(Merge ``torchvision.models.alexnet(weights="DEFAULT").state_dict()`` with the ``lpips``
package's ``weights/v0.1/alex.pth`` to make one.) The network is frozen; it scores
3-band images given in [0, 1] (scaled to LPIPS' [-1, 1] here).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from floodlab.errors import SpecError

# AlexNet's convolutions (out channels, kernel, stride, padding) with the max-pool that
# precedes each, as torchvision numbers them in `features`.
_ALEX = (
    (0, 64, 11, 4, 2, False),
    (3, 192, 5, 1, 2, True),
    (6, 384, 3, 1, 1, True),
    (8, 256, 3, 1, 1, False),
    (10, 256, 3, 1, 1, False),
)
# LPIPS' input scaling layer (its constants).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """Frozen AlexNet-LPIPS distance; ``forward(a, b)`` is the per-image distance (B,)."""

    shift: Tensor
    scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.ModuleDict()
        self.lins = nn.ModuleList()
        in_ch = 3
        for index, out_ch, kernel, stride, pad, _ in _ALEX:
            self.features[str(index)] = nn.Conv2d(in_ch, out_ch, kernel, stride, pad)
            self.lins.append(nn.Conv2d(out_ch, 1, 1, bias=False))
            in_ch = out_ch
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _activations(self, x: Tensor) -> list[Tensor]:
        x = ((x * 2 - 1) - self.shift) / self.scale
        out = []
        for index, *_, pool in _ALEX:
            if pool:
                x = nn.functional.max_pool2d(x, 3, 2)
            x = torch.relu(self.features[str(index)](x))
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """LPIPS between two (B, 3, H, W) batches in [0, 1] (H, W >= 32)."""
        dist = a.new_zeros(a.shape[0])
        for lin, fa, fb in zip(self.lins, self._activations(a), self._activations(b), strict=True):
            dist = dist + lin((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return dist


def load_lpips(path: str | Path) -> LPIPS:
    """The LPIPS network with the weights of the local file `path` (weights only)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise SpecError(
            f"loss.rec.lpips_weights: {file} is not a file; LPIPS needs a local weights file "
            "(AlexNet features.* + LPIPS lin*.model.1.weight, see floodlab.losses.perceptual), "
            "or set loss.rec.lpips=0"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors alike
        raise SpecError(
            f"loss.rec.lpips_weights: {file} is not a weights-only state_dict ({err})"
        ) from err
    net = LPIPS()
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("features."):
            mapped[key] = value
        elif key.startswith("lin") and key.endswith(".model.1.weight"):
            mapped[f"lins.{key[3:].split('.')[0]}.weight"] = value
    own = {k for k in net.state_dict() if not k.startswith(("shift", "scale"))}
    missing = sorted(own - set(mapped))
    if missing:
        raise SpecError(
            f"loss.rec.lpips_weights: {file} lacks {len(missing)} LPIPS tensors "
            f"(first: {missing[0]}); it needs AlexNet's features.* and LPIPS' lin*.model.1.weight"
        )
    try:
        net.load_state_dict({k: v for k, v in mapped.items() if k in own}, strict=False)
    except RuntimeError as err:
        raise SpecError(
            f"loss.rec.lpips_weights: {file} does not fit AlexNet-LPIPS: {err}"
        ) from err
    return net
