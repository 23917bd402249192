"""`faceunlock eval lfw` through the full pipeline on two real View 2 folds (1,200 pairs)."""

import json

import torch

from faceunlock.cli import main


def test_two_folds_of_view2(lfw_dir, tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "lfw.json"
    pairs = lfw_dir.parent / "pairs.txt"
    args = ["eval", "lfw", "--root", str(lfw_dir), "--pairs", str(pairs), "--folds", "1", "2"]
    try:
        code = main([*args, "--no-all-pairs", "--threads", "1", "--json", str(out), "--plots", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("auc", "eer", "tar_at_far", "pairs", "accuracy"):
        assert key in result
    assert result["pairs"] == {"genuine": 600, "impostor": 600}
    # measured 98.4% without flip averaging, the weakest configuration; a broken stage falls far below
    assert result["accuracy"] >= 0.975, result["accuracy"]
    assert result["auc"] > 0.99 and result["eer"] < 0.03
    assert result["no_face"]["count"] <= 2
    assert (tmp_path / "roc.png").stat().st_size > 1000 and (tmp_path / "hist.png").stat().st_size > 1000
    assert "LFW accuracy" in capsys.readouterr().out
