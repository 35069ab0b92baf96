"""What every verb shares: clean user errors (exit 2, no traceback) and option declarations.

Each option that several verbs take is declared once here and applied as a decorator, so
its flag, metavar and help read the same everywhere.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from floodlab.errors import FloodlabError, SpecError

F = TypeVar("F", bound=Callable[..., Any])
# Path parameters, given to the verb as a pathlib.Path (they need not exist yet).
FILE = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(file_okay=False, path_type=Path)


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


class DatasetChoice(click.Choice):
    """A choice among the registered datasets (`floodlab.data.registry`), looked up lazily.

    The registry imports the readers (numpy, rasterio) to collect its entries; asking for
    the names only when an argument is parsed or a verb's help is shown keeps
    `floodlab --help` and the verbs that need no data from importing them.
    """

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        """The registered dataset names."""
        from floodlab.data.registry import dataset_names

        return dataset_names()

    @choices.setter
    def choices(self, value: Iterable[str]) -> None:
        """Ignored: the choices are always the registry's."""


# The DATASET argument of `floodlab synth` and `floodlab convert`.
dataset_argument = click.argument("dataset", type=DatasetChoice())


def window_option(default: int, text: str) -> Callable[[F], F]:
    """``--window``: the side of the windows the model runs on, in pixels."""
    return click.option(
        "--window", default=default, show_default=True, type=click.IntRange(min=8), help=text
    )


def overlap_option(text: str) -> Callable[[F], F]:
    """``--overlap``: how far neighbouring windows overlap, in pixels (<= window/2)."""
    return click.option(
        "--overlap", default=64, show_default=True, type=click.IntRange(min=0), help=text
    )


def batch_size_option(text: str) -> Callable[[F], F]:
    """``--batch-size``: the inputs (chips or windows) of one model call."""
    return click.option(
        "--batch-size", default=8, show_default=True, type=click.IntRange(min=1), help=text
    )


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "cpu", "cuda"]),
    help="Where the model runs (auto: CUDA when available).",
)


def overwrite_option(what: str) -> Callable[[F], F]:
    """``--overwrite``: allow replacing `what` (never an input)."""
    return click.option("--overwrite", is_flag=True, help=f"Replace {what}.")
