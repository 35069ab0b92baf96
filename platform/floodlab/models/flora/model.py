"""FLoRA: SAR encoder + optical teacher + gated fusion latent + translation/segmentation decoders."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from floodlab.models.blocks import crop_to, pad_to_multiple
from floodlab.models.flora.decoders import PyramidDecoder
from floodlab.models.flora.encoder import SarEncoder
from floodlab.models.flora.fusion import ScaleFusion
from floodlab.models.flora.teacher import OpticalTeacher
from floodlab.specs.model import FloraSpec

DetachBranch = Literal["seg", "rec"] | None


class FloraModel(nn.Module):
    """Fusion-Latent for Optical Reconstruction & Area segmentation.

    * SAR encoder (`SarEncoder`): residual pyramid over VV/VH, ``len(widths)`` scales, scale
      ``i`` at ``H / 2**i`` with ``widths[i]`` channels.
    * Optical teacher (`OpticalTeacher`): lightweight residual pyramid over RGB + NDVI at
      ``widths * teacher_width_mult``; it runs whenever ``optical`` is given, so the
      distillation loss has targets even on batches where fusion drops the prior.
    * Fusion latent (`ScaleFusion`) at the deepest ``fusion.scales`` scales: windowed
      (optionally shifted) cross-attention with SAR queries and optical keys/values, FiLM
      from pooled optical features, and a gated residual with per-channel gates near zero.
      Without optical features (``optical=None`` or ``fuse_optical=False``) fusion attends
      to learned prior tokens and FiLM uses a learned prior condition (see `ScaleFusion`):
      inference from SAR alone uses the same network.
    * Two U-Net decoders (`PyramidDecoder`) over the fused pyramid (unfused shallow
      encoder scales as skips): translation (``"rgb"``, sigmoid, in [0, 1]) and
      segmentation (``"seg"``, logits).

    Modality dropout is the Task's job: it passes ``fuse_optical=False`` for a fraction
    ``optical_dropout`` of the training batches.

    Attributes:
        fused_channels: SAR channels per fused scale, shallow to deep.
        teacher_channels: teacher channels per fused scale, shallow to deep.
        fused_scales: encoder scale indices that are fused, shallow to deep.

    Args:
        spec: the model section of a FLoRA experiment.
    """

    def __init__(self, spec: FloraSpec):
        super().__init__()
        widths = list(spec.widths)
        fusion = spec.fusion
        self.encoder = SarEncoder(spec.sar_channels, widths)
        self.teacher = OpticalTeacher(spec.optical_channels, widths, spec.teacher_width_mult)
        n = len(widths)
        self.fused_scales: list[int] = list(range(n - fusion.scales, n))
        self.fused_channels: list[int] = [widths[i] for i in self.fused_scales]
        self.teacher_channels: list[int] = [self.teacher.widths[i] for i in self.fused_scales]
        self.fusion = nn.ModuleList(
            ScaleFusion(
                dim=c,
                teacher_dim=ct,
                heads=fusion.heads,
                window=fusion.window,
                shifted=fusion.shifted,
                cross_attention=fusion.cross_attention,
                film=fusion.film,
                gate_init=fusion.gate_init,
            )
            for c, ct in zip(self.fused_channels, self.teacher_channels, strict=True)
        )
        self.rec_decoder = PyramidDecoder(widths, spec.out_channels)
        self.seg_decoder = PyramidDecoder(widths, spec.num_classes)
        self.multiple = 2 ** (n - 1)

    def forward(
        self,
        sar: Tensor,
        optical: Tensor | None = None,
        *,
        fuse_optical: bool = True,
        detach_branch: DetachBranch = None,
        sar_alone_too: bool = False,
    ) -> dict[str, Any]:
        """Translate and segment.

        Args:
            sar: SAR (B, sar_channels, H, W); any H, W (padded internally, outputs cropped).
            optical: optical prior (B, optical_channels, H, W), or None for SAR alone.
            fuse_optical: fuse the optical features (False drops the prior from fusion but
                still runs the teacher for distillation targets).
            detach_branch: ``"seg"`` or ``"rec"``: that decoder receives detached features,
                so its loss does not reach the SAR encoder, fusion or teacher.
            sar_alone_too: when the prior is fused, also decode the same SAR features
                without it (one encoder pass, both fusions and decoders) and return that
                under ``"sar_alone"`` (``"seg"``, ``"rgb"``, ``"fused"``). Inside one call,
                so one DDP forward covers both paths.

        Returns:
            ``"seg"`` logits (B, num_classes, H, W); ``"rgb"`` (B, out_channels, H, W) in
            [0, 1]; ``"fused"``: fused SAR features per fused scale (B, C_s, h_s, w_s),
            shallow to deep; ``"teacher"``: the teacher's features at the same scales, or
            None when ``optical`` is None; ``"sar_alone"`` with `sar_alone_too` and a fused
            prior, else None.
        """
        if detach_branch not in (None, "seg", "rec"):
            raise ValueError(
                f"detach_branch must be None, 'seg' or 'rec', but got {detach_branch!r}"
            )
        sar, size = pad_to_multiple(sar, self.multiple)
        feats = self.encoder(sar)
        teacher_feats: list[Tensor] | None = None
        if optical is not None:
            optical, _ = pad_to_multiple(optical, self.multiple)
            teacher_feats = self.teacher(optical)
        use_optical = teacher_feats is not None and fuse_optical
        prior = teacher_feats if use_optical else None
        out = self._fuse_and_decode(feats, prior, size, detach_branch)
        out["teacher"] = (
            None
            if teacher_feats is None
            else [self._crop_scale(teacher_feats[s], s, size) for s in self.fused_scales]
        )
        out["sar_alone"] = (
            self._fuse_and_decode(feats, None, size, detach_branch)
            if sar_alone_too and prior is not None
            else None
        )
        return out

    def _fuse_and_decode(
        self,
        feats: list[Tensor],
        prior: list[Tensor] | None,
        size: tuple[int, int],
        detach_branch: DetachBranch,
    ) -> dict[str, Any]:
        """Fuse the encoder pyramid `feats` (left unchanged) with the teacher's `prior`
        pyramid (None: the learned prior tokens) and run both decoders."""
        feats = list(feats)
        fused: list[Tensor] = []
        for scale, block in zip(self.fused_scales, self.fusion, strict=True):
            feats[scale] = block(feats[scale], None if prior is None else prior[scale])
            fused.append(feats[scale])
        seg_in = [f.detach() for f in feats] if detach_branch == "seg" else feats
        rec_in = [f.detach() for f in feats] if detach_branch == "rec" else feats
        return {
            "seg": crop_to(self.seg_decoder(seg_in), size),
            "rgb": torch.sigmoid(crop_to(self.rec_decoder(rec_in), size)),
            "fused": [
                self._crop_scale(f, s, size) for f, s in zip(fused, self.fused_scales, strict=True)
            ],
        }

    @staticmethod
    def _crop_scale(x: Tensor, scale: int, size: tuple[int, int]) -> Tensor:
        """Crop scale-``scale`` features of a padded input back to the input's footprint."""
        f = 2**scale
        return crop_to(x, (-(-size[0] // f), -(-size[1] // f)))

    # -- parameter groups (PCGrad and per-group optimisers) ---------------------------------
    def shared_parameters(self) -> list[nn.Parameter]:
        """SAR encoder + fusion: the parameters both task losses share."""
        return [*self.encoder.parameters(), *self.fusion.parameters()]

    def seg_parameters(self) -> list[nn.Parameter]:
        """Segmentation decoder."""
        return list(self.seg_decoder.parameters())

    def rec_parameters(self) -> list[nn.Parameter]:
        """Translation (reconstruction) decoder."""
        return list(self.rec_decoder.parameters())

    def teacher_parameters(self) -> list[nn.Parameter]:
        """Optical teacher."""
        return list(self.teacher.parameters())


def build_flora(spec: FloraSpec) -> FloraModel:
    """Build a `FloraModel` from its spec (the PatchGAN discriminator, when
    ``spec.discriminator`` is set, is built by the task with `build_patchgan`)."""
    return FloraModel(spec)
