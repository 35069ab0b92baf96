"""FLoRA's optical teacher: a lightweight CNN pyramid over RGB + NDVI."""

from __future__ import annotations

from floodlab.models.flora.encoder import PyramidEncoder


def teacher_widths(widths: list[int], mult: float) -> list[int]:
    """Teacher channels per scale: ``round(w * mult)``, at least 4."""
    return [max(4, round(w * mult)) for w in widths]


class OpticalTeacher(PyramidEncoder):
    """Lightweight optical teacher: one residual block per scale at ``widths * mult``.

    It sees the optical prior (B4, B3, B2, NDVI) and yields a feature pyramid at the SAR
    encoder's resolutions, which the fusion blocks attend to and the distillation loss
    aligns the fused SAR features with. It is trained jointly with the rest of the model.

    Args:
        in_channels: optical prior channels.
        widths: the SAR encoder's widths per scale.
        width_mult: teacher width as a fraction of ``widths``.
    """

    def __init__(self, in_channels: int, widths: list[int], width_mult: float = 0.5):
        super().__init__(in_channels, teacher_widths(widths, width_mult), blocks_per_scale=1)
