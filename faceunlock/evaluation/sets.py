"""Set-to-set verification: enrol K images per identity, then score attempts of M images each.

The protocol (seeded, the same for every rule): the images of each identity are shuffled once.
Its first K are its enrolment. Genuine attempts are the rest, cut into consecutive groups of M.
Impostor attempts are all its images (enrolment included: they are not the enrolment being
attacked), cut into groups of M, each scored against every other identity's enrolment.
Images without a detected face, or of a quality under the policy's MIN_QUALITY, are left out (a
scan never fuses those frames), and then identities with fewer than ``min_images`` images.

An identity's split ("calibrate" or "report") follows from a hash of its name alone, so it is the
same on every machine and for every model: thresholds and rules are chosen on "calibrate"
identities, figures are reported on "report" identities.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceunlock.evaluation.faceset import embed_images
from faceunlock.evaluation.folders import identity_images
from faceunlock.evaluation.metrics import as_sorted, at_levels, summarise, threshold_at_far
from faceunlock.fused_track import MIN_QUALITY
from faceunlock.fusion import RULES, fuse_batch
from faceunlock.quality import qualities

SPLITS = ("calibrate", "report", "all")
LEVEL_TARGETS = {"strict": 1e-6, "balanced": 1e-5, "fast": 1e-4}
VIDEO_GLOBS = ("live-person-*", "more/live-*.mp4")
KINDS = ("folder", "lfw", "video")


SAME_PERSON = {
    "celeba-train": {frozenset(("id07312", "id07314"))},
}
"""Label noise found by looking: identity folders that show one person (here photos of both carry the
same name watermark). Their attempts against each other are not impostor attempts; --keep-duplicates
counts them anyway."""


def split_of(identity: str) -> str:
    """'calibrate' or 'report', from the sha256 of the identity's name."""
    return "calibrate" if hashlib.sha256(identity.encode()).digest()[0] % 2 == 0 else "report"


@dataclass
class FaceSet:
    """The embedded images of an identity-folder set, with a quality per image."""

    names: list[str]
    labels: np.ndarray
    embeddings: np.ndarray
    quality: np.ndarray
    no_face: dict


@dataclass
class Protocol:
    """Which images enrol each identity, and the genuine and impostor attempts (rows of image indices)."""

    identities: list[str]
    enrol: np.ndarray
    genuine: np.ndarray
    genuine_owner: np.ndarray
    impostor: np.ndarray
    impostor_owner: np.ndarray


