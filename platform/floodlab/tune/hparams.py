"""TensorBoard HParams for sweeps: the experiment (domains) at the sweep root, trial sessions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from floodlab.specs.tune import CategoricalParam, FloatParam, TuneSpec


def _value(v: Any) -> Any:
    """A google.protobuf Value holding a bool, number or string."""
    from google.protobuf import struct_pb2

    from floodlab.tracking.tensorboard import hparam_value

    out = struct_pb2.Value()
    v = hparam_value(v)
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int | float):
        out.number_value = float(v)
    else:
        out.string_value = str(v)
    return out


def _write(logdir: Path, tag: str, content: Any) -> None:
    """Append one HParams plugin summary to a new event file in `logdir`."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(content))
        ]
    )
    logdir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir), filename_suffix=".hparams")
    writer.add_event(event_pb2.Event(summary=summary, wall_time=time.time()))
    writer.close()


def has_session(logdir: Path) -> bool:
    """Whether a run's event files already hold an HParams session (its hyperparameters)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    if not logdir.is_dir() or not any(logdir.glob("events.out.tfevents.*")):
        return False
    acc = EventAccumulator(str(logdir), size_guidance={"tensors": 1, "scalars": 1, "images": 1})
    acc.Reload()
    try:
        tags = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    except KeyError:  # no HParams data at all
        return False
    return metadata.SESSION_START_INFO_TAG in tags


def write_trial_session(logdir: Path, hparams: dict[str, Any], status: str) -> None:
    """Record a trial's hyperparameters as an HParams session in its own event directory.

    Trials that finish write their session themselves at the last epoch; a trial the
    scheduler stopped early (or that failed after some epochs) gets it here, so the
    dashboard lists it beside the others with the scalars it did report.

    Args:
        logdir: the trial's TensorBoard directory.
        hparams: dotted path -> value of every searched parameter.
        status: "pruned" (stopped early by the scheduler) or "failure".
    """
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for k, v in hparams.items():
        start.hparams[k].CopyFrom(_value(v))
    _write(
        logdir,
        metadata.SESSION_START_INFO_TAG,
        plugin_data_pb2.HParamsPluginData(
            session_start_info=start, version=metadata.PLUGIN_DATA_VERSION
        ),
    )
    end = plugin_data_pb2.SessionEndInfo(
        # HParams has no "stopped early" status: a pruned trial ended normally, only sooner.
        status=api_pb2.STATUS_SUCCESS if status == "pruned" else api_pb2.STATUS_FAILURE,
        end_time_secs=time.time(),
    )
    _write(
        logdir,
        metadata.SESSION_END_INFO_TAG,
        plugin_data_pb2.HParamsPluginData(
            session_end_info=end, version=metadata.PLUGIN_DATA_VERSION
        ),
    )


def write_hparams_config(sweep_dir: Path, tune: TuneSpec, metrics: list[str]) -> Path:
    """Write the HParams experiment (searched params with their domains, metrics) at the
    sweep root, so TensorBoard's HParams dashboard spans every trial's run.

    Each trial's own event directory records its values (session start) and metrics; this
    summary adds the domains (float intervals, categorical choices) for the dashboard's
    filters and parallel-coordinates view. Written once per sweep.
    """
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    if any(sweep_dir.glob("events.out.tfevents.*.hparams")):
        return sweep_dir
    infos = []
    for path, p in tune.space.items():
        if isinstance(p, CategoricalParam):
            kind = (
                api_pb2.DATA_TYPE_BOOL
                if all(isinstance(c, bool) for c in p.choices)
                else api_pb2.DATA_TYPE_FLOAT64
                if all(isinstance(c, int | float) and not isinstance(c, bool) for c in p.choices)
                else api_pb2.DATA_TYPE_STRING
            )
            values = struct_pb2.ListValue(values=[_value(c) for c in p.choices])
            infos.append(api_pb2.HParamInfo(name=path, type=kind, domain_discrete=values))
        else:
            interval = api_pb2.Interval(min_value=float(p.low), max_value=float(p.high))
            infos.append(
                api_pb2.HParamInfo(
                    name=path,
                    type=api_pb2.DATA_TYPE_FLOAT64,
                    domain_interval=interval,
                    description="log scale" if isinstance(p, FloatParam) and p.log else "",
                )
            )
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics],
    )
    _write(
        sweep_dir,
        metadata.EXPERIMENT_TAG,
        plugin_data_pb2.HParamsPluginData(
            experiment=experiment, version=metadata.PLUGIN_DATA_VERSION
        ),
    )
    return sweep_dir
