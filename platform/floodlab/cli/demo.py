"""`demo`: the main job end to end."""

from __future__ import annotations

from typing import Any

import click

from floodlab.cli.app import main
from floodlab.cli.common import (
    overrides_option,
    ray_address_option,
    user_errors,
)


@main.command("demo")
@click.option(
    "--spec",
    "spec_path",
    default="experiments/demo.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="Sweep spec of the main job.",
)
@overrides_option()
@ray_address_option()
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
