"""`faceunlock eval liveness` end to end on real videos given on the command line (no built-in split).

person A's webcam video is the live clip and enrols A; the phone replay of A's face is the attack.
Both are fitting clips, where the thresholds were chosen so that no replay window matches: the test
checks the command's plumbing and arithmetic, not the held-out rates (models/README.md has those).
"""

import json

import pytest

from faceunlock.cli import main


def test_rates_windows_timing_and_plot_from_videos_on_the_command_line(video_dir, tmp_path, capsys):
    out = tmp_path / "liveness.json"
    args = ["eval", "liveness", "--split", "none", "--live", str(video_dir / "live-person-a.webm")]
    args += ["--attack", f"replay-phone={video_dir / 'replay-person-a.webm'}"]
    args += ["--enrol", str(video_dir / "live-person-a.webm"), "--lengths", "8", "30", "--timing", "2"]
    args += ["--json", str(out), "--plots", str(tmp_path), "--level", "balanced"]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["level"] == "balanced" and set(result["data"]) == {"live", "replay-phone"}
    assert result["not_enrolled"] == {}
    short, long = result["lengths"]["8"]["kinds"], result["lengths"]["30"]["kinds"]
    for kinds in (short, long):
        live, replay = kinds["live"], kinds["replay-phone"]
        assert live["windows"] > 0 and replay["windows"] > 0
        assert 1 >= live["bpcer"] >= live["bpcer_liveness_off"], "liveness only ever adds rejections"
        assert replay["apcer"] == 0 and replay["accepted"] == 0
    assert short["live"]["windows"] - long["live"]["windows"] == 22, "every run of N frames is a window"
    assert long["live"]["bpcer"] < 0.5
    timing = result["time_to_match"]
    assert timing["scans"] == 2 and timing["matched"] == 2 and timing["ms_median"] > 0
    assert (tmp_path / "liveness_det.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "replay-phone" in printed and "genuine scans to match" in printed


@pytest.mark.parametrize(
    "spec, message",
    [
        ("replay", "KIND=PATH"),
        ("live=x.webm", "other than 'live'"),
        ("replay=missing.webm", "video not found"),
    ],
)
def test_a_bad_attack_spec_is_a_clear_error(spec, message, tmp_path, capsys):
    assert main(["eval", "liveness", "--split", "none", "--attack", spec]) != 0
    assert message in capsys.readouterr().err
