"""Load a trained model from a run directory for evaluation and full-scene prediction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from floodlab.errors import TrainingError
from floodlab.specs import ExperimentSpec, with_values
from floodlab.storage import Location, is_remote
from floodlab.tasks.base import Task
from floodlab.tracking import RunDir
from floodlab.tracking.checkpoint import load_checkpoint
from floodlab.train.state import LoopState

log = logging.getLogger(__name__)


@dataclass
class Trained:
    """A trained task ready for inference."""

    spec: ExperimentSpec  # the run's resolved spec
    task: Task  # eval mode, on the CPU
    normalization: dict[str, Any]  # the parameters the model was trained with
    run: RunDir
    checkpoint: Location  # the file (or URL) the weights came from
    epoch: int  # the epoch of that checkpoint


def load_trained(
    ref: str | Path,
    *,
    root: str | Path = "runs",
    checkpoint: Literal["best", "latest"] | str | Path = "best",
) -> Trained:
    """Build a run's task and load a checkpoint into it.

    Args:
        ref: the run (directory, ``<experiment>/<run>`` or ``<experiment>/latest``).
        root: the runs root for ``<experiment>/...`` references.
        checkpoint: "best" (by `trainer.checkpoint_metric`), "latest", or a checkpoint file.

    Returns:
        The spec, the task in eval mode on the CPU, the normalisation parameters and the run.

    Raises:
        FloodlabError: unknown run, no checkpoint, or weights that do not fit the spec.
    """
    from floodlab.tasks import build_task

    run = RunDir.open(ref, root=root)
    spec = run.read_spec()
    if checkpoint == "best":
        path = run.best_checkpoint()
    elif checkpoint == "latest":
        latest = run.latest_checkpoint()
        path = latest if latest is not None else run.best_checkpoint()  # raises: none at all
    else:
        path = checkpoint if is_remote(checkpoint) else Path(checkpoint)
    state = load_checkpoint(path)
    # Inference needs the student alone: a KD teacher is a training-time input only.
    build_spec = with_values(spec, {"distill": None}) if spec.distill is not None else spec
    task = build_task(build_spec)
    try:
        task.load_state_dict(state["task"])
    except (KeyError, RuntimeError) as e:
        raise TrainingError(
            f"{path}: the checkpoint's weights do not fit the model of {run.spec_path} "
            f"({type(e).__name__}: {str(e).splitlines()[0]}); was the spec edited after training?"
        ) from None
    if state["spec_hash"] != run.spec_hash():
        log.info(
            "%s was trained with spec %s; the run's spec is %s",
            path,
            state["spec_hash"],
            run.spec_hash(),
        )
    task.eval()
    epoch = LoopState.from_checkpoint(state).epoch
    log.info("loaded %s (epoch %d) of run %s", path, epoch, run.where)
    return Trained(
        spec=spec,
        task=task,
        normalization=run.read_normalization(),
        run=run,
        checkpoint=path,
        epoch=epoch,
    )
