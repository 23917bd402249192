"""Snapshots of failed attempts: private files, never written through a link or over another file."""

import os
import time

import numpy as np

from faceunlock.audit import save_snapshot
from faceunlock.config import AuditConfig
from faceunlock.decision import Decision


def test_snapshots_are_new_private_files_never_behind_a_link(tmp_path, monkeypatch):
    folder = tmp_path / "snapshots"
    cfg = AuditConfig(snapshots=True, snapshot_dir=str(folder), snapshot_max_mb=10)
    monkeypatch.setattr(time, "strftime", lambda _fmt: "20261206T120000")
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("someone else's file\n")
    (folder / "20261206T120000-alice-no-match.jpg").symlink_to(victim)
    frame = np.full((48, 64, 3), 90, np.uint8)
    first = save_snapshot(frame, Decision(user="alice", decision="no-match"), cfg)
    second = save_snapshot(frame, Decision(user="alice", decision="no-match"), cfg)
    assert victim.read_text() == "someone else's file\n"
    assert first != second and first.name.startswith("20261206T120000-alice-no-match-")
    for path in (first, second):
        st = os.lstat(path)
        assert oct(st.st_mode & 0o777) == "0o600" and st.st_size > 0 and not path.is_symlink()
    assert save_snapshot(frame, Decision(user="alice", decision="match"), cfg) is None
