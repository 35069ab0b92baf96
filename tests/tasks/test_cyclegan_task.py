"""CycleGAN task: two optimisers, generator/discriminator losses, metrics in [0, 1], overfit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from floodlab.metrics import keys
from floodlab.tasks import CycleGANTask, build_task


def test_step_eval_metrics_predict_panels(specs, batch_of, make_ctx) -> None:
    task = build_task(specs["cyclegan"]("rgb_nir"))
    assert isinstance(task, CycleGANTask)
    assert set(task.nets) == {"g_ab", "g_ba", "d_a", "d_b"}
    opts = task.configure_optimizers()
    assert set(opts) == {"g", "d"}
    g_params = {id(p) for g in opts["g"].param_groups for p in g["params"]}
    assert all(id(p) in g_params for p in task.nets["g_ab"].parameters())
    assert not any(id(p) in g_params for p in task.nets["d_a"].parameters())
    ctx = make_ctx(opts)
    batch = batch_of(n=2, kind="minus1_1")
    d_before = [p.detach().clone() for p in task.nets["d_b"].parameters()]

    task.train()
    out = task.train_step(batch, ctx)
    assert set(out) == {"g_adv", "cycle", "loss", "d_adv"}  # identity weight is 0
    assert ctx.stepped == ["g", "d"]
    assert torch.isclose(out["loss"], out["g_adv"] + out["cycle"])
    assert any(
        not torch.equal(a, b) for a, b in zip(d_before, task.nets["d_b"].parameters(), strict=True)
    )

    task.eval()
    task.reset_metrics()
    task.eval_step(batch)
    metrics = task.compute_metrics()
    for key in (keys.PSNR, keys.SSIM, keys.SAM, keys.RMSE, keys.NDVI_ERROR, keys.LOSS):
        assert np.isfinite(metrics[key]), key
    assert {keys.band_rmse(b) for b in ("B4", "B3", "B2", "B8")} <= set(metrics)
    assert 0.0 <= metrics[keys.band_rmse("B8")] <= 1.0  # errors measured on [0, 1]

    pred = task.predict(batch)
    fake = pred["optical"]
    assert fake.shape == (2, 4, 32, 32) and fake.min() >= -1 and fake.max() <= 1
    panels = task.panels(batch, pred)
    assert set(panels) == {"translation", "histograms"}
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in panels.values())


def test_rgb_band_set_reports_no_ndvi(specs, batch_of) -> None:
    task = build_task(specs["cyclegan"]("rgb"))
    batch = batch_of(n=1, kind="minus1_1")
    batch["target"] = batch["target"][:, :3]
    task.eval()
    task.eval_step(batch)
    assert keys.NDVI_ERROR not in task.compute_metrics()


def test_identity_needs_matching_channels(specs) -> None:
    raw = specs["cyclegan"]("rgb").model_dump()
    raw["loss"]["gan"]["identity"] = 5.0
    with pytest.raises(ValidationError, match=r"loss\.gan\.identity"):
        type(specs["cyclegan"]("rgb")).model_validate(raw)


@pytest.mark.slow
def test_overfits_a_few_patches(specs, batch_of, make_ctx) -> None:
    task = build_task(specs["cyclegan"]("rgb_nir"))
    ctx = make_ctx(task.configure_optimizers())
    batch = batch_of(n=2, kind="minus1_1", seed=1)
    task.train()
    losses = [float(task.train_step(batch, ctx)["loss"]) for _ in range(6)]
    assert losses[-1] < 0.5 * losses[0], losses
