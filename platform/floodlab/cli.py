"""`floodlab <verb>`: the only module that prints for people.

Every user-fixable error (FloodlabError) is printed as a paragraph on stderr and exits 2,
without a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from floodlab import __version__
from floodlab.errors import FloodlabError, SpecError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


def user_errors(fn: F) -> F:
    """Turn FloodlabError into a clean message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            _fail("\n".join(e.problems))
        except FloodlabError as e:
            _fail(f"error: {e}")
        except KeyboardInterrupt:
            _fail("interrupted")

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="floodlab")
def main() -> None:
    """floodlab: experiments and sweeps for Earth-observation flood mapping on Ray."""


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a spec field, e.g. --set loss.seg.dice=0.5.",
)
@user_errors
def validate(specs: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Validate experiment specs; print one line per valid spec, every problem otherwise."""
    from floodlab.specs import load_spec, spec_hash

    problems: list[str] = []
    for path in specs:
        try:
            spec = load_spec(path, overrides)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        sweep = (
            f", sweep of {spec.tune.num_trials} trials over {len(spec.tune.space)} params"
            if spec.tune
            else ""
        )
        click.echo(
            f"{path}: ok ({spec.model.kind} on {spec.data.dataset}, hash {spec_hash(spec)}{sweep})"
        )
    if problems:
        raise SpecError(problems)


@main.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
@user_errors
def schema(out: Path | None) -> None:
    """Write the JSON Schema of experiment specs."""
    from floodlab.specs import json_schema

    text = json.dumps(json_schema(), indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")
        click.echo(f"wrote {out}")


@main.command()
@click.argument(
    "dataset", type=click.Choice(["sen1floods11", "sen12ms", "deepflood", "cloudsen12", "sarkd"])
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to create (new, empty, or an earlier synth output).",
)
@click.option("--chips", default=40, show_default=True, type=click.IntRange(min=3))
@click.option("--size", default=128, show_default=True, type=click.IntRange(min=32))
@click.option("--seed", default=0, show_default=True, type=int)
@user_errors
def synth(dataset: str, out: Path, chips: int, size: int, seed: int) -> None:
    """Write synthetic data in DATASET's real raw layout (GeoTIFF/npy) for `floodlab convert`."""
    from tqdm import tqdm

    from floodlab.data.synth import synthetic_chip_count, write_synthetic

    total = synthetic_chip_count(dataset, chips)
    with tqdm(total=total, desc=f"synth {dataset}", unit="chip") as bar:
        root = write_synthetic(dataset, out, chips=chips, size=size, seed=seed, progress=bar.update)
    click.echo(f"wrote {total} synthetic {dataset} chips of {size} px")
    click.echo(f"source root: {root}")
    click.echo(f"next: floodlab convert {dataset} {root} --out {out.parent / (dataset + '.zarr')}")


_UNITS_HELP = (
    "Units of the SAR input, converted to dB: db, linear (power, 10*log10) or amplitude "
    "(20*log10). Default: dB expected; values that cannot be dB are refused."
)


@main.command()
@click.argument("run")
@click.argument("scenes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Flood map to write: band 1 water probability, band 2 mask (float32, nodata 255).",
)
@click.option(
    "--bands",
    default=None,
    metavar="VV,VH",
    help="Names of every input band in file order (default: band descriptions, file names, order).",
)
@click.option(
    "--window",
    default=256,
    show_default=True,
    type=click.IntRange(min=8),
    help="Window side in pixels.",
)
@click.option(
    "--overlap",
    default=64,
    show_default=True,
    type=click.IntRange(min=0),
    help="Overlap of neighbouring windows (<= window/2).",
)
@click.option(
    "--threshold",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Probability from which a pixel is water.",
)
@click.option("--cog", is_flag=True, help="Write a Cloud-Optimised GeoTIFF (with overviews).")
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Windows per model call.",
)
@click.option(
    "--checkpoint",
    default="best",
    show_default=True,
    help="best (by the run's checkpoint metric), latest, or a checkpoint file.",
)
@click.option("--root", default="runs", show_default=True, help="Root of the run directories.")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "cpu", "cuda"]),
    help="Where the model runs (auto: CUDA when available).",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster (auto, ray://HEAD:10001, HOST:6379) to spread the scene's strips over.",
)
@click.option(
    "--parallel",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Ray workers (0: in this process).",
)
@click.option("--units", default=None, metavar="db|linear|amplitude", help=_UNITS_HELP)
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing output file (never an input scene)."
)
@user_errors
def predict(
    run: str,
    scenes: tuple[Path, ...],
    out: Path,
    bands: str | None,
    window: int,
    overlap: int,
    threshold: float,
    cog: bool,
    batch_size: int,
    checkpoint: str,
    root: str,
    device: str,
    address: str | None,
    parallel: int,
    units: str | None,
    overwrite: bool,
) -> None:
    """Map flood water over whole scenes: RUN's model on SCENES (one file, or one per band)."""
    from tqdm import tqdm

    from floodlab.data.geotiff import raster_info
    from floodlab.predict.scene import RunPredictor, predict_scene
    from floodlab.train.restore import load_trained
    from floodlab.writable import check_output

    # Before the run and the scene are read (the RGB sidecar is checked once the model is).
    check_output(out, option="-o/--out", inputs=scenes, overwrite=overwrite)
    height = raster_info(scenes[0]).height
    trained = load_trained(run, root=root, checkpoint=checkpoint)
    model = RunPredictor.from_trained(trained, device=device)
    with tqdm(total=height, desc=f"predict {scenes[0].name}", unit="row") as bar:
        result = predict_scene(
            model.predict_fn,
            list(scenes),
            out,
            bands=model.bands,
            input_bands=[b.strip() for b in bands.split(",")] if bands else None,
            normalize=model.normalize,
            window=window,
            overlap=overlap,
            batch_size=batch_size,
            threshold=threshold,
            cog=cog,
            write_rgb=model.write_rgb,
            address=address,
            parallel=parallel,
            use_gpu=device == "cuda",
            tags={"FLOODLAB_RUN": str(run), "FLOODLAB_CHECKPOINT": checkpoint},
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


_ADDRESS_HELP = "Ray Jobs API of the cluster, e.g. http://HEAD:8265 (default: $RAY_ADDRESS, else http://127.0.0.1:8265)."


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--tune", is_flag=True, help="Run the spec's sweep (floodlab tune) instead of one training run."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a spec field (passed on to the job).",
)
@click.option("--address", default=None, help=_ADDRESS_HELP)
@click.option(
    "--project-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Project folder to upload (default: found from here).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Stream the job's output until it ends; exit 1 unless it succeeds.",
)
@user_errors
def submit(
    spec: str,
    tune: bool,
    overrides: tuple[str, ...],
    address: str | None,
    project_dir: Path | None,
    follow: bool,
) -> None:
    """Validate SPEC here, then run `floodlab train|tune` on it as a Ray job on a cluster."""
    from floodlab import cluster

    job = cluster.submit(spec, overrides, tune=tune, address=address, project_dir=project_dir)
    for warning in job.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"submitted {job.job_id} to {job.address}")
    click.echo(f"  runs: {job.entrypoint}")
    if not follow:
        click.echo(f"follow it with: floodlab logs {job.job_id} --follow --address {job.address}")
        return
    for chunk in cluster.follow_logs(job.job_id, job.address):
        click.echo(chunk, nl=False)
    status = cluster.wait_for_job(job.job_id, job.address, timeout_s=60)
    click.echo(f"job {job.job_id}: {status}")
    if status != "SUCCEEDED":
        sys.exit(1)


