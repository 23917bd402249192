"""The run-time paths import no torch: enrol, verify and the daemon's pipeline run on ONNX Runtime,
and a failing `faceunlock list` loads no network at all."""

import json
import os
import subprocess
import sys

import cv2
import pytest

from faceunlock.errors import EXIT_ERROR

PROBE = """
import json, sys
from faceunlock.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""

DAEMON_PROBE = """
import json, sys
sys.modules["torch"] = None  # as in the Debian package, which ships no torch: importing it fails
from faceunlock.config import Config
from faceunlock.model import load_card
from faceunlock.service import daemon
from faceunlock import runtime
pipeline = runtime.load_pipeline(Config(), load_card(), 1)
daemon.warm_up(pipeline)
real_access = daemon.os.access
daemon.os.access = lambda path, mode: path != "/proc/cpuinfo" and real_access(path, mode)  # ProcSubset=pid
daemon.without_nnpack_if_blind()
print(json.dumps({"backend": pipeline.backend, "torch": sys.modules["torch"] is not None}))
"""


def run_cli(*args: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_failing_list_imports_no_torch(tmp_path):
    missing = tmp_path / "nonexistent"
    result, err = run_cli("list", "--user", "nobody", "--store", str(missing))
    assert result == {"code": EXIT_ERROR, "torch": False}
    assert f"user 'nobody' is not enrolled (no {missing}/nobody.json)" in err


@pytest.fixture(scope="module")
def frames(video_dir, tmp_path_factory):
    """Frames 0-19 (to enrol) and 60-89 (to verify) of a live recording, as PNG folders."""
    root = tmp_path_factory.mktemp("frames")
    enrol, verify = root / "enrol", root / "verify"
    enrol.mkdir(), verify.mkdir()
    cap = cv2.VideoCapture(str(video_dir / "live-person-a.webm"))
    try:
        for i in range(90):
            ok, frame = cap.read()
            assert ok, f"cannot read frame {i}"
            if i < 20:
                cv2.imwrite(str(enrol / f"{i:04d}.png"), frame)
            elif i >= 60:
                cv2.imwrite(str(verify / f"{i:04d}.png"), frame)
    finally:
        cap.release()
    return enrol, verify


def test_enrol_and_verify_import_no_torch(frames, tmp_path):
    enrol, verify = frames
    store = str(tmp_path / "store")
    common = ["--user", "probe", "--store", store, "--threads", "1"]
    result, err = run_cli("enroll", *common, "--frames", "10", "--source", str(enrol))
    assert result == {"code": 0, "torch": False}, err
    result, err = run_cli("verify", *common, "--source", str(verify), "--verbose")
    assert result == {"code": 0, "torch": False}, err
    assert "decision=match" in err, "--verbose shows the audit line"


def test_the_daemons_pipeline_imports_no_torch():
    proc = subprocess.run([sys.executable, "-c", DAEMON_PROBE], capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"backend": "onnx", "torch": False}, proc.stderr


def test_the_probe_sees_torch_when_a_command_loads_it(tmp_path):
    """The probe can fail: the torch backend does import torch (then fails on the missing pairs file)."""
    result, err = run_cli("eval", "lfw", "--backend", "torch", "--root", str(tmp_path), "--pairs", "missing")
    assert result == {"code": EXIT_ERROR, "torch": True}, err


def test_onnx_runtime_sends_no_telemetry_and_writes_nothing_home(tmp_path):
    """ONNX Runtime's Linux telemetry (on by default unless CI or ORT_DISABLE_TELEMETRY is set) is
    off in every faceunlock process: loading the networks leaves the home folder empty."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CI", "ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS")
    }
    env["HOME"] = str(home)
    code = (
        "import os, numpy as np\n"
        "from faceunlock.config import Config\n"
        "from faceunlock.model import load_card\n"
        "from faceunlock.pipeline import Pipeline\n"
        "Pipeline(Config(), load_card(), threads=1).analyse(np.zeros((240, 320, 3), np.uint8))\n"
        "print(os.environ['ORT_DISABLE_TELEMETRY'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr
    assert list(home.rglob("*")) == [], "onnxruntime wrote into the home folder"
