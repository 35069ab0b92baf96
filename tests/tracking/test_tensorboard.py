"""TensorBoard events parse with TensorBoard's own reader and hold the expected tags."""

from __future__ import annotations

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from floodlab.tracking.tensorboard import TensorBoardWriter, hparam_value


def test_scalars_images_and_hparams_are_readable(tmp_path):
    writer = TensorBoardWriter(tmp_path)
    for step in (1, 2):
        writer.scalars(
            {"train/loss": 1.0 / step, "val/iou": 0.2 * step, "skip": None, "nan": float("nan")},
            step,
        )
    writer.images({"sample": np.zeros((8, 8, 3), np.uint8)}, 2)
    writer.hparams(
        {"optim.lr": 0.003, "model.widths": [8, 16], "distill": None},
        {"val/iou": 0.4, "val/psnr": 20.0},
    )
    writer.close()

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "val/iou"} <= set(tags["scalars"])
    assert "nan" not in tags["scalars"] and "skip" not in tags["scalars"]
    assert [e.value for e in acc.Scalars("val/iou")] == [np.float32(0.2), np.float32(0.4)]
    assert "panels/sample" in tags["images"]
    hp = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hp)
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["optim.lr"].number_value == 0.003
    assert start.session_start_info.hparams["model.widths"].string_value == "8,16"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hp["_hparams_/experiment"])
    metrics = [m.name.tag for m in experiment.experiment.metric_infos]
    assert metrics == ["val/iou"]  # val/psnr was never written as a scalar


def test_hparam_values_are_tensorboard_types():
    assert hparam_value(None) == "none"
    assert hparam_value([1, 2]) == "1,2"
    assert hparam_value(True) is True
