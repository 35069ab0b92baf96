"""Say what a path is when a converted store was expected, and how to get a store from it."""

from __future__ import annotations

from pathlib import Path

# First bytes of classic and BigTIFF files, little- and big-endian.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
STORE_HINT = "a store is the *.zarr folder written by `floodlab convert <dataset> <raw-folder> --out <store>.zarr`"


def convert_command(dataset: str, raw: str | Path) -> str:
    """The command that converts the raw `dataset` folder `raw` into `<raw>.zarr` beside it."""
    raw = Path(raw)
    return f"floodlab convert {dataset} {raw} --out {raw.with_name(raw.name + '.zarr')}"


def _is_tiff(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) in TIFF_MAGIC
    except OSError:
        return False


def not_a_store_message(path: str | Path) -> str:
    """One paragraph for an existing `path` that is not a converted store.

    It names what the path is (a raw dataset folder of a known layout, a GeoTIFF, another
    file, an empty or unrelated folder) and, for a raw layout, the exact `floodlab convert`
    command that makes a store of it. Only a few stat calls: nothing is listed or read
    beyond a file's first bytes.
    """
    from floodlab.data.sources import READERS, detect_layouts

    p = Path(path)
    if p.is_file():
        if _is_tiff(p):
            return (
                f"{p} is a GeoTIFF file, not a converted store; {STORE_HINT}. To map floods "
                f"over this scene with a trained run, use `floodlab predict <run> {p} -o "
                "flood.tif`."
            )
        return f"{p} is a file, not a converted store; {STORE_HINT}."
    if not p.is_dir():
        return f"{p} is neither a file nor a folder, so not a converted store; {STORE_HINT}."
    layouts = detect_layouts(p)
    if layouts:
        also = f" (it also looks like {', '.join(layouts[1:])})" if layouts[1:] else ""
        return (
            f"{p} is a raw {layouts[0]} dataset folder{also}, not a converted store. Convert "
            f"it with `{convert_command(layouts[0], p)}`, then inspect the .zarr store."
        )
    try:
        what = "a folder" if any(p.iterdir()) else "an empty folder"
    except OSError:
        what = "a folder"
    return (
        f"{p} is {what} that is neither a converted store nor a raw layout floodlab knows "
        f"({', '.join(READERS)}; see datasets/<name>/README.md); {STORE_HINT}."
    )
