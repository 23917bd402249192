"""Export MediaPipe's face landmark network from the mediapipe 0.10.14 wheel to ONNX (torch needed).

The wheel is checked against its pinned sha256 and face_landmark.tflite is read from inside it
(nothing is extracted). The torch port (``faceunlock.vision.landmark_net``) is built from the
.tflite's operator list and exported with the TorchScript exporter, opset 17; the file carries the
.tflite's sha256 as ONNX metadata (``source_sha256``). With the pinned torch and onnx the bytes are
the same on every run.

    python scripts/export_face_landmark.py --wheel mediapipe-0.10.14-cp311-...whl --out models/

--parity DATA also compares the ONNX file and the torch port with TFLite's own interpreter
(pip install ai-edge-litert) on real face crops from DATA (LFW photos and webcam frames), and scores
both candidate input ranges, [0, 1] and [-1, 1]; it prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL_NAME = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
TFLITE_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
ONNX_NAME = "face-landmark-mp-0.10.14.onnx"


def read_tflite_bytes(wheel: Path) -> bytes:
    """face_landmark.tflite from inside the wheel, after checking the wheel's and the file's sha256."""
    data = Path(wheel).read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != WHEEL_SHA256:
        sys.exit(f"{wheel} has sha256 {found}, expected {WHEEL_SHA256} ({WHEEL_NAME})")
    with zipfile.ZipFile(wheel) as archive:
        tflite = archive.read(MEMBER)
    found = hashlib.sha256(tflite).hexdigest()
    if found != TFLITE_SHA256:
        sys.exit(f"{MEMBER} in {wheel} has sha256 {found}, expected {TFLITE_SHA256}")
    return tflite


def build(tflite: bytes):
    from faceunlock.vision.landmark_net import LandmarkNet, read_tflite

    try:
        graph = read_tflite(tflite)
    except ImportError as exc:
        sys.exit(str(exc))
    return LandmarkNet(graph).eval()


def export(net, out_dir: Path) -> tuple[Path, str]:
    from faceunlock.training.export import export_onnx
    from faceunlock.vision.landmarks import INPUT_SIZE, SOURCE_KEY

    out = Path(out_dir) / ONNX_NAME
    sha = export_onnx(
        net,
        (1, 3, INPUT_SIZE, INPUT_SIZE),
        out,
        "image",
        ["landmarks", "face_flag"],
        {"image": {0: "n"}},
        {SOURCE_KEY: TFLITE_SHA256},
    )
    return out, sha


def face_crops(data: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops in [0, 1] (N, 3, 192, 192) and the MTCNN eye points (N, 2, 2) in crop pixels, from the
    first image of every 190th LFW person and every 15th frame of live-person-a.webm."""
    import cv2

    from faceunlock.networks import load_detector
    from faceunlock.vision.landmarks import crop_matrix, face_crop

    people = sorted(p for p in (data / "lfw" / "lfw-deepfunneled").iterdir() if p.is_dir())
    frames = [cv2.imread(str(sorted(p.glob("*.jpg"))[0])) for p in people[::190][: count // 2]]  # BGR
    cap = cv2.VideoCapture(str(data / "video" / "live-person-a.webm"))
    index = 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if index % 15 == 0:
            frames.append(frame)
        index += 1
    cap.release()
    detector = load_detector(threads=1)
    crops, eyes = [], []
    for bgr in frames:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        face = detector.detect(rgb).largest()
        if face is None:
            continue
        m = crop_matrix(face.box)
        crops.append(face_crop(rgb, face.box))
        eyes.append((face.landmarks[:2] - m[:, 2]) / m[0, 0] + 0.5)
    return np.stack(crops), np.stack(eyes)


def parity(net, onnx_path: Path, tflite: bytes, data: Path, count: int) -> dict:
    """Max abs differences between TFLite's interpreter, ONNX Runtime and the torch port, and the
    face logit and eye error (contour mean vs MTCNN eye, crop pixels) for each input range."""
    import onnxruntime as ort
    import torch

    from faceunlock.vision.landmarks import eye_centres

    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        sys.exit("--parity needs TFLite's interpreter: pip install ai-edge-litert")

    crops, mtcnn_eyes = face_crops(data, count)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    references = {
        "tflite_xnnpack": Interpreter(model_content=tflite, num_threads=1),
        "tflite_reference_kernels": Interpreter(
            model_content=tflite, experimental_op_resolver_type=OpResolverType.BUILTIN_REF
        ),
    }
    ranges = {"0..1": crops, "-1..1": crops * 2 - 1}
    report: dict = {"crops": len(crops)}
    for label, x in ranges.items():
        outputs = {"onnx": session.run(None, {"image": x})}
        with torch.no_grad():
            outputs["torch"] = [t.numpy() for t in net(torch.from_numpy(x))]
        for name, interpreter in references.items():
            interpreter.allocate_tensors()
            (inp,) = interpreter.get_input_details()
            got = []
            for crop in x:
                interpreter.set_tensor(inp["index"], crop.transpose(1, 2, 0)[None])
                interpreter.invoke()
                out = {
                    o["name"]: interpreter.get_tensor(o["index"]).reshape(-1)
                    for o in interpreter.get_output_details()
                }
                got.append((out["conv2d_21"], out["conv2d_31"]))
            outputs[name] = [np.stack([g[0] for g in got]), np.stack([g[1] for g in got])]
        diffs = {}
        for a, b in (("onnx", "tflite_xnnpack"), ("onnx", "tflite_reference_kernels"), ("torch", "onnx")):
            diffs[f"{a}_vs_{b}"] = {
                "landmarks_max_abs_px": float(np.abs(outputs[a][0] - outputs[b][0]).max()),
                "face_logit_max_abs": float(np.abs(outputs[a][1] - outputs[b][1]).max()),
            }
        points = outputs["onnx"][0].reshape(-1, 468, 3)
        errors = np.linalg.norm(np.stack([eye_centres(p) for p in points]) - mtcnn_eyes, axis=2)
        logits = outputs["onnx"][1].reshape(-1)
        report[label] = {
            "parity": diffs,
            "face_logit": {"min": float(logits.min()), "median": float(np.median(logits))},
            "eye_error_crop_px": {"median": float(np.median(errors)), "max": float(errors.max())},
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True, help=f"the PyPI wheel {WHEEL_NAME}")
    parser.add_argument("--out", type=Path, default=Path("models"), help="folder for the ONNX file")
    parser.add_argument("--parity", type=Path, metavar="DATA", help="the shared data folder (lfw/, video/)")
    parser.add_argument("--crops", type=int, default=40, help="face crops for --parity (default 40)")
    args = parser.parse_args(argv)

    tflite = read_tflite_bytes(args.wheel)
    net = build(tflite)
    path, sha = export(net, args.out)
    print(json.dumps({"onnx": str(path), "sha256": sha}))
    if args.parity:
        print(json.dumps(parity(net, path, tflite, args.parity, args.crops), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
