"""LPIPS from a local weights file: loads torchvision/lpips key names, measures, trains FLoRA,
and refuses a missing or wrong file with the field to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from floodlab.errors import SpecError
from floodlab.losses.perceptual import LPIPS, load_lpips
from floodlab.tasks import build_task


def _weights_file(path: Path, *, lins: bool = True) -> Path:
    """A state_dict under the names a user's merged file has (AlexNet + LPIPS v0.1)."""
    torch.manual_seed(0)
    net = LPIPS()
    state = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    if lins:
        for i, lin in enumerate(net.lins):
            state[f"lin{i}.model.1.weight"] = lin.weight.detach().abs() + 0.1
    torch.save(state, path)
    return path


def test_loaded_network_is_a_distance_with_gradients(tmp_path: Path) -> None:
    net = load_lpips(_weights_file(tmp_path / "lpips.pth"))
    assert not any(p.requires_grad for p in net.parameters())
    a = torch.rand(2, 3, 64, 64, requires_grad=True)
    b = torch.rand(2, 3, 64, 64)
    same = net(a, a.detach())
    assert torch.allclose(same, torch.zeros(2), atol=1e-6)
    far = net(a, b)
    assert far.shape == (2,) and (far > 0).all()
    # Closer images are closer in LPIPS.
    near = net(a, (a.detach() + 0.05 * (b - a.detach())).clamp(0, 1))
    assert (near < far).all()
    far.sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_missing_or_wrong_file_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"loss.rec.lpips_weights: .*nope.pth is not a file"):
        load_lpips(tmp_path / "nope.pth")
    with pytest.raises(SpecError, match=r"lacks 5 LPIPS tensors .*lins.0.weight"):
        load_lpips(_weights_file(tmp_path / "alexnet_only.pth", lins=False))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SpecError, match="is not a weights-only state_dict"):
        load_lpips(junk)


def test_flora_trains_with_lpips_from_a_local_file(specs, batch_of, make_ctx, tmp_path) -> None:
    weights = _weights_file(tmp_path / "lpips.pth")
    rec = {"charbonnier": 0.8, "lpips": 0.1, "lpips_weights": str(weights)}
    task = build_task(specs["flora"](rec=rec))
    assert "lpips" not in task.nets  # frozen: never trained, wrapped or checkpointed
    out = task.train_step(batch_of(n=2), make_ctx(task.configure_optimizers()))
    assert out["lpips"] > 0
    assert torch.isclose(out["loss"], sum(v for k, v in out.items() if k != "loss"))


def test_spec_refuses_lpips_without_a_weights_file(specs) -> None:
    with pytest.raises(
        ValidationError, match=r"loss\.rec\.lpips_weights: loss\.rec\.lpips > 0 needs"
    ):
        specs["flora"](rec={"charbonnier": 1.0, "lpips": 0.1})
