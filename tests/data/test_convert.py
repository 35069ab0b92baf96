"""Conversion into the Zarr store: fidelity, splits, statistics, atomicity, bad input, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from floodlab.bands import S1_BANDS
from floodlab.cli import main
from floodlab.data.convert.pipeline import convert, is_complete, partial_path
from floodlab.data.convert.splits import grouped_splits
from floodlab.data.load.store import open_store
from floodlab.data.registry import dataset_names
from floodlab.data.sources.base import Chip, ChipRef, SourceReader
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError, DatasetNotFoundError, OutputPathError

DATASETS = dataset_names()


class MemoryReader(SourceReader):
    """In-memory chips: VV/VH with a NaN corner, a label; optional failures and a read log."""

    name = "memory"

    def __init__(self, n: int = 10, size: int = 16, groups: int = 5, **options):
        super().__init__("/nowhere", **options)
        self.n, self.size, self.groups = n, size, groups
        self.reads: list[str] = []
        self.fail: dict[str, Exception] = options.get("fail", {})
        self.sizes: dict[str, int] = options.get("sizes", {})

    def list_chips(self) -> list[ChipRef]:
        return [
            ChipRef(f"c{i:02d}", f"g{i % self.groups}", None, {"s1": (f"/raw/c{i:02d}.tif",)})
            for i in range(self.n)
        ]

    def read(self, ref: ChipRef) -> Chip:
        self.reads.append(ref.id)
        if ref.id in self.fail:
            raise self.fail[ref.id]
        size = self.sizes.get(ref.id, self.size)
        rng = np.random.default_rng(int(ref.id[1:]))
        s1 = rng.normal(-12, 4, (2, size, size)).astype(np.float32)
        s1[:, :2, :2] = np.nan
        label = (s1[0] < -14).astype(np.int8)
        label[-1] = -1
        return Chip(
            ref,
            {"s1": s1, "label": label},
            {"s1": S1_BANDS},
            "EPSG:32633",
            (10.0, 0.0, 5e5 + int(ref.id[1:]), 0.0, -10.0, 4e6),
        )


@pytest.fixture(scope="module")
def s1f11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic Sen1Floods11 v1.1 tree (8 hand + 4 weak chips of 40 px)."""
    return write_synthetic("sen1floods11", tmp_path_factory.mktemp("raw") / "s", 8, 40, seed=3)


def test_store_pixels_equal_rasterio_and_keep_georeferencing(
    tiny_s1f11_store: Path,
) -> None:
    store = open_store(tiny_s1f11_store)
    prov = store.attrs["provenance"]
    src = Path(prov["source"])
    assert store.attrs["complete"] and store.dataset == "sen1floods11"
    assert prov["skipped"] == [] and prov["options"]["derived"] == store.attrs["derived"]
    assert {"floodlab_version", "converter_version", "created"} <= set(prov)
    for i in [0, 5, len(store) - 1]:
        cid = str(store.ids[i])
        hand = store.label_sources[i] == "hand"
        folder = "HandLabeled" if hand else "WeaklyLabeled"
        s1_name = f"{cid}_S1Hand.tif" if hand else f"{cid}_S1Weak.tif"
        s1_file = src / "data/flood_events" / folder / ("S1Hand" if hand else "S1Weak") / s1_name
        with rasterio.open(s1_file) as f:
            want = f.read().astype(np.float32)
            assert store.crs(i) == f"EPSG:{f.crs.to_epsg()}"
            assert store.transform(i) == pytest.approx(tuple(f.transform)[:6])
        got = store.read_bands(i, ["VV", "VH"])
        np.testing.assert_array_equal(got, want)  # NaN nodata stays NaN at the same pixels
        if hand:
            with rasterio.open(
                src / "data/flood_events/HandLabeled/LabelHand" / f"{cid}_LabelHand.tif"
            ) as f:
                label = f.read(1)
            np.testing.assert_array_equal(store.read_raw(i, ["label"])["label"], label)
            with rasterio.open(
                src / "data/flood_events/HandLabeled/S2Hand" / f"{cid}_S2Hand.tif"
            ) as f:
                s2 = f.read().astype(np.float32)
            s2[s2 == 0] = np.nan
            np.testing.assert_array_equal(store.read_bands(i, list(store.bands("s2"))), s2)
            valid = store.read_raw(i, ["valid"])["valid"]
            assert np.array_equal(valid, (label >= 0) & np.all(np.isfinite(want), axis=0))


