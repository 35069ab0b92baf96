"""Verbs that check specs: `validate`, `schema`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from floodlab.cli.app import main
from floodlab.cli.common import (
    FILE,
    overrides_option,
    user_errors,
)
from floodlab.errors import SpecError


@main.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@overrides_option("loss.seg.dice=0.5")
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
    type=FILE,
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
