"""CycleGAN for SAR<->EO translation: ResNet generators and 70x70 PatchGAN discriminators."""

from __future__ import annotations

from torch import Tensor, nn

from floodlab.bands import CYCLEGAN_BAND_SETS
from floodlab.models.blocks import crop_to, pad_to_multiple
from floodlab.specs.model import CycleGANSpec

# Weight init of Zhu et al. (2017) for all CycleGAN/pix2pix networks.
GAN_INIT_STD = 0.02


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    # CycleGAN's instance norm: no affine parameters, no running statistics.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Residual block: reflection pad, 3x3 conv, IN, ReLU, reflection pad, 3x3 conv, IN.

    Args:
        channels: block width.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _instance_norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _instance_norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator (Johnson et al., 2016; Zhu et al., 2017), tanh output.

    c7s1-ngf, two stride-2 3x3 downsamplings (2ngf, 4ngf), ``n_blocks`` residual blocks at
    4ngf, two stride-2 transposed-conv upsamplings, c7s1-out and tanh. Reflection padding
    and affine-free instance norm throughout; no dropout.

    Args:
        in_channels: input channels.
        out_channels: output channels (values in [-1, 1]).
        ngf: base width.
        n_blocks: residual blocks (9 for 256x256 images).
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7),
            _instance_norm(ngf),
            nn.ReLU(inplace=True),
        ]
        width = ngf
        for _ in range(2):  # downsampling
            layers += [
                nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
                _instance_norm(width * 2),
                nn.ReLU(inplace=True),
            ]
            width *= 2
        layers += [ResnetBlock(width) for _ in range(n_blocks)]
        for _ in range(2):  # upsampling
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                _instance_norm(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.apply(gan_init)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]; any H, W."""
        x, size = pad_to_multiple(x, 4)
        return crop_to(self.model(x), size)


class PatchGAN(nn.Module):
    """PatchGAN discriminator (Isola et al., 2017); ``n_layers=3`` gives 70x70 receptive fields.

    C64 (no norm) - C128 - C256 (stride 2) - C512 (stride 1) - 1-channel conv, 4x4 kernels,
    instance norm and LeakyReLU(0.2). Output: one real/fake logit per overlapping patch,
    (B, 1, H/8 - 2, W/8 - 2) at ``n_layers=3`` (30x30 for a 256x256 input). Use it with an
    LSGAN (MSE) or BCE-with-logits loss.

    Args:
        in_channels: channels of the judged images.
        ndf: base width.
        n_layers: strided layers after the first.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last widening layer keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1),
                _instance_norm(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        self.apply(gan_init)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> patch logits (B, 1, h, w)."""
        return self.model(x)


def build_patchgan(in_channels: int, ndf: int = 64, n_layers: int = 3) -> PatchGAN:
    """Build a PatchGAN discriminator (also FLoRA's optional translation discriminator).

    Args:
        in_channels: channels of the judged images.
        ndf: base width.
        n_layers: 3 gives the 70x70 PatchGAN.
    """
    return PatchGAN(in_channels, ndf=ndf, n_layers=n_layers)


class CycleGAN(nn.Module):
    """CycleGAN SAR (domain A) <-> EO (domain B): two generators and two discriminators.

    Attributes:
        g_ab: SAR -> EO generator (tanh output in [-1, 1]).
        g_ba: EO -> SAR generator.
        d_a: PatchGAN on SAR images.
        d_b: PatchGAN on EO images.

    Args:
        sar_channels: SAR channels (VV, VH).
        eo_channels: optical channels of the band set.
        ngf: generator base width.
        ndf: discriminator base width.
        n_blocks: residual blocks per generator.
    """

    def __init__(
        self, sar_channels: int, eo_channels: int, ngf: int = 64, ndf: int = 64, n_blocks: int = 9
    ):
        super().__init__()
        self.g_ab = ResnetGenerator(sar_channels, eo_channels, ngf, n_blocks)
        self.g_ba = ResnetGenerator(eo_channels, sar_channels, ngf, n_blocks)
        self.d_a = build_patchgan(sar_channels, ndf)
        self.d_b = build_patchgan(eo_channels, ndf)

    def forward(self, sar: Tensor) -> Tensor:
        """Inference: translate SAR (B, sar_channels, H, W) to EO (B, eo_channels, H, W)."""
        return self.g_ab(sar)

    def generator_parameters(self) -> list[nn.Parameter]:
        """Parameters of both generators (the "g" optimiser)."""
        return [*self.g_ab.parameters(), *self.g_ba.parameters()]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of both discriminators (the "d" optimiser)."""
        return [*self.d_a.parameters(), *self.d_b.parameters()]


def gan_init(module: nn.Module) -> None:
    """Normal(0, 0.02) conv weights and zero biases, the CycleGAN reference initialisation."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, GAN_INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_cyclegan(spec: CycleGANSpec) -> CycleGAN:
    """Build a `CycleGAN` whose EO side has the channels of ``spec.bands``."""
    return CycleGAN(
        spec.sar_channels,
        len(CYCLEGAN_BAND_SETS[spec.bands]),
        ngf=spec.ngf,
        ndf=spec.ndf,
        n_blocks=spec.n_blocks,
    )
