"""Make sure the store a data spec names exists: reuse it, or synthesise and convert it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from floodlab.data.convert.pipeline import is_complete
from floodlab.data.load.store import missing_store_message
from floodlab.data.registry import get_dataset
from floodlab.errors import DatasetNotFoundError
from floodlab.specs import DataSpec
from floodlab.storage import is_remote, local_path, staging_dir

log = logging.getLogger(__name__)


def ensure_store(
    spec_data: DataSpec, *, progress: Callable[[int, int], None] | None = None
) -> Path | str:
    """The spec's store, creating it from synthetic raw data when the spec asks for that.

    If the store is complete it is returned as is. Otherwise, with `data.synthetic` set,
    real-format synthetic raw data is written to ``<store>.raw/`` (deterministic, so an
    interrupted conversion resumes over identical files) and converted with every derived
    band the layout can compute. Safe to call repeatedly; not for concurrent callers on the same
    store (run it once on the driver before starting workers).

    Args:
        spec_data: the `data` section of an experiment spec.
        progress: conversion progress, (chips done, chips total).

    Returns:
        The path of the complete store, or its URL on object storage (where a synthetic
        store is built in a local staging folder and uploaded: `convert_to`).

    Raises:
        DatasetNotFoundError: no store and no `data.synthetic`; the message gives the
            `floodlab convert` / `floodlab synth` commands that create it.
    """
    from floodlab.data.convert.remote import check_remote_out, convert_to
    from floodlab.data.synth import write_synthetic

    remote = is_remote(spec_data.store_path)
    store: Path | str
    if remote:  # synthetic raw data is staged locally, converted, uploaded and removed
        store = spec_data.store_path.rstrip("/")
        raw = staging_dir(store).with_suffix(".raw")
        if check_remote_out(store):
            return store
    else:
        store = local_path(spec_data.store_path)
        raw = store.with_name(store.name + ".raw")
        if is_complete(store):
            return store
    dataset = spec_data.dataset
    if spec_data.synthetic is None:
        hint = ""
        if spec_data.source:
            hint = (
                f" The spec names the raw source {spec_data.source}: run "
                f"`floodlab convert {dataset} {spec_data.source} --out {store}`."
            )
        raise DatasetNotFoundError(missing_store_message(store, dataset) + hint)
    syn = spec_data.synthetic
    entry = get_dataset(dataset)
    log.info("writing synthetic %s (%d chips of %d px) to %s", dataset, syn.chips, syn.size, raw)
    root = write_synthetic(dataset, raw, chips=syn.chips, size=syn.size, seed=syn.seed)
    if isinstance(store, Path):
        store.parent.mkdir(parents=True, exist_ok=True)
    done = convert_to(
        dataset,
        root,
        store,
        # Every derivable band: specs of several families can share one synthetic store.
        derived=entry.derivable,
        reader_options=dict(entry.synth_reader_options),
        progress=progress,
        seed=syn.seed,
    )
    if remote:
        shutil.rmtree(raw, ignore_errors=True)  # the store is in the bucket now
    return done
