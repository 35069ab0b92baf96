"""PCGrad projection on hand-made conflicting gradients and its assignment through backward."""

from __future__ import annotations

import torch

from floodlab.losses import pcgrad_backward, project_conflicting


def test_conflicting_gradients_are_projected_on_each_others_normal_plane() -> None:
    g_seg = torch.tensor([1.0, 0.0])
    g_rec = torch.tensor([-1.0, 1.0])  # dot = -1: conflict
    # g_seg' = g_seg - (-1/2) g_rec = (0.5, 0.5); g_rec' = g_rec - (-1/1) g_seg = (0, 1)
    combined = project_conflicting(g_seg, g_rec)
    assert torch.allclose(combined, torch.tensor([0.5, 1.5]))
    # The projected parts no longer conflict with the other task's gradient.
    assert torch.dot(torch.tensor([0.5, 0.5]), g_rec) >= 0
    assert torch.dot(torch.tensor([0.0, 1.0]), g_seg) >= 0


def test_agreeing_gradients_are_summed() -> None:
    g1, g2 = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.1])
    assert torch.allclose(project_conflicting(g1, g2), g1 + g2)


def test_pcgrad_backward_assigns_projected_grad_on_shared_params_only() -> None:
    shared = torch.nn.Parameter(torch.tensor([0.0, 0.0]))
    head = torch.nn.Parameter(torch.tensor([2.0]))
    # seg gradient on `shared` = (1, 0); rec gradient = (-1, 1); head gets the seg gradient.
    seg = shared[0] + head[0] ** 2 / 2
    rec = -shared[0] + shared[1]
    other = 3.0 * shared[1]  # e.g. distillation: passes through unprojected
    total = seg + rec + other
    cos = pcgrad_backward(lambda loss: loss.backward(), total, seg, rec, [shared])
    assert cos < 0
    assert torch.allclose(shared.grad, torch.tensor([0.5, 1.5 + 3.0]))
    assert torch.allclose(head.grad, torch.tensor([2.0]))


def test_pcgrad_backward_respects_loss_scaling() -> None:
    shared = torch.nn.Parameter(torch.tensor([0.0, 0.0]))
    seg = shared[0]
    rec = -shared[0] + shared[1]
    pcgrad_backward(lambda loss: (loss * 1024.0).backward(), seg + rec, seg, rec, [shared])
    assert torch.allclose(shared.grad / 1024.0, torch.tensor([0.5, 1.5]))
