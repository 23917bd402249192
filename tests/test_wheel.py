"""The built wheel works outside the checkout: installed (not editable) into a fresh virtual
environment, `faceunlock enroll` and `faceunlock verify` run on real video frames.

The fresh environment gets the wheel alone; its dependencies (torch and the rest, several hundred
MB) are borrowed from this environment through a .pth file added after the install, so the test
needs no network. Nothing of the checkout is on its path: package data (model cards, weights)
must come from the wheel.
"""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from missing import unavailable

from faceunlock.testing.service import extract

ROOT = Path(__file__).resolve().parent.parent


def tracked_files() -> list[str]:
    if not (ROOT / ".git").exists():
        unavailable("not a git checkout: the source files to build from are unknown")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [f for f in out.decode().split("\0") if f]


def copy_source(dst: Path) -> Path:
    """The tracked files of the checkout (symlinks kept as links), so the build leaves it untouched."""
    for name in tracked_files():
        src, out = ROOT / name, dst / name
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            out.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, out)
    return dst


def run(cmd: list, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_installed_wheel_enrols_and_verifies(video_dir, tmp_path):
    source = copy_source(tmp_path / "src")
    dist = tmp_path / "dist"
    # pip builds the wheel through the PEP 517 backend, as `python -m build --wheel` does; without
    # build isolation it uses this environment's setuptools, so no network is needed.
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, source],
        {**os.environ},
        source,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("faceunlock-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py, bin_dir = venv / "bin" / "python", venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FACEUNLOCK_MODELS", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    pip = run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], env, tmp_path)
    assert pip.returncode == 0, pip.stderr
    purelib = Path(
        run(
            [py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env, tmp_path
        ).stdout.strip()
    )
    (purelib / "borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    where = run(
        [py, "-c", "import faceunlock.paths as p; print(p.__file__); print(p.models_dir())"], env, tmp_path
    )
    module, models = where.stdout.split()
    assert Path(module).is_relative_to(purelib), where
    assert (
        Path(models).resolve().is_relative_to(purelib) and (Path(models) / "dlib-resnet-ft1.json").is_file()
    )

    shipped = ("man/faceunlock.1", "completions/_faceunlock", "desktop/org.faceunlock.Settings.desktop")
    probe = (
        "import sys; from faceunlock.paths import package_data as d; "
        "print(all(d(p).is_file() for p in sys.argv[1:]))"
    )
    assert (
        run([py, "-c", probe, *shipped, "polkit/org.faceunlock.policy"], env, tmp_path).stdout.strip()
        == "True"
    )

    live = video_dir / "live-person-a.webm"
    enrol_frames = extract(live, tmp_path / "enrol", range(0, 60))
    later_frames = extract(live, tmp_path / "later", range(60, 90))
    config = tmp_path / "config.toml"
    config.write_text("")
    common = ["--store", tmp_path / "store", "--config", config, "--threads", "1"]
    enrolled = run(
        [
            bin_dir / "faceunlock",
            "enroll",
            "--user",
            "alice",
            "--source",
            enrol_frames,
            "--frames",
            "10",
            *common,
        ],
        env,
        tmp_path,
    )
    assert enrolled.returncode == 0, enrolled.stderr[-3000:]
    assert "enrolled alice (default): 10 embeddings" in enrolled.stdout

    verified = run(
        [bin_dir / "faceunlock", "verify", "--user", "alice", "--source", later_frames, "--json", *common],
        env,
        tmp_path,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr[-3000:]
    result = json.loads(verified.stdout)
    assert result["decision"] == "match" and result["distance"] < result["threshold"], result

    stranger = run(
        [bin_dir / "faceunlock", "verify", "--user", "bob", "--source", later_frames, *common], env, tmp_path
    )
    assert stranger.returncode != 0 and "not enrolled" in stranger.stdout + stranger.stderr
