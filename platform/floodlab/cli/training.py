"""Verbs that train and sweep: `train`, `tune`, `trials`."""

from __future__ import annotations

from typing import Any

import click

from floodlab.cli.app import main
from floodlab.cli.common import (
    overrides_option,
    ray_address_option,
    root_option,
    user_errors,
)
from floodlab.errors import SpecError


@main.command("train")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str))
@overrides_option("trainer.epochs=2")
@ray_address_option()
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

    from floodlab.data.convert.prepare import ensure_store
    from floodlab.specs import load_spec
    from floodlab.tracking.mlflow_runs import open_target
    from floodlab.train.driver import train
    from floodlab.train.progress import VALIDATE, BatchProgress

    spec = load_spec(spec_path, overrides)
    open_target(spec)  # a wrong MLflow URI stops here, before any data is made
    # Prepared (synthesised/converted) before the bars start; `train` reuses it.
    store = ensure_store(spec.data)
    bar = tqdm(total=spec.trainer.epochs, desc=f"train {spec.name}", unit="epoch")
    # Rank 0's batches within the current epoch (its own ETA), below the epoch bar.
    batches = tqdm(desc="  epoch", unit="batch", leave=False, position=1)

    def progress(record: dict[str, Any]) -> None:
        bar.n = int(record["epoch"])
        shown = {
            k: record.get(k) for k in ("train/loss", "val/loss", spec.trainer.checkpoint_metric)
        }
        bar.set_postfix_str(
            ", ".join(f"{k}={v:.4f}" for k, v in shown.items() if isinstance(v, float))
        )
        bar.refresh()

    shown_epoch = [0]

    def batch_progress(p: BatchProgress) -> None:
        if p.epoch != shown_epoch[0] or p.done < batches.n:  # a new epoch (or a restart)
            shown_epoch[0] = p.epoch
            batches.reset(total=p.total)
            batches.set_description_str(f"  epoch {p.epoch}")
        batches.set_postfix_str("validating" if p.phase == VALIDATE else "")
        batches.update(p.done - batches.n)

    try:
        result = train(
            spec,
            address=address,
            resume=resume,
            workers=workers,
            progress=progress,
            store=store,
            batch_progress=batch_progress,
        )
    finally:
        batches.close()
        bar.close()
    summary = result.run.read_summary()
    best = summary.get("best", {})
    if isinstance(best.get("value"), float):
        click.echo(
            f"best {best['metric']} = {best['value']:.4f} at epoch {best['epoch']} ({summary.get('status')})"
        )
    click.echo(f"run:         {result.run.where}")
    click.echo(f"checkpoint:  {result.best_checkpoint}")
    if result.run.curves_path.is_file():
        click.echo(f"curves:      {result.run.curves_path}")
    click.echo(f"tensorboard: tensorboard --logdir {result.run.tensorboard_dir}")
    _echo_mlflow(result.run.path)


@main.command("tune")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str))
@overrides_option("tune.num_trials=16")
@ray_address_option()
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
        click.echo(f"best run:    {result.best_run}")
        click.echo(f"best spec:   {result.best_yaml}  (floodlab train {result.best_yaml})")
    click.echo(f"trials:      {result.trials_csv}")
    if result.history_png is not None:
        click.echo(f"history:     {result.history_png}")
    if result.importance_png is not None:
        click.echo(f"importance:  {result.importance_png}")
    elif result.importance_note:
        click.echo(f"importance:  none ({result.importance_note})")
    if result.pareto_csv is not None:
        click.echo(f"pareto:      {result.pareto_csv}  {result.pareto_png or ''}")
    click.echo(f"tensorboard: {result.tensorboard_command}")
    _echo_mlflow(result.sweep_dir)


def _echo_mlflow(folder: Any) -> None:
    """Where the MLflow run of a run or sweep directory is, if it has one."""
    from floodlab.tracking.mlflow_runs import MlflowSink

    sink = MlflowSink.of(folder)
    if sink is not None:
        click.echo(f"mlflow:      run {sink.run_id} at {sink.tracking_uri}")


@main.command("trials")
@click.argument("sweep")
@root_option
@click.option("--top", default=None, type=click.IntRange(min=1), help="Show the best N trials.")
@user_errors
def trials_cmd(sweep: str, root: str, top: int | None) -> None:
    """Print the leaderboard of SWEEP (a sweep directory or <experiment>/latest)."""
    from floodlab.errors import FloodlabError
    from floodlab.tracking.sweepdir import SweepDir
    from floodlab.tune.leaderboard import leaderboard
    from floodlab.tune.results import TRIALS_CSV, read_trials_csv

    found = SweepDir.open(sweep, root)
    sweep_dir = found.path  # on object storage: its working copy, just pulled
    spec = found.read_spec()
    assert spec.tune is not None
    if not (sweep_dir / TRIALS_CSV).is_file():
        raise FloodlabError(
            f"{found.where}/{TRIALS_CSV}: no trial has finished yet; wait for the sweep, or "
            f"continue an interrupted one with `floodlab tune {found.spec_path} --resume`"
        )
    records = read_trials_csv(sweep_dir / TRIALS_CSV, spec.tune)
    header, rows = leaderboard(records, spec.tune, top)
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
    click.echo(f"{found.where}  ({len(records)} of {spec.tune.num_trials} trials)")
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
