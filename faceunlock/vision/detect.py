"""Face detection with the MTCNN cascade: boxes, five landmarks and scores.

The cascade is the project's own code around facenet-pytorch's pretrained weights (see
``mtcnn_nets``). It follows facenet-pytorch's MTCNN step for step, so the two agree to within
float rounding:

1. P-Net slides over an image pyramid (scale factor 0.709, from 12 / min_face_size down to a
   12-pixel short side); candidates scoring >= thresholds[0] go through NMS at 0.5 within each
   scale, NMS at 0.7 across scales, box regression, and are made square.
2. R-Net scores 24x24 crops of them (> thresholds[1]): NMS 0.7, regression, square again.
3. O-Net scores 48x48 crops (> thresholds[2]) and places the landmarks; a last regression, then
   'Min' NMS at 0.7.

Crops are the part of the box inside the image, resized with area averaging exactly as
``torch.nn.functional.interpolate(mode="area")`` does; here every crop of a stage comes out of
one vectorised read of a summed-area table. Like facenet-pytorch, box corners keep MTCNN's
1-based pixel convention, while landmarks are 0-based pixel coordinates.

The three networks are callables from a float32 numpy batch to numpy outputs (see
``faceunlock.vision.backend``): ONNX Runtime at run time, the torch port for training and export.
Everything around them is numpy, so detection imports no torch.

``refine`` runs O-Net alone on a box from the previous frame: the tracking step between full
detections (``faceunlock.vision.track``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from .backend import Net
from .nms import batched_nms

ONET_SIZE = 48


class MTCNNNets(NamedTuple):
    """P-Net, R-Net and O-Net as numpy callables (any backend)."""

    pnet: Net
    rnet: Net
    onet: Net


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixels of the image given to ``Detector.detect``."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    # (5, 2) float32 x, y: left eye, right eye, nose tip, mouth left, mouth right.
    # "Left" is the image's left. Read-only.
    landmarks: np.ndarray = field(compare=False, repr=False)
    score: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))
        points = np.array(self.landmarks, dtype=np.float32).reshape(5, 2)
        points.flags.writeable = False
        object.__setattr__(self, "landmarks", points)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        return max(self.width, self.height)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


SIMILAR_SIZE = 0.7
"""A second face at least this fraction of the largest face's size makes a frame ambiguous."""


@dataclass
class Detection:
    """The faces found in one image, largest first."""

    faces: list[Face]
    image_shape: tuple[int, int]  # height, width

    @property
    def multiple(self) -> bool:
        return len(self.faces) > 1

    @property
    def crowded(self) -> bool:
        """Another face nearly as large as the largest: nobody is clearly the one in front. A smaller
        face (a colleague behind, someone walking past) leaves the largest the dominant one."""
        return len(self.faces) > 1 and self.faces[1].size >= SIMILAR_SIZE * self.faces[0].size

    def largest(self) -> Face | None:
        return self.faces[0] if self.faces else None


