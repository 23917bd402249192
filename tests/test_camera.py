"""Frame sources on real files, and a clear error for every kind of bad source."""

import os
import stat
import struct
import threading
import time
import zlib

import cv2
import numpy as np
import pytest
from missing import need_root

from faceunlock.camera import (
    FolderSource,
    SourceNotFound,
    SourceOptions,
    SourceTimeout,
    SourceUnreadable,
    UnsupportedSource,
    open_source,
    read_image,
)


def test_video_file_gives_every_frame_in_rgb(video_dir):
    with open_source(str(video_dir / "live-person-a.webm")) as src:
        frames = list(src.frames())
    assert len(frames) == 214 == src.stats.delivered == src.stats.read
    assert frames[0].shape == (480, 640, 3) and frames[0].dtype == np.uint8


def test_folder_in_name_order_skips_black_and_dark(tmp_path, lfw_dir):
    face = cv2.imread(str(lfw_dir / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"))
    cv2.imwrite(str(tmp_path / "b.png"), face)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros_like(face))
    cv2.imwrite(str(tmp_path / "c.png"), (face * 0.05).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "d.png"), face[:, ::-1])
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(str(tmp_path), SourceOptions(dark_threshold=25))
    assert isinstance(src, FolderSource)
    frames = list(src.frames())
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0], cv2.cvtColor(face, cv2.COLOR_BGR2RGB))
    assert (src.stats.black, src.stats.dark, src.stats.delivered) == (1, 1, 2)


