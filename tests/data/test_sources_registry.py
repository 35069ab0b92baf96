"""Reader registry: every dataset has a reader, and every synthetic layout reads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from floodlab.data.registry import dataset_names
from floodlab.data.sources import READERS, get_reader
from floodlab.data.synth import WRITERS, write_synthetic

DATASETS = dataset_names()


def test_registry_covers_every_dataset() -> None:
    assert set(READERS) == set(DATASETS) == set(WRITERS)


def test_unknown_dataset_lists_the_available_ones() -> None:
    with pytest.raises(KeyError, match=r"Unknown dataset 'landsat'; available: \["):
        get_reader("landsat", ".")


@pytest.mark.parametrize("dataset", DATASETS)
def test_synthetic_layout_reads_back(dataset: str, tmp_path: Path) -> None:
    root = write_synthetic(dataset, tmp_path / dataset, chips=4, size=32, seed=0)
    reader = get_reader(dataset, root)
    refs = reader.list_chips()
    assert len(refs) >= 4
    chip = reader.read(refs[0])
    for key, names in chip.bands.items():
        assert chip.arrays[key].shape[0] == len(names)
    assert chip.arrays["label"].dtype == np.int8
    assert set(np.unique(chip.arrays["label"])) <= {-1, 0, 1}
    assert (chip.arrays["label"] >= 0).any()


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_has_readme_and_card(dataset: str) -> None:
    import yaml

    folder = Path(__file__).resolve().parents[2] / "datasets" / dataset
    card = yaml.safe_load((folder / "card.yaml").read_text())
    assert card["name"] == dataset and card["licence"] and card["modalities"]
    readme = (folder / "README.md").read_text()
    assert f"floodlab convert {dataset}" in readme and f"floodlab synth {dataset}" in readme


# What a user sees in the error: every option each reader accepts, with its default.
READER_OPTIONS = {
    "sen1floods11": ("labels", "splits_dir", "require"),
    "sen12ms": ("seasons", "season", "require"),
    "deepflood": ("require",),
    "cloudsen12": ("merge_clouds", "require"),
    "sarkd": ("nodata", "require"),
    "ombria": ("val_fraction", "val_seed", "require"),
    "geotiff": ("images", "labels", "bands", "units", "nodata", "label_map", "splits"),
    "stac": ("assets", "split_property", "units", "nodata", "label_map"),
}


@pytest.mark.parametrize("dataset", DATASETS)
def test_an_unknown_reader_option_lists_the_valid_ones(dataset: str, tmp_path: Path) -> None:
    from floodlab.errors import ReaderOptionError

    with pytest.raises(ReaderOptionError) as info:
        get_reader(dataset, tmp_path, colour="blue")
    text = str(info.value)
    assert f"unknown {dataset} reader option(s) ['colour']" in text
    for option in READER_OPTIONS[dataset]:
        assert f"{option} (default " in text
