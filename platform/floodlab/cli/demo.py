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
    bars = _Bars()

    def stage(text: str) -> None:
        bars.close()
        click.echo(f"[{time.monotonic() - start:6.0f}s] {text}")

    def sweep_progress(p: Any) -> None:
        bar = bars.bar or bars.start("trials", "trial", p.total)
        bar.n = p.finished + p.errored
        best = f"{p.best_value:.3f}" if p.best_value is not None else "-"
        bar.set_postfix_str(
            f"running {p.running}, errored {p.errored}, stopped early {p.pruned}, "
            f"best {p.metric} {best}"
        )
        bar.refresh()

    try:
        result = run_main_job(
            spec, address=address, stage=stage, sweep_progress=sweep_progress, progress=bars
        )
    finally:
        bars.close()
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
    for name in ("history.png", "importance.png"):
        if (result.sweep_dir / name).is_file():
            click.echo(f"{name.split('.')[0] + ':':<14}{result.sweep_dir / name}")
    click.echo(f"best spec:    {result.best_yaml}")
    click.echo(f"best run:     {result.best_run}")
    click.echo(f"report:       {result.report_dir}")
    click.echo(f"flood map:    {result.flood_map}")
    if result.rgb_map:
        click.echo(f"RGB map:      {result.rgb_map}")
    click.echo(f"TensorBoard:  {result.tensorboard_command}")
    click.echo(f"done in {time.monotonic() - start:.0f}s")


class _Bars:
    """One progress bar at a time, below the stage lines: the sweep's trials, then the
    evaluation's images, then the flood map's pixels (`floodlab.mainjob.StageProgress`)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, what: str, unit: str, total: int | None) -> Any:
        """Close the current bar and open one for `total` `unit`s of `what`."""
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=f"         {what}", unit=unit, unit_scale=unit == "px")
        return self.bar

    def advance(self, n: int) -> None:
        """Move the current bar `n` units on."""
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        """Close the current bar, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
