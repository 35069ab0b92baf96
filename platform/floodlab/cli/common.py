"""What every verb shares: clean user errors (exit 2, no traceback) and option declarations.

Each option that several verbs take is declared once here and applied as a decorator, so
its flag, metavar and help read the same everywhere.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

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


def overrides_option(example: str = "loss.seg.dice=0.5") -> Callable[[F], F]:
    """``--set PATH=VALUE`` (repeatable): override a spec field by its dotted path."""
    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="PATH=VALUE",
        help=f"Override a spec field, e.g. --set {example}.",
    )


def ray_address_option(purpose: str = "") -> Callable[[F], F]:
    """``--address``: the Ray cluster to run on (default: floodlab's own local Ray)."""
    what = f" {purpose}" if purpose else ""
    return click.option(
        "--address",
        default=None,
        help=f"Ray cluster{what}: auto, ray://HOST:10001 or HOST:PORT (default: a local Ray).",
    )


jobs_address_option = click.option(
    "--address",
    default=None,
    help="Ray Jobs API of the cluster, e.g. http://HEAD:8265 (default: $RAY_ADDRESS, else "
    "http://127.0.0.1:8265).",
)
root_option = click.option(
    "--root", default="runs", show_default=True, help="Root of the run directories."
)
checkpoint_option = click.option(
    "--checkpoint",
    default="best",
    show_default=True,
    help="best (by the run's checkpoint metric), latest, or a checkpoint file.",
)
units_option = click.option(
    "--units",
    default=None,
    metavar="db|linear|amplitude",
    help="Units of the SAR input, converted to dB: db, linear (power, 10*log10) or amplitude "
    "(20*log10). Default: dB expected; values that cannot be dB are refused.",
)


def overwrite_option(what: str) -> Callable[[F], F]:
    """``--overwrite``: allow replacing `what` (never an input)."""
    return click.option("--overwrite", is_flag=True, help=f"Replace {what}.")
