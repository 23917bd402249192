"""The ONNX files against the torch models they were exported from, on real faces; and their checks.

Parity: on LFW photos and webcam frames (live and replayed), the ONNX detector finds the same faces
as the torch one, with boxes and landmarks within 1e-5 of the face's size and scores within 1e-5, and
the float ONNX embedder's descriptors (plain and flip-averaged) are within 1e-5 of torch's, so
templates, the fingerprint and the calibrated thresholds hold for either backend.

The run-time embedder is the int8 quantisation of the float one: rebuilt byte for byte by its
script, close to the float network on real chips, and with its own card and thresholds.
"""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceunlock.errors import ModelError
from faceunlock.evaluation.speed import INT8_SHIFT
from faceunlock.model import DEFAULT_MODEL, FLOAT_MODEL, load_card, load_detector_card
from faceunlock.networks import load_detector, load_detector_nets, load_embedder
from faceunlock.paths import models_dir
from faceunlock.vision.align import align
from faceunlock.vision.backend import file_sha256

TOLERANCE = 1e-5
VIDEOS = {"live-person-a.webm": range(0, 150, 15), "replay-person-a.webm": range(0, 100, 20)}


@pytest.fixture(scope="module")
def images(lfw_dir, video_dir):
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[::300]
    out = [cv2.cvtColor(cv2.imread(str(sorted(p.glob("*.jpg"))[0])), cv2.COLOR_BGR2RGB) for p in people]
    for name, keep in VIDEOS.items():
        cap = cv2.VideoCapture(str(video_dir / name))
        try:
            for i in range(max(keep) + 1):
                ok, frame = cap.read()
                assert ok, f"cannot read frame {i} of {name}"
                if i in keep:
                    out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        finally:
            cap.release()
    return out


@pytest.fixture(scope="module")
def detectors():
    return {b: load_detector(20, backend=b, threads=1) for b in ("onnx", "torch")}


@pytest.fixture(scope="module")
def chips(images, detectors):
    found = [detectors["torch"].detect(rgb) for rgb in images]
    pairs = zip(images, found, strict=True)
    return np.stack([align(rgb, d.faces[0].landmarks) for rgb, d in pairs if d.faces])


def test_the_detectors_agree(images, detectors):
    faces = 0
    for rgb in images:
        ref, got = detectors["torch"].detect(rgb), detectors["onnx"].detect(rgb)
        assert len(got.faces) == len(ref.faces)
        for a, b in zip(ref.faces, got.faces, strict=True):
            faces += 1
            assert abs(a.score - b.score) <= TOLERANCE
            assert np.abs(np.subtract(a.box, b.box)).max() <= TOLERANCE * a.size
            assert np.abs(a.landmarks - b.landmarks).max() <= TOLERANCE * a.size
    assert faces >= len(images) - 2


def test_each_detector_net_agrees_on_real_inputs(images, detectors):
    """The raw outputs of P-Net on a real frame's pyramid level and of R-/O-Net on real crops."""
    onnx, torch_nets = load_detector_nets("onnx", 1), load_detector_nets("torch", 1)
    rgb = images[-1].astype(np.float32)
    level = ((cv2.resize(rgb, (213, 160), interpolation=cv2.INTER_AREA) - 127.5) / 128).transpose(2, 0, 1)
    face = detectors["torch"].detect(images[-1]).faces[0]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    crop = rgb[max(y1, 0) : y2, max(x1, 0) : x2]
    inputs = {
        "pnet": level[None],
        "rnet": np.stack([((cv2.resize(crop, (24, 24)) - 127.5) / 128).transpose(2, 0, 1)] * 3),
        "onet": ((cv2.resize(crop, (48, 48)) - 127.5) / 128).transpose(2, 0, 1)[None],
    }
    for name, x in inputs.items():
        ref, got = getattr(torch_nets, name)(x), getattr(onnx, name)(x)
        assert len(ref) == len(got)
        for r, g in zip(ref, got, strict=True):
            assert r.shape == g.shape and np.abs(r - g).max() <= TOLERANCE, name


@pytest.mark.parametrize("flip", [False, True])
def test_the_embedders_agree(chips, flip):
    card = load_card(FLOAT_MODEL)
    onnx = load_embedder(card, "onnx", 1, flip).embed(chips)
    ref = load_embedder(card, "torch", 1, flip).embed(chips)
    assert len(chips) >= 10 and onnx.shape == ref.shape == (len(chips), 128)
    assert np.abs(onnx - ref).max() <= TOLERANCE


def test_the_flip_pair_in_one_batch_equals_two_passes(chips):
    from faceunlock.vision.embed_input import flip_average, mirror

    embedder = load_embedder(load_card(FLOAT_MODEL), "onnx", 1, flip=False)
    expected = flip_average(embedder.embed(chips[:4]), embedder.embed(mirror(chips[:4])))
    embedder.flip = True
    assert np.abs(embedder.embed(chips[:4]) - expected).max() <= TOLERANCE


def test_the_shipped_files_are_what_export_writes(tmp_path):
    """`faceunlock export` from the torch weights reproduces every shipped ONNX file byte for byte."""
    from faceunlock.cli import main

    assert main(["export", "--out", str(tmp_path)]) == 0
    card = load_card(FLOAT_MODEL)
    shipped = {card.onnx.path.name: card.onnx.sha256}
    shipped |= {n.onnx.path.name: n.onnx.sha256 for n in load_detector_card().values()}
    assert len(shipped) == 4
    for name, sha in shipped.items():
        assert file_sha256(models_dir() / name) == sha, f"shipped {name} differs from its card"
        assert file_sha256(tmp_path / name) == sha, f"export wrote a different {name}"


