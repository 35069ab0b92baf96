"""One declaration per dataset: cards, CLI choices and spec names all come from the registry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from floodlab.bands import S1_BANDS
from floodlab.cli import main
from floodlab.data import registry
from floodlab.data.cards import DB, DatasetCard, LabelCoding, Modality, Splits, render_card
from floodlab.data.geotiff import IDENTITY
from floodlab.data.registry import (
    DatasetEntry,
    dataset_names,
    entries,
    get_dataset,
    register_dataset,
)
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.errors import SpecError
from floodlab.specs import json_schema, validate_data

ROOT = Path(__file__).resolve().parents[2]
DATASETS = dataset_names()


def spec_data(dataset: str, **data: Any) -> dict[str, Any]:
    """A minimal valid experiment spec on `dataset`."""
    return {
        "name": "x",
        "data": {"dataset": dataset, "image_bands": ["VV", "RATIO", "MAGNITUDE"], **data},
        "model": {"kind": "resunet"},
    }


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_committed_card_is_the_one_its_entry_generates(dataset: str) -> None:
    committed = (ROOT / "datasets" / dataset / "card.yaml").read_text()
    assert committed == render_card(get_dataset(dataset)), (
        f"datasets/{dataset}/card.yaml is stale: run `python -m floodlab.data.cards`"
    )


def test_every_card_folder_has_a_registered_dataset() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "floodlab.data.cards", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    folders = {p.parent.name for p in (ROOT / "datasets").glob("*/card.yaml")}
    assert folders == set(DATASETS)


@pytest.mark.parametrize("verb", ["synth", "convert"])
def test_cli_choices_are_the_registered_datasets(verb: str) -> None:
    argument = main.commands[verb].params[0]
    assert argument.name == "dataset"
    assert tuple(argument.type.choices) == DATASETS  # type: ignore[attr-defined]
    res = CliRunner().invoke(main, [verb, "landsat", "x", "--out", "y"])
    assert res.exit_code == 2 and "'landsat' is not one of" in res.output
    for name in DATASETS:
        assert name in res.output


def test_a_spec_accepts_exactly_the_registered_datasets() -> None:
    for name in DATASETS:
        assert validate_data(spec_data(name)).data.dataset == name
    dataset = json_schema()["$defs"]["DataSpec"]["properties"]["dataset"]
    assert dataset["enum"] == list(DATASETS)


def test_an_unknown_dataset_in_a_spec_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        validate_data(spec_data("sen1flood11"), "spec.yaml")
    assert info.value.problems == [
        "spec.yaml: data.dataset: unknown dataset (did you mean 'sen1floods11'?); "
        f"available: {list(DATASETS)} (got 'sen1flood11')"
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {dataset: landsat, image_bands: [VV]}\nmodel: {kind: flora}\n")
    res = CliRunner().invoke(main, ["validate", str(bad)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"data.dataset: unknown dataset; available: {list(DATASETS)}" in res.output


def test_importing_specs_stays_light() -> None:
    code = (
        "import sys, floodlab.specs; "
        "print(sorted(m for m in ('torch', 'rasterio', 'zarr') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def test_derived_bands_follow_from_the_reader_bands() -> None:
    derivable = {entry.name: entry.derivable for entry in entries()}
    assert derivable == {
        "cloudsen12": ("NDVI", "NDWI", "MNDWI"),
        "deepflood": ("RATIO", "MAGNITUDE", "NDVI", "NDWI", "MNDWI"),
        # A researcher's own bands decide: every derived band is possible up front.
        "geotiff": ("RATIO", "MAGNITUDE", "NDVI", "NDWI", "MNDWI", "VV_DIFF", "VV_LOGRATIO"),
        "ombria": ("NDWI", "MNDWI", "VV_DIFF", "VV_LOGRATIO"),  # bi-temporal VV, B11/B8/B3
        "sarkd": ("RATIO", "MAGNITUDE"),  # its NDVI/NDWI are bands of the source
        "sen12ms": ("RATIO", "MAGNITUDE", "NDVI", "NDWI", "MNDWI"),
        "sen1floods11": ("RATIO", "MAGNITUDE", "NDVI", "NDWI", "MNDWI"),
        "stac": ("RATIO", "MAGNITUDE", "NDVI", "NDWI", "MNDWI", "VV_DIFF", "VV_LOGRATIO"),
    }
    assert get_dataset("sen1floods11").synth_reader_options == {"labels": ("hand", "weak")}


# A dataset made of one entry, one reader and two writer functions, as a new one would be.
class ToyReader(SourceReader):
    """One `<id>.npy` per chip: VV, VH in dB and a 0/1 label, no georeferencing."""

    name = "toy"
    bands = {"s1": S1_BANDS}  # noqa: RUF012

    def __init__(self, root: str | Path, *, scale: float = 1.0):
        super().__init__(root, scale=scale)
        self.scale = float(scale)

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        """A `toy.txt` marker."""
        return (root / "toy.txt").is_file()

    def list_chips(self) -> list[ChipRef]:
        """Every `<id>.npy`, its own group, no official split."""
        paths = sorted(self.root.glob("*.npy"))
        return [ChipRef(p.stem, p.stem, None, {"s1": (str(p),)}) for p in paths]

    def read(self, ref: ChipRef) -> Chip:
        """VV, VH and the label of one chip."""
        data = np.load(ref.files["s1"][0])
        arrays = {"s1": data[:2] * self.scale, "label": data[2].astype(np.int8)}
        return Chip(ref, arrays, {"s1": S1_BANDS}, "", IDENTITY)


def write_toy(
    root: Path,
    chips: int,
    size: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> Path:
    """`chips` toy chips: water (label 1) at -20 dB, land at -8 dB."""
    rng = np.random.default_rng(seed)
    (root / "toy.txt").write_text("toy\n")
    for i in range(chips):
        label = (rng.random((size, size)) < 0.4).astype(np.float32)
        vv = np.where(label == 1, -20.0, -8.0) + rng.normal(0, 1, (size, size))
        np.save(root / f"chip{i:02d}.npy", np.stack([vv, vv - 6, label]).astype(np.float32))
        if progress:
            progress(1)
    return root


def count_toy(chips: int, **options: Any) -> int:
    """Number of chips `write_toy` writes."""
    return chips


TOY = DatasetEntry(
    reader=ToyReader,
    synth_write=write_toy,
    synth_count=count_toy,
    synth_reader_options={"scale": 1.0},
    card=DatasetCard(
        title="Toy",
        source="generated by the test",
        licence="CC0-1.0",
        citation="none",
        modalities={"s1": Modality(files=("<id>.npy",), dtype="float32", units=DB, nodata="NaN")},
        label=LabelCoding(source="<id>.npy band 3", classes={0: "dry", 1: "water"}),
        splits=Splits(group="the chip"),
    ),
)


@pytest.fixture
def toy() -> Iterator[DatasetEntry]:
    """The toy dataset, registered for one test."""
    dataset_names()  # collect the real entries first
    entry = register_dataset(TOY)
    yield entry
    registry._ENTRIES.pop(entry.name)


def test_a_new_dataset_is_one_entry(toy: DatasetEntry, tmp_path: Path) -> None:
    from floodlab.data.convert.prepare import ensure_store
    from floodlab.data.load.store import open_store
    from floodlab.data.sources import detect_layouts

    assert "toy" in dataset_names()
    assert "toy" in main.commands["convert"].params[0].type.choices  # type: ignore[attr-defined]
    assert json_schema()["$defs"]["DataSpec"]["properties"]["dataset"]["enum"][-1] == "toy"
    card = render_card(toy)
    assert "name: toy" in card and "derived_bands: [RATIO, MAGNITUDE]" in card
    res = CliRunner().invoke(main, ["synth", "toy", "--out", str(tmp_path / "raw"), "--chips", "4"])
    assert res.exit_code == 0, res.output
    assert detect_layouts(tmp_path / "raw") == ["toy"]
    spec = validate_data(
        spec_data("toy", store=str(tmp_path / "toy.zarr"), synthetic={"chips": 5, "size": 32})
    )
    store = open_store(ensure_store(spec.data))
    assert len(store) == 5 and store.attrs["provenance"]["options"]["reader_options"] == {
        "scale": 1.0
    }
    assert set(store.attrs["provenance"]["options"]["derived"]) == {"RATIO", "MAGNITUDE"}


def test_registering_a_taken_name_or_a_foreign_option_is_refused(toy: DatasetEntry) -> None:
    other = type("OtherReader", (ToyReader,), {})
    with pytest.raises(ValueError, match=r"dataset 'toy' is registered twice"):
        register_dataset(DatasetEntry(other, write_toy, count_toy, TOY.card))
    with pytest.raises(ValueError, match=r"synth_reader_options \['colour'\]"):
        register_dataset(DatasetEntry(ToyReader, write_toy, count_toy, TOY.card, {"colour": 1}))