def test_statistics_equal_numpy_over_the_training_split(tiny_s1f11_store: Path) -> None:
    store = open_store(tiny_s1f11_store)
    train = store.split_indices("train")
    for band in ["VV", "B4", "NDVI", "RATIO"]:
        values = np.stack([store.read_bands(int(i), [band])[0] for i in train])
        values = values[np.isfinite(values)].astype(np.float64)
        st = store.stats(band)
        assert st["count"] == values.size
        assert st["mean"] == pytest.approx(values.mean(), rel=1e-6, abs=1e-9)
        assert st["std"] == pytest.approx(values.std(), rel=1e-5)
        width = (values.max() - values.min()) / 16384  # histogram bin of the percentiles
        for q in (1, 2, 50, 98, 99):
            assert abs(st[f"p{q}"] - np.percentile(values, q)) <= 2 * width, (band, q)
    balance = store.attrs["class_balance"]["label"]["train"]["counts"]
    labels = np.stack(
        [
            store.read_raw(int(i), ["label"])["label"]
            for i in train
            if store.label_sources[i] == "hand"
        ]
    )
    assert balance == {str(k): int((labels == k).sum()) for k in (-1, 0, 1)}


def test_grouped_splits_keep_groups_whole_and_are_seeded(tmp_path: Path) -> None:
    groups = [f"scene{i // 3}" for i in range(60)]  # 20 scenes of 3 chips
    a = grouped_splits(groups, seed=1)
    assert a == grouped_splits(groups, seed=1)
    assert a != grouped_splits(groups, seed=2)
    for g in set(groups):
        assert len({s for s, gg in zip(a, groups, strict=True) if gg == g}) == 1
    counts = {s: a.count(s) for s in ("train", "val", "test")}
    assert counts["train"] >= 42 and counts["val"] >= 3 and counts["test"] >= 3
    store = open_store(
        convert("memory", "/nowhere", tmp_path / "m.zarr", reader=MemoryReader(n=20, groups=10))
    )
    split_of: dict[str, set[str]] = {}
    for g, s in zip(store.groups, store.splits, strict=True):
        split_of.setdefault(str(g), set()).add(str(s))
    assert all(len(s) == 1 for s in split_of.values())
    assert {"train", "val", "test"} <= set(store.splits.tolist())


