"""The per-frame pipeline: find the face (detect, or follow it from the last frame), pick one, align it,
embed it, measure its liveness, with timings per stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from faceunlock.config import Config
from faceunlock.liveness import cues as live
from faceunlock.liveness.score import ALL_CUES, cues_for
from faceunlock.model import ModelCard
from faceunlock.vision.align import align, sharpness
from faceunlock.vision.backend import DEFAULT_BACKEND, thread_count
from faceunlock.vision.detect import Detection, Face
from faceunlock.vision.ir_cues import ir_cues
from faceunlock.vision.track import TrackPolicy, locate


@dataclass
class FrameResult:
    """What one frame gave: all detections, the chosen face, its chip, embedding and liveness cues.

    age: frames since the last full detection (0: detected in this frame, else followed).
    embedding is None when no face was found or the embedding was not asked for.
    """

    detection: Detection
    face: Face | None = None
    chip: np.ndarray | None = None
    sharpness: float = 0.0
    embedding: np.ndarray | None = None
    cues: list[str] = field(default_factory=list)
    live: live.FrameCues | None = None
    ms: dict[str, float] = field(default_factory=dict)
    age: int = 0

    @property
    def tracked(self) -> bool:
        return self.age > 0


class Pipeline:
    """Detector, embedder and liveness networks, loaded once (on the inference backend) and kept warm.

    threads: the inference threads of each network, and OpenCV's thread count (process-wide: its
    resizing, warping and optical flow would otherwise use every core).
    all_cues: measure every liveness cue (fitting and evaluating the liveness model), not only
    those the liveness card's features use.
    """

    def __init__(
        self,
        cfg: Config,
        card: ModelCard,
        threads: int | None = 2,
        backend: str = DEFAULT_BACKEND,
        one_shot: bool = False,
        all_cues: bool = False,
    ):
        from faceunlock.liveness.card import load_liveness_card
        from faceunlock.liveness.runtime import PadNetworks
        from faceunlock.networks import load_detector, load_embedder

        cv2.setNumThreads(thread_count(threads))
        self.card = card
        self.backend = backend
        self.liveness = cfg.liveness
        detector = cfg.detector
        self.detector = load_detector(
            detector.min_face_size, detector.max_side or None, backend, threads, one_shot=one_shot
        )
        self.embedder = load_embedder(card, backend=backend, threads=threads, one_shot=one_shot)
        self.tracking = TrackPolicy()
        self.live_card = load_liveness_card() if cfg.liveness.enabled else None
        self.pad = PadNetworks(self.live_card, threads=1) if self.live_card else None
        self.cues = ALL_CUES if all_cues or not self.live_card else cues_for(self.live_card.fusion.features)
        self.landmarker = None
        if self.live_card is not None and "eyes" in self.cues:
            from faceunlock.vision.landmarks import FaceLandmarker

            self.landmarker = FaceLandmarker(threads=1)

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
        embed: bool = True,
    ) -> FrameResult:
        """Find the faces, choose one (largest by default), align it, embed it (if `embed`), measure
        its liveness.

        With `previous` (the result of the frame before, in a stream) the face is followed from it
        by O-Net alone, between full detections (see faceunlock.vision.track), and the motion cues
        are measured against it. `networks`: the liveness networks to run (default: all of them).
        """
        t0 = time.perf_counter()
        if previous is None:
            detection, age = self.detector.detect(rgb), 0
        else:
            detection, age = locate(self.detector, rgb, previous.detection, previous.age, self.tracking)
        t1 = time.perf_counter()
        result = FrameResult(detection=detection, ms={"detect": (t1 - t0) * 1e3}, age=age)
        face = (pick or Detection.largest)(detection)
        if face is None:
            return result
        chip = align(rgb, face.landmarks)
        result.face, result.chip, result.sharpness = face, chip, sharpness(chip)
        t2 = time.perf_counter()
        if embed:
            result.embedding = self.embedder.embed(chip)[0]
        t3 = time.perf_counter()
        if self.liveness.enabled:
            result.live = self.measure(rgb, face, chip, previous, networks)
            result.cues = ir_cues(rgb, chip, self.liveness)
        t4 = time.perf_counter()
        result.ms.update(align=(t2 - t1) * 1e3, embed=(t3 - t2) * 1e3, liveness=(t4 - t3) * 1e3)
        return result

    def measure(self, rgb, face: Face, chip, previous: FrameResult | None, networks) -> live.FrameCues:
        """The liveness cues of this frame's face (see faceunlock.liveness.cues): the networks'
        log-odds, the identical-frame check, and of the rest only those in `self.cues` (the ones
        the liveness card's features use, unless the pipeline was built with all_cues)."""
        want = self.cues
        out = live.FrameCues(motion=live.motion_frame(rgb))
        before = previous.live.motion if previous is not None and previous.live is not None else None
        if before is not None:
            out.frozen, out.face_shift, out.ring_shift = live.measure_motion(
                before, out.motion, face.box, ring="ring_shift" in want
            )
        for index in range(len(self.pad)) if networks is None else networks:
            crop = self.pad.crop(index, rgb, face.box)
            out.pad[index] = self.pad.score(index, crop)
            if index == 0 and "glare" in want:
                out.glare = live.glare_share(crop)
        if "moire" in want:
            out.moire = live.moire_share(chip)
        if "ring_level" in want:
            out.ring_level = live.ring_level(out.motion, face.box)
        if "eyes" in want and self.landmarker is not None:
            out.eyes = live.eye_level(self.landmarker(rgb, face.box))
        return out
