"""Drawing the preview: face boxes, the five landmarks, and the policy's figures on a frame."""

from __future__ import annotations

import cv2
import numpy as np

from faceunlock.preview import Frame

GREEN, RED, AMBER, GREY, WHITE = (
    (60, 200, 90),
    (230, 60, 60),
    (240, 180, 40),
    (150, 150, 150),
    (255, 255, 255),
)
DECISION_COLOURS = {"match": GREEN, "scanning": AMBER, "not-enrolled": GREY, "enrolling": AMBER}
IN_PROGRESS = ("scanning", "not-enrolled", "enrolling")
FONT = cv2.FONT_HERSHEY_SIMPLEX


def colour_of(frame: Frame) -> tuple[int, int, int]:
    """Green under the threshold, red above it or when refused as a photo or a screen, amber when the
    face cannot be judged."""
    if frame.decision == "refused" or frame.liveness == "fail":
        return RED
    if frame.distance is None or frame.threshold is None:
        return AMBER
    return GREEN if frame.distance < frame.threshold else RED


def text_lines(frame: Frame) -> list[str]:
    lines = []
    if frame.distance is not None:
        sign = "<" if frame.distance < frame.threshold else ">="
        lines.append(f"distance {frame.distance:.3f} {sign} threshold {frame.threshold:.3f} ({frame.level})")
    elif frame.judged and frame.face is not None:
        lines.append(f"not judged: {frame.judged}")
    elif frame.face is None:
        lines.append("no face")
    score = f" {frame.liveness_score:.2f}" if frame.liveness_score is not None else ""
    lines.append(
        f"liveness: {frame.liveness}{score}" + (f"  cues: {', '.join(frame.cues)}" if frame.cues else "")
    )
    others = len(frame.faces) - 1
    if others > 0 and frame.judged != "multiple":
        lines.append(f"{others} smaller face{'s' if others > 1 else ''} behind: ignored, never compared")
    lines.append(f"{frame.fps:.1f} fps   faces {len(frame.faces)}")
    return lines


def wrap(text: str, width: int, scale: float) -> list[str]:
    """Split text into lines that fit width pixels."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and cv2.getTextSize(trial, FONT, scale, 1)[0][0] > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line] if line else lines


def put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour) -> int:
    """Text on a dark band so it reads on any background; returns the band's height."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 3, y - h - 4), (x + w + 3, y + base + 2), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)
    return h + base + 8


def draw(rgb: np.ndarray, frame: Frame) -> np.ndarray:
    """An annotated copy of an RGB frame."""
    img = np.ascontiguousarray(rgb).copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(0.8, w / 1100))
    thick = max(1, round(w / 400))
    for face in frame.faces:
        chosen = frame.face is not None and face.box == frame.face.box
        colour = colour_of(frame) if chosen else GREY
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick + chosen)
        for px, py in face.landmarks:
            cv2.circle(img, (int(round(px)), int(round(py))), thick + 1, colour, -1, cv2.LINE_AA)
    y = 8
    for line in text_lines(frame):
        y += put_text(img, line, (8, y + 14), scale, WHITE)
    title = frame.decision if frame.decision in IN_PROGRESS else f"last scan: {frame.decision}"
    y += put_text(img, title, (8, y + 16), scale * 1.2, DECISION_COLOURS.get(frame.decision, RED))
    for line in wrap(frame.reason, w - 24, scale * 0.8)[:3]:
        y += put_text(img, line, (8, y + 12), scale * 0.8, WHITE)
    if frame.hint:
        put_text(img, frame.hint, (8, y + 24), scale * 1.4, AMBER)
    put_text(img, "preview: nothing is unlocked", (8, h - 10), scale * 0.8, GREY)
    return img
