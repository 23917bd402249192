"""`faceunlock bench` refuses settings that would time nothing, before it reads the video."""

import pytest

from faceunlock.cli import main


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--cold-runs", "0"], "cold runs must be at least 1, not 0"),
        (["--frames", "0"], "frames timed must be at least 1, not 0"),
        (["--threads"], "thread counts must be 1 or more, not []"),
        (["--threads", "2", "0"], "thread counts must be 1 or more, not [2, 0]"),
    ],
)
def test_bench_refuses_settings_that_time_nothing(args, said, tmp_path, capsys):
    missing = tmp_path / "no-such-video.webm"
    assert main(["bench", "--video", str(missing), *args]) != 0
    assert said in capsys.readouterr().err
