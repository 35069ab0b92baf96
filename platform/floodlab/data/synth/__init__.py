"""Real-format synthetic sources: each dataset's raw layout with plausible, learnable content."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from floodlab.data.registry import EntryView, SynthWriter, get_dataset
from floodlab.errors import DataError

log = logging.getLogger(__name__)

# Dataset name -> its synthetic writer (`synth_write` of its registry entry), a live view.
WRITERS: EntryView[SynthWriter] = EntryView(lambda entry: entry.synth_write, "synthetic writers")
# Written last into every synthetic folder; marks it as safe to regenerate in place.
MARKER = ".floodlab-synth.json"


def synthetic_chip_count(dataset: str, chips: int, **options: Any) -> int:
    """How many chips `write_synthetic` writes for these arguments (for progress bars)."""
    return int(get_dataset(dataset).synth_count(chips, **options))


def write_synthetic(
    dataset: str,
    out: str | Path,
    chips: int = 32,
    size: int = 256,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> Path:
    """Write a synthetic copy of `dataset`'s raw layout under `out`.

    Everything is generated in a temporary sibling folder and renamed into place at the
    end, so an interrupted run never leaves a half-written dataset. The same arguments
    always produce the same pixels.

    Args:
        dataset: a registered dataset name (`floodlab.data.registry.dataset_names()`).
        out: folder to create; it must be absent, empty, or an earlier synthetic output.
        chips: number of (labelled) chips.
        size: chip side in pixels.
        seed: random seed.
        progress: called with 1 after each chip written.
        **options: dataset-specific (e.g. `weak_chips` for sen1floods11).

    Returns:
        The folder to pass to `floodlab convert <dataset> SRC` (the layout's root).

    Raises:
        KeyError: unknown dataset.
        DataError: `out` holds other files.
    """
    write = get_dataset(dataset).synth_write
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise DataError(
            f"{out} exists and is not empty; synthetic data is only written into a new or "
            "empty folder (or over an earlier `floodlab synth` output). Choose another --out."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.synth-{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        root = write(tmp, chips, size, seed, progress, **options)
        rel = root.relative_to(tmp)
        (tmp / MARKER).write_text(
            json.dumps(
                {"dataset": dataset, "chips": chips, "size": size, "seed": seed, **options},
                indent=2,
            )
            + "\n"
        )
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote synthetic %s (%d chips of %d px) to %s", dataset, chips, size, out)
    return out / rel


__all__ = ["MARKER", "WRITERS", "synthetic_chip_count", "write_synthetic"]
