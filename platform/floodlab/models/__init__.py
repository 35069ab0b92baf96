"""The five model families' networks, shared blocks and encoders.

The family registry (`build_model`, `build_task`) lives in `floodlab.tasks`.
"""

from floodlab.models.cloud_unet import CloudUNet, build_cloud_unet
from floodlab.models.cyclegan import (
    CycleGAN,
    PatchGAN,
    ResnetGenerator,
    build_cyclegan,
    build_patchgan,
)
from floodlab.models.flora import FloraModel, build_flora
from floodlab.models.mixer import PSPMixer
from floodlab.models.resunet import ResUNet, build_resunet
from floodlab.models.sarkd import (
    SARKD_ARCHS,
    MobileNetV2PSPNet,
    MobileNetV2UNet,
    PixelMLP,
    UNetLight,
    build_sarkd,
    build_sarkd_from_spec,
)
from floodlab.models.weights import load_weights

__all__ = [
    "SARKD_ARCHS",
    "CloudUNet",
    "CycleGAN",
    "FloraModel",
    "MobileNetV2PSPNet",
    "MobileNetV2UNet",
    "PSPMixer",
    "PatchGAN",
    "PixelMLP",
    "ResUNet",
    "ResnetGenerator",
    "UNetLight",
    "build_cloud_unet",
    "build_cyclegan",
    "build_flora",
    "build_patchgan",
    "build_resunet",
    "build_sarkd",
    "build_sarkd_from_spec",
    "load_weights",
]
