"""`floodlab convert --address`: chips read and encoded on a Ray cluster (Ray's Dask
scheduler), written into the same atomic, resumable store; to object storage too.
(tests/cluster/test_multinode.py converts on a cluster of several nodes.)"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.data.convert.pipeline import convert, is_complete, partial_path
from floodlab.data.load.store import open_store
from floodlab.data.synth import write_synthetic

pytestmark = pytest.mark.ray
BANDS = ["VV", "VH", "NDWI"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic Sen1Floods11 raw data: 8 hand + 4 weak chips of 32 px."""
    return write_synthetic("sen1floods11", tmp_path_factory.mktemp("raw") / "s", 8, 32, seed=5)


def test_convert_on_ray_to_s3_writes_the_store_a_local_conversion_writes(
    ray_session: object, s3_server: str, raw: Path, tmp_path: Path
) -> None:
    url = f"s3://floodlab-test/{uuid.uuid4().hex[:12]}/s1f11.zarr"
    args = ["convert", "sen1floods11", str(raw), "--derive", "ndwi", "--labels", "hand,weak"]
    res = CliRunner().invoke(main, [*args, "--out", url, "--address", "auto"])
    assert res.exit_code == 0, res.output
    assert f"wrote {url}: 12 chips" in res.output
    local = convert("sen1floods11", raw, tmp_path / "local.zarr", derived=["NDWI"],
                    reader_options={"labels": ("hand", "weak")})  # fmt: skip
    a, b = open_store(url), open_store(local)
    assert list(a.ids) == list(b.ids) and list(a.splits) == list(b.splits)
    for i in range(len(b.ids)):
        np.testing.assert_array_equal(a.read_bands(i, BANDS), b.read_bands(i, BANDS))
        np.testing.assert_array_equal(
            a.read_raw(i, ["label", "valid"])["valid"], b.read_raw(i, ["valid"])["valid"]
        )
    assert a.attrs["stats"] == b.attrs["stats"]


def test_a_bad_chip_on_ray_stops_cleanly_naming_it_or_is_skipped(
    ray_session: object, raw: Path, tmp_path: Path
) -> None:
    src = tmp_path / "raw"
    shutil.copytree(raw, src)
    victim = sorted((src / "data/flood_events/HandLabeled/S1Hand").glob("*.tif"))[2]
    victim.write_bytes(b"II*\x00 this is not a GeoTIFF")
    out = tmp_path / "s.zarr"
    args = ["convert", "sen1floods11", str(src), "--out", str(out), "--address", "auto"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert victim.name in res.output and "--skip-bad" in res.output
    assert not out.exists() and not is_complete(partial_path(out))
    # The chips written before the failure are kept; --skip-bad resumes from them.
    res = CliRunner().invoke(main, [*args, "--skip-bad"])
    assert res.exit_code == 0, res.output
    skipped = open_store(out).attrs["provenance"]["skipped"]
    assert [s["id"] for s in skipped] == [victim.name.rsplit("_", 1)[0]]
