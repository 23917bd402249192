"""The MiniFASNet port, its ONNX export and the run-time ONNX path, on real face crops."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from faceunlock.camera import open_source
from faceunlock.errors import ModelError
from faceunlock.liveness.card import load_liveness_card
from faceunlock.liveness.crops import context_box, context_crop
from faceunlock.liveness.export import export_onnx
from faceunlock.liveness.network import load_minifasnet
from faceunlock.liveness.runtime import PadNetworks, real_log_odds
from faceunlock.paths import models_dir
from faceunlock.vision.detect import Detector


@pytest.fixture(scope="module")
def crops(video_dir):
    """(scale, crop) pairs from live and replayed frames of person A and person C."""
    detector = Detector(min_face_size=40, max_side=640, threads=1)
    card = load_liveness_card()
    out = []
    for name in ("live-person-a.webm", "replay-person-a.webm", "live-person-c.mp4", "replay-person-c.mp4"):
        with open_source(str(video_dir / name)) as source:
            for k, rgb in enumerate(source.frames()):
                if k % 40 or k > 200:
                    continue
                face = detector.detect(rgb).largest()
                if face is not None:
                    for net in card.networks:
                        out.append((net.scale, context_crop(rgb, face.box, net.scale), name))
    assert len(out) >= 30
    return out


def torch_logits(net, batch):
    with torch.no_grad():
        return net(torch.from_numpy(batch)).numpy().astype(np.float64)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_onnx_matches_torch_on_real_face_crops(crops):
    """The networks' output, the softmax, agrees to 1e-5; the logits (the score's log-odds come from
    them) to 1e-5 of the largest logit's size (measured: up to 1.03e-5 absolute on logits up to 11,
    float32 rounding)."""
    card = load_liveness_card()
    runtime = PadNetworks(card, threads=1)
    for i, spec in enumerate(card.networks):
        net = load_minifasnet(spec.weights, spec.weights_sha256)
        batch = np.stack([c for s, c, _ in crops if s == spec.scale])
        session, name = runtime.sessions[i]
        got = np.concatenate([session.run(None, {name: c[None]})[0] for c in batch]).astype(np.float64)
        want = torch_logits(net, batch)
        assert np.abs(softmax(got) - softmax(want)).max() <= 1e-5, spec.name
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), spec.name
        odds = np.array([runtime.score(i, c) for c in batch])
        assert np.abs(odds - real_log_odds(got)).max() <= 1e-9, spec.name


def test_a_fresh_export_matches_torch(crops, tmp_path):
    import onnxruntime as ort

    spec = load_liveness_card().networks[1]
    path = export_onnx(spec.weights, tmp_path / "net.onnx", spec.weights_sha256)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = load_minifasnet(spec.weights)
    batch = np.stack([c for s, c, _ in crops if s == spec.scale][:8])
    got = session.run(None, {"crop": batch})[0]
    assert np.abs(got - torch_logits(net, batch)).max() <= 1e-5


def test_the_networks_tell_live_from_replay(crops):
    """Not a rate: the port must behave like the published networks (README probe)."""
    card = load_liveness_card()
    runtime = PadNetworks(card, threads=1)
    by_scale = {n.scale: i for i, n in enumerate(card.networks)}
    live = [runtime.score(by_scale[s], c) for s, c, name in crops if name.startswith("live")]
    replay = [runtime.score(by_scale[s], c) for s, c, name in crops if name.startswith("replay")]
    assert np.median(live) > 2 and np.median(replay) < -2


def test_weights_that_do_not_match_the_card_are_refused(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(models_dir(), folder, ignore=shutil.ignore_patterns("*.pt"))
    card = load_liveness_card(folder=folder)
    onnx = card.networks[0].onnx
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 1
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        PadNetworks(card)
    with pytest.raises(ModelError, match="sha256"):
        load_minifasnet(card.networks[0].weights, "0" * 64)


def test_a_malformed_card_is_refused(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    raw = json.loads((models_dir() / "minifasnet.json").read_text())
    raw["thresholds"]["balanced"] = 1.5
    (folder / "minifasnet.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="attack_below <= fast <= balanced <= strict"):
        load_liveness_card(folder=folder)
    del raw["fusion"]
    (folder / "minifasnet.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="malformed"):
        load_liveness_card(folder=folder)


def test_runtime_liveness_does_not_import_torch(video_dir):
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from faceunlock.liveness import card, cues, score, runtime, crops\n"
        "c = card.load_liveness_card()\n"
        "net = runtime.PadNetworks(c)\n"
        "rgb = np.full((480, 640, 3), 120, np.uint8)\n"
        "print(net.score(0, net.crop(0, rgb, (200.0, 150.0, 360.0, 330.0))))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


@pytest.mark.parametrize(
    "box, scale, shape, expected",
    [
        ((100, 100, 200, 200), 2.0, (480, 640), (50, 50, 250, 250)),
        ((0, 0, 100, 100), 2.0, (480, 640), (0, 0, 200, 200)),
        ((540, 380, 640, 480), 2.0, (480, 640), (439, 279, 639, 479)),
        ((200, 100, 400, 300), 4.0, (480, 640), (60, 0, 539, 479)),
    ],
)
def test_context_box_is_scaled_shrunk_and_shifted_into_the_image(box, scale, shape, expected):
    got = context_box(box, scale, *shape)
    assert got == expected
    assert 0 <= got[0] < got[2] <= shape[1] - 1 and 0 <= got[1] < got[3] <= shape[0] - 1
