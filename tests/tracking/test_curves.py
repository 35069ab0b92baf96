"""curves.png: what it shows per panel, and that odd metric records still draw a picture."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from floodlab.tracking.curves import (
    LOSS,
    LOSS_TERMS,
    METRICS,
    OTHER_METRICS,
    CurvesPainter,
    curve_series,
    plot_curves,
)


def assert_png(path: Path) -> None:
    """A readable PNG of nonzero size that is not one flat colour."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        width, height = img.size
        assert width > 100 and height > 100
        pixels = np.asarray(img.convert("L"))
    assert pixels.min() < pixels.max()


RECORDS = [
    {
        "epoch": e,
        "global_step": 10 * e,
        "time": 3.0,
        "timestamp": 1.7e9 + e,
        "lr": 0.01,
        "train/loss": 1.0 / e,
        "train/loss/dice": 0.5 / e,
        "train/loss/bce": 0.4 / e,
        "val/loss": 1.2 / e,
        "val/loss/dice": 0.6 / e,
        "val/iou": 0.2 * e,
        "val/with_optical/iou": 0.25 * e,
        "val/psnr": 18.0 + e,
    }
    for e in (1, 2, 3)
]


def test_curves_png_shows_losses_terms_and_metrics_by_scale(tmp_path: Path) -> None:
    path = tmp_path / "curves.png"
    panels = plot_curves(RECORDS, path, title="run-1")
    assert_png(path)
    assert list(panels) == [LOSS, LOSS_TERMS, METRICS, OTHER_METRICS]
    assert set(panels[LOSS]) == {"train/loss", "val/loss"}
    assert set(panels[LOSS_TERMS]) == {"train/loss/dice", "train/loss/bce", "val/loss/dice"}
    assert set(panels[METRICS]) == {"val/iou", "val/with_optical/iou"}
    assert set(panels[OTHER_METRICS]) == {"val/psnr"}
    assert panels[LOSS]["train/loss"] == ([1, 2, 3], [1.0, 0.5, 1.0 / 3])
    # Bookkeeping keys are not curves.
    shown = {k for series in panels.values() for k in series}
    assert not shown & {"epoch", "global_step", "time", "timestamp", "lr"}


def test_without_validation_metrics_only_train_curves_are_drawn(tmp_path: Path) -> None:
    records = [{"epoch": e, "train/loss": 1.0 / e, "train/loss/dice": 0.5 / e} for e in (1, 2)]
    panels = plot_curves(records, tmp_path / "curves.png")
    assert list(panels) == [LOSS, LOSS_TERMS]
    assert_png(tmp_path / "curves.png")


def test_a_single_epoch_draws(tmp_path: Path) -> None:
    panels = plot_curves(RECORDS[:1], tmp_path / "curves.png")
    assert panels[METRICS]["val/iou"] == ([1], [pytest.approx(0.2)])
    assert_png(tmp_path / "curves.png")


def test_nan_and_inf_values_are_gaps_not_crashes(tmp_path: Path) -> None:
    records = [
        {"epoch": 1, "train/loss": 1.0, "val/loss": math.nan, "val/iou": 0.1},
        {"epoch": 2, "train/loss": math.inf, "val/loss": 0.8, "val/iou": math.nan},
        {"epoch": 3, "train/loss": 0.5, "val/loss": 0.6, "val/iou": 0.3, "val/sam": math.nan},
    ]
    panels = plot_curves(records, tmp_path / "curves.png")
    assert panels[LOSS]["train/loss"] == ([1, 3], [1.0, 0.5])
    assert panels[LOSS]["val/loss"] == ([2, 3], [0.8, 0.6])
    assert panels[METRICS]["val/iou"] == ([1, 3], [0.1, 0.3])
    assert "val/sam" not in {k for s in panels.values() for k in s}  # never finite: no curve
    assert_png(tmp_path / "curves.png")


def test_nothing_to_draw_writes_no_file(tmp_path: Path) -> None:
    assert plot_curves([], tmp_path / "a.png") == {}
    assert plot_curves([{"epoch": 1, "val/loss": math.nan}], tmp_path / "b.png") == {}
    assert not list(tmp_path.iterdir())


def test_redrawing_replaces_the_picture(tmp_path: Path) -> None:
    path = tmp_path / "curves.png"
    plot_curves(RECORDS[:1], path)
    first = path.read_bytes()
    plot_curves(RECORDS, path)
    assert path.read_bytes() != first
    assert_png(path)
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary left


def test_series_skip_records_without_the_key() -> None:
    records = [{"epoch": 1, "train/loss": 1.0}, {"epoch": 2, "train/loss": 0.5, "val/iou": 0.4}]
    assert curve_series(records)[METRICS] == {"val/iou": ([2], [0.4])}


def test_the_painter_draws_off_the_caller_and_skips_to_the_newest_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training hands records over and goes on while a drawing is in progress; epochs that
    arrive meanwhile collapse into one drawing of the newest records."""
    from floodlab.tracking import curves

    started, release = threading.Event(), threading.Event()
    drawn: list[int] = []

    def slow_plot(records: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
        drawn.append(len(records))
        started.set()
        assert release.wait(timeout=60)
        plot_curves(records, path, title=title)

    monkeypatch.setattr(curves, "plot_curves", slow_plot)
    painter = CurvesPainter(tmp_path / "curves.png", title="run-1")
    painter.paint(RECORDS[:1])
    assert started.wait(timeout=60)  # the first drawing is in progress ...
    painter.paint(RECORDS[:2])  # ... and these calls return without waiting for it
    painter.paint(RECORDS)
    release.set()
    painter.close()
    assert drawn == [1, 3]
    monkeypatch.undo()
    expected = tmp_path / "expected.png"
    plot_curves(RECORDS, expected, title="run-1")
    assert (tmp_path / "curves.png").read_bytes() == expected.read_bytes()


def test_a_failing_drawing_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the run's folder should be")
    painter = CurvesPainter(blocker / "curves.png")
    painter.paint(RECORDS)
    painter.close()
    painter.paint(RECORDS)  # after a failure: no more attempts
    painter.close()
    assert painter.failed
    assert [r.message for r in caplog.records].count(
        f"could not draw {blocker / 'curves.png'}; training goes on"
    ) == 1
