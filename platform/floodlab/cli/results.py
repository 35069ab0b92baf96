"""Verbs that use trained runs: `evaluate` a split, `predict` whole scenes, `export` a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from floodlab.cli.app import main
from floodlab.storage import Location

if TYPE_CHECKING:
    import numpy as np
from floodlab.cli.common import (
    FILE,
    STORE,
    batch_size_option,
    checkpoint_option,
    device_option,
    overlap_option,
    overwrite_option,
    ray_address_option,
    root_option,
    tta_option,
    units_option,
    user_errors,
    window_option,
)


def bootstrap_options(fn: Callable[..., None]) -> Callable[..., None]:
    """``--bootstrap`` (resamples of the chips) and ``--seed`` of the 95% intervals."""
    fn = click.option(
        "--seed", default=0, show_default=True, type=int, help="Seed of the bootstrap resampling."
    )(fn)
    return click.option(
        "--bootstrap",
        "resamples",
        default=1000,
        show_default=True,
        type=click.IntRange(min=1),
        help="Bootstrap resamples of the chips for the 95% intervals.",
    )(fn)


@main.command("evaluate")
@click.argument("run")
@click.option(
    "--split", default=None, help="Split to evaluate (default: the spec's data.test_split)."
)
@click.option(
    "--store",
    default=None,
    type=STORE,
    help="Evaluate on another converted store (same bands): a folder or a URL (s3://...).",
)
@click.option(
    "--label-sources",
    default=None,
    metavar="hand,weak",
    help="Flood labels to score (default: those the run trains on that the store has).",
)
@click.option("--without-optical", is_flag=True, help="FLoRA: evaluate from SAR alone only.")
@window_option(
    512, "Chips up to this side are predicted in one pass; larger ones in blended windows."
)
@overlap_option("Overlap of the blended windows (<= window/2).")
@bootstrap_options
@click.option(
    "--threshold",
    default="0.5",
    show_default=True,
    metavar="P|SPLIT",
    help="Probability from which a pixel is water, or a split to choose it on (val: the "
    "threshold of the best mean per-image IoU on the validation split, from 0.05 to 0.95).",
)
@tta_option
@checkpoint_option
@root_option
@batch_size_option("Chips (or windows) per model call.")
@device_option
@overwrite_option("the reports of an earlier evaluation of the split")
@user_errors
def evaluate_cmd(
    run: str,
    split: str | None,
    store: Location | None,
    label_sources: str | None,
    without_optical: bool,
    window: int,
    overlap: int,
    resamples: int,
    seed: int,
    threshold: str,
    tta: str,
    checkpoint: str,
    root: str,
    batch_size: int,
    device: str,
    overwrite: bool,
) -> None:
    """Evaluate RUN on every valid pixel of a split's whole chips, beside Otsu and all-water:
    metrics with bootstrap intervals, per-image CSV, confusion matrix, panels."""
    from tqdm import tqdm

    from floodlab.predict.evaluate import evaluate_run

    with tqdm(desc=f"evaluate {run}", unit="img") as bar:
        report = evaluate_run(
            run,
            split=split,
            store=str(store) if store is not None else None,
            label_sources=[s.strip() for s in label_sources.split(",") if s.strip()]
            if label_sources is not None
            else None,
            without_optical=without_optical,
            checkpoint=checkpoint,
            root=root,
            batch_size=batch_size,
            window=window,
            overlap=overlap,
            threshold=threshold,
            tta=tta,
            device=device,
            resamples=resamples,
            seed=seed,
            progress=bar.update,
            overwrite=overwrite,
            progress_total=bar.reset,  # the number of images, for the ETA
        )
    from floodlab.predict.report import format_table

    click.echo(format_table(report))
    for name, path in report["files"].items():
        click.echo(f"{name + ':':<17}{path}")


@main.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--split", default="test", show_default=True, help="The evaluated split.")
@click.option(
    "--store",
    default=None,
    help="The other store both runs were evaluated on, if not their own (`evaluate --store`).",
)
@tta_option
@click.option(
    "--threshold",
    default="0.5",
    show_default=True,
    metavar="P|SPLIT",
    help="The threshold both runs were evaluated at (`evaluate --threshold`).",
)
@click.option(
    "--predictor",
    default="model",
    show_default=True,
    help="Which prediction of the reports: model, model_with_optical (FLoRA with its prior).",
)
@bootstrap_options
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
@root_option
@user_errors
def compare_cmd(
    run_a: str,
    run_b: str,
    split: str,
    store: str | None,
    tta: str,
    threshold: str,
    predictor: str,
    resamples: int,
    seed: int,
    as_json: bool,
    root: str,
) -> None:
    """Compare RUN_A with RUN_B on the chips both were evaluated on: each run's mean
    per-image and pooled IoU, and RUN_A - RUN_B with a paired bootstrap interval (the same
    chips resampled for both). Reads the reports of `floodlab evaluate`; writes nothing."""
    import json

    from floodlab.predict.compare import compare_runs, format_comparison

    try:
        at: float | str = float(threshold)
    except ValueError:
        at = threshold
    report = compare_runs(
        run_a,
        run_b,
        root=root,
        split=split,
        store=store,
        tta=tta,
        threshold=at,
        predictor=predictor,
        resamples=resamples,
        seed=seed,
    )
    click.echo(json.dumps(report) if as_json else format_comparison(report))


@main.command()
@click.argument("inputs", metavar="[RUN] SCENES...", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    required=True,
    type=FILE,
    help="Flood map to write: band 1 water probability, band 2 mask (float32, nodata 255).",
)
@click.option(
    "--model",
    "model_file",
    default=None,
    type=FILE,
    help="Map with a model written by `floodlab export` instead of a RUN (ONNX runs on "
    "onnxruntime, without torch); every argument is then a scene.",
)
@click.option(
    "--bands",
    default=None,
    metavar="VV,VH",
    help="Names of every input band in file order (default: band descriptions, file names, order).",
)
@window_option(256, "Window side in pixels.")
@overlap_option("Overlap of neighbouring windows (<= window/2).")
@click.option(
    "--threshold",
    default=None,
    type=click.FloatRange(0.0, 1.0),
    help="Probability from which a pixel is water (default: 0.5, or the --model's own).",
)
@click.option("--cog", is_flag=True, help="Write a Cloud-Optimised GeoTIFF (with overviews).")
@batch_size_option("Windows per model call.")
@tta_option
@checkpoint_option
@root_option
@device_option
@ray_address_option("to spread the scene's strips over")
@click.option(
    "--parallel",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Ray workers (0: in this process).",
)
@units_option
@overwrite_option("an existing output file (never an input scene)")
@user_errors
def predict(
    inputs: tuple[str, ...],
    out: Path,
    model_file: Path | None,
    bands: str | None,
    window: int,
    overlap: int,
    threshold: float | None,
    cog: bool,
    batch_size: int,
    tta: str,
    checkpoint: str,
    root: str,
    device: str,
    address: str | None,
    parallel: int,
    units: str | None,
    overwrite: bool,
) -> None:
    """Map flood water over whole scenes: RUN's model (or an exported --model) on SCENES
    (one file, or one per band)."""
    from tqdm import tqdm

    from floodlab.data.geotiff import raster_info
    from floodlab.predict.scene import predict_scene
    from floodlab.writable import check_output

    if model_file is None and len(inputs) < 2:
        raise click.UsageError("give a RUN and at least one scene, or --model FILE and scenes")
    run = inputs[0] if model_file is None else None
    scenes = [Path(p) for p in (inputs[1:] if model_file is None else inputs)]
    # Before the model and the scene are read (the RGB sidecar is checked once the model is).
    read = [*scenes, *([model_file] if model_file is not None else [])]
    check_output(out, option="-o/--out", inputs=read, overwrite=overwrite)
    info = raster_info(scenes[0])
    predict_fn: Callable[[np.ndarray], Mapping[str, np.ndarray]]
    normalize: Callable[[np.ndarray], np.ndarray]
    if model_file is not None:
        from floodlab.predict.exported import ExportedModel, physical_input

        exported = ExportedModel.load(model_file)
        predict_fn, normalize = exported.predict_fn(device), physical_input
        model_bands, write_rgb, tags = exported.bands, exported.write_rgb, exported.tags()
        threshold = exported.threshold if threshold is None else threshold
    else:
        from floodlab.predict.predictor import RunPredictor
        from floodlab.predict.restore import load_trained

        trained = load_trained(str(run), root=root, checkpoint=checkpoint)
        model = RunPredictor.from_trained(trained, device=device)
        predict_fn, normalize = model.predict_fn, model.normalize
        model_bands, write_rgb = model.bands, model.write_rgb
        tags = {"FLOODLAB_RUN": str(run), "FLOODLAB_CHECKPOINT": checkpoint}
    if tta != "none":
        from floodlab.predict.tta import with_tta

        predict_fn = with_tta(predict_fn, tta)
        tags = {**tags, "FLOODLAB_TTA": tta}
    with tqdm(
        total=info.height * info.width, desc=f"predict {scenes[0].name}", unit="px", unit_scale=True
    ) as bar:
        result = predict_scene(
            predict_fn,
            scenes,
            out,
            bands=model_bands,
            input_bands=[b.strip() for b in bands.split(",")] if bands else None,
            normalize=normalize,
            window=window,
            overlap=overlap,
            batch_size=batch_size,
            threshold=0.5 if threshold is None else threshold,
            cog=cog,
            write_rgb=write_rgb,
            address=address,
            parallel=parallel,
            use_gpu=device == "cuda",
            tags=tags,
            progress=bar.update,
            units=units,
            overwrite=overwrite,
        )
    click.echo(
        f"wrote {result.path} ({result.width}x{result.height} px, "
        f"{100 * result.water_fraction:.1f}% of valid pixels water)"
    )
    if result.rgb_path:
        click.echo(f"wrote {result.rgb_path} (translated RGB)")


@main.command("export")
@click.argument("run")
@click.option(
    "-o",
    "--out",
    required=True,
    type=FILE,
    help="Model file to write (.onnx, .pt); its sidecar FILE.json and model_card.md go beside it.",
)
@click.option(
    "--format",
    "fmt",
    default="onnx",
    show_default=True,
    type=click.Choice(["onnx", "torchscript"]),
    help="onnx (runs on onnxruntime, no torch needed) or torchscript (torch.jit.load).",
)
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Probability from which a pixel is water, recorded for `predict --model`.",
)
@checkpoint_option
@root_option
@overwrite_option("an existing model file, its sidecar and the model card beside them")
@user_errors
def export_cmd(
    run: str,
    out: Path,
    fmt: str,
    threshold: float,
    checkpoint: str,
    root: str,
    overwrite: bool,
) -> None:
    """Export RUN's model from the image alone, its normalisation inside: input (B, C, H, W)
    float32 in the run's bands and physical units (NaN at nodata), output water probability
    (B, 1, H, W) (FLoRA also its RGB translation); any batch, height and width."""
    from floodlab.predict.export import export_run

    click.echo(f"exporting {run} as {fmt} (tracing the model takes a while) ...")
    result = export_run(
        run,
        out,
        fmt=fmt,
        root=root,
        checkpoint=checkpoint,
        threshold=threshold,
        overwrite=overwrite,
    )
    click.echo(
        f"wrote {result.path}: input {', '.join(result.bands)} -> {', '.join(result.outputs)} "
        f"(largest difference from the run's model {result.max_abs_diff:.1g})"
    )
    click.echo(f"{'sidecar:':<12}{result.sidecar}")
    click.echo(f"{'model card:':<12}{result.card}")
