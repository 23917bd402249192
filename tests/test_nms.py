"""The torch-only NMS against a brute-force greedy reference written here."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from faceunlock.vision.nms import batched_nms, nms


def reference(boxes, scores, groups, threshold, overlap="iou"):
    """Greedy NMS by the definition: take the best remaining box, drop those overlapping it too much."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept = []
    for i in order:
        suppressed = False
        for k in kept:
            if groups[i] != groups[k]:
                continue
            a, b = boxes[i], boxes[k]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            inter = iw * ih
            area_a = (a[2] - a[0]) * (a[3] - a[1])
            area_b = (b[2] - b[0]) * (b[3] - b[1])
            denom = area_a + area_b - inter if overlap == "iou" else min(area_a, area_b)
            if denom > 0 and inter / denom > threshold:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


box = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 15), st.integers(0, 15)).map(
    lambda t: (float(t[0]), float(t[1]), float(t[0] + t[2]), float(t[1] + t[3]))
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.tuples(box, st.floats(0, 1, width=32), st.integers(0, 2)), min_size=0, max_size=40),
    threshold=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
    overlap=st.sampled_from(["iou", "min"]),
)
def test_matches_brute_force(data, threshold, overlap):
    # distinct scores keep the greedy order well defined
    boxes = [d[0] for d in data]
    scores = [d[1] + i * 1e-4 for i, d in enumerate(data)]
    groups = [d[2] for d in data]
    tb = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    ts = torch.tensor(scores, dtype=torch.float64)
    assert nms(tb, ts, threshold, overlap=overlap).tolist() == reference(
        boxes, scores, [0] * len(data), threshold, overlap
    )
    got = batched_nms(tb, ts, torch.tensor(groups, dtype=torch.int64), threshold, overlap=overlap)
    assert got.tolist() == reference(boxes, scores, groups, threshold, overlap)


def test_identical_boxes_keep_the_best_and_empty_input():
    boxes = torch.tensor([[0, 0, 10, 10]] * 3, dtype=torch.float32)
    scores = torch.tensor([0.2, 0.9, 0.5])
    assert nms(boxes, scores, 0.5).tolist() == [1]
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).tolist() == []


def test_large_random_set_matches_reference():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200, (400, 2))
    b = np.concatenate([xy, xy + rng.uniform(1, 40, (400, 2))], 1)
    s = rng.random(400)
    assert nms(torch.tensor(b), torch.tensor(s), 0.5).tolist() == reference(
        b.tolist(), s.tolist(), [0] * 400, 0.5
    )
