"""nms / batched_nms against a brute-force greedy reference written here."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceunlock.vision.nms import batched_nms, nms


def reference(boxes, scores, threshold, idxs=None, overlap="iou", offset=0.0):
    """Greedy NMS the slow, obvious way, in the boxes' own dtype (as torchvision computes)."""
    b = boxes
    s = scores.tolist()
    zero, off = b.dtype.type(0), b.dtype.type(offset)
    # Decreasing score; equal scores keep their input order.
    order = sorted(range(len(s)), key=lambda i: -s[i])
    area = [(b[i, 2] - b[i, 0] + off) * (b[i, 3] - b[i, 1] + off) for i in range(len(s))]
    kept, dead = [], set()
    with np.errstate(divide="ignore", invalid="ignore"):
        for n, i in enumerate(order):
            if i in dead:
                continue
            kept.append(i)
            for j in order[n + 1 :]:
                if idxs is not None and idxs[j] != idxs[i]:
                    continue
                w = max(zero, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]) + off)
                h = max(zero, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]) + off)
                inter = w * h
                if overlap == "min":
                    ratio = inter / min(area[i], area[j])
                else:
                    ratio = inter / (area[i] + area[j] - inter)
                if float(ratio) > threshold:
                    dead.add(j)
    return kept


@st.composite
def box_sets(draw):
    n = draw(st.integers(0, 25))
    grid = draw(st.booleans())  # small integer grid: identical boxes, ties, touching edges
    if grid:
        coord = st.integers(0, 8).map(float)
        size = st.integers(0, 5).map(float)  # 0: degenerate boxes with no area
        score = st.integers(0, 3).map(float)  # many equal scores
    else:
        coord = st.floats(0, 100, width=32)
        size = st.one_of(st.just(0.0), st.floats(0, 50, width=32))
        score = st.floats(0, 1, width=32)
    xy = draw(st.lists(st.tuples(coord, coord), min_size=n, max_size=n))
    wh = draw(st.lists(st.tuples(size, size), min_size=n, max_size=n))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    boxes = np.array(
        [[x, y, x + w, y + h] for (x, y), (w, h) in zip(xy, wh, strict=True)], dtype=dtype
    ).reshape(n, 4)
    scores = np.array(draw(st.lists(score, min_size=n, max_size=n)), dtype=dtype)
    idxs = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int64)
    return boxes, scores, idxs


thresholds = st.sampled_from([0.0, 0.1, 1 / 3, 0.5, 0.7, 0.9, 1.0])


@settings(max_examples=300, deadline=None)
@given(box_sets(), thresholds)
def test_nms_matches_reference(case, threshold):
    boxes, scores, _ = case
    kept = nms(boxes, scores, threshold)
    assert kept.dtype == np.int64
    assert kept.tolist() == reference(boxes, scores, threshold)


@settings(max_examples=300, deadline=None)
@given(box_sets(), thresholds)
def test_batched_nms_matches_reference(case, threshold):
    boxes, scores, idxs = case
    kept = batched_nms(boxes, scores, idxs, threshold)
    assert kept.tolist() == reference(boxes, scores, threshold, idxs=idxs.tolist())
    assert np.all(scores[kept][:-1] >= scores[kept][1:])


@settings(max_examples=200, deadline=None)
@given(box_sets(), thresholds)
def test_min_overlap_with_pixel_offset_matches_reference(case, threshold):
    boxes, scores, idxs = case
    kept = batched_nms(boxes, scores, idxs, threshold, overlap="min", offset=1.0)
    expected = reference(boxes, scores, threshold, idxs=idxs.tolist(), overlap="min", offset=1.0)
    assert kept.tolist() == expected


def test_batched_nms_groups_are_independent():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1]
    assert batched_nms(boxes, scores, np.array([0, 1, 1]), 0.5).tolist() == [1, 0]


def test_min_overlap_suppresses_a_box_inside_another():
    boxes = np.array([[0, 0, 100, 100], [10, 10, 30, 30]], dtype=np.float32)
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 0.7).tolist() == [0, 1]  # IoU is only 0.04
    assert nms(boxes, scores, 0.7, overlap="min").tolist() == [0]


def test_empty_and_bad_shapes():
    empty = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == np.int64
    with pytest.raises(ValueError):
        nms(np.zeros((3, 5)), np.zeros(3), 0.5)
    with pytest.raises(ValueError):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)
    with pytest.raises(ValueError):
        batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(2, np.int64), 0.5)
