"""SAR-KD teachers (MobileNetV2 U-Net, PSPNet) and students (MLP_256, UnetLight, PSPMixer)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from floodlab.models.blocks import ConvNormAct, crop_to, init_weights, pad_to_multiple
from floodlab.models.encoders.mobilenetv2 import MobileNetV2Encoder
from floodlab.models.mixer import PSPMixer, PyramidPooling
from floodlab.models.unet import EncoderUNet
from floodlab.models.weights import load_encoder_weights, load_weights
from floodlab.specs.model import SarKDSpec

# U-Net decoder widths, deepest first (the segmentation_models.pytorch default).
UNET_DECODER_WIDTHS: tuple[int, ...] = (256, 128, 64, 32, 16)
PSP_BINS: tuple[int, ...] = (1, 2, 3, 6)
PSP_BOTTLENECK = 256
MLP_WIDTHS: tuple[int, ...] = (128, 64, 32, 16)
UNET_LIGHT_WIDTHS: tuple[int, int] = (16, 32)


class MobileNetV2UNet(EncoderUNet):
    """SAR-KD teacher: U-Net with a MobileNetV2 encoder (~6.6M parameters at 1 channel).

    Encoder features at strides 2..32 (16, 24, 32, 96, 1280 channels) feed five decoder
    blocks (`UNET_DECODER_WIDTHS`) and a 3x3 head (`EncoderUNet`), as in
    segmentation_models.pytorch's ``Unet("mobilenet_v2")``.

    Args:
        in_channels: input channels; the stem conv is built for them (RGB weights loaded
            through ``encoder_weights`` are adapted, see `load_weights`).
        encoder_weights: optional local MobileNetV2 encoder state_dict.
    """

    def __init__(self, in_channels: int = 1, encoder_weights: str | None = None):
        encoder = MobileNetV2Encoder(in_channels, output_stride=32, last_conv=True)
        super().__init__(encoder, UNET_DECODER_WIDTHS, 1)
        self.apply(init_weights)
        if encoder_weights:
            load_encoder_weights(self.encoder, encoder_weights)


class MobileNetV2PSPNet(nn.Module):
    """SAR-KD teacher: PSPNet on a dilated MobileNetV2 (output stride 8, ~3.4M parameters).

    The encoder stops at the 320-channel stage (no 1280 conv); the pyramid pooling module
    (bins 1, 2, 3, 6, each reduced to 320/4 channels) is concatenated with the features,
    fused by a 3x3 conv to `PSP_BOTTLENECK` channels, dropped out (0.1), classified by a
    1x1 conv and upsampled 8x bilinearly (Zhao et al., 2017).

    Args:
        in_channels: input channels.
        encoder_weights: optional local MobileNetV2 encoder state_dict (without the 1280
            conv, i.e. ``features.0`` to ``features.17``).
    """

    def __init__(self, in_channels: int = 1, encoder_weights: str | None = None):
        super().__init__()
        self.encoder = MobileNetV2Encoder(in_channels, output_stride=8, last_conv=False)
        deep = self.encoder.out_channels[-1]
        self.ppm = PyramidPooling(deep, PSP_BINS)
        self.bottleneck = ConvNormAct(self.ppm.out_channels, PSP_BOTTLENECK, 3)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(PSP_BOTTLENECK, 1, 1)
        self.apply(init_weights)
        if encoder_weights:
            load_encoder_weights(self.encoder, encoder_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> logits (B, 1, H, W); any H, W (padded to 8)."""
        x, size = pad_to_multiple(x, 8)
        feats = self.encoder(x)[-1]  # (B, 320, H/8, W/8)
        y = self.classifier(self.dropout(self.bottleneck(self.ppm(feats))))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(y, size)


