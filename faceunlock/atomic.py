"""Atomic file replacement, safe for root writing into a folder another account owns.

A private temporary file is created, written, fsynced and renamed over the
target, and the folder is fsynced. Everything goes through a descriptor of the
folder, opened without following a symbolic link at its last component, and
the temporary file is created exclusively without following links: the owner
of the folder (the daemon's user, when root writes into its state directory)
cannot redirect root's writes, ownership changes or renames to another file by
swapping in a link. Ownership is handed over through the file's descriptor,
never through its name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def open_folder(path: Path | str, dir_fd: int | None = None) -> int:
    """A descriptor of the folder path; OSError (ELOOP, ENOTDIR) when its last component is a link or
    not a folder."""
    return os.open(path, FOLDER_FLAGS, dir_fd=dir_fd)


def make_folder(path: Path, owner: tuple[int, int] | None = None, mode: int = 0o700) -> bool:
    """Create the folder path (its parent must exist), handed to owner through its descriptor.

    An existing folder is left as it is; an existing link or file in its place is an OSError.
    Returns whether it was created.
    """
    parent = open_folder(path.parent)
    try:
        try:
            os.mkdir(path.name, mode, dir_fd=parent)
            created = True
        except FileExistsError:
            created = False
        fd = open_folder(path.name, dir_fd=parent)
        try:
            if created:
                os.fchmod(fd, mode)
                if owner is not None:
                    os.fchown(fd, *owner)
        finally:
            os.close(fd)
    finally:
        os.close(parent)
    return created


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o600, owner: tuple[int, int] | None = None) -> Iterator[BinaryIO]:
    """A binary file to write that replaces path when the block ends; on an error path is untouched.

    Readers see either the old or the new file, never a mix, even after a crash.
    owner (uid, gid): hand the file to that account before it appears (root writing for a service user).
    """
    path = Path(path)
    folder = open_folder(path.parent)
    try:
        tmp = f".{path.stem}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, CREATE_FLAGS, 0o600, dir_fd=folder)
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
            raise
        os.fsync(folder)
    finally:
        os.close(folder)


def atomic_write(path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Replace path with data atomically (see atomic_file)."""
    with atomic_file(path, mode, owner) as fh:
        fh.write(data)


def read_private(path: Path, limit: int) -> bytes:
    """Read a regular file without following a link or blocking on a FIFO; at most limit bytes.

    FileNotFoundError when absent; OSError naming the problem otherwise.
    """
    folder = open_folder(path.parent)
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path} is larger than {limit} bytes")
    return data