@main.command()
@click.option("--address", default=None, help=_ADDRESS_HELP)
@user_errors
def jobs(address: str | None) -> None:
    """List the cluster's jobs: id, status, start time (UTC), experiment."""
    from floodlab import cluster

    rows = cluster.list_jobs(address)
    if not rows:
        click.echo("no jobs")
    for r in rows:
        click.echo(f"{r.job_id:<44} {r.status:<10} {r.started:<20} {r.name or r.entrypoint}")


@main.command()
@click.argument("job")
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the job ends.")
@click.option("--address", default=None, help=_ADDRESS_HELP)
@user_errors
def logs(job: str, follow: bool, address: str | None) -> None:
    """Print the output of JOB."""
    from floodlab import cluster

    if follow:
        for chunk in cluster.follow_logs(job, address):
            click.echo(chunk, nl=False)
    else:
        click.echo(cluster.job_logs(job, address), nl=False)


@main.command()
@click.argument("job")
@click.option("--address", default=None, help=_ADDRESS_HELP)
@user_errors
def stop(job: str, address: str | None) -> None:
    """Stop JOB on the cluster."""
    from floodlab import cluster

    stopped = cluster.stop_job(job, address)
    click.echo(f"stopping {job}" if stopped else f"{job} had already finished")


@main.command("tune")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a spec field, e.g. --set tune.num_trials=16.",
)
@click.option("--address", default=None, help="Ray cluster address (default: a local Ray).")
@click.option("--resume", is_flag=True, help="Continue the latest sweep of this experiment.")
@click.option(
    "--retry-errored", is_flag=True, help="With --resume: run errored trials again from scratch."
)
@click.option("--sweep", "sweep_id", default=None, help="With --resume: the sweep id to continue.")
@user_errors
def tune_cmd(
    spec_path: str,
    overrides: tuple[str, ...],
    address: str | None,
    resume: bool,
    retry_errored: bool,
    sweep_id: str | None,
) -> None:
    """Run (or --resume) the hyperparameter sweep of SPEC's `tune` section on Ray Tune."""
    import logging

    from tqdm import tqdm

    from floodlab.specs import load_spec
    from floodlab.tune import SweepProgress, run_sweep

    if (retry_errored or sweep_id) and not resume:
        raise SpecError(["--retry-errored and --sweep continue a sweep: add --resume"])
    spec = load_spec(spec_path, overrides)
    if spec.tune is None:
        raise SpecError([f"{spec_path}: tune: no `tune` section; add tune.space to sweep"])
    # Failed trials are summarised in trials.csv and below; Ray Tune's own per-trial
    # tracebacks would bury the progress bar.
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    bar = tqdm(total=spec.tune.num_trials, desc=f"sweep {spec.name}", unit="trial")

    def progress(p: SweepProgress) -> None:
        bar.n = p.finished + p.errored
        best = f"{p.best_value:.4f} ({p.best_trial})" if p.best_value is not None else "-"
        bar.set_postfix_str(
            f"running {p.running}, errored {p.errored}, pruned {p.pruned}, best {p.metric} {best}"
        )

    try:
        result = run_sweep(
            spec,
            address=address,
            resume=resume,
            retry_errored=retry_errored,
            sweep_id=sweep_id,
            progress=progress,
        )
    finally:
        bar.close()
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result.counts.items()))
    click.echo(f"sweep {result.sweep_dir.name}: {counts}")
    for r in result.records:
        if r.error:
            click.echo(f"  trial {r.trial_id} failed: {r.error}")
    if result.interrupted:
        click.echo(
            f"interrupted; continue with: floodlab tune {spec_path} --resume "
            f"--sweep {result.sweep_dir.name}"
        )
    if result.best is not None:
        metrics = ", ".join(
            f"{k}={v:.4f}" for k, v in result.best_metrics.items() if k.startswith("val/")
        )
        click.echo(f"best trial {result.best.trial_id}: {metrics}")
        click.echo(f"best run:    {result.best_run_dir}")
        click.echo(f"best spec:   {result.best_yaml}  (floodlab train {result.best_yaml})")
    click.echo(f"trials:      {result.trials_csv}")
    if result.pareto_csv is not None:
        click.echo(f"pareto:      {result.pareto_csv}  {result.pareto_png or ''}")
    click.echo(f"tensorboard: {result.tensorboard_command}")


