"""Cross-session verification: enrol from one recording session, scan in later ones.

The shared data's `nuaa-live/<person>/` holds `enrol/` (10 frames of the first session) and
`live-N/` (25 frames, about 5 s, of session N, recorded on other days and in other light). For
each person, the enrolment is a plain capture of the enrol frames (as `faceunlock enroll --frames
10`), and every live sequence is one scan under the whole policy (fused windows, liveness) at each
security level. The thresholds are the model card's, calibrated for FAR elsewhere: nothing here
is fitted on this data.

With learning, sequences are scanned in session order and a balanced-level miss that the daemon's
rules would learn from after a password (faceunlock.learnable.why_not: live, enough quality
frames, under the per-pair threshold) becomes a learned look before the next sequence, as it
would on a desk where the owner types the password after a miss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faceunlock.config import SECURITY_LEVELS, Config
from faceunlock.evaluation.lights import LIGHTS, relit
from faceunlock.store import Anchors

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass
class Person:
    name: str
    enrol: Path
    sessions: list[Path]


def people(root: Path) -> list[Person]:
    """Every <person>/ with an enrol/ folder and at least one live-N/ folder, in name order."""
    found = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        sessions = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("live-"))
        if (folder / "enrol").is_dir() and sessions:
            found.append(Person(folder.name, folder / "enrol", sessions))
    if not found:
        raise ValueError(f"no <person>/enrol and <person>/live-N folders under {root}")
    return found


def frames_of(folder: Path) -> list[np.ndarray]:
    import cv2

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = [cv2.imread(str(p)) for p in paths]
    if not frames or any(f is None for f in frames):
        raise ValueError(f"unreadable or missing frames in {folder}")
    return [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]


def with_look(anchors: np.ndarray, look: np.ndarray) -> np.ndarray:
    """The anchors with one more look beside the others (each look is scored on its own)."""
    looks = [*getattr(anchors, "looks", (np.asarray(anchors, np.float32),)), np.asarray(look, np.float32)]
    joined = np.concatenate(looks).view(Anchors)
    joined.looks = tuple(looks)
    return joined


def scan_at_each_level(
    pipeline, cfg: Config, card, frames: list[np.ndarray], user: str, anchors, metered=None
) -> dict:
    """One scan of the frames under the whole policy at each security level, with its threshold.

    metered: a light change (see LIGHTS) filmed by a fresh SimulatedCamera for each scan, metered
    on the face (faceunlock.exposure); the frames are then given as filmed in normal light."""
    from faceunlock.evaluation.simulated_camera import SimulatedCamera
    from faceunlock.exposure import ExposureControl
    from faceunlock.verify import scan

    decisions = {}
    for level in SECURITY_LEVELS:
        policy = dataclasses.replace(cfg.verify, security_level=level)
        threshold = card.scan_threshold(level)
        shown, meter = iter(frames), None
        if metered is not None:
            camera = SimulatedCamera(metered)
            shown, meter = camera.frames(frames), ExposureControl(camera, "simulated camera").meter
        decisions[level] = scan(
            pipeline, shown, user, anchors, threshold, policy, 3600, cfg.liveness, None, meter
        )
    return decisions


def evaluate_sessions(
    pipeline,
    cfg: Config,
    card,
    root: Path,
    learn: bool,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Per-scan FRR at each level over every later session of every person (see the module)."""
    from faceunlock.enroll import capture
    from faceunlock.errors import EnrollError
    from faceunlock.learnable import why_not

    thresholds = {level: card.scan_threshold(level) for level in SECURITY_LEVELS}
    per_pair = card.threshold("balanced")
    rows, refused = [], {}
    for person in people(root):
        try:
            anchors = capture(pipeline, frames_of(person.enrol), 10, cfg.verify, cfg.enroll.timeout)
        except EnrollError as exc:
            refused[person.name] = str(exc)
            continue
        anchors = anchors.view(Anchors)
        anchors.looks = (np.asarray(anchors, np.float32),)
        learned = 0
        for session in person.sessions:
            frames = frames_of(session)
            row = {"person": person.name, "session": session.name, "learned_looks": learned}
            decisions = scan_at_each_level(pipeline, cfg, card, frames, person.name, anchors)
            for level, d in decisions.items():
                row[level] = {
                    "decision": d.decision,
                    "distance": None if d.distance is None else round(float(d.distance), 4),
                    "liveness": d.liveness,
                }
            rows.append(row)
            if learn and why_not(decisions["balanced"], per_pair) is None:
                anchors = with_look(anchors, decisions["balanced"].embeddings)
                learned += 1
            if progress:
                said = ", ".join(f"{level} {row[level]['decision']}" for level in thresholds)
                progress(f"{person.name} {session.name}: {said}")
    levels = {}
    for level in thresholds:
        missed = [r for r in rows if r[level]["decision"] != "match"]
        levels[level] = {
            "threshold": thresholds[level],
            "scans": len(rows),
            "matched": len(rows) - len(missed),
            "frr": len(missed) / len(rows) if rows else None,
            "missed": [f"{r['person']}/{r['session']}" for r in missed],
        }
    per_person = {}
    for r in rows:
        p = per_person.setdefault(r["person"], {"scans": 0, "matched": 0})
        p["scans"] += 1
        p["matched"] += r["balanced"]["decision"] == "match"
    return {
        "root": str(root),
        "learning": learn,
        "people": len(per_person) + len(refused),
        "enrolment_refused": refused,
        "levels": levels,
        "balanced_per_person": per_person,
        "scans": rows,
    }


