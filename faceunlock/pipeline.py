"""The per-frame pipeline: detect, pick a face, align it, embed it, with timings per stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from faceunlock.config import Config
from faceunlock.model import ModelCard
from faceunlock.vision.align import align, sharpness
from faceunlock.vision.backend import DEFAULT_BACKEND
from faceunlock.vision.detect import Detection, Face
from faceunlock.vision.liveness import attack_cues


@dataclass
class FrameResult:
    """What one frame gave: all detections, the chosen face, its chip and embedding."""

    detection: Detection
    face: Face | None = None
    chip: np.ndarray | None = None
    sharpness: float = 0.0
    embedding: np.ndarray | None = None
    cues: list[str] = field(default_factory=list)
    ms: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Detector and embedder, loaded once (on the inference backend) and kept warm."""

    def __init__(self, cfg: Config, card: ModelCard, threads: int | None = 2, backend: str = DEFAULT_BACKEND):
        from faceunlock.networks import load_detector, load_embedder

        self.card = card
        self.backend = backend
        self.liveness = cfg.liveness
        self.detector = load_detector(
            cfg.detector.min_face_size, cfg.detector.max_side or None, backend=backend, threads=threads
        )
        self.embedder = load_embedder(card, backend=backend, threads=threads)

    @property
    def fingerprint(self) -> str:
        return self.embedder.fingerprint

    def analyse(self, rgb: np.ndarray, pick=None) -> FrameResult:
        """Detect faces, choose one (largest by default), align and embed it."""
        t0 = time.perf_counter()
        detection = self.detector.detect(rgb)
        t1 = time.perf_counter()
        result = FrameResult(detection=detection, ms={"detect": (t1 - t0) * 1e3})
        face = (pick or Detection.largest)(detection)
        if face is None:
            return result
        chip = align(rgb, face.landmarks)
        t2 = time.perf_counter()
        result.face, result.chip, result.sharpness = face, chip, sharpness(chip)
        result.embedding = self.embedder.embed(chip)[0]
        t3 = time.perf_counter()
        result.cues = attack_cues(rgb, face, chip, self.liveness)
        t4 = time.perf_counter()
        result.ms.update(align=(t2 - t1) * 1e3, embed=(t3 - t2) * 1e3, liveness=(t4 - t3) * 1e3)
        return result
