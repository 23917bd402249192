"""`faceunlock eval lfw` on View 1 files: the threshold comes from another pairs file."""

import json

import torch

from faceunlock.cli import main
from faceunlock.errors import EXIT_ERROR

SCORE = (
    "2\nAaron_Peirsol\t1\t2\nAbdullah_Gul\t1\t3\n"
    "AJ_Cook\t1\tMarsha_Thomason\t1\nAaron_Peirsol\t1\tAbdullah_Gul\t3\n"
)
CHOOSE = (
    "2\nAaron_Peirsol\t3\t4\nAbdullah_Gul\t2\t4\n"
    "Aaron_Peirsol\t2\tAJ_Cook\t1\nAbdullah_Gul\t2\tMarsha_Thomason\t1\n"
)


def test_view1_threshold_from_other_pairs(lfw_dir, tmp_path, capsys):
    threads = torch.get_num_threads()
    score, choose = tmp_path / "score.txt", tmp_path / "choose.txt"
    score.write_text(SCORE)
    choose.write_text(CHOOSE)
    base = ["eval", "lfw", "--root", str(lfw_dir), "--pairs", str(score), "--no-all-pairs", "--threads", "1"]
    try:
        assert main([*base, "--threshold-pairs", str(choose), "--json", str(tmp_path / "v1.json")]) == 0
        out = capsys.readouterr().out
        assert "chosen on choose.txt" in out
        result = json.loads((tmp_path / "v1.json").read_text())
        assert result["accuracy"] == 1.0 and 0.3 < result["threshold"] < 1.0
        assert result["pairs"] == {"genuine": 2, "impostor": 2}
        # One fold and no threshold pairs: a clear error rather than a crash in the 10-fold code.
        assert main(base) == EXIT_ERROR
        assert "one fold" in capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)
