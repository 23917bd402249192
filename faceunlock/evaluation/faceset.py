"""Run the project's own pipeline over a list of image files: landmarks (cached), chips, embeddings.

Detection is the slow stage, so its result, five landmarks per image, is cached
on disk keyed by the detector settings; alignment is cheap and is redone from
the cached landmarks. Images where no face is found get the median landmarks
of the detected images (scaled to the image size), and are counted. Embeddings
are cached too, keyed by the weights, flip averaging, detector and template.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceunlock.atomic import atomic_file
from faceunlock.camera import read_image
from faceunlock.vision.align import MAX_LIGHT_GAIN, REFERENCE_LEVEL, TEMPLATE, align, sharpness
from faceunlock.vision.detect import Detection, Detector, Face


def pick_central(detection: Detection) -> Face | None:
    """The face nearest the image centre (LFW's labelled face is the central one)."""
    if not detection.faces:
        return None
    h, w = detection.image_shape[:2]
    centre = np.array([w / 2, h / 2])
    return min(detection.faces, key=lambda f: float(np.linalg.norm(np.asarray(f.center) - centre)))


CACHE_MODE = 0o644
"""Cache files hold landmarks and embeddings of public test images: readable by all."""

PICKERS: dict[str, Callable[[Detection], Face | None]] = {
    "central": pick_central,
    "largest": Detection.largest,
}


@dataclass
class Landmarks:
    """Five landmarks per image, whether they were detected, image sizes, and the detector's score and
    box size (max side, pixels) of the face, and the aligned chip's sharpness (set by embed_images);
    each is NaN where unknown (no face, or a cache written before they were kept)."""

    names: list[str]
    points: np.ndarray
    detected: np.ndarray
    sizes: np.ndarray
    scores: np.ndarray | None = None
    boxes: np.ndarray | None = None
    sharpness: np.ndarray | None = None
    detect_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [n for n, ok in zip(self.names, self.detected, strict=True) if not ok]


def cache_key(detector: Detector, pick: str) -> str:
    settings = {
        "min_face_size": detector.min_face_size,
        "thresholds": list(detector.thresholds),
        "scale_factor": detector.scale_factor,
        "max_side": detector.max_side,
        "pick": pick,
        "v": 2,
    }
    if detector.backend != "torch":  # keys of torch-era caches stay as they were
        settings["backend"] = detector.backend
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def detect_all(
    root: Path,
    names: list[str],
    detector: Detector,
    pick: str = "largest",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Landmarks:
    """Landmarks for every image (relative names under root), from the cache where possible."""
    cached: dict[str, tuple] = {}
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"landmarks-{cache_key(detector, pick)}.npz"
        if cache_file.exists():
            with np.load(cache_file, allow_pickle=False) as z:
                n = len(z["names"])
                scores = z["scores"] if "scores" in z.files else np.full(n, np.nan, np.float32)
                boxes = z["boxes"] if "boxes" in z.files else np.full(n, np.nan, np.float32)
                rows = zip(
                    z["names"].tolist(), z["points"], z["detected"], z["sizes"], scores, boxes, strict=True
                )
                cached = {n: (p, bool(d), s, sc, b) for n, p, d, s, sc, b in rows}
    chooser = PICKERS[pick]
    points = np.zeros((len(names), 5, 2), np.float32)
    detected = np.zeros(len(names), bool)
    sizes = np.zeros((len(names), 2), np.int32)
    face_scores = np.full(len(names), np.nan, np.float32)
    face_boxes = np.full(len(names), np.nan, np.float32)
    result = Landmarks(list(names), points, detected, sizes, face_scores, face_boxes)
    todo = [i for i, n in enumerate(names) if n not in cached]
    for i, n in enumerate(names):
        if n in cached:
            points[i], detected[i], sizes[i], face_scores[i], face_boxes[i] = cached[n]
    for i in tqdm(todo, desc="detect", unit="img", disable=not progress or not todo):
        t0 = time.perf_counter()
        rgb = read_image(Path(root) / names[i])
        t1 = time.perf_counter()
        face = chooser(detector.detect(rgb))
        result.detect_ms.append((time.perf_counter() - t1) * 1e3)
        result.decode_ms.append((t1 - t0) * 1e3)
        sizes[i] = rgb.shape[1], rgb.shape[0]
        if face is not None:
            points[i], detected[i] = face.landmarks, True
            face_scores[i], face_boxes[i] = face.score, face.size
    if cache_file is not None and todo:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        merged = {
            n: (points[i], detected[i], sizes[i], face_scores[i], face_boxes[i]) for i, n in enumerate(names)
        }
        for n, v in cached.items():
            merged.setdefault(n, v)
        keys = sorted(merged)
        with atomic_file(cache_file, CACHE_MODE) as fh:
            np.savez(
                fh,
                names=np.array(keys),
                points=np.stack([merged[k][0] for k in keys]),
                detected=np.array([merged[k][1] for k in keys]),
                sizes=np.stack([merged[k][2] for k in keys]),
                scores=np.array([merged[k][3] for k in keys], np.float32),
                boxes=np.array([merged[k][4] for k in keys], np.float32),
            )
    fill_missing(result)
    return result


def fill_missing(marks: Landmarks) -> None:
    """Give undetected images the median landmarks of detected ones, in relative image coordinates."""
    if marks.detected.all():
        return
    if not marks.detected.any():
        centre = TEMPLATE / 150.0
        relative = 0.3 + 0.4 * centre
    else:
        rel = marks.points[marks.detected] / marks.sizes[marks.detected][:, None, :]
        relative = np.median(rel, axis=0)
    for i in np.flatnonzero(~marks.detected):
        marks.points[i] = relative * marks.sizes[i]


def embed_all(root: Path, marks: Landmarks, embedder, batch: int = 32, progress: bool = True) -> dict:
    """Align every image from its landmarks and embed the chips; returns embeddings and timings."""
    out = np.zeros((len(marks.names), 128), np.float32)
    sharp = np.zeros(len(marks.names), np.float32)
    align_ms: list[float] = []
    embed_ms: list[float] = []
    steps = range(0, len(marks.names), batch)
    for start in tqdm(steps, desc="embed", unit="batch", disable=not progress):
        idx = range(start, min(start + batch, len(marks.names)))
        chips = []
        for i in idx:
            rgb = read_image(Path(root) / marks.names[i])
            t0 = time.perf_counter()
            chips.append(align(rgb, marks.points[i]))
            align_ms.append((time.perf_counter() - t0) * 1e3)
            sharp[i] = sharpness(chips[-1])
        t0 = time.perf_counter()
        out[start : start + len(chips)] = embedder.embed(np.stack(chips))
        embed_ms.extend([(time.perf_counter() - t0) * 1e3 / len(chips)] * len(chips))
    return {"embeddings": out, "sharpness": sharp, "align_ms": align_ms, "embed_ms": embed_ms}


def embed_images(
    root: Path,
    names: list[str],
    embedder,
    detector,
    pick: str,
    cache_dir: Path | None,
    progress: bool = True,
) -> tuple[np.ndarray, Landmarks, dict]:
    """Embeddings of images through detect → align → embed, reusing cached landmarks and embeddings."""
    marks = detect_all(root, names, detector, pick=pick, cache_dir=cache_dir, progress=progress)
    backend = "" if embedder.backend == "torch" else embedder.backend + embedder.source
    key = hashlib.sha256(
        (embedder.fingerprint + str(embedder.flip) + cache_key(detector, pick) + backend).encode()
        + TEMPLATE.tobytes()
        + f"sharpness {REFERENCE_LEVEL} {MAX_LIGHT_GAIN}".encode()
    ).hexdigest()[:16]
    cached: dict[str, tuple[np.ndarray, float]] = {}
    cache_file = Path(cache_dir) / f"embeddings-{key}.npz" if cache_dir else None
    if cache_file and cache_file.exists():
        with np.load(cache_file) as z:
            sharp = z["sharpness"] if "sharpness" in z.files else np.full(len(z["names"]), np.nan)
            cached = {
                n: (e, float(s)) for n, e, s in zip(z["names"].tolist(), z["embeddings"], sharp, strict=True)
            }
    todo = [i for i, n in enumerate(names) if n not in cached]
    out = np.zeros((len(names), 128), np.float32)
    timings: dict = {"align_ms": [], "embed_ms": []}
    if todo:
        sub = Landmarks([names[i] for i in todo], marks.points[todo], marks.detected[todo], marks.sizes[todo])
        result = embed_all(root, sub, embedder, progress=progress)
        for j, i in enumerate(todo):
            cached[names[i]] = (result["embeddings"][j], float(result["sharpness"][j]))
        timings = {"align_ms": result["align_ms"], "embed_ms": result["embed_ms"]}
        if cache_file:
            keys = sorted(cached)
            with atomic_file(cache_file, CACHE_MODE) as fh:
                np.savez(
                    fh,
                    names=np.array(keys),
                    embeddings=np.stack([cached[k][0] for k in keys]),
                    sharpness=np.array([cached[k][1] for k in keys], np.float32),
                )
    marks.sharpness = np.zeros(len(names), np.float32)
    for i, n in enumerate(names):
        out[i], marks.sharpness[i] = cached[n]
    return out, marks, timings


def median_ms(values: list[float]) -> float | None:
    return round(float(np.median(values)), 2) if values else None


def stage_times(marks: Landmarks, timings: dict) -> dict:
    """Median ms per image of each stage; None for a stage served from the cache."""
    return {
        "decode": median_ms(marks.decode_ms),
        "detect": median_ms(marks.detect_ms),
        "align": median_ms(timings["align_ms"]),
        "embed": median_ms(timings["embed_ms"]),
    }


def no_face_report(marks: Landmarks) -> dict:
    return {
        "count": len(marks.missing),
        "images": marks.missing,
        "handling": "aligned with the median landmarks of the detected images and kept in the protocol",
    }
