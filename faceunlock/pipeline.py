"""The per-frame pipeline: detect, pick a face, align it, embed it, measure liveness, with timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from faceunlock.config import Config
from faceunlock.errors import ModelError
from faceunlock.liveness import cues as live
from faceunlock.model import ModelCard
from faceunlock.vision.align import align, sharpness
from faceunlock.vision.detect import Detection, Detector, Face
from faceunlock.vision.liveness import ir_cues


@dataclass
class FrameResult:
    """What one frame gave: all detections, the chosen face, its chip, embedding and liveness cues."""

    detection: Detection
    face: Face | None = None
    chip: np.ndarray | None = None
    sharpness: float = 0.0
    embedding: np.ndarray | None = None
    cues: list[str] = field(default_factory=list)
    live: live.FrameCues | None = None
    ms: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Detector, embedder and liveness networks, loaded once and kept warm."""

    def __init__(self, cfg: Config, card: ModelCard, threads: int | None = 2):
        from faceunlock.liveness.card import load_liveness_card
        from faceunlock.liveness.runtime import PadNetworks
        from faceunlock.vision.embed import Embedder

        self.card = card
        self.liveness = cfg.liveness
        self.detector = Detector(
            min_face_size=cfg.detector.min_face_size,
            max_side=cfg.detector.max_side or None,
            threads=threads,
        )
        self.embedder = Embedder(path=card.weights, flip=card.flip, threads=threads)
        if self.embedder.fingerprint != card.sha256:
            raise ModelError(
                f"weights {card.weights} have sha256 {self.embedder.fingerprint}, "
                f"but model card {card.name} expects {card.sha256}"
            )
        self.live_card = load_liveness_card() if cfg.liveness.enabled else None
        self.pad = PadNetworks(self.live_card, threads=1) if self.live_card else None

    @property
    def fingerprint(self) -> str:
        return self.embedder.fingerprint

    def networks_for(self, k: int) -> tuple[int, ...]:
        """The liveness network frame k of a scan runs: they take turns, one per frame."""
        return (k % len(self.pad),) if self.pad is not None else ()

    def analyse(
        self,
        rgb: np.ndarray,
        pick=None,
        previous: FrameResult | None = None,
        networks: tuple[int, ...] | None = None,
    ) -> FrameResult:
        """Detect faces, choose one (largest by default), align and embed it, measure its liveness.

        `previous` is the frame before this one (for motion cues); `networks` the liveness networks
        to run (default: all of them).
        """
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
        if self.liveness.enabled:
            result.live = self.measure(rgb, face, chip, previous, networks)
            result.cues = ir_cues(rgb, chip, self.liveness)
        t4 = time.perf_counter()
        result.ms.update(align=(t2 - t1) * 1e3, embed=(t3 - t2) * 1e3, liveness=(t4 - t3) * 1e3)
        return result

    def measure(self, rgb, face: Face, chip, previous: FrameResult | None, networks) -> live.FrameCues:
        """The liveness cues of this frame's face (see faceunlock.liveness.cues)."""
        out = live.FrameCues(motion=live.motion_frame(rgb))
        before = previous.live.motion if previous is not None and previous.live is not None else None
        if before is not None:
            out.frozen, out.face_shift, out.ring_shift = live.measure_motion(before, out.motion, face.box)
        for index in range(len(self.pad)) if networks is None else networks:
            crop = self.pad.crop(index, rgb, face.box)
            out.pad[index] = self.pad.score(index, crop)
            if index == 0:
                out.glare = live.glare_share(crop)
        out.moire = live.moire_share(chip)
        out.ring_level = live.ring_level(out.motion, face.box)
        return out
