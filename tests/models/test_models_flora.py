"""FLoRA: SAR-alone inference, modality dropout, gradient decoupling, gates and local windows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from floodlab.models import FloraModel
from floodlab.models.flora import ScaleFusion, WindowCrossAttention
from floodlab.tasks import build_model


def _inputs(batch: int = 2, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 2, size, size), torch.rand(batch, 4, size, size)


def test_outputs_with_and_without_optical(kit: SimpleNamespace) -> None:
    model = build_model(kit.flora())
    sar, optical = _inputs()
    out = model(sar, optical)
    assert out["seg"].shape == (2, 1, 32, 32)
    assert out["rgb"].shape == (2, 3, 32, 32)
    assert out["rgb"].min() >= 0.0 and out["rgb"].max() <= 1.0
    assert [f.shape[1] for f in out["fused"]] == model.fused_channels
    assert [t.shape[1] for t in out["teacher"]] == model.teacher_channels
    # Fused and teacher features line up scale by scale (what distillation compares).
    assert [f.shape[-2:] for f in out["fused"]] == [t.shape[-2:] for t in out["teacher"]]

    alone = model(sar)
    assert alone["teacher"] is None
    assert alone["seg"].shape == (2, 1, 32, 32) and torch.isfinite(alone["seg"]).all()


def test_dropping_the_prior_equals_sar_alone_but_keeps_teacher_targets(
    kit: SimpleNamespace,
) -> None:
    model = build_model(kit.flora()).eval()
    sar, optical = _inputs()
    with torch.no_grad():
        dropped = model(sar, optical, fuse_optical=False)
        alone = model(sar)
        fused = model(sar, optical)
    # Modality dropout must train exactly the path used at SAR-only inference...
    torch.testing.assert_close(dropped["seg"], alone["seg"])
    torch.testing.assert_close(dropped["rgb"], alone["rgb"])
    # ...while the teacher still runs, so distillation has targets on those batches.
    assert dropped["teacher"] is not None
    # With the prior fused the prediction differs (fusion is not a no-op).
    assert not torch.allclose(fused["seg"], alone["seg"])


def test_sar_alone_trains_the_learned_prior(kit: SimpleNamespace) -> None:
    model = build_model(kit.flora())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sar, _ = _inputs()
    # Two steps: FiLM starts as the identity (zero weights), so its prior condition only
    # receives gradient once the FiLM weights have moved.
    for _ in range(2):
        opt.zero_grad()
        out = model(sar)
        (out["seg"].square().mean() + out["rgb"].mean()).backward()
        opt.step()
    priors = [(n, p) for n, p in model.named_parameters() if ".prior_" in n]
    assert priors and all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in priors)
    # Without optical input the teacher is not run, so it gets no gradient.
    assert all(p.grad is None for p in model.teacher_parameters())


@pytest.mark.parametrize("branch", ["rec", "seg"])
def test_detach_branch_blocks_that_branch_from_shared_weights(
    kit: SimpleNamespace, branch: str
) -> None:
    model: FloraModel = build_model(kit.flora())
    sar, optical = _inputs()
    out = model(sar, optical, detach_branch=branch)
    key = "rgb" if branch == "rec" else "seg"
    out[key].square().mean().backward()
    own = model.rec_parameters() if branch == "rec" else model.seg_parameters()
    assert all(p.grad is not None for p in own)
    blocked = model.shared_parameters() + model.teacher_parameters()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in blocked)

    # The other branch still trains the shared encoder and fusion.
    model.zero_grad(set_to_none=True)
    other = "seg" if branch == "rec" else "rgb"
    model(sar, optical, detach_branch=branch)[other].square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.shared_parameters())


def test_without_detach_both_branches_reach_the_encoder(kit: SimpleNamespace) -> None:
    model = build_model(kit.flora())
    sar, optical = _inputs()
    model(sar, optical)["rgb"].mean().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_unknown_detach_branch_is_rejected(kit: SimpleNamespace) -> None:
    model = build_model(kit.flora())
    with pytest.raises(ValueError, match="detach_branch"):
        model(*_inputs(), detach_branch="both")


def test_parameter_groups_partition_the_model(kit: SimpleNamespace) -> None:
    model: FloraModel = build_model(kit.flora())
    groups = [
        model.shared_parameters(),
        model.seg_parameters(),
        model.rec_parameters(),
        model.teacher_parameters(),
    ]
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_gate_starts_near_zero_so_fusion_starts_near_identity() -> None:
    block = ScaleFusion(
        16, 8, heads=2, window=4, shifted=True, cross_attention=True, film=True, gate_init=0.01
    )
    sar, optical = torch.randn(2, 16, 8, 8), torch.randn(2, 8, 8, 8)
    out = block(sar, optical)
    rel = (out - sar).norm() / sar.norm()
    assert 0 < rel < 0.05
    torch.testing.assert_close(torch.tanh(block.gate), torch.full((16,), 0.01))


def test_zero_gate_makes_the_optical_prior_irrelevant_at_init(kit: SimpleNamespace) -> None:
    model = build_model(kit.flora(gate_init=0.0)).eval()
    sar, optical = _inputs()
    with torch.no_grad():
        with_prior, alone = model(sar, optical), model(sar)
    torch.testing.assert_close(with_prior["seg"], alone["seg"])


def test_window_attention_is_local() -> None:
    # 8x8 map, 4x4 windows: changing optical features in the top-left window changes SAR
    # outputs there and nowhere else.
    attn = WindowCrossAttention(8, 4, heads=2, window=4, shift=False).eval()
    x, kv = torch.randn(1, 8, 8, 8), torch.randn(1, 4, 8, 8)
    kv2 = kv.clone()
    kv2[..., :4, :4] += torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        diff = (attn(x, kv2) - attn(x, kv)).abs().sum(dim=1)[0]  # (8, 8)
    assert diff[:4, :4].min() > 0
    assert diff[4:, :].max() == 0 and diff[:, 4:].max() == 0


def test_shifted_windows_do_not_attend_across_the_wrapped_border() -> None:
    attn = WindowCrossAttention(8, 4, heads=2, window=4, shift=True).eval()
    x, kv = torch.randn(1, 8, 8, 8), torch.randn(1, 4, 8, 8)
    kv2 = kv.clone()
    kv2[..., 0, 0] += torch.randn(1, 4)  # wraps into the bottom-right window after the cyclic shift
    with torch.no_grad():
        diff = (attn(x, kv2) - attn(x, kv)).abs().sum(dim=1)[0]
    assert diff[1, 1] > 0  # same shifted window, same side of the border
    assert diff[7, 7] == 0 and diff[5, 5] == 0  # same window, other side: masked
    assert diff[2, 2] == 0  # a different shifted window


def test_padding_keys_are_masked() -> None:
    # A 6x6 map is padded to 8x8 for 4x4 windows. The bottom-right window then holds a 2x2
    # block of real pixels and 12 padding pixels: with padding masked, its outputs equal
    # attention over that 2x2 block alone (same relative offsets, same bias entries).
    attn = WindowCrossAttention(8, 4, heads=2, window=4).eval()
    x, kv = torch.randn(1, 8, 6, 6), torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        out = attn(x, kv)
        corner = attn(x[..., 4:, 4:], kv[..., 4:, 4:])
    torch.testing.assert_close(out[..., 4:, 4:], corner)
    assert torch.isfinite(out).all()


def test_a_geometry_first_seen_in_inference_mode_still_trains() -> None:
    # Window geometry constants are cached per size: a prediction (inference mode) that
    # meets a size first must not leave inference tensors that a later training step of
    # the same size saves for backward (a process that evaluates and then trains).
    attn = WindowCrossAttention(8, 4, heads=2, window=3, shift=True)
    x, kv = torch.randn(1, 8, 7, 5), torch.randn(1, 4, 7, 5)  # a size no other test uses
    with torch.inference_mode():
        attn.eval()(x, kv)
    out = attn.train()(x.requires_grad_(), kv)
    out.sum().backward()
    assert attn.rel_bias.grad is not None and torch.isfinite(attn.rel_bias.grad).all()