class Detector:
    """MTCNN face detector on the CPU.

    min_face_size: smallest face searched for, in pixels of the input image. The pyramid starts
        there, and faces whose box is smaller (MTCNN finds some) are dropped from the result.
    thresholds: score thresholds of P-Net, R-Net and O-Net.
    scale_factor: ratio between the levels of the image pyramid.
    threads: with nets=None, torch's (process-wide) thread count, see
        :func:`faceunlock.vision.threads.set_threads`. Keep it at 1 or 2: under CPU contention more
        threads make MTCNN much slower.
    max_side: if given, frames whose longer side exceeds it are downsized to it first (cv2
        INTER_AREA), and the results mapped back. This saves the full-resolution work on large
        frames; the pyramid itself is set by min_face_size, and no smaller than the downsized
        frame allows: faces under 12 * (long side / max_side) pixels can no longer be found.
    nets: loaded nets (any backend, see faceunlock.networks); None: the torch port of
        facenet-pytorch's weights (torch needed).
    backend: the name of the backend the nets run on (caches of landmarks are kept apart by it).
    """

    def __init__(
        self,
        min_face_size: float = 40,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        threads: int | None = None,
        max_side: int | None = None,
        nets: MTCNNNets | None = None,
        backend: str = "torch",
    ) -> None:
        if not min_face_size > 0:
            raise ValueError(f"min_face_size must be > 0, got {min_face_size}")
        if len(thresholds) != 3 or not all(0 <= t < 1 for t in thresholds):
            raise ValueError(f"thresholds must be 3 values in [0, 1), got {thresholds}")
        if not 0 < scale_factor < 1:
            raise ValueError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if max_side is not None and max_side < 12:
            raise ValueError(f"max_side must be >= 12, got {max_side}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.max_side = max_side
        self.backend = backend
        if nets is None:
            from .mtcnn_nets import torch_mtcnn_nets

            nets = torch_mtcnn_nets(threads=threads)
        self.nets = MTCNNNets(*nets)

    def detect(self, rgb: np.ndarray) -> Detection:
        """Find the faces in an RGB uint8 image of shape (H, W, 3)."""
        return self.detect_many([rgb])[0]

    def detect_many(self, images: Sequence[np.ndarray]) -> list[Detection]:
        """detect() for several images; images of one size share their network passes."""
        for i, rgb in enumerate(images):
            _check_image(rgb, f"image {i}" if len(images) > 1 else "image")
        results: list[Detection] = [None] * len(images)  # type: ignore[list-item]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, rgb in enumerate(images):
            by_shape.setdefault(rgb.shape, []).append(i)
        for (h, w, _), members in by_shape.items():
            batch = _stack([self._downsize(images[i]) for i in members])
            bh, bw = batch.shape[1:3]
            min_face = self.min_face_size
            if (bh, bw) != (h, w):  # downsized: the pyramid cannot start below 12 px faces
                min_face = max(min_face * max(bh, bw) / max(h, w), 12.0)
            found = self._cascade(batch, min_face)
            for i, (boxes, points) in zip(members, found, strict=True):
                det = _detection(boxes, points, (h, w), (w / bw, h / bh))
                det.faces = [f for f in det.faces if f.size >= self.min_face_size]
                results[i] = det
        return results

    def _downsize(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if self.max_side is None or max(h, w) <= self.max_side:
            return np.ascontiguousarray(rgb)
        scale = self.max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)

    def refine(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> Face | None:
        """O-Net alone on the square around `box` (e.g. last frame's face): the face, or None if lost.

        The square is cut from the full-resolution frame and area-resampled to 48x48 as the
        cascade's crops are; where it leaves the frame it is filled with black (MTCNN's original
        padding). Clipping it instead, as the cascade does, squeezes a face that fills the frame,
        and the followed landmarks drift from frame to frame.
        """
        _check_image(rgb, "image")
        square = _square(np.array([[*box, 0.0]], np.float32))
        x0, y0, x1, y1 = (int(v) for v in np.trunc(square[0, :4]))
        x0, y0 = x0 - 1, y0 - 1  # MTCNN's 1-based corners
        h, w = rgb.shape[:2]
        inner = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if inner[2] <= inner[0] or inner[3] <= inner[1]:
            return None
        canvas = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        canvas[inner[1] - y0 : inner[3] - y0, inner[0] - x0 : inner[2] - x0] = rgb[
            inner[1] : inner[3], inner[0] : inner[2]
        ]
        crop = _AreaSampler(canvas[None]).resize(ONET_SIZE, ONET_SIZE)
        prob, reg, marks = self.nets.onet(crop)
        if not prob[0] > self.thresholds[2]:
            return None
        boxes, points = _place(np.concatenate((square[:, :4], prob[:, None]), axis=1), reg, marks)
        face = _detection(boxes, points, (h, w), (1.0, 1.0)).faces[0]
        return face if face.size >= self.min_face_size else None

    def _cascade(self, batch: np.ndarray, min_face: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run the three stages on a (B, H, W, 3) batch; per image, boxes (n, 5) and points."""
        _, rnet, onet = self.nets
        _, t2, t3 = self.thresholds
        sampler = _AreaSampler(batch)
        boxes, inds = self._propose(sampler, min_face)  # stage 1

        # Stage 2: R-Net on 24x24 crops.
        boxes, inds, crops = sampler.crops(boxes, inds, 24)
        prob, reg = rnet(crops)
        boxes, inds, reg, prob = _select(prob > t2, boxes, inds, reg, prob)
        keep = batched_nms(boxes[:, :4], prob, inds, 0.7)
        boxes = np.concatenate((boxes[keep, :4], prob[keep, None]), axis=1)
        boxes, inds = _square(_regress(boxes, reg[keep], 1.0)), inds[keep]

        # Stage 3: O-Net on 48x48 crops; landmarks are placed in the box before regression.
        boxes, inds, crops = sampler.crops(boxes, inds, ONET_SIZE)
        prob, reg, marks = onet(crops)
        boxes, inds, reg, marks, prob = _select(prob > t3, boxes, inds, reg, marks, prob)
        boxes, points = _place(np.concatenate((boxes[:, :4], prob[:, None]), axis=1), reg, marks)
        keep = batched_nms(boxes[:, :4], prob, inds, 0.7, overlap="min", offset=1.0)
        boxes, inds, points = boxes[keep], inds[keep], points[keep]
        return [(boxes[inds == b], points[inds == b]) for b in range(len(batch))]

    def _propose(self, sampler: _AreaSampler, min_face: float) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1: P-Net over the pyramid. Returns square boxes (n, 5: x1 y1 x2 y2 score)."""
        h, w = sampler.height, sampler.width
        scale = 12.0 / min_face
        short = min(h, w) * scale
        found = []
        while short >= 12:
            prob, reg = self.nets.pnet(sampler.resize(int(h * scale + 1), int(w * scale + 1)))
            b, y, x = np.nonzero(prob >= self.thresholds[0])
            cell = np.stack((x, y), axis=1).astype(prob.dtype)
            corners = np.concatenate((np.floor((2 * cell + 1) / scale), np.floor((2 * cell + 12) / scale)), 1)
            cand = np.concatenate((corners, prob[b, y, x][:, None], reg[b, :, y, x]), axis=1)
            keep = batched_nms(cand[:, :4], cand[:, 4], b, 0.5)
            found.append((cand[keep], b[keep]))
            scale *= self.scale_factor
            short *= self.scale_factor
        if not found:
            return np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
        cand = np.concatenate([c for c, _ in found])
        inds = np.concatenate([i for _, i in found])
        keep = batched_nms(cand[:, :4], cand[:, 4], inds, 0.7)
        cand, inds = cand[keep], inds[keep]
        return _square(_regress(cand[:, :5], cand[:, 5:], 0.0)), inds


class _AreaSampler:
    """Area-averaged resampling of regions of a batch of images.

    Matches ``interpolate(mode="area")`` (adaptive average pooling): output cell i of n over an
    input span of length L averages input rows floor(i * L / n) .. ceil((i + 1) * L / n) - 1.
    Every such mean is read from a summed-area table, so a whole stack of crops of different
    sizes costs one gather. Outputs are normalised for the nets: (x - 127.5) / 128.
    """

    def __init__(self, batch: np.ndarray) -> None:
        n, self.height, self.width, _ = batch.shape
        exact_int32 = 255 * self.height * self.width < 2**31
        depth = cv2.CV_32S if exact_int32 else cv2.CV_64F  # float64 is exact to 2**53
        table = _stack([cv2.integral(image, sdepth=depth) for image in batch])
        self._rows = table.reshape(-1, 3)
        self._n = n

    def resize(self, out_h: int, out_w: int) -> np.ndarray:
        """Every whole image resized to (out_h, out_w): (B, 3, out_h, out_w)."""
        zeros = np.zeros(self._n, np.int64)
        full = np.arange(self._n)
        return self._sample(full, zeros, zeros + self.height, zeros, zeros + self.width, out_h, out_w)

    def crops(
        self, boxes: np.ndarray, inds: np.ndarray, size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """size x size crops of the boxes' in-image parts; boxes that miss the image are dropped."""
        x0, y0, x1, y1 = _crop_bounds(boxes[:, :4], self.width, self.height)
        ok = (x1 > x0) & (y1 > y0)
        if not ok.all():
            boxes, inds = boxes[ok], inds[ok]
            x0, y0, x1, y1 = x0[ok], y0[ok], x1[ok], y1[ok]
        crops = self._sample(inds, y0, y1, x0, x1, size, size)
        return boxes, inds, crops

    def _sample(self, image, y0, y1, x0, x1, out_h: int, out_w: int) -> np.ndarray:
        r0, r1 = _cell_bounds(y0, y1, out_h)  # (K, out_h)
        c0, c1 = _cell_bounds(x0, x1, out_w)  # (K, out_w)
        stride = self.width + 1
        base = (image * (self.height + 1))[:, None, None] * stride
        top0, top1 = base + r0[:, :, None] * stride, base + r1[:, :, None] * stride
        left0, left1 = c0[:, None, :], c1[:, None, :]

        def at(index: np.ndarray) -> np.ndarray:
            return np.take(self._rows, index, axis=0)

        sums = at(top1 + left1) - at(top0 + left1) - at(top1 + left0) + at(top0 + left0)
        count = (r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]
        # Integer sums and counts: exact in float32 for windows under 65k pixels.
        mean = sums.astype(np.float32) / count[..., None].astype(np.float32)
        return ((mean - 127.5) * 0.0078125).transpose(0, 3, 1, 2)


def _crop_bounds(corners: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """0-based pixel bounds [x0, x1) x [y0, y1) of boxes inside the image.

    Box corners are 1-based and truncated toward zero, as in MTCNN.
    """
    c = np.trunc(corners).astype(np.int64)
    x0 = np.maximum(c[:, 0], 1) - 1
    y0 = np.maximum(c[:, 1], 1) - 1
    return x0, y0, np.minimum(c[:, 2], width), np.minimum(c[:, 3], height)


def _place(boxes: np.ndarray, reg: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O-Net's output on its input boxes (n, 5): landmarks placed in each box, then the box regressed."""
    wh = boxes[:, 2:4] - boxes[:, 0:2] + 1
    xs = wh[:, :1] * marks[:, :5] + boxes[:, :1] - 1
    ys = wh[:, 1:2] * marks[:, 5:] + boxes[:, 1:2] - 1
    return _regress(boxes, reg, 1.0), np.stack((xs, ys), axis=2)


def _cell_bounds(start: np.ndarray, stop: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    length = (stop - start)[:, None]
    i = np.arange(n)
    return start[:, None] + i * length // n, start[:, None] + ((i + 1) * length + n - 1) // n


def _regress(boxes: np.ndarray, reg: np.ndarray, offset: float) -> np.ndarray:
    """Shift each corner by reg times the box's width or height (plus offset)."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    if offset:
        wh = wh + offset
    out = boxes.copy()
    out[:, :4] = boxes[:, :4] + reg * np.tile(wh, (1, 2))
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square on its longer side, keeping its centre."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(axis=1, keepdims=True)
    out = boxes.copy()
    out[:, 0:2] = boxes[:, 0:2] + wh * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side
    return out


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def _select(mask: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(a[mask] for a in arrays)


def _detection(
    boxes: np.ndarray, points: np.ndarray, shape: tuple[int, int], ratio: tuple[float, float]
) -> Detection:
    """Faces from the cascade's output, scaled by ratio (x, y) back to the input's pixels."""
    scale = np.array(ratio, np.float32)
    faces = [
        Face(box=tuple(b[:4] * np.tile(scale, 2)), landmarks=p * scale, score=b[4])
        for b, p in zip(boxes, points, strict=True)
    ]
    faces.sort(key=lambda f: f.area, reverse=True)
    return Detection(faces=faces, image_shape=(int(shape[0]), int(shape[1])))


def _check_image(rgb: object, what: str) -> None:
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8 RGB, got dtype {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{what} must have shape (H, W, 3), got {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {rgb.shape}")
