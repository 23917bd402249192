"""Fit a MiniFASNet network to read a face the same under other exposure, without teaching it attacks.

The published networks read an over-exposed live face as a screen (models/README.md). This fits a
copy of a network (the student) so that a context crop under a random exposure change gives the
answer the published network (the teacher, frozen) gives the same crop as filmed, and the crop as
filmed still gives the teacher's answer. No label is used: live and attack crops alike keep the
teacher's verdict, so the student learns nothing about which fitting clips are attacks.

What was measured on the held-out clips (models/README.md, "Liveness networks fitted to other
exposure") set the defaults: only the front of the network is fitted (the layers FRONT names)
and only exposure changes (a gain with 8-bit clipping); a student free in every layer, with a
broader light family (contrast, gamma, colour cast), or with CelebA photos added, kept its answers
on the fitting crops but moved held-out screen replays towards live. The students are not
shipped: even fitted this way, held-out screen re-shoots got in more often.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CLIP = 8.0
"""Per-frame log-odds are clipped here at run time (faceunlock.liveness.runtime), so targets are."""


@dataclass(frozen=True)
class LightRange:
    """The family a light change is drawn from; each part applies with its own chance."""

    bright: tuple[float, float] = (1.2, 2.6)
    dim: tuple[float, float] = (0.3, 0.8)
    bright_share: float = 0.55
    dim_share: float = 0.2
    contrast: tuple[float, float] = (0.4, 0.95)
    contrast_share: float = 0.0
    gamma: tuple[float, float] = (0.65, 1.5)
    gamma_share: float = 0.0
    cast: tuple[float, float] = (0.8, 1.2)
    cast_share: float = 0.0


BROAD = LightRange(contrast_share=0.3, gamma_share=0.3, cast_share=0.3)
"""Exposure plus contrast, gamma and a colour cast: the broader family measured and not kept."""
FRONT = ("conv1", "conv2_dw", "conv_23", "conv_3")
"""The layers fitted by default: the stem and the first stage, where the tones are read."""


def relight(crops: np.ndarray, rng: np.random.Generator, family: LightRange = LightRange()) -> np.ndarray:
    """(N, 80, 80, 3) uint8 crops, each under its own random light change, clipped to 8 bits."""
    n = len(crops)
    x = crops.astype(np.float32) / 255.0
    pick = rng.random(n)
    gain = np.ones(n, np.float32)
    bright = pick < family.bright_share
    dim = (pick >= family.bright_share) & (pick < family.bright_share + family.dim_share)
    gain[bright] = rng.uniform(*family.bright, bright.sum())
    gain[dim] = rng.uniform(*family.dim, dim.sum())
    gamma = np.where(rng.random(n) < family.gamma_share, rng.uniform(*family.gamma, n), 1.0)
    x = np.power(x, gamma[:, None, None, None].astype(np.float32))
    cast = np.where(
        (rng.random(n) < family.cast_share)[:, None], rng.uniform(*family.cast, (n, 3)), 1.0
    ).astype(np.float32)
    x = x * gain[:, None, None, None] * cast[:, None, None, :]
    contrast = np.where(rng.random(n) < family.contrast_share, rng.uniform(*family.contrast, n), 1.0)
    x = (x - 0.5) * contrast[:, None, None, None].astype(np.float32) + 0.5
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def as_input(crops: np.ndarray):
    """(N, 80, 80, 3) uint8 RGB -> the networks' (N, 3, 80, 80) float BGR 0..255 tensor."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32))


def real_log_odds(logits):
    """Torch twin of faceunlock.liveness.runtime.real_log_odds: class 1 against the other two."""
    import torch

    return logits[:, 1] - torch.logsumexp(logits[:, [0, 2]], dim=1)


def distil(
    teacher,
    crops: np.ndarray,
    steps: int = 400,
    batch: int = 64,
    lr: float = 2e-4,
    seed: int = 0,
    family: LightRange = LightRange(),
    anchor: float = 0.0,
    trainable: tuple[str, ...] | None = FRONT,
    log: Callable[[int, float], None] | None = None,
):
    """A copy of `teacher` fitted so relit crops give the teacher's answer on the crops as filmed.

    Batch norm keeps the teacher's statistics (the student stays in eval mode); the loss is a
    smooth-L1 on the clipped real-vs-attack log-odds plus the KL divergence of the 3-class output,
    for the relit and the as-filmed crop of each sample, plus `anchor` times the squared distance
    of the student's weights from the teacher's. Only the top-level layers `trainable` names are
    fitted (None: all).
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    teacher = teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(teacher).eval()
    start = [p.detach().clone() for p in teacher.parameters()]
    free = [
        p for name, p in student.named_parameters() if trainable is None or name.split(".")[0] in trainable
    ]
    for p in free:
        p.requires_grad_(True)
    opt = torch.optim.Adam(free, lr=lr)
    for step in range(steps):
        idx = rng.choice(len(crops), size=min(batch, len(crops)), replace=False)
        clean = crops[idx]
        with torch.no_grad():
            t_logits = teacher(as_input(clean))
            t_odds = real_log_odds(t_logits).clamp(-CLIP, CLIP)
            t_prob = F.softmax(t_logits, dim=1)
        both = torch.cat([as_input(relight(clean, rng, family)), as_input(clean)])
        s_logits = student(both)
        s_odds = real_log_odds(s_logits)
        targets = torch.cat([t_odds, t_odds])
        probs = torch.cat([t_prob, t_prob])
        loss = F.smooth_l1_loss(s_odds, targets) + F.kl_div(
            F.log_softmax(s_logits, dim=1), probs, reduction="batchmean"
        )
        if anchor:
            loss = loss + anchor * sum(
                ((p - p0) ** 2).sum() for p, p0 in zip(student.parameters(), start, strict=True)
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None:
            log(step, loss.item())
    for p in student.parameters():
        p.requires_grad_(False)
    return student.eval()