def test_crash_leaves_no_store_and_rerun_resumes_without_rereading(tmp_path: Path) -> None:
    out = tmp_path / "m.zarr"
    crash = MemoryReader(fail={"c07": RuntimeError("power cut")})
    opts = {"labels": ("hand", "weak")}  # tuples survive the resume check (stored as JSON)
    with pytest.raises(RuntimeError):
        convert("memory", "/nowhere", out, reader=crash, workers=1, reader_options=opts)
    assert not out.exists() and partial_path(out).exists() and not is_complete(partial_path(out))
    with pytest.raises(DatasetNotFoundError, match="partial conversion"):
        open_store(out)
    written = set(crash.reads) - {"c07"}
    again, calls = MemoryReader(), []
    convert(
        "memory",
        "/nowhere",
        out,
        reader=again,
        workers=1,
        reader_options=opts,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[0] == (len(written), 10) and calls[-1] == (10, 10)
    assert set(again.reads) == {f"c{i:02d}" for i in range(10)} - written
    assert is_complete(out) and not partial_path(out).exists()
    store = open_store(out)
    np.testing.assert_array_equal(
        store.read_bands(7, ["VV"])[0],
        MemoryReader().read(MemoryReader().list_chips()[7]).arrays["s1"][0],
    )
    third = MemoryReader()
    assert convert("memory", "/nowhere", out, reader=third) == out
    assert third.reads == []  # a complete store is left alone


def test_bad_chip_stops_cleanly_or_is_skipped_and_listed(tmp_path: Path, s1f11: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(s1f11, raw)
    victim = sorted((raw / "data/flood_events/HandLabeled/S1Hand").glob("*.tif"))[2]
    victim.write_bytes(b"II*\x00 this is not a GeoTIFF")
    out = tmp_path / "s.zarr"
    with pytest.raises(DataError, match=victim.name) as err:
        convert("sen1floods11", raw, out)
    assert "--skip-bad" in str(err.value)
    assert not out.exists() and not is_complete(partial_path(out))
    shutil.rmtree(partial_path(out))
    store = open_store(convert("sen1floods11", raw, out, skip_bad=True))
    skipped = store.attrs["provenance"]["skipped"]
    assert [s["id"] for s in skipped] == [victim.name.rsplit("_", 1)[0]]
    assert any(victim.name in f for f in skipped[0]["files"]) and skipped[0]["reason"]
    i = list(store.ids).index(skipped[0]["id"])
    assert store.splits[i] == "skipped" and i not in store.split_indices("train")


def test_missing_empty_and_mismatched_sources_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        convert("sen1floods11", tmp_path / "nowhere", tmp_path / "a.zarr")
    with pytest.raises(DataError, match="no memory chips"):
        convert("memory", "/nowhere", tmp_path / "b.zarr", reader=MemoryReader(n=0))
    odd = MemoryReader(sizes={"c04": 20})
    with pytest.raises(DataError, match=r"c04.*20x20.*16x16"):
        convert("memory", "/nowhere", tmp_path / "c.zarr", reader=odd, workers=1)
    (tmp_path / "d.zarr").mkdir()
    with pytest.raises(DataError, match="not a complete floodlab store"):
        convert("memory", "/nowhere", tmp_path / "d.zarr", reader=MemoryReader())


def test_cli_convert_inspect_and_bad_input(tmp_path: Path, s1f11: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "s.zarr"
    args = [
        "convert",
        "sen1floods11",
        str(s1f11),
        "--out",
        str(out),
        "--derive",
        "ndvi,RATIO",
        "--labels",
        "hand,weak",
        "--chunk",
        "16",
    ]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "12 chips" in res.output and "floodlab inspect" in res.output
    res = runner.invoke(main, args)
    assert res.exit_code == 0 and "nothing to do" in res.output
    res = runner.invoke(main, ["inspect", str(out)])
    assert res.exit_code == 0
    for text in ("sen1floods11", "train", "NDVI", "RATIO", "class balance", "skipped    0"):
        assert text in res.output
    res = runner.invoke(main, ["inspect", str(tmp_path / "none.zarr")])
    assert res.exit_code == 2 and "floodlab convert" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(
        main,
        [
            "convert",
            "sen1floods11",
            str(s1f11),
            "--out",
            str(tmp_path / "x.zarr"),
            "--derive",
            "NDBI",
        ],
    )
    assert res.exit_code == 2 and "NDBI" in res.output


def test_cli_convert_refuses_an_unknown_reader_option_and_lists_the_valid_ones(
    tmp_path: Path, s1f11: Path
) -> None:
    out = tmp_path / "o.zarr"
    runner = CliRunner()
    base = ["convert", "sen1floods11", str(s1f11), "--out", str(out)]
    res = runner.invoke(main, [*base, "--option", "label=hand"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert "unknown sen1floods11 reader option(s) ['label'] (did you mean 'labels'?)" in res.output
    for option in ("labels (default ('hand',))", "splits_dir (default None)", "require"):
        assert option in res.output
    res = runner.invoke(main, [*base, "--option", "labels=[hand, strong]"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "labels must be a subset of ('hand', 'weak')" in res.output
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.parametrize("out", ["/dev/null/x.zarr", "/proc/x.zarr", "<a file>/x.zarr"])
def test_cli_convert_refuses_an_output_that_cannot_be_written(
    tmp_path: Path, s1f11: Path, out: str
) -> None:
    if out.startswith("<a file>"):
        (tmp_path / "notes.txt").write_text("not a folder\n")
        out = str(tmp_path / "notes.txt" / "x.zarr")
    elif not Path(out).parent.exists():
        pytest.skip(f"{Path(out).parent} exists on Linux only")
    res = CliRunner().invoke(main, ["convert", "sen1floods11", str(s1f11), "--out", out])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert f"--out {out}: cannot be written because " in res.output
    assert not partial_path(out).exists()


def test_convert_checks_the_output_before_reading_any_chip(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    reader = MemoryReader()
    with pytest.raises(OutputPathError, match="a_file is a file"):
        convert("memory", "/nowhere", tmp_path / "a_file" / "m.zarr", reader=reader)
    assert reader.reads == []
    assert list(tmp_path.iterdir()) == [tmp_path / "a_file"]  # no probe file left behind


@pytest.mark.parametrize("dataset", DATASETS)
def test_inspect_on_a_raw_folder_says_so_and_gives_the_convert_command(
    dataset: str, tmp_path: Path
) -> None:
    root = write_synthetic(dataset, tmp_path / dataset, chips=3, size=32, seed=0)
    res = CliRunner().invoke(main, ["inspect", str(root)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "delete" not in res.output
    assert f"{root} is a raw {dataset} dataset folder" in res.output
    assert f"`floodlab convert {dataset} {root} --out {root}.zarr`" in res.output


def test_the_convert_command_inspect_suggests_works(tmp_path: Path) -> None:
    root = write_synthetic("sarkd", tmp_path / "raw", chips=3, size=32, seed=0)
    runner = CliRunner()
    message = runner.invoke(main, ["inspect", str(root)]).output
    command = message.split("`floodlab ")[1].split("`")[0].split()
    assert runner.invoke(main, command).exit_code == 0
    res = runner.invoke(main, ["inspect", f"{root}.zarr"])
    assert res.exit_code == 0 and "sarkd" in res.output


def test_inspect_says_what_a_path_that_is_not_a_store_is(tmp_path: Path) -> None:
    tif = tmp_path / "scene.tif"
    profile = dict(driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs="EPSG:32633",
                   transform=rasterio.Affine(10, 0, 5e5, 0, -10, 4e6))  # fmt: skip
    with rasterio.open(tif, "w", **profile) as f:
        f.write(np.zeros((1, 4, 4), np.uint8))
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "empty").mkdir()
    expected = {
        tif: f"{tif} is a GeoTIFF file, not a converted store",
        tmp_path / "notes.txt": f"{tmp_path / 'notes.txt'} is a file, not a converted store",
        tmp_path / "photos": f"{tmp_path / 'photos'} is a folder that is neither a converted "
        "store nor a raw layout floodlab knows",
        tmp_path / "empty": f"{tmp_path / 'empty'} is an empty folder",
        tmp_path / "gone.zarr": f"no converted Zarr store at {tmp_path / 'gone.zarr'}",
    }
    for path, text in expected.items():
        res = CliRunner().invoke(main, ["inspect", str(path)])
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output and "delete" not in res.output
        assert text in res.output


def test_convert_never_writes_into_its_source(tmp_path):
    from floodlab.data.synth import write_synthetic

    raw = write_synthetic("sen1floods11", tmp_path / "raw", chips=6, size=32, seed=0)
    for out in (raw, raw / "inside.zarr"):
        result = CliRunner().invoke(main, ["convert", "sen1floods11", str(raw), "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "the input" in result.output and "Traceback" not in result.output
    assert not (raw / "inside.zarr").exists() and not (raw / "inside.zarr.partial").exists()
