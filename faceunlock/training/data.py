"""Training data: aligned chips made by the project's own pipeline, augmentation, and a P×K sampler.

Chips come from the same detect → align steps as enrolment and evaluation: landmarks from
:func:`faceunlock.evaluation.faceset.detect_all` (cached on disk, so detection runs once), then
:func:`faceunlock.vision.align.align`. The chips themselves are cached too, as one uint8 ``.npy``
per (detector settings, template, image list), so a second run starts in seconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from faceunlock.atomic import atomic_file, atomic_write
from faceunlock.camera import read_image
from faceunlock.evaluation.faceset import CACHE_MODE, cache_key, detect_all
from faceunlock.evaluation.folders import identity_images
from faceunlock.vision.align import CHIP_SIZE, TEMPLATE, align


def chips_for(
    root: Path,
    names: Sequence[str],
    detector,
    pick: str = "largest",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned (N, 150, 150, 3) uint8 RGB chips of images root/<name>, and whether a face was found.

    Images without a detected face are aligned with median landmarks (as in evaluation); callers
    that train drop them with the returned mask.
    """
    names = list(names)
    key = hashlib.sha256(
        json.dumps([cache_key(detector, pick), names]).encode() + TEMPLATE.tobytes()
    ).hexdigest()[:16]
    chip_file = Path(cache_dir) / f"chips-{key}.npy" if cache_dir is not None else None
    meta_file = chip_file.with_suffix(".json") if chip_file is not None else None
    if chip_file is not None and chip_file.exists() and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta["names"] == names:
            return np.load(chip_file), np.array(meta["detected"], bool)
    marks = detect_all(Path(root), names, detector, pick=pick, cache_dir=cache_dir, progress=progress)
    chips = np.zeros((len(names), CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    for i in tqdm(range(len(names)), desc="align", unit="img", disable=not progress):
        chips[i] = align(read_image(Path(root) / names[i]), marks.points[i])
    if chip_file is not None:
        chip_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(chip_file, CACHE_MODE) as fh:
            np.save(fh, chips)
        meta = {"names": names, "detected": marks.detected.tolist()}
        atomic_write(meta_file, json.dumps(meta).encode(), CACHE_MODE)
    return chips, marks.detected.copy()


@dataclass
class FaceChips:
    """Chips of an identity-folder dataset with integer labels (index into ``identities``)."""

    chips: np.ndarray
    labels: np.ndarray
    names: list[str]
    identities: list[str]
    dropped: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def load_identity_chips(
    root: Path,
    detector,
    cache_dir: Path | None = None,
    min_images: int = 2,
    progress: bool = True,
) -> FaceChips:
    """Chips of root/<identity>/<image> with a detected face (largest face per image).

    Images without a face are dropped, then identities left with fewer than ``min_images``.
    """
    names = identity_images(Path(root))
    chips, detected = chips_for(root, names, detector, "largest", cache_dir, progress)
    ids = np.array([n.split("/")[0] for n in names])
    keep = detected.copy()
    counts: dict[str, int] = {}
    for ident in ids[keep]:
        counts[ident] = counts.get(ident, 0) + 1
    keep &= np.array([counts.get(i, 0) >= min_images for i in ids])
    identities = sorted({str(i) for i in ids[keep]})
    if not identities:
        raise ValueError(f"no identity under {root} has {min_images} or more images with a face")
    index = {ident: j for j, ident in enumerate(identities)}
    return FaceChips(
        chips=chips[keep],
        labels=np.array([index[i] for i in ids[keep]], np.int64),
        names=[n for n, k in zip(names, keep, strict=True) if k],
        identities=identities,
        dropped=[n for n, k in zip(names, keep, strict=True) if not k],
    )


@dataclass(frozen=True)
class Augment:
    """Random horizontal flip, scale/shift/rotation jitter and colour jitter on uint8 RGB chips.

    The geometric jitter is one affine warp about the chip centre (a random crop-and-resize
    that may also zoom out); the border is filled black, as alignment does.
    """

    flip: float = 0.5
    scale: float = 0.08
    shift: float = 6.0
    rotate: float = 6.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __call__(self, chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = chip
        if rng.random() < self.flip:
            out = out[:, ::-1]
        s = 1.0 + rng.uniform(-self.scale, self.scale)
        a = rng.uniform(-self.rotate, self.rotate)
        dx, dy = rng.uniform(-self.shift, self.shift, 2)
        if s != 1.0 or a or dx or dy:
            c = (CHIP_SIZE - 1) / 2
            m = cv2.getRotationMatrix2D((c, c), a, s)
            m[:, 2] += (dx, dy)
            out = cv2.warpAffine(
                np.ascontiguousarray(out),
                m,
                (CHIP_SIZE, CHIP_SIZE),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
        x = out.astype(np.float32)
        grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = grey[..., None] + (x - grey[..., None]) * (1 + rng.uniform(-self.saturation, self.saturation))
        x = grey.mean() + (x - grey.mean()) * (1 + rng.uniform(-self.contrast, self.contrast))
        x = x * (1 + rng.uniform(-self.brightness, self.brightness))
        return np.clip(x + 0.5, 0, 255).astype(np.uint8)


class ChipDataset(Dataset):
    """Items are (uint8 (150, 150, 3) RGB chip tensor, label). Augmentation is seeded per
    (seed, epoch, index, draw) so that a run and its resumption see the same pixels."""

    def __init__(self, chips: np.ndarray, labels: np.ndarray, augment: Augment | None = None, seed: int = 0):
        if len(chips) != len(labels):
            raise ValueError(f"{len(chips)} chips but {len(labels)} labels")
        self.chips, self.labels = chips, np.asarray(labels, np.int64)
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item) -> tuple[torch.Tensor, int]:
        index, draw = item if isinstance(item, tuple) else (item, 0)
        chip = self.chips[index]
        if self.augment is not None:
            chip = self.augment(chip, np.random.default_rng([self.seed, self.epoch, index, draw]))
        return torch.from_numpy(np.ascontiguousarray(chip)), int(self.labels[index])


class PKSampler(Sampler[list]):
    """Batches of P identities × K images (a batch sampler for DataLoader).

    Every epoch each identity's images are shuffled and dealt out K at a time; an identity
    with fewer than K images repeats some (as distinct augmentation draws). Identities are
    visited in proportion to their image counts, so one epoch shows about every image once.
    The order depends only on (seed, epoch): ``set_epoch`` before iterating, and resuming at
    batch ``start`` replays the same batches. With ``world_size`` > 1 each rank takes every
    world_size-th batch (DDP).

    Items are (index, draw) pairs; draw tells repeats of one image apart.
    """

    def __init__(
        self,
        labels: Sequence[int],
        p: int,
        k: int,
        seed: int = 0,
        batches: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if p < 2 or k < 2:
            raise ValueError(f"need P >= 2 identities and K >= 2 images each, got P={p}, K={k}")
        labels = np.asarray(labels)
        self.groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        self.groups = [g for g in self.groups if len(g) >= 2]
        if len(self.groups) < p:
            raise ValueError(f"P={p} identities per batch, but only {len(self.groups)} have 2+ images")
        self.p, self.k, self.seed = p, k, seed
        total = sum(len(g) for g in self.groups)
        self.batches = batches if batches is not None else max(1, total // (p * k))
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return len(range(self.rank, self.batches, self.world_size)) - self._skipped()

    def _skipped(self) -> int:
        return len(range(self.rank, min(self.start, self.batches), self.world_size))

    def all_batches(self) -> list[list[tuple[int, int]]]:
        """Every batch of this epoch, for all ranks, before resumption is applied."""
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = [list(rng.permutation(g)) for g in self.groups]
        draws = [0] * len(self.groups)
        sizes = np.array([len(g) for g in self.groups], np.float64)
        out = []
        for _ in range(self.batches):
            chosen = rng.choice(len(self.groups), self.p, replace=False, p=sizes / sizes.sum())
            batch = []
            for c in chosen:
                for _ in range(self.k):
                    if not queues[c]:
                        queues[c] = list(rng.permutation(self.groups[c]))
                        draws[c] += 1
                    batch.append((int(queues[c].pop()), draws[c]))
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batches = self.all_batches()
        for i in range(self.rank, self.batches, self.world_size):
            if i >= self.start:
                yield batches[i]
