"""Parameter counts beside the published ones, and architecture details users rely on."""

from __future__ import annotations

import pytest
import torch

from floodlab.bands import CYCLEGAN_BAND_SETS
from floodlab.models import build_patchgan, build_sarkd
from floodlab.models.blocks import num_parameters
from floodlab.models.encoders import EfficientNetEncoder, MobileNetV2Encoder
from floodlab.specs.model import CycleGANSpec
from floodlab.tasks import build_model

# SAR-KD (SYSTEMS.md §3): arch -> (original's parameter count, relative tolerance, why).
SARKD_SEED_PARAMS: dict[str, tuple[int, float, str]] = {
    "unet": (6_600_000, 0.02, "same layout as segmentation_models.pytorch Unet(mobilenet_v2)"),
    "pspnet": (3_400_000, 0.02, "dilated MobileNetV2 to 320 ch + PPM + 3x3 conv to 256"),
    "mlp_256": (
        19_000,
        0.45,
        "a 1-128-64-32-16-1 per-pixel MLP has 11,137 weights; 19K needs ~64 inputs per "
        "pixel (e.g. an 8x8 neighbourhood), which 'per-pixel' excludes",
    ),
    "unet_light": (12_000, 0.05, "16/32-wide depth-1 U-Net; exact layer widths unpublished"),
    "psp_mixer": (349_000, 0.03, "Mixer MLP ratios unpublished; 0.5x tokens, 1x channels"),
}


@pytest.mark.parametrize("arch", list(SARKD_SEED_PARAMS))
def test_sarkd_parameter_counts_match_the_original(arch: str) -> None:
    seed, tol, why = SARKD_SEED_PARAMS[arch]
    ours = num_parameters(build_sarkd(arch, in_channels=1))
    print(f"{arch:>10}: ours {ours:>9,d}  original ~{seed:>9,d}  ({ours / seed - 1:+.1%}; {why})")
    assert abs(ours / seed - 1) <= tol


def test_students_are_much_smaller_than_teachers() -> None:
    teacher = min(num_parameters(build_sarkd(a)) for a in ("unet", "pspnet"))
    for student in ("mlp_256", "unet_light", "psp_mixer"):
        assert num_parameters(build_sarkd(student)) * 9 < teacher


def test_encoders_match_the_reference_architectures() -> None:
    # torchvision's classifiers minus their heads: mobilenet_v2 3,504,872 - 1,281,000
    # (classifier); efficientnet_b0 5,288,548 - 1,281,000 - 412,160 (head conv + BN);
    # efficientnet_b2 9,109,994 - 1,409,000 - 498,432.
    assert num_parameters(MobileNetV2Encoder(3)) == 2_223_872
    assert num_parameters(EfficientNetEncoder("b0")) == 3_595_388
    assert num_parameters(EfficientNetEncoder("b2")) == 7_202_562
    assert EfficientNetEncoder("b2").out_channels == [16, 24, 48, 120, 352]


def test_encoder_feature_strides() -> None:
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        plain = [f.shape[-1] for f in MobileNetV2Encoder(1).eval()(x)]
        dilated = [f.shape[-1] for f in MobileNetV2Encoder(1, output_stride=8).eval()(x)]
        effnet = [f.shape[-1] for f in EfficientNetEncoder("b0", 1).eval()(x)]
    assert plain == effnet == [32, 16, 8, 4, 2]
    assert dilated == [32, 16, 8, 8, 8]


def test_cyclegan_reference_sizes() -> None:
    # Zhu et al.'s ResNet-9 generator (3->3, ngf 64, instance norm): 11,378,179. Their 70x70
    # PatchGAN has 2,765,633 with batch norm (bias-free convs); with CycleGAN's affine-free
    # instance norm the convs keep their biases and the norms have none: 2,764,737.
    gan = build_model(CycleGANSpec(bands="rgb", sar_channels=3))
    assert num_parameters(gan.g_ab) == 11_378_179
    assert num_parameters(gan.d_b) == 2_764_737


@pytest.mark.parametrize("bands", list(CYCLEGAN_BAND_SETS))
def test_cyclegan_translates_to_the_band_set(bands: str) -> None:
    gan = build_model(CycleGANSpec(bands=bands, ngf=8, ndf=8, n_blocks=1)).eval()
    n = len(CYCLEGAN_BAND_SETS[bands])
    sar = torch.randn(1, 2, 32, 32)
    with torch.no_grad():
        eo = gan(sar)
        back = gan.g_ba(eo)
    assert eo.shape == (1, n, 32, 32) and eo.abs().max() <= 1.0  # tanh range
    assert back.shape == sar.shape
    assert gan.d_a(sar).shape[1] == gan.d_b(eo).shape[1] == 1


def test_patchgan_sees_70x70_patches() -> None:
    d = build_patchgan(3, ndf=8).eval()
    # 256x256 -> 30x30 patch logits, as in the reference implementation.
    assert d(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    # The receptive field is 70x70: the top-left logit sees input rows -23..46 (with the
    # convs' zero padding), so row 46 changes it and rows 47+ do not. Instance norm mixes
    # the whole image through its statistics, so the conv geometry is checked without it.
    for i, layer in enumerate(d.model):
        if isinstance(layer, torch.nn.InstanceNorm2d):
            d.model[i] = torch.nn.Identity()
    x = torch.randn(1, 3, 96, 96)
    inside, outside = x.clone(), x.clone()
    inside[..., 46, :] += 1.0
    outside[..., 47:, :] += 1.0
    with torch.no_grad():
        ref = d(x)[0, 0, 0, 0]
        assert d(inside)[0, 0, 0, 0] != ref
        assert d(outside)[0, 0, 0, 0] == ref