def video_frames(video_dir: Path, out: Path, step: int = 5) -> Path:
    """Every step-th frame of each live clip as out/<clip>-stepN/fNNNNN.jpg; finished folders are reused."""
    import cv2

    clips = sorted(p for pattern in VIDEO_GLOBS for p in Path(video_dir).glob(pattern))
    if not clips:
        raise ValueError(f"no live clips ({', '.join(VIDEO_GLOBS)}) under {video_dir}")
    for clip in tqdm(clips, desc="decode", unit="clip", disable=not sys.stderr.isatty()):
        folder = Path(out) / f"{clip.stem}-step{step}"
        done = folder / ".complete"
        if done.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        cap = cv2.VideoCapture(str(clip))
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                cv2.imwrite(str(folder / f"f{i:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            i += 1
        cap.release()
        if i == 0:
            raise ValueError(f"cannot read any frame of {clip}")
        done.touch()
    return Path(out)


def load_set(
    root: Path,
    embedder,
    detector,
    pick: str,
    cache_dir: Path | None,
    min_images: int,
    split: str = "all",
    min_quality: float = MIN_QUALITY,
) -> FaceSet:
    """The faces a scan would fuse (detected, quality at least min_quality) of the identities in the
    split that have at least min_images of them."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    names = identity_images(root)
    counts = Counter(n.split("/")[0] for n in names)

    def keep(person: str) -> bool:
        return counts[person] >= min_images and split in ("all", split_of(person))

    names = [n for n in names if keep(n.split("/")[0])]
    if not names:
        raise ValueError(f"no identity with >= {min_images} images in split {split} of {root}")
    emb, marks, _ = embed_images(root, names, embedder, detector, pick, cache_dir)
    quality = qualities(marks.boxes, marks.sharpness, marks.points, marks.scores)
    labels = np.array([n.split("/")[0] for n in names])
    usable = marks.detected & (quality >= min_quality)
    counts = Counter(labels[usable].tolist())
    kept = usable & np.array([counts[person] >= min_images for person in labels], bool)
    if len(set(labels[kept].tolist())) < 2:
        raise ValueError(
            f"fewer than 2 identities with >= {min_images} usable faces in split {split} of {root}"
        )
    left_out = {
        "count": len(marks.missing),
        "images": marks.missing,
        "low_quality": int((marks.detected & ~usable).sum()),
        "handling": f"left out, as are faces of quality under {min_quality}: a scan never fuses those",
    }
    return FaceSet(
        [n for n, k in zip(names, kept, strict=True) if k], labels[kept], emb[kept], quality[kept], left_out
    )


def make_protocol(labels: np.ndarray, enrol: int, probe: int, seed: int) -> Protocol:
    """The seeded enrolment and attempts of every identity (see the module docstring)."""
    if enrol < 1 or probe < 1:
        raise ValueError("enrol and probe must be at least 1")
    rng = np.random.default_rng(seed)
    identities = sorted(set(labels.tolist()))
    enrol_rows, gen, gen_owner, imp, imp_owner = [], [], [], [], []
    for k, person in enumerate(identities):
        idx = np.flatnonzero(labels == person)
        if len(idx) < enrol:
            raise ValueError(f"identity {person} has {len(idx)} images, fewer than the {enrol} to enrol")
        order = idx[rng.permutation(len(idx))]
        enrol_rows.append(order[:enrol])
        rest = order[enrol:]
        for chunk in range(len(rest) // probe):
            gen.append(rest[chunk * probe : (chunk + 1) * probe])
            gen_owner.append(k)
        for chunk in range(len(order) // probe):
            imp.append(order[chunk * probe : (chunk + 1) * probe])
            imp_owner.append(k)
    if not gen:
        raise ValueError(f"no identity has the {enrol + probe} images a genuine attempt needs")
    return Protocol(
        identities,
        np.array(enrol_rows),
        np.array(gen),
        np.array(gen_owner),
        np.array(imp),
        np.array(imp_owner),
    )


def same_person_mask(protocol: Protocol, same_person: set[frozenset[str]]) -> np.ndarray:
    """(identities, identities) bool: pairs known to be one person under two labels (never impostors)."""
    n = len(protocol.identities)
    mask = np.eye(n, dtype=bool)
    for a in range(n):
        for b in range(n):
            if frozenset((protocol.identities[a], protocol.identities[b])) in same_person:
                mask[a, b] = True
    return mask


def attempt_scores(
    faces: FaceSet, protocol: Protocol, rule: str, same_person: set[frozenset[str]] = frozenset()
) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor scores of one rule: every attempt against its own or every other enrolment
    (other than identities listed in same_person as one person)."""
    e, q = faces.embeddings, faces.quality
    same = same_person_mask(protocol, set(same_person))
    genuine, impostor = [], []
    for k, rows in enumerate(protocol.enrol):
        anchors = e[rows]
        own = protocol.genuine[protocol.genuine_owner == k]
        if len(own):
            genuine.append(fuse_batch(rule, anchors, e[own], q[own]))
        other = protocol.impostor[~same[k][protocol.impostor_owner]]
        impostor.append(fuse_batch(rule, anchors, e[other], q[other]))
    return np.concatenate(genuine), np.concatenate(impostor)


def attempt_result(genuine: np.ndarray, impostor: np.ndarray, levels: dict[str, float]) -> dict:
    """The issue's 'attempt' object: AUC, EER, TAR at FAR, attempt counts, FAR and FRR at each level."""
    s = summarise(genuine, impostor)
    return {
        "auc": s["auc"],
        "eer": s["eer"],
        "tar_at_far": s["tar_at_far"],
        "attempts": {"genuine": int(genuine.size), "impostor": int(impostor.size)},
        "levels": at_levels(genuine, impostor, levels),
    }


def thresholds_at(impostor: np.ndarray, targets: dict[str, float] = LEVEL_TARGETS) -> dict[str, float]:
    """Each level's largest threshold with observed FAR at most its target, rounded down to 4 decimals."""
    s = as_sorted(impostor)
    return {level: float(np.floor(threshold_at_far(s, t) * 1e4) / 1e4) for level, t in targets.items()}


def calibrate(scores: dict[str, tuple[np.ndarray, np.ndarray]], targets=LEVEL_TARGETS) -> dict[str, float]:
    """Thresholds from a mix of sets: per level, the smallest of the sets' own thresholds, so that the
    observed FAR is at most the target on every set of the mix."""
    per_set = [thresholds_at(imp, targets) for _, imp in scores.values()]
    return {level: min(t[level] for t in per_set) for level in targets}


def evaluate_sets(
    faces: FaceSet,
    enrol: int,
    probe: int,
    seed: int,
    rules=RULES,
    same_person: set[frozenset[str]] = frozenset(),
) -> dict:
    """Scores of every rule on one set, with what the protocol drew. Levels are filled in by the caller."""
    started = time.perf_counter()
    protocol = make_protocol(faces.labels, enrol, probe, seed)
    scores = {rule: attempt_scores(faces, protocol, rule, same_person) for rule in rules}
    return {
        "scores": scores,
        "identities": len(protocol.identities),
        "identities_with_genuine": int(len(set(protocol.genuine_owner.tolist()))),
        "images": len(faces.names),
        "no_face": faces.no_face,
        "seconds": round(time.perf_counter() - started, 1),
    }
