"""The liveness clips of the shared data folder, and which are for fitting and which for reporting.

THE SPLIT (decided before any fitting; never tune on a "report" clip):

- fit (fusion weights, feature choice and thresholds are chosen on these only):
  person A (live-person-a, replay-person-a: phone), the public figure (live-celeb, replay-celeb:
  monitor), and the live clips of arun, bala, dark (live-dark-1, live-dark-2), hang, hcon, hieu,
  raoha; MADE attacks built from these people's frames; printed-photo stand-ins from CelebA.
- report (every figure the README and the model card publish):
  person C (live-person-c, replay-person-c: screen), hoan (live-hoan, and mixed-hoan split into
  its live part, frames 0-55, and its laptop-replay part, frames 85-200), and the live clips of
  kevin, khoi, presence, rin, siva; MADE attacks built from these people's frames;
  printed-photo stand-ins from LFW.

Live clips enrol from their first 2 s and verify on the rest. A replay is judged against its
person's own enrolment (the first 2 s of their live clip), so only liveness can stop it.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import cv2
import numpy as np

from faceunlock.camera import SourceOptions, open_source
from faceunlock.evaluation import made
from faceunlock.evaluation.liveness import Clip

ENROL_SECONDS = 2.0
OFFLINE = SourceOptions(open_timeout=60.0, read_timeout=60.0)
"""Recorded clips are read offline: a busy machine must not turn a slow decode into an error."""
FIT, REPORT = "fit", "report"

LIVE = {
    # name: (file under video/, person, role, room and camera of the recording)
    "live-person-a": ("live-person-a.webm", "A", FIT, "A's room: laptop webcam, bright window behind"),
    "live-celeb": ("more/live-celeb.mp4", "celeb", FIT, "celeb's studio video message"),
    "live-arun": ("more/live-arun.mp4", "arun", FIT, "arun's phone selfie"),
    "live-bala": ("more/live-bala.mp4", "bala", FIT, "bala's phone selfie"),
    "live-dark-1": ("more/live-dark-1.mp4", "dark", FIT, "dark's room: webcam, backlit, near dark"),
    "live-dark-2": ("more/live-dark-2.avi", "dark", FIT, "dark's room: webcam, backlit, near dark"),
    "live-hang": ("more/live-hang.mp4", "hang", FIT, "hang's phone selfie"),
    "live-hcon": ("more/live-hcon.mp4", "hcon", FIT, "hcon's phone selfie"),
    "live-hieu": ("more/live-hieu.mp4", "hieu", FIT, "hieu's phone selfie"),
    "live-raoha": ("more/live-raoha.mp4", "raoha", FIT, "raoha's phone selfie"),
    "live-person-c": ("live-person-c.mp4", "C", REPORT, "C's room: webcam, plain wall"),
    "live-hoan": ("more/live-hoan.mp4", "hoan", REPORT, "hoan's phone selfie"),
    "live-kevin": ("more/live-kevin.mp4", "kevin", REPORT, "kevin's phone selfie"),
    "live-khoi": ("more/live-khoi.mp4", "khoi", REPORT, "khoi's phone selfie"),
    "live-presence": ("more/live-presence.mp4", "presence", REPORT, "presence's phone selfie"),
    "live-rin": ("more/live-rin.mp4", "rin", REPORT, "rin's phone selfie"),
    "live-siva": ("more/live-siva.mp4", "siva", REPORT, "siva's phone selfie"),
}

ATTACKS = {
    # name: (file, attack kind, frames [start, stop) or None, whose live clip enrols, role, instrument,
    #        room and camera of the recording)
    "replay-person-a": (
        "replay-person-a.webm",
        "replay-phone",
        None,
        "live-person-a",
        FIT,
        "phone",
        LIVE["live-person-a"][3],
    ),
    "replay-celeb": (
        "more/replay-celeb.mp4",
        "replay-monitor",
        None,
        "live-celeb",
        FIT,
        "monitor",
        "a monitor filmed in a room",
    ),
    "replay-person-c": (
        "replay-person-c.mp4",
        "replay-screen",
        None,
        "live-person-c",
        REPORT,
        "screen",
        LIVE["live-person-c"][3],
    ),
    "mixed-hoan-replay": (
        "more/mixed-hoan.mp4",
        "replay-laptop",
        (85, 200),
        "live-hoan",
        REPORT,
        "laptop",
        "hoan's mixed clip",
    ),
}

EXTRA_LIVE = {
    # name: (file, frames, person, role, room): live segments of mixed clips (no own enrolment)
    "mixed-hoan-live": ("more/mixed-hoan.mp4", (0, 55), "live-hoan", REPORT, "hoan's mixed clip"),
}


def fps(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    try:
        value = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return value if 1 <= value <= 120 else 30.0


def segment(path: Path, start: int, stop: int | None):
    """A callable giving frames [start, stop) of a video, decoded afresh each call."""

    def frames():
        with open_source(str(path), OFFLINE) as source:
            yield from itertools.islice(source.frames(), start, stop)

    return frames


def enrol_part(path: Path):
    return segment(path, 0, round(ENROL_SECONDS * fps(path)))


def rest_part(path: Path, stop: int | None = None):
    return segment(path, round(ENROL_SECONDS * fps(path)), stop)


def frame_at(path: Path, index: int) -> np.ndarray:
    return next(iter(segment(path, index, index + 1)()))


def recorded_clips(data: Path, role: str | None = None) -> list[Clip]:
    """The recorded live and replay clips (role: only fit or only report clips)."""
    video = data / "video"
    clips = []
    for name, (file, person, r, room) in LIVE.items():
        path = video / file
        clips.append(Clip(name, "live", person, r, rest_part(path), enrol_part(path), room=room))
    for name, (file, (a, b), owner, r, room) in EXTRA_LIVE.items():
        enrol = enrol_part(video / LIVE[owner][0])
        clips.append(Clip(name, "live", LIVE[owner][1], r, segment(video / file, a, b), enrol, room=room))
    for name, (file, kind, span, owner, r, instrument, room) in ATTACKS.items():
        a, b = span or (0, None)
        owner_file, person, _, _ = LIVE[owner]
        enrol = enrol_part(video / owner_file)
        clip = Clip(
            name, kind, person, r, segment(video / file, a, b), enrol, room=room, instrument=instrument
        )
        clips.append(clip)
    return [c for c in clips if role is None or c.role == role]


def made_clips(data: Path, role: str | None = None, prints: int = 30, seconds: float = 3.0) -> list[Clip]:
    """MADE clips from each live video of the role, and printed-photo stand-ins (CelebA: fit, LFW:
    report)."""
    video = data / "video"
    clips = []
    for i, (name, (file, person, r, room)) in enumerate(LIVE.items()):
        if role is not None and r != role:
            continue
        path = video / file
        start = round(ENROL_SECONDS * fps(path))
        stop = start + round(seconds * fps(path))
        src = segment(path, start, stop)
        enrol = enrol_part(path)
        short = name.removeprefix("live-")

        def screen(src=src, seed=i):
            return made.screen_replay(list(src()), seed)

        def still(path=path, start=start, n=stop - start):
            return made.repeated_still(frame_at(path, start), n)

        def noisy(path=path, start=start, n=stop - start, seed=i):
            return made.noisy_still(frame_at(path, start), n, seed)

        def framed(src=src, style=("door", "window", "shelf")[i % 3]):
            frames = list(src())
            return made.framed_live(frames, face_boxes(frames), style)

        common = {"person": person, "role": r, "enrol": enrol, "room": room, "made": True}
        clips += [
            Clip(
                f"made-screen-{short}", "made-screen", frames=screen, instrument="simulated screen", **common
            ),
            Clip(
                f"made-still-{short}",
                "made-still",
                frames=still,
                instrument="repeated frame",
                revision="3s",
                **common,
            ),
            Clip(
                f"made-noisy-{short}", "made-noisy-still", frames=noisy, instrument="still + noise", **common
            ),
            Clip(
                f"made-framed-{short}",
                "live",
                frames=framed,
                instrument="edges composited",
                revision="occluded-by-person",
                **common,
            ),
        ]
    for r, folder in ((FIT, "celeba-train"), (REPORT, "lfw/lfw-deepfunneled")):
        if role is not None and r != role:
            continue
        for j, (person, photo, others) in enumerate(photo_people(data / folder, prints)):

            def printed(photo=photo, seed=1000 + j):
                return made.printed_photo(read_rgb(photo), round(seconds * 30), seed)

            def enrol(others=others):
                return (read_rgb(p) for p in others)

            clips.append(
                Clip(
                    f"made-print-{folder.split('/')[0]}-{person}",
                    "made-print",
                    person=person,
                    role=r,
                    frames=printed,
                    enrol=enrol,
                    room="synthetic room",
                    instrument="simulated print",
                    made=True,
                )
            )
    return clips


def photo_people(root: Path, count: int) -> list[tuple[str, Path, list[Path]]]:
    """The first `count` people (by name) with at least 3 photos: (name, the photo to print, up to 10
    other photos to enrol from)."""
    out = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) >= 3:
            out.append((person.name, photos[0], photos[1:11]))
        if len(out) >= count:
            break
    return out


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


@functools.cache
def detector():
    from faceunlock.vision.detect import Detector

    return Detector(min_face_size=40, max_side=640, threads=1)


def face_boxes(frames: list[np.ndarray]) -> list[tuple[float, float, float, float] | None]:
    """The largest face's box in each frame (None where there is none); a central guess for the
    first frame if no frame has a face, so a clip can always be built."""
    boxes = []
    for rgb in frames:
        face = detector().detect(rgb).largest()
        boxes.append(None if face is None else face.box)
    if all(b is None for b in boxes):
        h, w = frames[0].shape[:2]
        boxes[0] = (0.35 * w, 0.25 * h, 0.65 * w, 0.65 * h)
    return boxes
