"""Presentation-attack cues for an ordinary RGB webcam, and an IR mode.

display-frame: a phone, tablet or monitor held up to the camera shows the face
    inside a flat display whose straight edges run close beside the face. The
    cue fires when long straight edges flank the face on at least two sides
    (one of them left or right), each overlapping the face's extent by at least
    `cover` of its size and lying within `reach` face sizes of it. A live head
    occludes whatever is behind it, so background edges are cut by the head
    and rarely flank it this closely on two sides at once.
ir-dark-face: in IR mode, skin reflects the emitter's near-infrared light while
    a phone or monitor screen emits none, so a face whose chip is dark in an IR
    frame is a replayed image.
not-ir: in IR mode, a colour frame means the source is not the IR camera.

The decision policy (faceunlock.verify) applies these over a window of frames
of one tracked face: any cue in a scan blocks the match, and a match needs the
face to have been watched cue-free for a minimum number of frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceunlock.config import LivenessConfig
from faceunlock.vision.detect import Face


def display_frame_sides(grey: np.ndarray, face: Face, reach: float, cover: float) -> set[str]:
    """Which sides of the face ('l', 'r', 't', 'b') have a long straight edge close beside them."""
    h, w = grey.shape
    x1, y1, x2, y2 = face.box
    fw, fh = x2 - x1, y2 - y1
    if fw <= 0 or fh <= 0:
        return set()
    rx1, ry1 = int(max(0, x1 - reach * fw)), int(max(0, y1 - reach * fh))
    rx2, ry2 = int(min(w, x2 + reach * fw)), int(min(h, y2 + reach * fh))
    roi = grey[ry1:ry2, rx1:rx2]
    if roi.size == 0:
        return set()
    edges = cv2.Canny(cv2.GaussianBlur(roi, (5, 5), 0), 40, 120)
    min_len = max(8, int(0.5 * min(fw, fh)))
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=30, minLineLength=min_len, maxLineGap=6)
    sides: set[str] = set()
    if lines is None:
        return sides
    for lx1, ly1, lx2, ly2 in lines.reshape(-1, 4) + [rx1, ry1, rx1, ry1]:
        dx, dy = abs(lx2 - lx1), abs(ly2 - ly1)
        if dx < 0.2 * dy:
            x = (lx1 + lx2) / 2
            if overlap(ly1, ly2, y1, y2) < cover * fh:
                continue
            if x1 - reach * fw < x < x1 - 0.05 * fw:
                sides.add("l")
            elif x2 + 0.05 * fw < x < x2 + reach * fw:
                sides.add("r")
        elif dy < 0.2 * dx:
            y = (ly1 + ly2) / 2
            if overlap(lx1, lx2, x1, x2) < cover * fw:
                continue
            if y1 - reach * fh < y < y1 - 0.05 * fh:
                sides.add("t")
            elif y2 + 0.05 * fh < y < y2 + reach * fh:
                sides.add("b")
    return sides


def overlap(a1: float, a2: float, b1: float, b2: float) -> float:
    """Length of the overlap of the intervals [a1, a2] (either order) and [b1, b2]."""
    return max(0.0, min(max(a1, a2), b2) - max(min(a1, a2), b1))


def is_grey(rgb: np.ndarray) -> bool:
    small = rgb[::8, ::8].astype(np.int16)
    return (
        int(np.abs(small[..., 0] - small[..., 1]).max()) <= 8
        and int(np.abs(small[..., 1] - small[..., 2]).max()) <= 8
    )


def attack_cues(rgb: np.ndarray, face: Face, chip: np.ndarray, cfg: LivenessConfig) -> list[str]:
    """The presentation-attack cues that fire on this frame's face (empty: none)."""
    if not cfg.enabled:
        return []
    cues = []
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    sides = display_frame_sides(grey, face, cfg.frame_reach, cfg.frame_cover)
    if len(sides) >= 2 and sides & {"l", "r"}:
        cues.append("display-frame")
    if cfg.ir:
        if not is_grey(rgb):
            cues.append("not-ir")
        elif float(chip.mean()) < cfg.ir_min_face_level:
            cues.append("ir-dark-face")
    return cues