class PixelMLP(nn.Module):
    """MLP_256 baseline: a per-pixel MLP 128-64-32-16-1 written as 1x1 convs (ReLU between).

    Every pixel is classified from its own value(s) only, with no spatial context: the
    baseline that shows what the convolutional students gain. At 1 input channel it has
    11,137 parameters (1*128+128 + 128*64+64 + 64*32+32 + 32*16+16 + 16+1); the original's
    ~19K would need about 8K more weights in the first layer, i.e. ~64 inputs per pixel
    (e.g. a flattened 8x8 neighbourhood), which the per-pixel description excludes.

    Args:
        in_channels: input channels.
        widths: hidden widths.
    """

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = MLP_WIDTHS):
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_channels
        for width in widths:
            layers += [nn.Conv2d(prev, width, 1), nn.ReLU(inplace=True)]
            prev = width
        layers.append(nn.Conv2d(prev, 1, 1))
        self.mlp = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> logits (B, 1, H, W)."""
        return self.mlp(x)


class UNetLight(nn.Module):
    """UnetLight student: a depth-1 U-Net *without* skip connections (~11.6K parameters).

    Two 3x3 convs at full resolution (16), 2x max-pool, one 3x3 conv at half resolution
    (32), a 2x transposed conv back (16), one 3x3 conv and a 1x1 head. Without the skip the
    decoder must rebuild detail from the bottleneck alone, which is what makes the student
    cheap and what distillation compensates.

    Args:
        in_channels: input channels.
        widths: (full-resolution width, bottleneck width).
    """

    def __init__(self, in_channels: int = 1, widths: tuple[int, int] = UNET_LIGHT_WIDTHS):
        super().__init__()
        w0, w1 = widths
        self.encoder = nn.Sequential(ConvNormAct(in_channels, w0), ConvNormAct(w0, w0))
        self.bottleneck = nn.Sequential(nn.MaxPool2d(2), ConvNormAct(w0, w1))
        self.up = nn.ConvTranspose2d(w1, w0, 2, stride=2)
        self.decoder = ConvNormAct(w0, w0)
        self.head = nn.Conv2d(w0, 1, 1)
        self.apply(init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> logits (B, 1, H, W); any H, W (padded to 2)."""
        x, size = pad_to_multiple(x, 2)
        y = self.up(self.bottleneck(self.encoder(x)))
        return crop_to(self.head(self.decoder(y)), size)


SARKD_ARCHS: tuple[str, ...] = ("unet", "pspnet", "mlp_256", "unet_light", "psp_mixer")


def build_sarkd(
    arch: str,
    in_channels: int = 1,
    *,
    encoder_weights: str | None = None,
    mixer_patch: int = 16,
    mixer_dim: int = 128,
    mixer_depth: int = 4,
    weights: str | None = None,
) -> nn.Module:
    """Build a SAR-KD network by architecture name (e.g. a teacher for distillation).

    Args:
        arch: one of `SARKD_ARCHS`.
        in_channels: input channels (1 in the band-agnostic setting).
        encoder_weights: local MobileNetV2 encoder weights for ``unet``/``pspnet``.
        mixer_patch: PSPMixer patch size.
        mixer_dim: PSPMixer token width.
        mixer_depth: PSPMixer number of Mixer blocks.
        weights: local weights file (state_dict or floodlab checkpoint) for the whole model.

    Returns:
        The network; ``forward(x) -> logits (B, 1, H, W)``.

    Raises:
        KeyError: unknown ``arch``.
        floodlab.errors.DataError: a weights file is missing or does not fit.
    """
    model: nn.Module
    if arch == "unet":
        model = MobileNetV2UNet(in_channels, encoder_weights)
    elif arch == "pspnet":
        model = MobileNetV2PSPNet(in_channels, encoder_weights)
    elif arch == "mlp_256":
        model = PixelMLP(in_channels)
    elif arch == "unet_light":
        model = UNetLight(in_channels)
    elif arch == "psp_mixer":
        model = PSPMixer(in_channels, patch=mixer_patch, dim=mixer_dim, depth=mixer_depth)
    else:
        raise KeyError(f"Unknown SAR-KD arch '{arch}'; available: {list(SARKD_ARCHS)}")
    if weights:
        load_weights(model, weights, field="model.weights")
    return model


def build_sarkd_from_spec(spec: SarKDSpec) -> nn.Module:
    """Build the SAR-KD network of ``spec.arch`` from its spec (``spec.weights`` is
    loaded by `floodlab.tasks.build_model`, so it is not passed here)."""
    return build_sarkd(
        spec.arch,
        spec.in_channels,
        encoder_weights=spec.encoder_weights,
        mixer_patch=spec.mixer_patch,
        mixer_dim=spec.mixer_dim,
        mixer_depth=spec.mixer_depth,
    )
