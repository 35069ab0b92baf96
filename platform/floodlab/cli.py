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


if __name__ == "__main__":
    main()
