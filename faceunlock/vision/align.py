"""Alignment: a similarity transform from MTCNN's 5 landmarks to a 150x150 chip.

The chip geometry is the one dlib's face ResNet was trained on
(``dlib.get_face_chip(img, shape, size=150, padding=0.25)``). MTCNN's landmarks
(eye centres, nose tip, mouth corners) are not dlib's 5 points, so the template
below is measured, not guessed: ``scripts/calibrate_template.py`` runs dlib's
detector and 5-point predictor and this project's MTCNN on the same real
images, maps MTCNN's landmarks into each dlib-made chip, and takes the median
position of each landmark over the images. docs/alignment.md records the run.
"""

from __future__ import annotations

import cv2
import numpy as np

CHIP_SIZE = 150

TEMPLATE = np.array(
    [
        [48.293, 45.775],
        [102.250, 45.727],
        [75.093, 79.809],
        [50.814, 103.628],
        [99.098, 103.252],
    ],
    dtype=np.float64,
)
"""MTCNN landmark positions in chip pixels: left eye, right eye, nose, mouth left, mouth right."""

MAX_SAMPLING_STEP = 1.5


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) taking src points to dst, as a 2x3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("degenerate landmarks: all points coincide")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var_s
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - scale * rot @ mu_s
    return out


def chip_transform(landmarks: np.ndarray, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """The 2x3 matrix mapping image pixels to chip pixels for these landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        raise ValueError(f"landmarks must be a finite (5, 2) array, got shape {lm.shape}")
    return similarity(lm, template)


def align(rgb: np.ndarray, landmarks: np.ndarray, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """Warp the face with these landmarks to a CHIP_SIZE x CHIP_SIZE RGB chip (outside is black).

    When one chip pixel spans more than MAX_SAMPLING_STEP image pixels, the image
    is first shrunk with area averaging to about one image pixel per chip pixel,
    as dlib does with its pyramid, so that bilinear sampling does not alias.
    """
    matrix = chip_transform(landmarks, template)
    step = 1.0 / np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if step > MAX_SAMPLING_STEP:
        h, w = rgb.shape[:2]
        size = (max(1, round(w / step)), max(1, round(h / step)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        shrink = np.diag([w / size[0], h / size[1]])
        matrix = np.hstack([matrix[:, :2] @ shrink, matrix[:, 2:]])
    return cv2.warpAffine(
        rgb,
        matrix,
        (CHIP_SIZE, CHIP_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


REFERENCE_LEVEL = 79.0
"""Mean grey level of a chip at and above which its sharpness is the plain Laplacian variance: the 5th
percentile of 369 celeba-train "calibrate" chips, so the data the thresholds and the quality factor
were read off is all but untouched."""
MAX_LIGHT_GAIN = 2.5
"""A chip darker than REFERENCE_LEVEL / MAX_LIGHT_GAIN is compensated no further: a near-black chip
stays blurry rather than its sensor noise counting as detail."""


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the chip's grey image, as if the chip were lit to at least
    REFERENCE_LEVEL: low for blurred faces, not for dark ones.

    The Laplacian scales with the light, so without the compensation a face at a third of the light
    reads as blurred as a shaken one (a gain of 0.35 divides the plain variance by 8). Only the light
    level counts, not the contrast: a soft, flat picture in normal light (a print) stays blurry.
    """
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    laplacian = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    gain = min(MAX_LIGHT_GAIN, REFERENCE_LEVEL / max(float(grey.mean()), 1e-6))
    return laplacian * max(1.0, gain) ** 2