def test_greyscale_ir_frames_become_rgb(tmp_path, lfw_dir):
    grey = cv2.imread(str(lfw_dir / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(tmp_path / "ir.png"), grey)
    (frame,) = list(open_source(str(tmp_path / "ir.png")).frames())
    assert frame.shape == grey.shape + (3,)


def test_camera_index_and_device_that_do_not_exist():
    with pytest.raises(SourceNotFound, match="no such camera device: /dev/video97"):
        open_source("97")
    with pytest.raises(SourceNotFound, match="no such camera device: /dev/video98"):
        open_source("/dev/video98")


def test_device_that_is_not_a_camera():
    with pytest.raises(UnsupportedSource, match="/dev/null is not a V4L2 video device"):
        open_source("/dev/null")


def test_missing_file_and_unsupported_format(tmp_path):
    with pytest.raises(SourceNotFound, match="no such file or folder"):
        open_source(str(tmp_path / "absent.webm"))
    (tmp_path / "x.toml").write_text("a = 1")
    with pytest.raises(UnsupportedSource, match="unsupported source format '.toml'"):
        open_source(str(tmp_path / "x.toml"))


def test_empty_folder(tmp_path):
    with pytest.raises(SourceUnreadable, match="folder has no image files"):
        open_source(str(tmp_path))


def test_zero_byte_image_and_video(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "empty.webm").write_bytes(b"")
    with pytest.raises(SourceUnreadable, match=r"image file is empty \(0 bytes\)"):
        open_source(str(tmp_path / "empty.jpg"))
    with pytest.raises(SourceUnreadable, match=r"video file is empty \(0 bytes\)"):
        open_source(str(tmp_path / "empty.webm"))


def test_corrupt_and_truncated_images(tmp_path, lfw_dir):
    jpg = (lfw_dir / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg").read_bytes()
    (tmp_path / "noise.jpg").write_bytes(os.urandom(5000))
    (tmp_path / "half.jpg").write_bytes(jpg[: len(jpg) // 2])
    ok, png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR))
    (tmp_path / "half.png").write_bytes(png.tobytes()[: len(png) // 2])
    with pytest.raises(SourceUnreadable, match="cannot decode image .*noise.jpg"):
        read_image(tmp_path / "noise.jpg")
    with pytest.raises(SourceUnreadable, match="truncated JPEG"):
        read_image(tmp_path / "half.jpg")
    with pytest.raises(SourceUnreadable, match="cannot decode image .*half.png"):
        read_image(tmp_path / "half.png")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_decompression_bomb_and_huge_file(tmp_path):
    side = 30000
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (side + 1) * 64)
    bomb = (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(SourceUnreadable, match="over 40000000 pixels"):
        read_image(tmp_path / "bomb.png")
    with open(tmp_path / "huge.png", "wb") as fh:
        fh.truncate(65 * 1024 * 1024)
    with pytest.raises(SourceUnreadable, match="image file is too large"):
        read_image(tmp_path / "huge.png")


def test_video_with_no_frames(tmp_path, video_dir):
    (tmp_path / "cut.webm").write_bytes((video_dir / "live-person-a.webm").read_bytes()[:300])
    with pytest.raises(SourceUnreadable, match="cut.webm"):
        list(open_source(str(tmp_path / "cut.webm")).frames())


def test_stuck_source_times_out_instead_of_hanging(tmp_path):
    """A FIFO with no writer blocks OpenCV's open forever: the open timeout must fire."""
    fifo = tmp_path / "stuck.webm"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SourceTimeout, match=r"opening video file .*stuck.webm did not finish within 0.5 s"):
        open_source(str(fifo), SourceOptions(open_timeout=0.5))
    assert time.monotonic() - started < 2.0
    release = threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True)
    release.start()
    release.join(timeout=5)


def test_stalled_stream_times_out_on_read(tmp_path, video_dir):
    """A stream that delivers its first frames and then stalls: the read timeout must fire."""
    fifo = tmp_path / "stall.webm"
    os.mkfifo(fifo)
    data = (video_dir / "live-person-a.webm").read_bytes()
    writer_done = threading.Event()

    def feed():
        with open(fifo, "wb") as fh:
            fh.write(data[: len(data) // 3])
            fh.flush()
            writer_done.wait(10)

    threading.Thread(target=feed, daemon=True).start()
    src = open_source(str(fifo), SourceOptions(open_timeout=5, read_timeout=0.5))
    started = time.monotonic()
    with pytest.raises(SourceTimeout, match="reading video file .*did not finish within 0.5 s"):
        for _ in src.frames():
            pass
    assert src.stats.read > 0
    assert time.monotonic() - started < 15
    writer_done.set()


def test_black_frames_end_at_the_deadline(tmp_path):
    """A covered lens: black frames are skipped, but the deadline still ends the stream on time."""
    frame = tmp_path / "f00000.png"
    cv2.imwrite(str(frame), np.zeros((480, 640, 3), np.uint8))
    for i in range(1, 3000):
        (tmp_path / f"f{i:05d}.png").symlink_to(frame.name)
    src = open_source(str(tmp_path))
    started = time.monotonic()
    assert list(src.frames(deadline=started + 0.5)) == []
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.0, elapsed
    assert 0 < src.stats.black < 3000


def test_a_stalled_read_is_cut_short_by_the_deadline(tmp_path, video_dir):
    """A stream that stalls: the read gives up at the deadline, not after the longer read timeout."""
    fifo = tmp_path / "stall.webm"
    os.mkfifo(fifo)
    data = (video_dir / "live-person-a.webm").read_bytes()
    done = threading.Event()

    def feed():
        with open(fifo, "wb") as fh:
            fh.write(data[: len(data) // 3])
            fh.flush()
            done.wait(20)

    threading.Thread(target=feed, daemon=True).start()
    src = open_source(str(fifo), SourceOptions(open_timeout=5, read_timeout=10))
    started = time.monotonic()
    frames = list(src.frames(deadline=started + 4))
    assert frames and time.monotonic() - started < 5
    done.set()


def test_auto_picks_udevs_stable_name_and_a_camera_plugged_in_later(tmp_path):
    """camera.source = "auto" (the default): the by-id name of the lowest-numbered capture node,
    looked up afresh each time; /dev/video0 while there is none."""
    need_root("mknod")
    from faceunlock.config import Config, device_path, not_a_device

    assert Config().camera.source == "auto"
    dev = tmp_path / "dev"
    by_id = dev / "v4l" / "by-id"
    by_id.mkdir(parents=True)
    assert device_path("auto", dev) == str(dev / "video0")
    (by_id / "usb-Acme_Cam_A-video-index0").symlink_to("../../video9")
    assert device_path("auto", dev) == str(dev / "video0"), "a link to a camera unplugged since"
    os.mknod(dev / "video2", 0o600 | stat.S_IFCHR, os.makedev(81, 2))
    (by_id / "usb-Acme_Cam_B-video-index0").symlink_to("../../video2")
    (by_id / "usb-Acme_Cam_B-video-index1").symlink_to("../../video3")
    assert device_path("auto", dev) == str(by_id / "usb-Acme_Cam_B-video-index0")
    os.mknod(dev / "video4", 0o600 | stat.S_IFCHR, os.makedev(81, 4))
    (by_id / "usb-AAA_Plugged_In_Later-video-index0").symlink_to("../../video4")
    assert device_path("auto", dev) == str(by_id / "usb-Acme_Cam_B-video-index0"), (
        "a device plugged in later does not win by its name"
    )
    assert device_path("3", dev) == str(dev / "video3")
    assert not not_a_device("auto"), "no camera yet is not a reason to refuse to start"
