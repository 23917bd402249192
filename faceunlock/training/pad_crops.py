"""Context crops of the fitting clips' faces, for fitting the liveness networks to other light."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np

from faceunlock.liveness.crops import SIZE, context_box


def region(rgb: np.ndarray, box, scale: float) -> np.ndarray:
    """The (80, 80, 3) uint8 RGB crop a network of this scale sees (before its BGR float input)."""
    h, w = rgb.shape[:2]
    left, top, right, bottom = context_box(box, scale, h, w)
    return cv2.resize(rgb[top : bottom + 1, left : right + 1], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def face_crops(images, scales: tuple[float, ...]) -> list[np.ndarray]:
    """One crop array per scale over RGB images (the largest face of each; images without one
    skipped)."""
    from faceunlock.evaluation.shared_data import detector

    out: list[list[np.ndarray]] = [[] for _ in scales]
    for rgb in images:
        face = detector().detect(rgb).largest()
        if face is None:
            continue
        for i, scale in enumerate(scales):
            out[i].append(region(rgb, face.box, scale))
    return [np.stack(c) if c else np.zeros((0, SIZE, SIZE, 3), np.uint8) for c in out]


def clip_crops(clip, scales: tuple[float, ...], every: int, most: int) -> list[np.ndarray]:
    """Every `every`-th frame of a clip (at most `most`) with a face: one crop array per scale."""
    return face_crops(itertools.islice(clip.frames(), 0, every * most, every), scales)


def gather(clips, scales: tuple[float, ...], every: int = 4, most: int = 100, cache: Path | None = None):
    """{scale: (N, 80, 80, 3) uint8} over the clips, and the clip name of each row; cached as .npz."""
    if cache is not None and cache.is_file():
        data = np.load(cache)
        return {s: data[f"s{s}"] for s in scales}, list(data["names"])
    parts: list[list[np.ndarray]] = [[] for _ in scales]
    names: list[str] = []
    for clip in clips:
        crops = clip_crops(clip, scales, every, most)
        for i, c in enumerate(crops):
            parts[i].append(c)
        names += [clip.name] * len(crops[0])
    out = {s: np.concatenate(p) for s, p in zip(scales, parts, strict=True)}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, names=np.array(names), **{f"s{s}": v for s, v in out.items()})
    return out, names


def photo_crops(paths, scales: tuple[float, ...]) -> list[np.ndarray]:
    """One crop array per scale over photos (the largest face of each; photos without one skipped)."""
    from faceunlock.evaluation.shared_data import read_rgb

    return face_crops((read_rgb(path) for path in paths), scales)
