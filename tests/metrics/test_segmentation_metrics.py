"""Segmentation metrics vs numpy on random data with invalid pixels; rank-merge equivalence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from floodlab.metrics import SegmentationMetrics, keys, per_image_segmentation


def _random_batch(seed: int, b: int = 3, size: int = 10) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    prob = torch.rand(b, 1, size, size, generator=g)
    target = (torch.rand(b, size, size, generator=g) > 0.6).float()
    valid = torch.rand(b, size, size, generator=g) > 0.25
    return prob, target, valid


def _numpy_scores(prob: np.ndarray, target: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    pred = prob[:, 0] > 0.5
    truth = target > 0.5
    p, t = pred[valid], truth[valid]
    tp = np.sum(p & t)
    fp = np.sum(p & ~t)
    fn = np.sum(~p & t)
    tn = np.sum(~p & ~t)
    iou1, iou0 = tp / (tp + fp + fn), tn / (tn + fp + fn)
    return {
        keys.IOU: iou1,
        keys.MIOU: (iou1 + iou0) / 2,
        keys.F1: 2 * tp / (2 * tp + fp + fn),
        keys.PRECISION: tp / (tp + fp),
        keys.RECALL: tp / (tp + fn),
        keys.ACCURACY: (tp + tn) / len(p),
        "cm": np.array([[tn, fp], [fn, tp]]),
    }


def test_accumulated_metrics_match_numpy_over_batches() -> None:
    batches = [_random_batch(s) for s in range(3)]
    metric = SegmentationMetrics()
    for prob, target, valid in batches:
        # Invalid pixels carry garbage labels that must not count.
        metric.update(prob, torch.where(valid, target, torch.full_like(target, 7.0)), valid)
    got = metric.compute()
    cat = [np.concatenate([b[i].numpy() for b in batches]) for i in range(3)]
    expected = _numpy_scores(*cat)
    for key in keys.SEGMENTATION_KEYS:
        assert got[key].item() == pytest.approx(expected[key], rel=1e-9), key
    np.testing.assert_array_equal(metric.confusion_matrix().numpy(), expected["cm"])


def test_per_image_metrics_match_numpy() -> None:
    prob, target, valid = _random_batch(5)
    got = per_image_segmentation(prob, target, valid)
    for i in range(prob.shape[0]):
        expected = _numpy_scores(
            prob[i : i + 1].numpy(), target[i : i + 1].numpy(), valid[i : i + 1].numpy()
        )
        for key in keys.SEGMENTATION_KEYS:
            assert got[key][i].item() == pytest.approx(expected[key], rel=1e-9), key
        assert got[keys.VALID_PIXELS][i] == valid[i].sum()


def test_undefined_ratios_are_nan_not_zero() -> None:
    # No water in the label nor the prediction: IoU is undefined, accuracy is 1.
    got = per_image_segmentation(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4))
    assert math.isnan(got[keys.IOU].item())
    assert got[keys.ACCURACY].item() == 1.0
    assert got[keys.MIOU].item() == 1.0  # background IoU alone


def test_two_rank_states_merge_to_the_single_process_result() -> None:
    batches = [_random_batch(s) for s in range(4)]
    whole, rank0, rank1 = SegmentationMetrics(), SegmentationMetrics(), SegmentationMetrics()
    for i, batch in enumerate(batches):
        whole.update(*batch)
        (rank0 if i % 2 == 0 else rank1).update(*batch)
    rank0.merge_state(rank1)  # the same sum reduction DDP's sync applies
    merged, expected = rank0.compute(), whole.compute()
    for key in keys.SEGMENTATION_KEYS:
        assert merged[key].item() == pytest.approx(expected[key].item(), rel=1e-12)


def test_confusion_counts_and_count_scores_agree_with_the_accumulated_metric():
    from floodlab.metrics.segmentation import confusion_counts, count_scores

    prob, target, valid = _random_batch(7)
    metric = SegmentationMetrics()
    metric.update(prob, target, valid)
    counts = confusion_counts(prob[:, 0] > 0.5, target > 0.5, valid)
    tn, fp, fn, tp = metric.confusion_matrix().flatten().tolist()
    assert counts.tolist() == [tp, fp, fn, tn]
    scores = count_scores(counts)
    for k, v in metric.compute().items():
        assert scores[k] == pytest.approx(float(v)), k
    per_image = confusion_counts(prob[:, 0] > 0.5, target > 0.5, valid, dims=(1, 2))
    assert per_image.shape == (3, 4) and per_image.sum(0).tolist() == counts.tolist()


def test_keys_build_every_record_key():
    assert keys.train(keys.loss_component("dice")) == "train/loss/dice"
    assert keys.train(keys.loss_component(keys.LOSS)) == "train/loss"
    assert keys.train_step(keys.lr()) == "train_step/lr"
    assert keys.lr("d") == "lr/d"
    assert keys.train(keys.grad_norm("main")) == "train/grad_norm"
    assert keys.train(keys.grad_norm("d")) == "train/grad_norm/d"
    assert keys.val(keys.with_optical(keys.IOU)) == "val/with_optical/iou"