@pytest.fixture
def models_copy(tmp_path, monkeypatch):
    copy = tmp_path / "models"
    shutil.copytree(models_dir(), copy, ignore=shutil.ignore_patterns("*.pt"))
    monkeypatch.setenv("FACEUNLOCK_MODELS", str(copy))
    return copy


def test_a_changed_onnx_file_does_not_load(models_copy):
    onnx = models_copy / "mtcnn-onet.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 1
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="mtcnn-onet.onnx has sha256 .* but its card expects"):
        load_detector_nets()


def test_an_onnx_file_from_other_weights_does_not_load(models_copy):
    """The card's own sha256 for a file exported from other weights: caught by the recorded source."""
    for name in (FLOAT_MODEL, DEFAULT_MODEL):
        path = models_copy / f"{name}.json"
        raw = json.loads(path.read_text())
        raw["weights"]["sha256"] = "0" * 64
        path.write_text(json.dumps(raw))
        with pytest.raises(ModelError, match="was exported from weights"):
            load_embedder(load_card(name))


def test_a_missing_onnx_file_is_a_clear_error(models_copy):
    (models_copy / "dlib-resnet-ft1.onnx").unlink()
    with pytest.raises(ModelError, match="model file not found: .*dlib-resnet-ft1.onnx"):
        load_embedder(load_card(FLOAT_MODEL))


def test_the_shipped_int8_file_is_what_the_quantise_script_writes(tmp_path, celeba_dir):
    """scripts/quantise_embedder.py, from the float file and celeba-train, rebuilds it: the same
    graph and int8 weights, and the same activation ranges up to float rounding (they come from
    running the networks, whose last bits can differ between CPUs; on the machine that made the
    shipped file the rebuild is byte for byte the same)."""
    import subprocess
    import sys

    import onnx
    from onnx.numpy_helper import to_array

    script = Path(__file__).resolve().parents[1] / "scripts" / "quantise_embedder.py"
    cmd = [sys.executable, str(script), "--calibration", str(celeba_dir), "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    card = load_card(DEFAULT_MODEL)
    assert card.quantised and card.onnx.path.name == f"{FLOAT_MODEL}-int8.onnx"
    assert file_sha256(card.onnx.path) == card.onnx.sha256
    shipped, rebuilt = onnx.load(str(card.onnx.path)), onnx.load(str(tmp_path / card.onnx.path.name))
    nodes = [[(n.op_type, list(n.input), list(n.output)) for n in m.graph.node] for m in (shipped, rebuilt)]
    assert nodes[0] == nodes[1]
    ours = {t.name: to_array(t) for t in rebuilt.graph.initializer}
    assert sorted(ours) == sorted(t.name for t in shipped.graph.initializer)
    for tensor in shipped.graph.initializer:
        a, b = to_array(tensor), ours[tensor.name]
        assert a.dtype == b.dtype and a.shape == b.shape, tensor.name
        if a.dtype == np.float32:
            assert np.allclose(a, b, rtol=1e-3, atol=1e-9), tensor.name
        elif a.dtype in (np.uint8, np.int32):
            gap = np.abs(a.astype(np.int64) - b)
            assert np.all(gap <= np.maximum(1, 1e-3 * np.abs(a))), tensor.name
        else:
            assert np.array_equal(a, b), tensor.name
    written = json.loads((tmp_path / f"{DEFAULT_MODEL}.json").read_text())
    assert written["quantisation"] == json.loads(card_path(DEFAULT_MODEL).read_text())["quantisation"]


def card_path(name):
    return models_dir() / f"{name}.json"


def test_the_int8_embedder_keeps_the_float_ones_distances(chips):
    """On real chips, every pairwise distance moves by little next to the thresholds' spacing; the
    int8 card's thresholds were recalibrated, not copied."""

    def distances(e):
        d = np.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))
        return d[np.triu_indices(len(e), 1)]

    int8, float_ = load_card(DEFAULT_MODEL), load_card(FLOAT_MODEL)
    a = load_embedder(int8, "onnx", 1).embed(chips)
    b = load_embedder(float_, "onnx", 1).embed(chips)
    moved = np.abs(distances(a) - distances(b))
    spread = (moved.max(), moved.mean())
    assert len(moved) >= 45 and moved.max() <= INT8_SHIFT and moved.mean() <= 0.008, spread
    assert 0 < np.abs(a - b).max() <= 0.06
    assert int8.thresholds != float_.thresholds and int8.attempt.thresholds != float_.attempt.thresholds
    assert int8.embedding_id != float_.embedding_id and int8.sha256 == float_.sha256


def test_the_int8_card_runs_on_onnx_only():
    from faceunlock.model import default_model
    from faceunlock.training.export import export_embedder

    with pytest.raises(ModelError, match="int8 ONNX network: it runs on the onnx backend only"):
        load_embedder(load_card(DEFAULT_MODEL), "torch", 1)
    with pytest.raises(ModelError, match="int8 quantisation: export its float source"):
        export_embedder(DEFAULT_MODEL, models_dir())
    assert default_model("torch") == FLOAT_MODEL and default_model("onnx") == DEFAULT_MODEL
