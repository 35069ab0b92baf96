"""SAR-KD students: alpha * KD(T) + beta * Focal-Tversky with a frozen, unsaved teacher."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from floodlab.data import sample
from floodlab.errors import TrainingError
from floodlab.losses import focal_tversky_loss, kd_binary_loss
from floodlab.models import build_sarkd
from floodlab.tasks import build_task, load_teacher

KD = {
    "teacher": {"checkpoint": "teacher.pt"},
    "teacher_arch": "unet",
    "temperature": 4.0,
    "alpha": 0.5,
    "beta": 0.5,
}


class TinyTeacher(torch.nn.Module):
    """A stand-in teacher: dark pixels (low normalised backscatter) are water."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)
        torch.nn.init.constant_(self.conv.weight, -4.0)
        torch.nn.init.constant_(self.conv.bias, -1.0)
        self.dropout = torch.nn.Dropout(0.5)  # must stay inactive: the teacher is in eval

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.conv(x))


def test_student_loss_is_alpha_kd_plus_beta_focal_tversky(specs, batch_of, make_ctx) -> None:
    teacher = TinyTeacher()
    task = build_task(specs["sarkd"](distill=KD), teacher=teacher)
    batch = batch_of(n=2, channels=1)
    task.train()
    assert not teacher.training  # the task keeps its teacher in eval mode
    assert "teacher" not in task.nets and all(k == "model" for k in task.state_dict())
    teacher_before = [p.detach().clone() for p in teacher.parameters()]

    task.eval()
    terms = task.eval_step(batch)
    logits = task.nets["model"](batch[sample.IMAGE])
    valid = batch[sample.VALID]
    kd = kd_binary_loss(logits, teacher(batch[sample.IMAGE]), 4.0, valid)
    ft = focal_tversky_loss(logits, batch[sample.MASK], valid, 0.3, 0.7, 0.75)
    assert terms["kd"].item() == pytest.approx(0.5 * kd.item(), rel=1e-4)
    assert terms["focal_tversky"].item() == pytest.approx(0.5 * ft.item(), rel=1e-4)
    assert terms["loss"].item() == pytest.approx(0.5 * kd.item() + 0.5 * ft.item(), rel=1e-4)

    task.train()
    ctx = make_ctx(task.configure_optimizers())
    opt_params = {id(p) for g in ctx.optimizers["main"].param_groups for p in g["params"]}
    assert not any(id(p) in opt_params for p in teacher.parameters())
    out = task.train_step(batch, ctx)
    assert set(out) == {"kd", "focal_tversky", "loss"}
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, teacher.parameters(), strict=True))


def test_load_teacher_from_checkpoint_file(tmp_path: Path, specs) -> None:
    torch.manual_seed(0)
    trained = build_sarkd("unet_light")
    path = tmp_path / "teacher.pt"
    torch.save({"task": {"model": trained.state_dict()}, "epoch": 3}, path)
    spec = specs["sarkd"](
        distill={**KD, "teacher_arch": "unet", "teacher": {"checkpoint": str(path)}}
    )
    # The architecture must match the checkpoint: a U-Net cannot take UnetLight weights.
    with pytest.raises(TrainingError, match="teacher_arch"):
        load_teacher(spec)

    torch.save({"task": {"model": build_sarkd("unet").state_dict()}}, path)
    teacher = load_teacher(spec)
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())


def test_missing_teacher_is_a_clear_training_error(tmp_path: Path, specs) -> None:
    spec = specs["sarkd"](distill={**KD, "teacher": {"checkpoint": str(tmp_path / "nope.pt")}})
    with pytest.raises(TrainingError, match=r"distill\.teacher\.checkpoint.*nope\.pt"):
        build_task(spec)
    spec = specs["sarkd"](distill={**KD, "teacher": {"run": "no_such_experiment/latest"}})
    with pytest.raises(TrainingError, match=r"distill\.teacher\.run"):
        load_teacher(spec, runs_root=tmp_path)


