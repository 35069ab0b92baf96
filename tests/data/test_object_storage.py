"""Stores on object storage: convert to an S3 URL (a real S3-protocol server on 127.0.0.1),
read it back chip for chip, train on it with Ray workers, evaluate from it; interrupted
uploads resume, foreign data and unreachable services are refused cleanly."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
import s3fs
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.convert import remote
from floodlab.data.convert.pipeline import convert
from floodlab.data.convert.remote import UPLOAD_MARKER, convert_to
from floodlab.data.load.store import open_store
from floodlab.data.synth import write_synthetic
from floodlab.errors import DataError, DatasetNotFoundError
from floodlab.storage import staging_dir

S3_BUCKET = "floodlab-test"
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


@pytest.fixture
def url(s3_server: str) -> str:
    """A fresh store URL in the test bucket."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}/s1f11.zarr"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic Sen1Floods11 raw data: 8 hand + 4 weak chips of 32 px."""
    return write_synthetic("sen1floods11", tmp_path_factory.mktemp("raw") / "s", 8, 32, seed=5)


def _objects(url: str) -> list[str]:
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    return [p.split(url.removeprefix("s3://") + "/", 1)[-1] for p in fs.find(url)]


def test_cli_converts_to_s3_and_the_store_reads_like_a_local_one(
    url: str, raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["convert", "sen1floods11", str(raw), "--derive", "ndwi", "--labels", "hand,weak"]
    res = CliRunner().invoke(main, [*args, "--out", url])
    assert res.exit_code == 0, res.output
    assert f"wrote {url}: 12 chips" in res.output
    assert os.listdir(work) == []  # nothing local: no folder named "s3:"
    assert not staging_dir(url).exists()  # the staging copy is gone once uploaded
    objects = _objects(url)
    assert "zarr.json" in objects and UPLOAD_MARKER not in objects

    local = convert("sen1floods11", raw, tmp_path / "local.zarr", derived=["NDWI"],
                    reader_options={"labels": ("hand", "weak")})  # fmt: skip
    a, b = open_store(url), open_store(local)
    assert a.direct_reads is False and list(a.ids) == list(b.ids)
    assert list(a.splits) == list(b.splits)
    for i in (0, 5, 11):
        np.testing.assert_array_equal(
            a.read_bands(i, ["VV", "VH", "NDWI"]), b.read_bands(i, ["VV", "VH", "NDWI"])
        )
        np.testing.assert_array_equal(
            a.read_raw(i, ["label", "valid"])["label"], b.read_raw(i, ["label"])["label"]
        )

    res = CliRunner().invoke(main, [*args, "--out", url])
    assert res.exit_code == 0 and "nothing to do" in res.output
    res = CliRunner().invoke(main, ["inspect", url])
    assert res.exit_code == 0 and "sen1floods11" in res.output and "NDWI" in res.output


def test_an_interrupted_upload_is_no_store_and_running_again_finishes_it(
    url: str, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_upload = remote.upload_tree

    def fail_midway(local: Path, to: str, **kwargs: object) -> int:
        fs = s3fs.S3FileSystem()
        some = sorted(p for p in local.rglob("*") if p.is_file() and p.name != "zarr.json")[:5]
        for p in some:
            fs.put_file(str(p), f"{to}/{p.relative_to(local).as_posix()}")
        raise ConnectionError("the network went away")

    monkeypatch.setattr(remote, "upload_tree", fail_midway)
    with pytest.raises(ConnectionError):
        convert_to("sen1floods11", raw, url)
    assert UPLOAD_MARKER in _objects(url) and "zarr.json" not in _objects(url)
    with pytest.raises(DatasetNotFoundError, match="floodlab convert"):
        open_store(url)  # a half-uploaded store never opens

    monkeypatch.setattr(remote, "upload_tree", real_upload)
    assert convert_to("sen1floods11", raw, url) == url
    assert len(open_store(url)) == 8 and UPLOAD_MARKER not in _objects(url)  # hand chips


def test_foreign_data_at_the_url_is_refused_with_exit_2(url: str, raw: Path) -> None:
    fs = s3fs.S3FileSystem()
    fs.pipe_file(f"{url}/notes.txt", b"somebody else's")
    with pytest.raises(DataError, match="already holds other data"):
        convert_to("sen1floods11", raw, url)
    res = CliRunner().invoke(main, ["convert", "sen1floods11", str(raw), "--out", url])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert _objects(url) == ["notes.txt"]


def test_an_unreachable_service_is_a_clear_error(
    s3_server: str, raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: closed
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    try:
        url = f"s3://{S3_BUCKET}/{uuid.uuid4().hex[:12]}/s.zarr"
        res = CliRunner().invoke(main, ["convert", "sen1floods11", str(raw), "--out", url])
        assert res.exit_code == 2 and "Traceback" not in res.output
        assert url in res.output and "AWS_ENDPOINT_URL" in res.output
        assert "testing" not in res.output  # no credential in the message
        assert not staging_dir(url).exists()  # refused before any chip was read
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


def test_a_missing_bucket_is_named(s3_server: str, raw: Path) -> None:
    url = f"s3://no-such-bucket-here/{uuid.uuid4().hex[:12]}/s.zarr"
    res = CliRunner().invoke(main, ["convert", "sen1floods11", str(raw), "--out", url])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "no-such-bucket-here" in res.output and "does not exist" in res.output
    assert not staging_dir(url).exists()  # refused before any chip was read


@pytest.mark.ray
@pytest.mark.slow
def test_train_and_evaluate_from_a_store_on_s3(ray_session, url: str, tmp_path: Path) -> None:
    """Two Ray Train workers read their shards from S3; evaluate reads the test split there."""
    from floodlab.predict.evaluate import evaluate_run
    from floodlab.specs import load_spec
    from floodlab.train.driver import train

    spec = load_spec(
        QUICKSTART,
        [
            f"data.store={url}",
            "data.synthetic={chips: 12, size: 64, seed: 1}",
            f"logging.root={tmp_path / 'runs'}",
            "data.patch_size=32",
            "model.widths=[8,16,32]",
            "model.fusion.window=2",
            "trainer.batch_size=4",
            "trainer.epochs=1",
            "trainer.num_workers=2",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=2",
            "logging.image_every=0",
        ],
    )
    result = train(spec)
    assert result.metrics["epoch"] == 1 and np.isfinite(result.metrics["val/iou"])
    run = result.run
    config = json.loads((run.path / "summary.json").read_text())
    assert config["status"] == "completed"
    ranks = [json.loads(p.read_text()) for p in sorted((run.path / "workers").glob("rank*.json"))]
    assert len(ranks) == 2
    assert not staging_dir(url).exists()  # the synthetic store was built, uploaded, removed
    assert not staging_dir(url).with_name(staging_dir(url).name + ".raw").exists()
    report = evaluate_run(str(run.path), split="test")
    assert report["store"] == url and report["images"] > 0