LIGHT_NAMES = {k.split(",")[0].split()[0]: k for k, change in LIGHTS.items() if change is not None}
"""Each light change by one word (dim, bright, warm, flat), for command lines and clip names."""


def relit_clip(clip, light: str):
    """A liveness clip (faceunlock.evaluation.liveness.Clip) under the light change LIGHT_NAMES
    names: its frames relit, its enrolment as filmed, its name (and so its cache entry) marked."""
    if light not in LIGHT_NAMES:
        raise ValueError(f"no light change named {light!r}: one of {', '.join(LIGHT_NAMES)}")
    change = LIGHTS[LIGHT_NAMES[light]]
    return dataclasses.replace(
        clip, name=f"{clip.name}@{light}", frames=lambda: (relit(frame, change) for frame in clip.frames())
    )


def evaluate_lights(
    pipeline,
    cfg: Config,
    card,
    clips,
    starts: int = 3,
    length: int = 25,
    progress: Callable[[str], None] | None = None,
    step: int = 1,
    metering: bool = False,
) -> dict:
    """Per-scan FRR at each level under each light of LIGHTS: each live clip enrolled from its first
    frames as filmed (faceunlock.evaluation.liveness.ENROL_FRAMES good ones), then `starts` scans of
    `length` frames, evenly spread over the rest of the clip, relit. `step`: every step-th frame is
    scanned, as a camera at 1/step of the clip's frame rate would give. Per light and level also the
    BPCER: the share of these live scans that liveness refused (doubt or attack, no match).
    metering: each light filmed by a simulated camera that meters on the face (SimulatedCamera)."""
    from faceunlock.enroll import capture
    from faceunlock.errors import EnrollError
    from faceunlock.evaluation.liveness import ENROL_FRAMES

    if step < 1:
        raise ValueError(f"frame step must be at least 1, not {step}")
    counts = {light: {level: [0, 0, 0] for level in SECURITY_LEVELS} for light in LIGHTS}
    refused, short, missed, matched = {}, {}, [], []
    for clip in clips:
        try:
            anchors = capture(pipeline, clip.enrol(), ENROL_FRAMES, cfg.verify, cfg.enroll.timeout)
        except EnrollError as exc:
            refused[clip.name] = str(exc)
            continue
        frames = list(clip.frames())[::step]
        if len(frames) < length:
            short[clip.name] = f"only {len(frames)} frames after the enrolment, fewer than a scan's {length}"
            continue
        for light, change in LIGHTS.items():
            for start in np.linspace(0, len(frames) - length, starts).astype(int):
                stretch = frames[start : start + length]
                if metering:
                    shown, metered = stretch, change
                else:
                    shown, metered = [relit(f, change) for f in stretch], None
                decisions = scan_at_each_level(pipeline, cfg, card, shown, clip.name, anchors, metered)
                for level, d in decisions.items():
                    counts[light][level][0] += 1
                    counts[light][level][1] += d.decision == "match"
                    counts[light][level][2] += d.decision != "match" and d.liveness in ("doubt", "attack")
                    if level == "balanced":
                        said = f"{clip.name}@{start} {light}: {d.decision}, liveness {d.liveness}"
                        (matched if d.decision == "match" else missed).append(said)
            if progress:
                said = ", ".join(f"{lv} {m}/{n}" for lv, (n, m, _) in counts[light].items())
                progress(f"{clip.name} {light}: {said} (totals so far)")
    lights = {
        light: {
            level: {
                "scans": n,
                "matched": m,
                "frr": (n - m) / n if n else None,
                "bpcer": r / n if n else None,
            }
            for level, (n, m, r) in per_level.items()
        }
        for light, per_level in counts.items()
    }
    return {
        "clips": len(clips),
        "step": step,
        "metering": metering,
        "enrolment_refused": refused,
        "too_short": short,
        "lights": lights,
        "balanced_missed": missed,
        "balanced_matched": matched,
    }
