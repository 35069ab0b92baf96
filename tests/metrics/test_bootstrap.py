"""Scores of a set of images: mean per-image IoU, pooled scores and bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from floodlab.metrics import keys
from floodlab.metrics.bootstrap import (
    IMAGES_IN_MEAN,
    SUMMARY_KEYS,
    bootstrap_intervals,
    paired_differences,
    resample_weights,
    summarise,
)
from floodlab.metrics.segmentation import count_scores


def random_counts(n: int, seed: int) -> np.ndarray:
    """(n, 4) plausible per-image counts (tp, fp, fn, tn) of 1000-pixel images."""
    rng = np.random.default_rng(seed)
    tp = rng.integers(50, 400, n)
    fp = rng.integers(0, 100, n)
    fn = rng.integers(0, 100, n)
    return np.stack([tp, fp, fn, 1000 - tp - fp - fn], axis=1)


def test_pooled_scores_come_from_summed_counts_and_the_mean_from_each_image() -> None:
    counts = np.array([[10, 0, 0, 90], [0, 10, 10, 80], [0, 0, 0, 100]])
    s = summarise(counts)
    pooled = count_scores(counts.sum(axis=0))
    assert s[keys.IOU] == pytest.approx(pooled[keys.IOU]) == pytest.approx(10 / 30)
    assert s[keys.MIOU] == pytest.approx((10 / 30 + 270 / 290) / 2)
    # Image 3 has no flood in label nor prediction: left out of the mean, not scored 1 or 0.
    assert s[keys.MEAN_IMAGE_IOU] == pytest.approx((1.0 + 0.0) / 2)
    assert s[IMAGES_IN_MEAN] == 2


def test_intervals_hold_the_point_estimate_and_repeat_with_the_seed() -> None:
    counts = {"model": random_counts(40, 1), "otsu": random_counts(40, 2)}
    first = bootstrap_intervals(counts, resamples=500, seed=3)
    assert first == bootstrap_intervals(counts, resamples=500, seed=3)
    assert first != bootstrap_intervals(counts, resamples=500, seed=4)
    for name, c in counts.items():
        point = summarise(c)
        for key in SUMMARY_KEYS:
            low, high = first[name][key]
            assert low <= point[key] <= high, (name, key, low, point[key], high)
            assert high - low > 0  # 40 different images do vary


def test_resamples_draw_every_image_count_with_replacement() -> None:
    w = resample_weights(7, 100, seed=0)
    assert w.shape == (100, 7) and (w.sum(axis=1) == 7).all()
    assert (w > 1).any()  # with replacement: some image drawn twice


def test_one_image_has_a_degenerate_interval_and_no_flood_is_undefined() -> None:
    one = bootstrap_intervals({"m": random_counts(1, 0)}, resamples=50, seed=0)["m"]
    point = summarise(random_counts(1, 0))
    assert one[keys.IOU] == [pytest.approx(point[keys.IOU])] * 2
    dry = bootstrap_intervals({"m": np.array([[0, 0, 0, 100]] * 3)}, resamples=50, seed=0)
    assert all(math.isnan(v) for v in dry["m"][keys.MEAN_IMAGE_IOU])
    assert dry["m"][keys.ACCURACY] == [1.0, 1.0]


def test_predictors_must_score_the_same_images() -> None:
    with pytest.raises(ValueError, match="same images"):
        bootstrap_intervals({"a": random_counts(3, 0), "b": random_counts(4, 0)})


def test_a_consistent_small_gain_is_resolved_by_the_paired_interval() -> None:
    # The model finds 8 more flood pixels than the baseline on every image: a small gain
    # next to the spread between images, so the two separate intervals overlap, while the
    # interval of the paired difference lies wholly above 0.
    base = random_counts(40, 5)
    model = base + np.array([8, 0, -8, 0])
    counts = {"model": model, "otsu": base}
    separate = bootstrap_intervals(counts, resamples=500, seed=0)
    assert separate["model"][keys.MEAN_IMAGE_IOU][0] < separate["otsu"][keys.MEAN_IMAGE_IOU][1]
    diff = paired_differences(counts, [("model", "otsu")], resamples=500, seed=0)["model - otsu"]
    point = summarise(model)[keys.MEAN_IMAGE_IOU] - summarise(base)[keys.MEAN_IMAGE_IOU]
    assert diff[keys.MEAN_IMAGE_IOU]["value"] == pytest.approx(point)
    low, high = diff[keys.MEAN_IMAGE_IOU]["ci95"]
    assert 0.0 < low <= point <= high
    assert diff["images_better"] == 1.0
    # Swapped, the difference and its interval change sign; an absent predictor is skipped.
    back = paired_differences(counts, [("otsu", "model"), ("otsu", "x")], resamples=500, seed=0)
    assert list(back) == ["otsu - model"]
    assert back["otsu - model"][keys.MEAN_IMAGE_IOU]["ci95"] == pytest.approx([-high, -low])
    assert back["otsu - model"]["images_better"] == 0.0
