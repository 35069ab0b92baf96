"""The pure-torch loop: learning, NaN stops, early stopping, clipping, exact resume."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from floodlab.errors import TrainingError
from floodlab.tracking.checkpoint import load_checkpoint, save_checkpoint
from floodlab.train.loop import LoopState, fit


class Recorder:
    """Hooks that keep every record and write due checkpoints to files."""

    def __init__(self, folder: Any = None, stop_after: int | None = None):
        self.records: list[dict[str, Any]] = []
        self.folder, self.stop_after = folder, stop_after
        self.saved: dict[int, Any] = {}

    def on_step(self, state: LoopState, components: Any, lrs: Any) -> None:
        pass

    def on_epoch_end(self, state, record, *, evaluated, checkpoint, final) -> None:
        self.records.append(dict(record, _final=final))
        if checkpoint is not None and self.folder is not None:
            self.saved[state.epoch] = save_checkpoint(
                self.folder / f"e{state.epoch}.pt", checkpoint()
            )
        if self.stop_after is not None and state.epoch == self.stop_after:
            raise KeyboardInterrupt  # the run is stopped from outside after this epoch


def _loaders(tiny, spec, seed: int = 0):
    train = tiny.ChipDataset(24, seed=seed)
    sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=spec.seed)
    return (
        DataLoader(train, batch_size=spec.trainer.batch_size, sampler=sampler, drop_last=True),
        DataLoader(tiny.ChipDataset(8, seed=seed + 1), batch_size=4),
        sampler,
    )


def _run(tiny, spec, hooks=None, resume=None, task_kwargs=None) -> tuple[Any, LoopState]:
    torch.manual_seed(spec.seed)
    task = tiny.TinyTask(spec, **(task_kwargs or {}))
    train, val, sampler = _loaders(tiny, spec)
    state = fit(task, spec, train, val, hooks=hooks, resume=resume, train_sampler=sampler)
    return task, state


def test_loop_learns_and_records_every_epoch(tiny):
    rec = Recorder()
    _, state = _run(tiny, tiny.spec(), hooks=rec)
    assert [r["epoch"] for r in rec.records] == [1, 2, 3, 4]
    first, last = rec.records[0], rec.records[-1]
    assert {
        "train/loss",
        "train/loss/bce",
        "train/loss/dice",
        "val/loss",
        "val/iou",
        "lr",
        "time",
    } <= set(last)
    assert last["train/loss"] < first["train/loss"]
    assert last["val/iou"] > 0.5
    assert last["_final"] and state.epoch == 4 and state.best_metric is not None


def test_nan_loss_component_stops_with_its_name_and_step(tiny):
    spec = tiny.spec()
    with pytest.raises(TrainingError) as err:
        _run(tiny, spec, task_kwargs={"nan_component": "dice", "nan_at_step": 8})
    msg = str(err.value)
    # 24 chips / batch 4 = 6 steps per epoch: global step 8 is epoch 2, step 2.
    assert "'dice'" in msg and "epoch 2, step 2" in msg and "optim.lr" in msg
    assert "'bce'" not in msg


def test_nan_never_reaches_the_weights(tiny):
    spec = tiny.spec()
    torch.manual_seed(0)
    task = tiny.TinyTask(spec, nan_component="bce", nan_at_step=1)
    train, val, sampler = _loaders(tiny, spec)
    with pytest.raises(TrainingError):
        fit(task, spec, train, val, train_sampler=sampler)
    assert all(torch.isfinite(p).all() for p in task.nets.parameters())


@pytest.mark.parametrize(
    ("extra", "epochs"),
    [
        ("", [1, 2, 3]),  # patience runs out at epoch 3
        (", min_epochs: 5", [1, 2, 3, 4, 5]),  # ... but min_epochs holds it to 5
    ],
)
def test_early_stopping_stops_when_the_metric_stalls(tiny, extra: str, epochs: list[int]):
    # A vanishing learning rate: val/iou cannot improve after the first check.
    spec = tiny.spec(
        "optim.lr=1e-12",
        "trainer.epochs=10",
        f"trainer.early_stopping={{metric: val/iou, mode: max, patience: 2{extra}}}",
    )
    rec = Recorder()
    _, state = _run(tiny, spec, hooks=rec)
    assert state.stopped_early
    assert [r["epoch"] for r in rec.records] == epochs
    assert rec.records[-1]["_final"]


def test_unreported_monitored_metric_is_a_clear_error(tiny):
    spec = tiny.spec("trainer.checkpoint_metric=val/psnr")
    with pytest.raises(TrainingError, match=r"trainer.checkpoint_metric: 'val/psnr'.*val/iou"):
        _run(tiny, spec)


def test_grad_clip_bounds_the_update(tiny):
    def update_norm(clip: str) -> tuple[float, float]:
        spec = tiny.spec(
            "optim.name=sgd",
            "optim.momentum=0",
            "optim.weight_decay=0",
            "optim.lr=0.1",
            "trainer.epochs=1",
            "trainer.limit_train_batches=1",
            f"trainer.grad_clip={clip}",
        )
        torch.manual_seed(0)
        task = tiny.TinyTask(spec)
        before = torch.cat([p.detach().flatten().clone() for p in task.nets.parameters()])
        rec = Recorder()
        train, val, sampler = _loaders(tiny, spec)
        fit(task, spec, train, val, hooks=rec, train_sampler=sampler)
        after = torch.cat([p.detach().flatten() for p in task.nets.parameters()])
        return float((after - before).norm()), rec.records[0]["train/grad_norm"]

    clipped, grad_norm = update_norm("0.001")
    free, _ = update_norm("null")
    assert grad_norm > 0.001
    assert clipped == pytest.approx(0.1 * 0.001, rel=1e-3)  # lr * clip
    assert free == pytest.approx(0.1 * grad_norm, rel=1e-3)


def test_bf16_autocast_on_cpu_trains(tiny):
    rec = Recorder()
    _run(tiny, tiny.spec("trainer.precision=bf16", "trainer.epochs=1"), hooks=rec)
    assert torch.isfinite(torch.tensor(rec.records[0]["train/loss"]))


@pytest.mark.parametrize("ema", [[], ["trainer.ema_decay=0.9"]], ids=["plain", "ema"])
def test_resume_continues_exactly_like_an_uninterrupted_run(tiny, tmp_path, ema):
    spec = tiny.spec("schedule.kind=cosine", "schedule.warmup_epochs=1", "trainer.epochs=4", *ema)
    full = Recorder(tmp_path / "full")
    task_full, _ = _run(tiny, spec, hooks=full)

    stopped = Recorder(tmp_path / "stopped", stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny, spec, hooks=stopped)
    ckpt = load_checkpoint(stopped.saved[2])
    assert ckpt["loop"]["epoch"] == 2

    resumed = Recorder(tmp_path / "resumed")
    task_resumed, state = _run(tiny, spec, hooks=resumed, resume=ckpt)
    assert [r["epoch"] for r in resumed.records] == [3, 4]
    assert state.global_step == 4 * 6
    for a, b in zip(task_full.nets.parameters(), task_resumed.nets.parameters(), strict=True):
        assert torch.equal(a, b)
    opt_full = load_checkpoint(full.saved[4])["optimizers"]["main"]["state"]
    opt_resumed = load_checkpoint(resumed.saved[4])["optimizers"]["main"]["state"]
    for k in opt_full:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt_full[k][name], opt_resumed[k][name])
    assert [r["lr"] for r in full.records[2:]] == [r["lr"] for r in resumed.records]
    assert full.records[-1]["val/iou"] == resumed.records[-1]["val/iou"]
    # The averaged weights (the run's model when trainer.ema_decay is set) resume too.
    final_full, final_resumed = (load_checkpoint(r.saved[4]) for r in (full, resumed))
    assert ("training" in final_full) == bool(ema)
    for a, b in zip(
        final_full["task"]["model"].values(),
        final_resumed["task"]["model"].values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_weight_average_warms_up_then_follows_its_decay(tiny):
    from floodlab.train.averaging import WeightAverage

    task = tiny.TinyTask(tiny.spec())
    weight = task.nets["model"][0].weight
    average = WeightAverage(task, decay=0.5)
    expected = weight.detach().clone()
    for step, value in enumerate([1.0, 2.0, 3.0, 4.0], start=1):
        with torch.no_grad():
            weight.fill_(value)
        decay = min(0.5, (1 + step) / (10 + step))  # 2/11, 3/12, 0.5, 0.5
        expected = decay * expected + (1 - decay) * value
        average.update()
        assert torch.allclose(average.nets["model"][0].weight, expected)
    assert average.steps == 4 and not average.nets["model"][0].weight.requires_grad


def test_ema_run_is_validated_and_checkpointed_on_its_averaged_weights(tiny, tmp_path):
    from floodlab.train.loop import evaluate

    spec = tiny.spec("trainer.epochs=3", "trainer.ema_decay=0.8")
    rec = Recorder(tmp_path)
    task, _ = _run(tiny, spec, hooks=rec)
    ckpt = load_checkpoint(rec.saved[3])
    trained = ckpt["training"]["model"]
    for key, value in task.nets["model"].state_dict().items():
        assert torch.equal(trained[key], value)  # what the optimiser was moving
    assert not torch.equal(ckpt["task"]["model"]["0.weight"], trained["0.weight"])

    # The validation figures in the record are those of the weights `predict` loads.
    _, val, _ = _loaders(tiny, spec)
    judged = tiny.TinyTask(spec)
    judged.load_state_dict(ckpt["task"])
    assert evaluate(judged, val, torch.device("cpu"))["iou"] == rec.records[-1]["val/iou"]
    # The average follows the training (0.12 -> 0.29 here; it would stay put if not updated).
    assert rec.records[-1]["val/iou"] > rec.records[0]["val/iou"] + 0.1
    raw = evaluate(task, val, torch.device("cpu"))
    assert raw["loss"] != rec.records[-1]["val/loss"]


def _resunet_on(store: Any, epochs: int) -> Any:
    from pathlib import Path

    from floodlab.specs import load_spec

    root = Path(__file__).resolve().parents[2]
    return load_spec(
        root / "experiments" / "resunet_sen1floods11.yaml",
        [
            f"data.store={store}",
            "data.synthetic=null",
            "data.patch_size=32",
            "data.loader_workers=0",
            "model.widths=[8,16]",
            "model.se_reduction=4",
            f"trainer.epochs={epochs}",
            "trainer.batch_size=4",
            "trainer.limit_train_batches=2",
        ],
    )


@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_a_store_lost_mid_run_fails_the_run_naming_the_store(tiny_s1f11_store, tmp_path, loss):
    import shutil

    from floodlab.data.load.dataset import FloodDataset
    from floodlab.errors import FloodlabError
    from floodlab.tasks import build_task

    store = tmp_path / "copy.zarr"
    shutil.copytree(tiny_s1f11_store, store)
    spec = _resunet_on(store, epochs=6)

    class LoseStore(Recorder):
        def on_epoch_end(self, state, record, **kwargs) -> None:
            super().on_epoch_end(state, record, **kwargs)
            if state.epoch == 1 and loss == "deleted":
                shutil.rmtree(store)  # deleted, moved or unmounted under the run
            elif state.epoch == 1:
                # Only the chunk files vanish (the metadata stays): they read as fill values.
                for chunks in store.glob("*/c"):
                    shutil.rmtree(chunks)

    rec = LoseStore()
    datasets = [FloodDataset(spec.data, s, train=s == "train") for s in ("train", "val")]
    loaders = [DataLoader(d, batch_size=4) for d in datasets]
    torch.manual_seed(0)
    with pytest.raises(FloodlabError) as err:
        fit(build_task(spec), spec, *loaders, hooks=rec)
    assert str(store) in str(err.value)
    assert [r["epoch"] for r in rec.records] == [1]  # nothing trained on lost data


def test_checkpoint_holds_the_loop_state_once_and_restores_it(tiny, tmp_path):
    rec = Recorder(tmp_path)
    _, state = _run(tiny, tiny.spec("trainer.epochs=2"), hooks=rec)
    ckpt = load_checkpoint(rec.saved[2])
    assert "epoch" not in ckpt and "best_metric" not in ckpt  # only inside "loop"
    restored = LoopState.from_checkpoint(ckpt)
    assert restored == state and restored.best_metric == ckpt["loop"]["best_metric"]
