"""The model's threshold chosen on another split by mean per-image IoU."""

from __future__ import annotations

import numpy as np
import pytest

from floodlab.predict.threshold import GRID, ThresholdSearch, parse_threshold


def test_the_best_threshold_of_the_mean_per_image_iou_is_chosen() -> None:
    # Two 1x4 images. Image 0 is water where its probability is >= 0.3; image 1 where it
    # is >= 0.6. Thresholds in (0.2, 0.3] and in (0.5, 0.6] each get one image right.
    prob = np.array([[[0.2, 0.3, 0.4, 0.1]], [[0.5, 0.6, 0.7, 0.9]]], np.float32)
    truth = np.array([[[0, 1, 1, 0]], [[0, 1, 1, 1]]], bool)
    valid = np.ones_like(truth)
    search = ThresholdSearch()
    search.add(prob, truth, valid)
    scores = dict(zip(GRID, search.scores(), strict=True))
    assert scores[0.3] == pytest.approx((1.0 + 3 / 4) / 2)  # image 1 also takes 0.5
    assert scores[0.6] == pytest.approx((0.0 + 1.0) / 2)
    assert scores[0.5] == pytest.approx((0.0 + 3 / 4) / 2)
    assert search.best() == 0.3
    record = search.record("val")
    assert record["chosen"] == 0.3 and record["images"] == 2 and len(record["scores"]) == 19


def test_ties_go_to_the_threshold_nearest_one_half_and_undefined_images_are_left_out() -> None:
    search = ThresholdSearch()
    # Perfectly separated: every threshold from 0.25 to 0.75 is right.
    search.add(np.array([[[0.2, 0.8]]], np.float32), np.array([[[0, 1]]], bool), np.ones((1, 1, 2)))
    # Dry and predicted dry at every threshold above 0.1: IoU undefined there, not 0.
    search.add(np.array([[[0.1, 0.1]]], np.float32), np.zeros((1, 1, 2), bool), np.ones((1, 1, 2)))
    assert search.best() == 0.5
    assert dict(zip(GRID, search.scores(), strict=True))[0.5] == pytest.approx(1.0)


def test_threshold_values() -> None:
    assert parse_threshold("0.35") == 0.35 and parse_threshold(0.5) == 0.5
    assert parse_threshold("val") == "val"
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        parse_threshold("1.5")
