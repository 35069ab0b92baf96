"""The main job, one call: data -> sweep -> evaluation of the best trial -> a flood map.

`floodlab demo` runs it on the embedded defaults (`experiments/demo.yaml`): synthetic
Sen1Floods11 in its real raw layout, converted to Zarr, a small FLoRA sweep on the
in-process local Ray, the best trial evaluated on the test split (SAR alone and with
optical priors, beside an Otsu baseline), and a flood map of a synthetic full scene whose
size is not a multiple of the prediction window. Every stage is the public API a user
would call; this module only chains them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from floodlab.errors import FloodlabError
from floodlab.specs import ExperimentSpec
from floodlab.storage import Location

log = logging.getLogger(__name__)

Stage = Callable[[str], None]


class StageProgress(Protocol):
    """Counted progress of the evaluation and prediction stages (the CLI draws bars)."""

    def start(self, what: str, unit: str, total: int | None) -> None:
        """Counted work of `total` `unit`s starts (the previous counted work is over)."""
        ...

    def advance(self, n: int) -> None:
        """`n` more units are done."""
        ...


@dataclass
class MainJobResult:
    """Where everything the main job made lies, and its headline numbers."""

    store: Location
    sweep_dir: Path
    trials_csv: Path
    best_yaml: Path | None
    best_run: Location  # a folder, or a URL on object storage
    best_params: dict[str, Any]
    report_dir: Path
    metrics: dict[str, Any]
    scene: Path
    flood_map: Path
    rgb_map: Path | None
    scene_scores: dict[str, float] = field(default_factory=dict)

    @property
    def tensorboard_command(self) -> str:
        """Opens every trial's scalars, images and the HParams dashboard."""
        return f"tensorboard --logdir {self.sweep_dir}"


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    valid = truth >= 0
    p, t = pred[valid].astype(bool), truth[valid] == 1
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else float("nan")


def score_scene(flood_map: Path, truth: Path, sar: Path) -> dict[str, float]:
    """Flood IoU of the map and of an Otsu threshold on VV against the scene's truth."""
    import rasterio

    from floodlab.data.otsu import otsu_water_mask

    with rasterio.open(flood_map) as src:
        mask = src.read(2)
    with rasterio.open(truth) as src:
        t = src.read(1)
    with rasterio.open(sar) as src:
        vv = src.read(1)
    t = np.where(mask == 255, -1, t)  # the map's nodata is no evidence either way
    otsu = otsu_water_mask(vv)
    return {"iou": _iou(mask == 1, t), "otsu_iou": _iou(otsu == 1, np.where(otsu < 0, -1, t))}


def run_main_job(
    spec: ExperimentSpec,
    *,
    address: str | None = None,
    scene_size: tuple[int, int] = (1000, 1400),
    stage: Stage = lambda _: None,
    sweep_progress: Callable[[Any], None] | None = None,
    progress: StageProgress | None = None,
) -> MainJobResult:
    """Run the whole pipeline for a sweep spec and return where its outputs are.

    Args:
        spec: a FLoRA or flood-segmentation spec with a `tune` section and a synthetic store.
        address: Ray cluster address; None uses the in-process local Ray.
        scene_size: (height, width) of the synthetic scene to map.
        stage: called with a short description as each stage starts.
        sweep_progress: forwarded to `run_sweep` for per-trial progress.
        progress: told of the evaluation's images and the flood map's rows as they are done.
    """
    from floodlab.data.convert.prepare import ensure_store
    from floodlab.data.synth.fullscene import write_scene
    from floodlab.predict.evaluate import evaluate_run
    from floodlab.predict.predictor import RunPredictor
    from floodlab.predict.restore import load_trained
    from floodlab.predict.scene import predict_scene
    from floodlab.tracking.mlflow_runs import open_target
    from floodlab.tune.tuner import run_sweep

    if spec.tune is None:
        raise FloodlabError(
            f"the main job runs a sweep, but spec '{spec.name}' has no tune section"
        )
    open_target(spec)  # a wrong MLflow URI stops the job before any data is made
    stage(f"data: {spec.data.dataset} store at {spec.data.store_path}")
    store = ensure_store(spec.data)

    stage(
        f"sweep: {spec.tune.num_trials} trials of {spec.model.kind} on the {'cluster' if address else 'local Ray'}"
    )
    sweep = run_sweep(spec, address=address, progress=sweep_progress, store=store)
    if sweep.best is None or sweep.best_run is None:
        raise FloodlabError(
            f"no trial of the sweep finished; see {sweep.trials_csv} for each trial's error"
        )
    best_run = sweep.best_run  # its folder, or its URL when the runs root is on object storage

    stage(f"evaluate: best trial {sweep.best.trial_id} on the test split")
    root = sweep.location or sweep.sweep_dir  # trial runs live under the sweep directory
    report = evaluate_run(
        best_run,
        root=root,
        progress=progress.advance if progress else None,
        progress_total=(lambda n: progress.start("evaluate", "img", n)) if progress else None,
    )

    stage(f"predict: flood map of a {scene_size[1]}x{scene_size[0]} synthetic scene")
    scene_dir = sweep.sweep_dir / "scene"
    sar, truth = write_scene(scene_dir, height=scene_size[0], width=scene_size[1], seed=spec.seed)
    trained = load_trained(best_run, root=root)
    model = RunPredictor.from_trained(trained, device="cpu")
    out = scene_dir / "flood_map.tif"
    if progress is not None:
        progress.start("predict", "px", scene_size[0] * scene_size[1])
    result = predict_scene(
        model.predict_fn,
        [sar],
        out,
        bands=model.bands,
        normalize=model.normalize,
        write_rgb=model.write_rgb,
        progress=progress.advance if progress else None,
    )
    scores = score_scene(result.path, truth, sar)
    log.info("scene flood IoU %.3f (Otsu %.3f)", scores["iou"], scores["otsu_iou"])
    return MainJobResult(
        store=store,
        sweep_dir=sweep.sweep_dir,
        trials_csv=sweep.trials_csv,
        best_yaml=sweep.best_yaml,
        best_run=best_run,
        best_params=sweep.best_params,
        report_dir=Path(report["files"]["metrics"]).parent,
        metrics=report,
        scene=sar,
        flood_map=result.path,
        rgb_map=result.rgb_path,
        scene_scores=scores,
    )
