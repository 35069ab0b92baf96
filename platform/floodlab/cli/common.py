"""What every verb shares: clean user errors (exit 2, no traceback) and option declarations.

Each option that several verbs take is declared once here and applied as a decorator, so
its flag, metavar and help read the same everywhere.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from floodlab.errors import FloodlabError, SpecError

F = TypeVar("F", bound=Callable[..., Any])


class LocalPath(click.Path):
    """A file system path; a URI (s3://...) is a usage error (exit 2), never a local
    folder named ``s3:``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from floodlab.io import LOCAL_ONLY, is_uri

        if isinstance(value, str) and is_uri(value):
            self.fail(f"{value!r} is a URI; {LOCAL_ONLY}", param, ctx)
        return super().convert(value, param, ctx)


class StoreLocationParam(click.ParamType):
    """A store: a path (given to the verb as a pathlib.Path) or a URL on object storage
    that fsspec knows (s3://..., given as a str); an unknown protocol is a usage error."""

    name = "path|url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from floodlab.storage import check_location, is_remote, local_path

        if isinstance(value, Path):
            return value
        try:
            check_location(str(value), "location")
        except ValueError as e:
            self.fail(str(e), param, ctx)
        return str(value).rstrip("/") if is_remote(value) else local_path(value)


STORE = StoreLocationParam()
# Path parameters, given to the verb as a pathlib.Path (they need not exist yet).
FILE = LocalPath(dir_okay=False, path_type=Path)
FOLDER = LocalPath(file_okay=False, path_type=Path)
ANY_PATH = LocalPath(path_type=Path)


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
    "--root",
    default="runs",
    show_default=True,
    help="Root of the run directories: a folder or a URL (s3://bucket/runs).",
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


@dataclass(frozen=True)
class ReaderFlag:
    """A `floodlab convert` flag that sets the reader option of the same name.

    Attributes:
        option: the reader option (the flag is ``--`` + its name with ``-`` for ``_``).
        metavar: how the value reads in the help.
        help: what it does, for which datasets.
        listed: a comma-separated list, passed to the reader as a tuple.
    """

    option: str
    metavar: str
    help: str
    listed: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--label-map``."""
        return "--" + self.option.replace("_", "-")

    def value(self, text: str) -> Any:
        """The reader option's value from the flag's text."""
        return tuple(x.strip() for x in text.split(",") if x.strip()) if self.listed else text


# Dedicated flags of reader options (the rest go through --option KEY=VALUE). A flag given
# for a dataset whose reader lacks the option is refused, naming the datasets that have it.
READER_FLAGS: tuple[ReaderFlag, ...] = (
    ReaderFlag(
        "images", "PATTERNS",
        "geotiff: image file patterns under SRC, one file per chip each "
        "('S1/*_VV_VH.tif', 'S1/*_VV.tif,S1/*_VH.tif' or 'S1/*_{band}.tif').",
        listed=True,
    ),
    ReaderFlag(
        "labels", "PATTERN|hand,weak",
        "geotiff: label file pattern ('masks/*.tif'); sen1floods11: label sources.",
        listed=True,
    ),
    ReaderFlag(
        "bands", "VV,VH",
        "geotiff: image band names in file order, and the values of {band} "
        "(default: the files' band descriptions).",
        listed=True,
    ),
    ReaderFlag("nodata", "VALUE", "geotiff, stac, sarkd: an image value that is nodata "
               "besides each file's own nodata tag."),
    ReaderFlag("label_map", "255=1,0=0,other=invalid", "geotiff, stac: raw label value -> "
               "1/water, 0/dry or -1/invalid (default 1=water,0=dry,-1=invalid)."),
    ReaderFlag("splits", "auto|random|FILE.csv", "geotiff: a CSV with chip,split columns; "
               "auto: train/ val/ test/ folders in the paths, else a random grouped split."),
    ReaderFlag("assets", "vv=VV,vh=VH,mask=label", "stac: asset key -> band, VV+VH (a "
               "multi-band asset), * (its own band names) or label."),
    ReaderFlag("split_property", "NAME", "stac: the item property holding the split "
               "(default split)."),
)  # fmt: skip


def reader_flags(fn: F) -> F:
    """Add every `READER_FLAGS` flag to a verb (each arrives as a keyword, None if not given)."""
    for spec in reversed(READER_FLAGS):
        fn = click.option(spec.flag, spec.option, default=None, metavar=spec.metavar,
                          help=spec.help)(fn)  # fmt: skip
    return fn


def reader_flag_options(dataset: str, given: Mapping[str, str | None]) -> dict[str, Any]:
    """The reader options the dedicated flags set.

    Raises:
        click.UsageError: a flag whose option the dataset's reader does not have.
    """
    from floodlab.data.registry import entries, get_dataset

    out: dict[str, Any] = {}
    for spec in READER_FLAGS:
        text = given.get(spec.option)
        if text is None:
            continue
        if spec.option not in get_dataset(dataset).reader_options:
            users = [e.name for e in entries() if spec.option in e.reader_options]
            raise click.UsageError(
                f"{spec.flag}: the {dataset} reader has no option {spec.option!r}; "
                f"{spec.flag} is for {', '.join(users)}."
            )
        out[spec.option] = spec.value(text)
    return out


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


tta_option = click.option(
    "--tta",
    default="none",
    show_default=True,
    type=click.Choice(["none", "flips", "dihedral"]),
    help="Test-time augmentation: average the model over flipped (4 passes) or flipped and "
    "turned (dihedral, 8 passes) copies of each input.",
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
