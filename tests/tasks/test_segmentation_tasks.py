"""ResUNet, SAR-KD (supervised) and cloud U-Net tasks: step/eval/metrics/predict/panels and overfit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from floodlab.data import sample
from floodlab.metrics import keys
from floodlab.tasks import CloudTask, ResUNetTask, SarKDTask, build_task

# kind -> (input channels, batch kind, expected task class, expected loss components)
FAMILIES = {
    "resunet": (3, "sar", ResUNetTask, {"focal_tversky", "loss"}),
    "sarkd": (1, "sar", SarKDTask, {"focal_tversky", "loss"}),
    "cloud_unet": (3, "optical", CloudTask, {"focal", "dice", "loss"}),
}


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_step_eval_metrics_predict_panels(kind, specs, batch_of, make_ctx) -> None:
    channels, batch_kind, cls, components = FAMILIES[kind]
    task = build_task(specs[kind]())
    assert isinstance(task, cls)
    opts = task.configure_optimizers()
    assert set(opts) == {"main"}
    ctx = make_ctx(opts)
    batch = batch_of(n=2, channels=channels, kind=batch_kind)
    before = [p.detach().clone() for p in task.nets.parameters()]

    task.train()
    out = task.train_step(batch, ctx)
    assert set(out) == components  # zero-weight terms are neither computed nor reported
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    assert torch.isclose(out["loss"], sum(v for k, v in out.items() if k != "loss"))
    assert ctx.stepped == ["main"]
    assert any(not torch.equal(a, b) for a, b in zip(before, task.nets.parameters(), strict=True))

    task.eval()
    task.reset_metrics()
    comps = task.eval_step(batch)
    assert set(comps) == components
    metrics = task.compute_metrics()
    for key in (
        keys.IOU,
        keys.MIOU,
        keys.F1,
        keys.PRECISION,
        keys.RECALL,
        keys.ACCURACY,
        keys.LOSS,
    ):
        assert key in metrics and isinstance(metrics[key], float)
    assert 0.0 <= metrics[keys.ACCURACY] <= 1.0
    assert metrics[keys.LOSS] == pytest.approx(float(comps["loss"]), rel=1e-5)
    # The confusion matrix counts valid pixels only.
    assert int(task.seg_metrics.confusion_matrix().sum()) == int(batch[sample.VALID].sum())

    task.train()
    pred = task.predict(batch)
    assert task.nets.training  # predict restores the mode it found
    prob = pred["prob"]
    assert prob.shape == (2, 1, 32, 32) and prob.min() >= 0 and prob.max() <= 1

    panels = task.panels(batch, pred)
    assert set(panels) == {"segmentation"}
    img = panels["segmentation"]
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    # Excluded pixels are marked magenta in the ground-truth column.
    assert np.any(np.all(img == [255, 0, 255], axis=-1))


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(FAMILIES))
def test_overfits_a_few_patches(kind, specs, batch_of, make_ctx) -> None:
    channels, batch_kind, _, _ = FAMILIES[kind]
    task = build_task(specs[kind]())
    ctx = make_ctx(task.configure_optimizers())
    batch = batch_of(n=4, channels=channels, kind=batch_kind, seed=1)
    task.train()
    losses = [float(task.train_step(batch, ctx)["loss"]) for _ in range(10)]
    assert losses[-1] < 0.5 * losses[0], losses