@pytest.mark.slow
def test_student_overfits_with_distillation(specs, batch_of, make_ctx) -> None:
    teacher = TinyTeacher().eval()
    task = build_task(specs["sarkd"](distill=KD), teacher=teacher)
    ctx = make_ctx(task.configure_optimizers())
    batch = batch_of(n=4, channels=1, seed=1)
    # BCE against soft targets bottoms out at the targets' entropy (times T^2), not at 0:
    # measure the KD term above that floor.
    with torch.no_grad():
        q = torch.sigmoid(teacher(batch[sample.IMAGE]) / 4.0)
        entropy = -(q * q.log() + (1 - q) * (1 - q).log())[:, 0][batch[sample.VALID]].mean()
        floor = 0.5 * 16.0 * float(entropy)
    task.train()
    steps = [task.train_step(batch, ctx) for _ in range(10)]
    kd = [float(s["kd"]) - floor for s in steps]
    ft = [float(s["focal_tversky"]) for s in steps]
    assert kd[-1] < 0.5 * kd[0], kd
    assert ft[-1] < 0.5 * ft[0], ft


def _student_of(teacher_spec, run: str, **distill):
    """A UnetLight student on the teacher's data, distilling from the run `run`."""
    from floodlab.specs import with_values

    return with_values(
        teacher_spec,
        {
            "name": "student_tiny",
            "model": {
                "kind": "sarkd",
                "arch": "unet_light",
                "in_channels": len(teacher_spec.data.image_bands),
            },
            "loss": {"seg": {"dice": 1.0, "bce": 1.0}},
            "distill": {**KD, "teacher": {"run": run}, "teacher_arch": None, **distill},
        },
    )


def test_any_segmentation_run_can_teach(tmp_path: Path, specs, untrained_run, batch_of) -> None:
    # The best model of a sweep is often a ResUNet: a student distils from it as from a
    # SAR-KD teacher, rebuilt from the run's own spec and best checkpoint.
    teacher_spec = specs["resunet"]()
    run = untrained_run(tmp_path, teacher_spec, normalization={})
    spec = _student_of(teacher_spec, str(run.path))
    teacher = load_teacher(spec, runs_root=tmp_path)
    assert type(teacher).__name__ == "ResUNet"
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    from floodlab.predict.restore import load_trained

    batch = batch_of(n=2, channels=3)
    expected = load_trained(run.path).task.nets["model"](batch[sample.IMAGE])
    assert torch.allclose(teacher(batch[sample.IMAGE]), expected)  # the run's weights

    task = build_task(spec, teacher=teacher)
    task.eval()
    assert {"kd", "loss"} <= set(task.eval_step(batch))


def test_a_teacher_run_that_cannot_teach_is_refused(tmp_path: Path, specs, untrained_run) -> None:
    teacher_spec = specs["resunet"]()
    ref = str(untrained_run(tmp_path, teacher_spec, normalization={}).path)
    from floodlab.specs import with_values

    other_bands = with_values(
        _student_of(teacher_spec, ref), {"data.image_bands": ["VV", "VH", "RATIO"]}
    )
    with pytest.raises(
        TrainingError, match=r"data\.image_bands.*'VV', 'VH', 'RATIO'.*resunet_tiny"
    ):
        load_teacher(other_bands, runs_root=tmp_path)
    with pytest.raises(TrainingError, match=r"teacher_arch: 'unet'.*a resunet network"):
        load_teacher(_student_of(teacher_spec, ref, teacher_arch="unet"), runs_root=tmp_path)

    flora = specs["flora"]()
    flora_run = str(untrained_run(tmp_path, flora, normalization={}).path)
    with pytest.raises(TrainingError, match="a flora run; a teacher must be a segmentation run"):
        load_teacher(_student_of(flora, flora_run), runs_root=tmp_path)
