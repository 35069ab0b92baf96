"""Splits are never silently invented: split files given or expected must exist, list chips
and match the source; a source without any is split at random, announced and recorded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from floodlab.cli import main
from floodlab.data.convert.splits import split_plan
from floodlab.data.load.store import open_store
from floodlab.data.sources.base import ChipRef
from floodlab.data.synth import write_synthetic

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
REAL_S11 = REALDATA / "sen1floods11"
needs_real = pytest.mark.skipif(
    not REAL_S11.is_dir(), reason=f"real Sen1Floods11 sample not present at {REAL_S11}"
)
SPLITS = Path("splits/flood_handlabeled")


def convert_cli(*args: object) -> Result:
    return CliRunner().invoke(main, ["convert", *(str(a) for a in args)])


@pytest.fixture(scope="module")
def s11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic Sen1Floods11 v1.1 tree: 4 hand chips of 32 px with official split CSVs."""
    root = tmp_path_factory.mktemp("split_raw") / "s"
    return write_synthetic("sen1floods11", root, chips=4, size=32, seed=3, weak_chips=2)


@pytest.fixture
def tree(s11: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic tree, to damage."""
    return Path(shutil.copytree(s11, tmp_path / "v1.1"))


def assert_refused(res: Result, out: Path, *texts: str) -> None:
    """Exit 2, every text in the message, no traceback, no store."""
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for text in texts:
        assert text in res.output, (text, res.output)
    assert not out.exists()


def test_official_splits_are_used_and_recorded(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    res = convert_cli("sen1floods11", tree, "--out", out)
    assert res.exit_code == 0, res.output
    assert "warning: splits" not in res.output  # nothing invented, nothing to announce
    info = open_store(out).attrs["provenance"]["splits"]
    assert info["method"] == "official" and info["seed"] is None
    assert sorted(Path(f).name for f in info["files"]) == [
        "flood_test_data.csv",
        "flood_train_data.csv",
        "flood_valid_data.csv",
    ]
    assert info["chips"] == {"listed": 4, "from_group": 0, "random": 0}
    shown = CliRunner().invoke(main, ["inspect", str(out)])
    assert "splits     official, from" in shown.output


def test_a_splits_dir_that_does_not_exist_is_refused(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    missing = tmp_path / "nonexistent"
    res = convert_cli("sen1floods11", tree, "--out", out, "--option", f"splits_dir={missing}")
    assert_refused(res, out, str(missing), "does not exist", "flood_{train,valid,test}_data")


def test_a_splits_dir_without_split_files_is_refused(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    empty = tmp_path / "lists"
    empty.mkdir()
    res = convert_cli("sen1floods11", tree, "--out", out, "--option", f"splits_dir={empty}")
    assert_refused(res, out, str(empty), "holds none of the Sen1Floods11 split files")


def test_an_empty_split_file_is_refused(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    (tree / SPLITS / "flood_valid_data.csv").write_text("")
    res = convert_cli("sen1floods11", tree, "--out", out)
    assert_refused(res, out, "flood_valid_data.csv", "lists no chips")


def test_a_missing_split_file_of_the_set_is_refused(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    (tree / SPLITS / "flood_test_data.csv").unlink()
    res = convert_cli("sen1floods11", tree, "--out", out)
    assert_refused(res, out, "incomplete", "flood_test_data.csv or flood_test_data.txt")


def test_an_expected_split_folder_that_is_empty_is_refused(tree: Path, tmp_path: Path) -> None:
    # The tree has splits/ (so split files are expected) but flood_handlabeled/ lost them.
    out = tmp_path / "s.zarr"
    for f in (tree / SPLITS).iterdir():
        f.unlink()
    res = convert_cli("sen1floods11", tree, "--out", out)
    assert_refused(res, out, str(tree / SPLITS), "holds none of the Sen1Floods11 split files")


def test_split_files_that_match_no_chip_are_refused(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    for i, stem in enumerate(("train", "valid", "test"), start=1):
        (tree / SPLITS / f"flood_{stem}_data.csv").write_text(
            f"Ghana_{i}_S1Hand.tif,Ghana_{i}_LabelHand.tif\n"
        )
    res = convert_cli("sen1floods11", tree, "--out", out)
    assert_refused(res, out, "none of the 3 chips listed", "Ghana_1", "splits_dir")


def test_no_split_files_at_all_gives_an_announced_recorded_random_split(
    tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "s.zarr"
    shutil.rmtree(tree / "splits")
    res = convert_cli("sen1floods11", tree, "--out", out, "--seed", "7")
    assert res.exit_code == 0, res.output
    assert "warning: splits RANDOM: the source has no split files" in res.output
    assert "seed 7" in res.output
    store = open_store(out)
    info = store.attrs["provenance"]["splits"]
    assert info["method"] == "random" and info["files"] == [] and info["seed"] == 7
    assert info["chips"]["random"] == 4
    assert "flood_handlabeled" in info["expected"]
    shown = CliRunner().invoke(main, ["inspect", str(out)])
    assert "splits     RANDOM" in shown.output and "seed 7" in shown.output


def test_chips_in_no_split_file_are_announced(s11: Path, tmp_path: Path) -> None:
    # Weak-label chips have no official split: those not joining their event's split
    # get the random split, and the output says how many.
    out = tmp_path / "s.zarr"
    res = convert_cli("sen1floods11", s11, "--out", out, "--labels", "hand,weak")
    assert res.exit_code == 0, res.output
    info = open_store(out).attrs["provenance"]["splits"]
    assert info["chips"]["listed"] == 4
    assert info["chips"]["from_group"] + info["chips"]["random"] == 2
    if info["chips"]["random"]:
        assert info["method"] == "official+random"
        assert f"but {info['chips']['random']} chips listed in none of them" in res.output


def test_split_plan_counts_and_methods() -> None:
    refs = [
        ChipRef("a", "g1", "train", {}),
        ChipRef("b", "g1", None, {}),  # joins g1's only official split
        ChipRef("c", "g2", None, {}),
        ChipRef("d", "g3", None, {}),
    ]
    splits, info = split_plan(refs, 3, ["lists/train.txt"])
    assert splits[:2] == ["train", "train"]
    assert info["method"] == "official+random" and info["seed"] == 3
    assert info["chips"] == {"listed": 1, "from_group": 1, "random": 2}
    assert sum(info["random_split_counts"].values()) == 2
    _, none = split_plan(refs, 3, [])
    assert none["method"] == "random"
    _, official = split_plan(refs[:2], 3, ["lists/train.txt"])
    assert official["method"] == "official" and official["seed"] is None


@needs_real
def test_real_chip_lands_in_the_official_test_split(tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    lists = REAL_S11 / "split_lists"  # ID-per-line .txt lists of the official splits
    res = convert_cli(
        "sen1floods11", REAL_S11 / "v1.1", "--out", out, "--option", f"splits_dir={lists}"
    )
    assert res.exit_code == 0, res.output
    assert "warning: splits" not in res.output
    store = open_store(out)
    assert list(store.ids) == ["Spain_7370579"] and store.splits[0] == "test"
    info = store.attrs["provenance"]["splits"]
    assert info["method"] == "official"
    assert sorted(Path(f).name for f in info["files"]) == [
        "flood_test_data.txt",
        "flood_train_data.txt",
        "flood_valid_data.txt",
    ]


@needs_real
def test_real_chip_with_a_missing_splits_dir_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "s.zarr"
    res = convert_cli(
        "sen1floods11", REAL_S11 / "v1.1", "--out", out, "--option", "splits_dir=/nonexistent"
    )
    assert_refused(res, out, "/nonexistent", "does not exist")


@needs_real
def test_real_chip_without_split_files_is_split_at_random_with_a_warning(tmp_path: Path) -> None:
    # The real sample tree has no splits/ folder: allowed, but never silently.
    out = tmp_path / "s.zarr"
    res = convert_cli("sen1floods11", REAL_S11 / "v1.1", "--out", out)
    assert res.exit_code == 0, res.output
    assert "warning: splits RANDOM" in res.output
    assert open_store(out).attrs["provenance"]["splits"]["method"] == "random"


@needs_real
def test_cloudsen12_split_csvs_must_be_complete_non_empty_and_matching(tmp_path: Path) -> None:
    fixture = REALDATA / "cloud_s2_fixture"
    ok = convert_cli("cloudsen12", fixture, "--out", tmp_path / "ok.zarr", "--workers", "1")
    assert ok.exit_code == 0, ok.output
    assert open_store(tmp_path / "ok.zarr").attrs["provenance"]["splits"]["method"] == "official"
    for name, damage, texts in (
        ("val.csv", "unlink", ("incomplete", "val.csv")),
        ("test.csv", "empty", ("test.csv", "lists no chips")),
        ("train.csv", "other", ("none of the", "ROI_09999")),
    ):
        raw = Path(shutil.copytree(fixture, tmp_path / f"raw_{name}"))
        if damage == "unlink":
            (raw / name).unlink()
        elif damage == "empty":
            (raw / name).write_text("\n")
        else:
            for csv_name in ("train.csv", "val.csv", "test.csv"):
                (raw / csv_name).write_text("ROI_09999__20200101T000000_20200101T000000_T19GDN\n")
        out = tmp_path / f"{name}.zarr"
        assert_refused(convert_cli("cloudsen12", raw, "--out", out), out, *texts)


@needs_real
def test_sen12ms_lists_must_not_be_empty(tmp_path: Path) -> None:
    raw = Path(shutil.copytree(REALDATA / "sen12ms" / "layout_fixture", tmp_path / "raw"))
    (raw / "test_list.txt").write_text("")
    out = tmp_path / "s.zarr"
    res = convert_cli("sen12ms", raw, "--out", out, "--units", "amplitude")
    assert_refused(res, out, "test_list.txt", "lists no chips")


def test_sarkd_folders_are_its_official_splits_and_deepflood_is_random(tmp_path: Path) -> None:
    sarkd = write_synthetic("sarkd", tmp_path / "sarkd", chips=4, size=16, seed=1)
    res = convert_cli("sarkd", sarkd, "--out", tmp_path / "k.zarr", "--workers", "1")
    assert res.exit_code == 0 and "warning: splits" not in res.output, res.output
    info = open_store(tmp_path / "k.zarr").attrs["provenance"]["splits"]
    assert info["method"] == "official"
    assert {Path(f).name for f in info["files"]} == {"train", "val"}
    deep = write_synthetic("deepflood", tmp_path / "deep", chips=4, size=16, seed=1)
    res = convert_cli("deepflood", deep, "--out", tmp_path / "d.zarr", "--workers", "1")
    assert res.exit_code == 0, res.output
    assert "RANDOM" in res.output and "the dataset has no official split" in res.output
    store = open_store(tmp_path / "d.zarr")
    assert store.attrs["provenance"]["splits"]["method"] == "random"
    assert set(np.unique(store.splits)) <= {"train", "val", "test"}
