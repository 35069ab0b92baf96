"""Local weights files: round trips, checkpoint layouts, RGB-to-SAR stems, clear errors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from floodlab.errors import DataError, FloodlabError
from floodlab.models import build_sarkd, load_weights
from floodlab.models.encoders import MobileNetV2Encoder
from floodlab.specs.model import CycleGANSpec, SarKDSpec
from floodlab.tasks import build_model


def test_round_trip_for_every_kind(
    kind_case: tuple[str, str, Any], kit: SimpleNamespace, tmp_path: Path
) -> None:
    _, _, spec = kind_case
    trained = build_model(spec).eval()
    path = tmp_path / "weights.pt"
    torch.save(trained.state_dict(), path)

    torch.manual_seed(123)  # a different random init, overwritten by the file
    loaded = build_model(spec.model_copy(update={"weights": str(path)})).eval()
    inputs = kit.inputs_for(spec, batch=1, size=(32, 32))
    with torch.no_grad():
        torch.testing.assert_close(kit.run(loaded, spec, inputs), kit.run(trained, spec, inputs))


def test_floodlab_checkpoint_layout_loads(tmp_path: Path) -> None:
    model = build_sarkd("unet_light")
    path = tmp_path / "ckpt.pt"
    torch.save({"task": {"model": model.state_dict()}, "epoch": 3, "best": 0.5}, path)
    other = build_sarkd("unet_light", weights=str(path))
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_cyclegan_checkpoint_with_one_entry_per_network(tmp_path: Path) -> None:
    spec = CycleGANSpec(ngf=8, ndf=8, n_blocks=1)
    gan = build_model(spec)
    path = tmp_path / "ckpt.pt"
    nets = {name: getattr(gan, name).state_dict() for name in ("g_ab", "g_ba", "d_a", "d_b")}
    # A DDP-wrapped network saves with a "module." prefix; that is stripped per network.
    nets["d_b"] = {f"module.{k}": v for k, v in nets["d_b"].items()}
    torch.save({"task": nets}, path)
    loaded = build_model(spec.model_copy(update={"weights": str(path)}))
    for (k, a), b in zip(gan.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_missing_file_names_the_field_and_path(tmp_path: Path) -> None:
    spec = SarKDSpec(arch="mlp_256", weights=str(tmp_path / "nope.pt"))
    with pytest.raises(
        FloodlabError, match=r"model\.weights: weights file '.*nope\.pt' does not exist"
    ):
        build_model(spec)


def test_mismatched_file_names_the_first_keys(tmp_path: Path) -> None:
    path = tmp_path / "light.pt"
    torch.save(build_sarkd("unet_light").state_dict(), path)
    with pytest.raises(DataError, match=r"light\.pt.*missing keys \[mlp\.0\.weight"):
        build_model(SarKDSpec(arch="mlp_256", weights=str(path)))


def test_wrong_shapes_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "two_channel.pt"
    torch.save(build_sarkd("mlp_256", in_channels=2).state_dict(), path)
    with pytest.raises(DataError, match=r"wrong shape: \[mlp\.0\.weight \(file \(128, 2, 1, 1\)"):
        build_sarkd("mlp_256", in_channels=1, weights=str(path))


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    torch.save({"lr": 0.1}, path)
    with pytest.raises(DataError, match="not a state_dict"):
        build_sarkd("mlp_256", weights=str(path))


def test_rgb_encoder_weights_are_adapted_to_one_sar_channel(tmp_path: Path) -> None:
    rgb = MobileNetV2Encoder(3, output_stride=8, last_conv=False)
    path = tmp_path / "mobilenetv2_rgb.pt"
    torch.save(rgb.state_dict(), path)
    model = build_model(SarKDSpec(arch="pspnet", encoder_weights=str(path)))
    stem = model.encoder.features[0][0].weight  # (32, 1, 3, 3)
    torch.testing.assert_close(stem, rgb.features[0][0].weight.sum(dim=1, keepdim=True))
    # Every other encoder tensor is taken as is.
    torch.testing.assert_close(
        model.encoder.features[5].conv[0][0].weight, rgb.features[5].conv[0][0].weight
    )


def test_encoder_weights_error_names_the_encoder_field(tmp_path: Path) -> None:
    path = tmp_path / "full_mobilenet.pt"
    torch.save(MobileNetV2Encoder(1).state_dict(), path)  # has the 1280 conv PSPNet lacks
    with pytest.raises(
        DataError, match=r"model\.encoder_weights: .*unexpected keys \[features\.18"
    ):
        build_model(SarKDSpec(arch="pspnet", encoder_weights=str(path)))


def test_load_weights_uses_weights_only(tmp_path: Path) -> None:
    # A pickle with arbitrary objects is refused instead of executed.
    path = tmp_path / "evil.pt"
    torch.save({"x": SimpleNamespace(a=1)}, path)
    with pytest.raises(DataError, match="cannot read"):
        load_weights(build_sarkd("mlp_256"), path)
