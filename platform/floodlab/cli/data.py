"""Verbs that make and convert data: `synth`, `convert`, `inspect`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from floodlab.cli.app import main
from floodlab.cli.common import (
    ANY_PATH,
    FOLDER,
    STORE,
    dataset_argument,
    reader_flag_options,
    reader_flags,
    units_option,
    user_errors,
)
from floodlab.storage import Location


@main.command()
@dataset_argument
@click.option(
    "--out",
    required=True,
    type=FOLDER,
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


@main.command("convert")
@dataset_argument
@click.argument("src", type=ANY_PATH)
@click.option(
    "--out",
    required=True,
    type=STORE,
    help="Store to create (*.zarr): a folder, or a URL (s3://...).",
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
@reader_flags
@click.option(
    "--option", "options", multiple=True, metavar="KEY=VALUE", help="Other reader options."
)
@click.option("--seed", default=0, show_default=True, help="Seed of grouped 80/10/10 splits.")
@click.option(
    "--address", default=None,
    help="Ray cluster that reads and encodes the chips: auto, ray://HOST:10001 or HOST:PORT "
    "(SRC at the same path on every node; the store is written here, or staged here for an "
    "s3:// --out). Default: the local Dask --scheduler.",
)  # fmt: skip
@units_option
@user_errors
def convert_cmd(
    dataset: str, src: Path, out: Location, chunk: int | None, derive: str, skip_bad: bool,
    workers: int | None, scheduler: str, compression: str | None, seasons: tuple[str, ...],
    options: tuple[str, ...], seed: int, address: str | None, units: str | None,
    **flags: str | None,
) -> None:  # fmt: skip
    """Convert the raw DATASET folder SRC into a chunked Zarr store (resumable, atomic).

    Your own data: `floodlab convert geotiff DIR --images 'S1/*.tif' --labels 'masks/*.tif'`
    or `floodlab convert stac items.json --assets vv=VV,vh=VH,mask=label` (see
    datasets/geotiff/README.md and datasets/stac/README.md).
    """
    import yaml
    from tqdm import tqdm

    from floodlab.data.convert.pipeline import is_complete
    from floodlab.data.convert.remote import convert_to

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
    reader_options.update(reader_flag_options(dataset, flags))
    if units:
        reader_options["units"] = units
    kwargs: dict[str, Any] = {"chunk": chunk} if chunk else {}
    if compression:
        kwargs["compression"] = compression
    bars: dict[str, tqdm] = {}

    def follow(name: str, unit: str) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            if name not in bars:
                bars[name] = tqdm(desc=f"{name} {dataset}", unit=unit, total=total)
            bars[name].update(done - bars[name].n)

        return progress

    try:
        store = convert_to(
            dataset, src, out, derived=derive.split(","), skip_bad=skip_bad, workers=workers,
            scheduler=scheduler, progress=follow("convert", "chip"), reader_options=reader_options,
            seed=seed, upload_progress=follow("upload", "file"), address=address, **kwargs,
        )  # fmt: skip
    finally:
        for bar in bars.values():
            bar.close()
    from floodlab.data.load.store import open_store
    from floodlab.data.load.summary import describe_splits

    s = open_store(store)
    skipped = s.attrs["provenance"]["skipped"]
    click.echo(f"wrote {store}: {len(s)} chips, splits {s.attrs['split_counts']}")
    split_info = s.attrs["provenance"].get("splits")
    if split_info and split_info["method"] != "official":
        click.echo(f"warning: splits {describe_splits(split_info)}", err=True)
    sar_units = s.attrs["provenance"].get("sar_units")
    if sar_units and sar_units["conversion"] != "none":
        click.echo(f"SAR input in {sar_units['input']} converted to dB: {sar_units['conversion']}")
    elif sar_units and sar_units["stored"] != "dB":
        click.echo(
            f"SAR kept in {sar_units['stored']} (not dB): train it with data.normalize: per_patch"
        )
    for bad in skipped:
        click.echo(f"skipped {bad['id']}: {bad['reason']}", err=True)
    click.echo(f"inspect it with: floodlab inspect {store}")


@main.command("inspect")
@click.argument("store", type=STORE)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@user_errors
def inspect_cmd(store: Location, as_json: bool) -> None:
    """Summarise a converted store: splits, arrays, band statistics, class balance, provenance."""
    from floodlab.data.load.store import open_store
    from floodlab.data.load.summary import describe, summarise

    s = open_store(store)
    click.echo(json.dumps(summarise(s), indent=2) if as_json else describe(s))
