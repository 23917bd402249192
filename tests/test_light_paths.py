"""Commands that need no network load no network: a failing `faceunlock list` imports no torch."""

import json
import subprocess
import sys

PROBE = """
import json, sys
from faceunlock.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


def run_cli(*args: str) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_failing_list_imports_no_torch(tmp_path):
    missing = tmp_path / "nonexistent"
    result, err = run_cli("list", "--user", "nobody", "--store", str(missing))
    assert result == {"code": 1, "torch": False}
    assert f"user 'nobody' is not enrolled (no {missing}/nobody.json)" in err


def test_the_probe_sees_torch_when_a_command_loads_it(tmp_path):
    """The probe can fail: a command that builds the network does import torch."""
    result, _ = run_cli("eval", "lfw", "--root", str(tmp_path / "none"), "--pairs", str(tmp_path / "p"))
    assert result == {"code": 1, "torch": True}