@main.command("trials")
@click.argument("sweep")
@click.option("--root", default="runs", show_default=True, help="Root of the run directories.")
@click.option("--top", default=None, type=click.IntRange(min=1), help="Show the best N trials.")
@user_errors
def trials_cmd(sweep: str, root: str, top: int | None) -> None:
    """Print the leaderboard of SWEEP (a sweep directory or <experiment>/latest)."""
    from floodlab.errors import FloodlabError
    from floodlab.specs import load_spec
    from floodlab.tune.leaderboard import leaderboard
    from floodlab.tune.results import SWEEP_SPEC, TRIALS_CSV, read_trials_csv, resolve_sweep

    sweep_dir = resolve_sweep(sweep, root)
    spec = load_spec(sweep_dir / SWEEP_SPEC)
    assert spec.tune is not None
    if not (sweep_dir / TRIALS_CSV).is_file():
        raise FloodlabError(
            f"{sweep_dir / TRIALS_CSV}: no trial has finished yet; wait for the sweep, or "
            f"continue an interrupted one with `floodlab tune {sweep_dir / SWEEP_SPEC} --resume`"
        )
    records = read_trials_csv(sweep_dir / TRIALS_CSV, spec.tune)
    header, rows = leaderboard(records, spec.tune, top)
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    click.echo(f"{sweep_dir}  ({len(records)} of {spec.tune.num_trials} trials)")
    for line in [header, *rows]:
        click.echo(
            "  ".join(
                c.rjust(w) if i != 1 else c.ljust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    for r in records:
        if r.error:
            click.echo(f"{r.trial_id}: {r.error}")


@main.command("train")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a spec field, e.g. --set trainer.epochs=2.",
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster: auto, ray://HOST:10001 or HOST:PORT (default: a local Ray).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Override trainer.num_workers."
)
@click.option(
    "--resume",
    default=None,
    metavar="RUN",
    help="Continue RUN (<experiment>/<run>, .../latest or a path).",
)
@user_errors
def train_cmd(
    spec_path: str,
    overrides: tuple[str, ...],
    address: str | None,
    workers: int | None,
    resume: str | None,
) -> None:
    """Train SPEC on Ray Train (DDP workers), writing a run directory under logging.root."""
    from tqdm import tqdm

    from floodlab.data.prepare import ensure_store
    from floodlab.specs import load_spec
    from floodlab.train.driver import train

    spec = load_spec(spec_path, overrides)
    ensure_store(spec.data)
    bar = tqdm(total=spec.trainer.epochs, desc=f"train {spec.name}", unit="epoch")

    def progress(record: dict[str, Any]) -> None:
        bar.n = int(record["epoch"])
        shown = {
            k: record.get(k) for k in ("train/loss", "val/loss", spec.trainer.checkpoint_metric)
        }
        bar.set_postfix_str(
            ", ".join(f"{k}={v:.4f}" for k, v in shown.items() if isinstance(v, float))
        )
        bar.refresh()

    try:
        result = train(spec, address=address, resume=resume, workers=workers, progress=progress)
    finally:
        bar.close()
    summary = result.run.read_summary()
    best = summary.get("best", {})
    if isinstance(best.get("value"), float):
        click.echo(
            f"best {best['metric']} = {best['value']:.4f} at epoch {best['epoch']} ({summary.get('status')})"
        )
    click.echo(f"run:         {result.run.path}")
    click.echo(f"checkpoint:  {result.best_checkpoint}")
    click.echo(f"tensorboard: tensorboard --logdir {result.run.tensorboard_dir}")


@main.command("evaluate")
@click.argument("run")
@click.option(
    "--split", default=None, help="Split to evaluate (default: the spec's data.test_split)."
)
@click.option("--store", default=None, help="Evaluate on another converted store (same bands).")
@click.option("--without-optical", is_flag=True, help="FLoRA: evaluate from SAR alone only.")
@click.option(
    "--checkpoint", default="best", show_default=True, help="best, latest or a checkpoint file."
)
@click.option("--root", default="runs", show_default=True, help="Root of the run directories.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the reports of an earlier evaluation.")
@user_errors
def evaluate_cmd(
    run: str,
    split: str | None,
    store: str | None,
    without_optical: bool,
    checkpoint: str,
    root: str,
    batch_size: int,
    overwrite: bool,
) -> None:
    """Evaluate RUN on a split: metrics, per-image CSV, confusion matrix, panels, Otsu baseline."""
    from tqdm import tqdm

    from floodlab.predict.evaluate import evaluate_run

    with tqdm(desc=f"evaluate {run}", unit="img") as bar:
        report = evaluate_run(
            run,
            split=split,
            store=store,
            without_optical=without_optical,
            checkpoint=checkpoint,
            root=root,
            batch_size=batch_size,
            progress=bar.update,
            overwrite=overwrite,
        )
    from floodlab.predict.report import format_table

    click.echo(format_table(report))
    for name, path in report["files"].items():
        click.echo(f"{name + ':':<17}{path}")


@main.command("convert")
@click.argument(
    "dataset", type=click.Choice(["sen1floods11", "sen12ms", "deepflood", "cloudsen12", "sarkd"])
)
@click.argument("src", type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Store to create (*.zarr)."
)
@click.option(
    "--chunk", default=None, type=click.IntRange(min=16), help="Spatial chunk side in pixels."
)
@click.option(
    "--derive", default="", metavar="RATIO,MAGNITUDE,NDVI,NDWI", help="Derived bands to store."
)
@click.option("--skip-bad", is_flag=True, help="Skip unreadable chips (listed in provenance).")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Parallel chip reads.")
@click.option(
    "--scheduler", default="threads", type=click.Choice(["threads", "processes"]),
    show_default=True, help="Dask local scheduler.",
)  # fmt: skip
@click.option(
    "--compression", default=None, type=click.Choice(["none", "lz4", "zstd"]),
    help="Chunk compression (default: none, the fastest for random reads).",
)  # fmt: skip
@click.option("--season", "seasons", multiple=True, help="SEN12MS season(s) to keep, e.g. winter.")
@click.option("--labels", default=None, metavar="hand,weak", help="Sen1Floods11 label sources.")
@click.option(
    "--option", "options", multiple=True, metavar="KEY=VALUE", help="Other reader options."
)
@click.option("--seed", default=0, show_default=True, help="Seed of grouped 80/10/10 splits.")
@click.option("--units", default=None, metavar="db|linear|amplitude", help=_UNITS_HELP)
@user_errors
def convert_cmd(
    dataset: str, src: Path, out: Path, chunk: int | None, derive: str, skip_bad: bool,
    workers: int | None, scheduler: str, compression: str | None, seasons: tuple[str, ...],
    labels: str | None, options: tuple[str, ...], seed: int, units: str | None,
) -> None:  # fmt: skip
    """Convert the raw DATASET folder SRC into a chunked Zarr store (resumable, atomic)."""
    import yaml
    from tqdm import tqdm

    from floodlab.data.convert import convert, is_complete

    if is_complete(out):
        click.echo(f"{out} is already a complete store; nothing to do")
        return
    reader_options: dict[str, Any] = {}
    for text in options:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--option")
        reader_options[key.strip()] = yaml.safe_load(value)
    if seasons:
        reader_options["seasons"] = tuple(seasons)
    if labels:
        reader_options["labels"] = tuple(x.strip() for x in labels.split(",") if x.strip())
    if units:
        reader_options["units"] = units
    kwargs: dict[str, Any] = {"chunk": chunk} if chunk else {}
    if compression:
        kwargs["compression"] = compression
    with tqdm(desc=f"convert {dataset}", unit="chip") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        store = convert(
            dataset, src, out, derived=derive.split(","), skip_bad=skip_bad, workers=workers,
            scheduler=scheduler, progress=progress, reader_options=reader_options, seed=seed,
            **kwargs,
        )  # fmt: skip
    from floodlab.data.store import open_store
    from floodlab.data.summary import describe_splits

    s = open_store(store)
    skipped = s.attrs["provenance"]["skipped"]
    click.echo(f"wrote {store}: {len(s)} chips, splits {s.attrs['split_counts']}")
    split_info = s.attrs["provenance"].get("splits")
    if split_info and split_info["method"] != "official":
        click.echo(f"warning: splits {describe_splits(split_info)}", err=True)
    sar_units = s.attrs["provenance"].get("sar_units")
    if sar_units and sar_units["conversion"] != "none":
        click.echo(f"SAR input in {sar_units['input']} converted to dB: {sar_units['conversion']}")
    for bad in skipped:
        click.echo(f"skipped {bad['id']}: {bad['reason']}", err=True)
    click.echo(f"inspect it with: floodlab inspect {store}")


@main.command("inspect")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@user_errors
def inspect_cmd(store: Path, as_json: bool) -> None:
    """Summarise a converted store: splits, arrays, band statistics, class balance, provenance."""
    from floodlab.data.store import open_store
    from floodlab.data.summary import describe, summarise

    s = open_store(store)
    click.echo(json.dumps(summarise(s), indent=2) if as_json else describe(s))


@main.command("demo")
@click.option(
    "--spec",
    "spec_path",
    default="experiments/demo.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="Sweep spec of the main job.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a spec field."
)
@click.option(
    "--address", default=None, help="Ray cluster address (default: in-process local Ray)."
)
@user_errors
def demo_cmd(spec_path: str, overrides: tuple[str, ...], address: str | None) -> None:
    """The main job end to end: synthetic data -> Zarr -> sweep -> evaluation -> flood map."""
    import time

    from floodlab.mainjob import run_main_job
    from floodlab.specs import load_spec

    start = time.monotonic()
    spec = load_spec(spec_path, overrides)

    def stage(text: str) -> None:
        click.echo(f"[{time.monotonic() - start:6.0f}s] {text}")

    def sweep_progress(p: Any) -> None:
        if p.event in ("complete", "error"):
            best = f", best {p.metric} {p.best_value:.3f}" if p.best_value is not None else ""
            click.echo(
                f"         trials {p.finished}/{p.total} done, {p.running} running, "
                f"{p.errored} errored, {p.pruned} stopped early{best}"
            )

    result = run_main_job(spec, address=address, stage=stage, sweep_progress=sweep_progress)
    preds = result.metrics.get("predictors", {})
    click.echo("")
    click.echo(
        f"test-split flood IoU of the best trial ({len(result.best_params)} searched values):"
    )
    for name, m in preds.items():
        click.echo(f"  {name:<24} IoU {m['iou']:.3f}  F1 {m.get('f1', float('nan')):.3f}")
    s = result.scene_scores
    click.echo(f"scene flood IoU: model {s['iou']:.3f}, Otsu threshold {s['otsu_iou']:.3f}")
    click.echo("")
    click.echo(f"store:        {result.store}")
    click.echo(f"trials:       {result.trials_csv}")
    click.echo(f"best spec:    {result.best_yaml}")
    click.echo(f"best run:     {result.best_run}")
    click.echo(f"report:       {result.report_dir}")
    click.echo(f"flood map:    {result.flood_map}")
    if result.rgb_map:
        click.echo(f"RGB map:      {result.rgb_map}")
    click.echo(f"TensorBoard:  {result.tensorboard_command}")
    click.echo(f"done in {time.monotonic() - start:.0f}s")


if __name__ == "__main__":
    main()
