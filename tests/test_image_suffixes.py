"""One list of image suffixes: what the camera reads, `eval folder` reads too (PGM, BMP, WebP, TIFF)."""

import cv2

from faceunlock.camera import IMAGE_SUFFIXES, FolderSource, SourceOptions
from faceunlock.cli import main
from faceunlock.evaluation.folders import identity_images


def test_eval_folder_reads_every_image_kind_the_camera_reads(lfw_dir, tmp_path, capsys):
    people = ["George_W_Bush", "Colin_Powell"]
    kinds = [".pgm", ".bmp", ".webp", ".tif"]
    for person in people:
        (tmp_path / person).mkdir()
        for i, kind in enumerate(kinds[:2] if person == people[0] else kinds[2:]):
            photo = cv2.imread(str(sorted((lfw_dir / person).glob("*.jpg"))[i]))
            if kind == ".pgm":
                photo = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
            assert cv2.imwrite(str(tmp_path / person / f"{i}{kind}"), photo)
    names = identity_images(tmp_path)
    assert [n.rsplit(".", 1)[1] for n in names] == ["webp", "tif", "pgm", "bmp"]
    assert {f".{n.rsplit('.', 1)[1]}" for n in names} <= IMAGE_SUFFIXES
    with FolderSource(tmp_path / people[0], SourceOptions()) as source:
        assert len(list(source.frames())) == 2
    assert main(["eval", "folder", "--root", str(tmp_path), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "pairs: 2 genuine, 4 impostor; images: 4" in out
