"""FLoRA task: both evaluation regimes, decoupling modes, optical dropout, GAN variant, overfit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from floodlab.data import sample
from floodlab.metrics import keys
from floodlab.tasks import FloraTask, build_task

SEG_REC = {"dice", "bce", "boundary", "charbonnier", "ssim", "fft", "edge", "distill", "loss"}
# FLoRA's default reconstruction weights: a spec that names `loss.rec.adversarial` names
# the section, so it writes these too (explicit beats merged).
FLORA_REC = {"charbonnier": 0.8, "ssim": 0.15, "fft": 0.1, "edge": 0.2}


def test_step_eval_metrics_predict_panels(specs, batch_of, make_ctx) -> None:
    task = build_task(specs["flora"]())
    assert isinstance(task, FloraTask) and task.find_unused_parameters
    assert set(task.nets) == {"model", "distill"}
    opts = task.configure_optimizers()
    assert set(opts) == {"main"}
    # The distillation projections are trained by "main".
    main_params = {id(p) for g in opts["main"].param_groups for p in g["params"]}
    assert all(id(p) in main_params for p in task.nets["distill"].parameters())
    ctx = make_ctx(opts)
    batch = batch_of(n=2)
    task.train()
    out = task.train_step(batch, ctx)
    assert set(out) == SEG_REC
    assert torch.isclose(out["loss"], sum(v for k, v in out.items() if k != "loss"))

    task.eval()
    task.reset_metrics()
    task.eval_step(batch)
    metrics = task.compute_metrics()
    for key in (keys.IOU, keys.F1, keys.PSNR, keys.SSIM, keys.SAM, keys.band_rmse("B4"), keys.LOSS):
        assert key in metrics, key
        assert keys.with_optical(key) in metrics or key == keys.LOSS, key
    assert keys.NDVI_ERROR not in metrics  # RGB targets: no NIR

    # Without an optical prior in the validation data, only the SAR-alone regime is reported.
    task.reset_metrics()
    task.eval_step({k: v for k, v in batch.items() if k != sample.OPTICAL})
    metrics = task.compute_metrics()
    assert keys.IOU in metrics and not any(k.startswith(keys.WITH_OPTICAL) for k in metrics)

    pred = task.predict(batch)
    assert pred["prob"].shape == (2, 1, 32, 32) and pred["rgb"].shape == (2, 3, 32, 32)
    fused = task.predict(batch, with_optical=True)
    assert not torch.allclose(fused["rgb"], pred["rgb"])  # the prior is used only when asked
    panels = task.panels(batch, pred)
    assert set(panels) == {"segmentation", "translation"}
    assert all(p.dtype == np.uint8 and p.shape[2] == 3 for p in panels.values())


def test_sar_alone_metrics_come_from_the_unfused_path(specs, batch_of) -> None:
    task = build_task(specs["flora"]())
    batch = batch_of(n=2)
    task.eval()
    task.eval_step(batch)
    metrics = task.compute_metrics()
    alone = task.predict(batch)["prob"]
    expected = ((alone[:, 0] > 0.5) & (batch[sample.MASK] > 0.5) & batch[sample.VALID]).sum()
    assert int(task.seg_metrics.confusion_matrix()[1, 1]) == int(expected)
    assert math.isfinite(metrics[keys.with_optical(keys.PSNR)])


@pytest.mark.parametrize("decouple", ["stopgrad", "pcgrad"])
def test_decoupling_modes_train(decouple, specs, batch_of, make_ctx) -> None:
    task = build_task(specs["flora"](decouple=decouple, stopgrad_branch="rec"))
    ctx = make_ctx(task.configure_optimizers())
    batch = batch_of(n=2)
    task.train()
    out = task.train_step(batch, ctx)
    assert torch.isfinite(out["loss"])


def test_stopgrad_keeps_the_rec_gradient_out_of_the_encoder(specs, batch_of) -> None:
    # With only reconstruction losses and stopgrad on "rec", the shared encoder gets nothing.
    spec = specs["flora"](
        decouple="stopgrad",
        stopgrad_branch="rec",
        seg={"dice": 0.0, "bce": 0.0, "boundary": 0.0},
        distill={"weight": 0.0},
    )
    task = build_task(spec)
    task.train()
    task.train_step(batch_of(n=2), _Collect())
    model = task.nets["model"]
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.shared_parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.rec_parameters())


def test_dropped_optical_prior_still_distills(specs, batch_of, make_ctx) -> None:
    spec = specs["flora"](model={"optical_dropout": 1.0})
    task = build_task(spec)
    out = task.train_step(batch_of(n=2), make_ctx(task.configure_optimizers()))
    assert out["distill"] > 0


def test_discriminator_variant_has_its_own_optimiser(specs, batch_of, make_ctx) -> None:
    spec = specs["flora"](model={"discriminator": True}, rec={**FLORA_REC, "adversarial": 0.1})
    task = build_task(spec)
    opts = task.configure_optimizers()
    assert set(opts) == {"main", "d"}
    ctx = make_ctx(opts)
    ctx.epoch = spec.loss.rec.adversarial_start_epoch
    disc_before = [p.detach().clone() for p in task.nets["disc"].parameters()]
    out = task.train_step(batch_of(n=2), ctx)
    assert {"g_adv", "d_adv"} <= set(out)
    assert ctx.stepped == ["main", "d"]
    assert any(
        not torch.equal(a, b)
        for a, b in zip(disc_before, task.nets["disc"].parameters(), strict=True)
    )
    # "d_adv" is the discriminator's own loss, not part of the generator's total.
    total = sum(v for k, v in out.items() if k not in ("loss", "d_adv"))
    assert torch.isclose(out["loss"], total)


def test_gan_term_waits_for_its_start_epoch(specs, batch_of, make_ctx) -> None:
    """Before `loss.rec.adversarial_start_epoch` the pixel terms train alone and the
    discriminator is left as it is (the authors' schedule: GAN from epoch 6)."""
    spec = specs["flora"](model={"discriminator": True}, rec={**FLORA_REC, "adversarial": 0.1})
    task = build_task(spec)
    ctx = make_ctx(task.configure_optimizers())
    ctx.epoch = spec.loss.rec.adversarial_start_epoch - 1
    disc_before = [p.detach().clone() for p in task.nets["disc"].parameters()]
    out = task.train_step(batch_of(n=2), ctx)
    assert not {"g_adv", "d_adv"} & set(out)
    assert ctx.stepped == ["main"]
    assert all(
        torch.equal(a, b) for a, b in zip(disc_before, task.nets["disc"].parameters(), strict=True)
    )


@pytest.mark.slow
def test_overfits_a_few_patches(specs, batch_of, make_ctx) -> None:
    spec = specs["flora"](model={"optical_dropout": 0.0})
    task = build_task(spec)
    ctx = make_ctx(task.configure_optimizers())
    batch = batch_of(n=4, seed=1)
    task.train()
    losses = [float(task.train_step(batch, ctx)["loss"]) for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_pcgrad_under_ddp_reduces_by_hand_to_the_same_gradients(specs, batch_of, tmp_path) -> None:
    """One gloo rank: PCGrad's no_sync + manual all-reduce gives the plain gradients."""
    spec = specs["flora"](model={"optical_dropout": 0.0}, decouple="pcgrad")
    _assert_ddp_gives_the_plain_gradients(spec, batch_of(n=2), tmp_path)


def _assert_ddp_gives_the_plain_gradients(spec, batch, tmp_path) -> None:
    """One train step of `spec` on `batch` gives the same gradients with the model wrapped
    in DDP (one gloo rank, unused parameters searched, as FLoRA's runtime wraps it)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.manual_seed(0)
    plain = build_task(spec)
    torch.manual_seed(0)
    wrapped = build_task(spec)
    plain.train_step(batch, _Collect())
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        wrapped.nets["model"] = DistributedDataParallel(
            wrapped.nets["model"], find_unused_parameters=True
        )
        wrapped.train_step(batch, _Collect())
    finally:
        dist.destroy_process_group()
    for a, b in zip(plain.nets.parameters(), wrapped.nets.parameters(), strict=True):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6)


@pytest.mark.parametrize("decouple", ["none", "pcgrad"])
def test_bf16_autocast_step(decouple, specs, batch_of, make_ctx) -> None:
    """The mixed-precision path (bf16 forward, fp32 losses) trains on CPU as on GPU."""
    spec = specs["flora"](
        model={"discriminator": True, "optical_dropout": 0.0},
        rec={**FLORA_REC, "adversarial": 0.1},
        decouple=decouple,
    )
    task = build_task(spec)
    ctx = make_ctx(task.configure_optimizers())
    ctx.epoch = spec.loss.rec.adversarial_start_epoch
    ctx.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    out = task.train_step(batch_of(n=2), ctx)
    assert all(torch.isfinite(v) for v in out.values())
    assert {"distill", "g_adv", "d_adv"} <= set(out)


def _grads(task) -> dict[str, torch.Tensor | None]:
    return {n: p.grad for n, p in task.nets.named_parameters()}


class _Collect:
    """A step context that only runs backward (gradients stay for the test to read)."""

    epoch = global_step = 0

    def autocast(self):
        return torch.autocast("cpu", enabled=False)

    def backward(self, loss, opt="main"):
        loss.backward()

    def step(self, opt="main"):
        pass


def test_sar_alone_pass_trains_the_sar_alone_path_on_fused_batches(specs, batch_of) -> None:
    """Every batch fuses the prior; only with `model.sar_alone_pass` does the SAR-alone path
    (the learned prior tokens and condition it uses in place of the optical features) learn,
    with its own loss terms and the fused prediction's KD beside the fused ones."""
    batch = batch_of(n=2)
    torch.manual_seed(0)
    plain = build_task(specs["flora"](model={"optical_dropout": 0.0}))
    out = plain.train_step(batch, _Collect())
    assert not any(k.startswith("sar_alone/") for k in out) and "distill_seg" not in out
    stand_ins = [n for n in _grads(plain) if "prior_tokens" in n or "prior_condition" in n]
    assert stand_ins
    assert all(_grads(plain)[n] is None for n in stand_ins)

    torch.manual_seed(0)
    paired = build_task(
        specs["flora"](
            model={"optical_dropout": 0.0, "sar_alone_pass": True},
            distill={"weight": 0.03, "seg": 0.5},
        )
    )
    out = paired.train_step(batch, _Collect())
    assert {"sar_alone/dice", "sar_alone/bce", "sar_alone/charbonnier", "distill_seg"} <= set(out)
    assert torch.isclose(out["loss"], sum(v for k, v in out.items() if k != "loss"))
    # The fused terms are those of the plain run (same weights, same batch).
    for key in ("dice", "bce", "charbonnier"):
        assert torch.isclose(out[key], plain.train_step(batch, _Collect())[key])
    grads = _grads(paired)
    assert all(grads[n] is not None for n in stand_ins)
    # FiLM starts as the identity (no gradient to its condition yet); the tokens learn.
    assert all(grads[n].abs().sum() > 0 for n in stand_ins if "prior_tokens" in n)


def test_sar_alone_pass_runs_as_one_ddp_forward(specs, batch_of, tmp_path) -> None:
    """Both passes come from one forward call, so DDP reduces them as one graph."""
    spec = specs["flora"](
        model={"optical_dropout": 0.0, "sar_alone_pass": True}, distill={"weight": 0.03, "seg": 0.5}
    )
    _assert_ddp_gives_the_plain_gradients(spec, batch_of(n=2), tmp_path)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["loss.distill.seg=0.5"], "model.sar_alone_pass: loss.distill.seg > 0"),
        (
            ["model.sar_alone_pass=true", "model.optical_dropout=1.0"],
            "model.sar_alone_pass: with model.optical_dropout=1 no batch fuses the prior",
        ),
    ],
)
def test_sar_alone_pass_settings_that_cannot_work_are_refused(overrides, says) -> None:
    from pathlib import Path

    from floodlab.errors import SpecError
    from floodlab.specs import load_spec

    source = Path(__file__).resolve().parents[2] / "experiments" / "ombria_flora.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(source, overrides)
    assert any(says in p for p in info.value.problems), info.value.problems
