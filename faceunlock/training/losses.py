"""Triplet losses over a batch of embeddings: batch-all and batch-hard (Hermans et al., 2017).

A triplet (a, p, n) is valid when a != p, label[a] == label[p] and label[n] != label[a]. Its
loss is ``max(0, d(a, p) - d(a, n) + margin)`` (or ``softplus`` of the same for batch-hard's
soft margin), with d the Euclidean distance or its square. Embeddings are used as given, not
L2-normalised: the port's thresholds are plain Euclidean distances between raw descriptors.

Distances come from differences, not from the Gram matrix, so identical embeddings are exactly 0
apart; the square root is taken only where the squared distance is above ``eps`` and is 0 (with
a zero gradient) elsewhere, so gradients stay finite when two embeddings coincide.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AVERAGES = ("positive", "all")


def pairwise_distances(x: Tensor, squared: bool = False, eps: float = 1e-12) -> Tensor:
    """(N, D) -> (N, N) Euclidean (or squared Euclidean) distances with a safe square root."""
    d2 = (x.unsqueeze(1) - x.unsqueeze(0)).pow(2).sum(-1)
    if squared:
        return d2
    positive = d2 > eps
    return torch.where(positive, d2.clamp_min(eps).sqrt(), torch.zeros_like(d2))


def _masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(positive, negative) (N, N) boolean masks: same label and not self; different label."""
    labels = labels.view(-1)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _reduce(losses: Tensor, average: str) -> Tensor:
    """Mean over the losses that are > 0 ("positive") or over all of them; 0 when there are none.

    The result stays connected to the graph even when it is 0, so backward() always works."""
    if average == "positive":
        active = losses > 0
        n = active.sum()
        return (losses * active).sum() / n.clamp_min(1)
    return losses.sum() / max(losses.numel(), 1)


def _check(embeddings: Tensor, labels: Tensor) -> None:
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {tuple(embeddings.shape)}")
    if labels.shape != (embeddings.shape[0],):
        raise ValueError(f"labels must be ({embeddings.shape[0]},), got shape {tuple(labels.shape)}")


class _TripletLoss(nn.Module):
    """What both losses share: margin and averaging checks, stats, and the final reduction."""

    def __init__(self, margin: float, squared: bool, average: str):
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
        self.margin, self.squared, self.average = float(margin), squared, average
        self.stats: dict[str, float] = {}

    @property
    def fraction_positive(self) -> float:
        return self.stats.get("fraction", 0.0)

    def _finish(self, embeddings: Tensor, losses: Tensor, n_valid: int, n_active: int) -> Tensor:
        """Record stats and reduce; a batch with nothing valid gives a zero that keeps the graph."""
        self.stats = {
            "valid": n_valid,
            "active": n_active,
            "fraction": n_active / n_valid if n_valid else 0.0,
        }
        if n_valid == 0:
            return embeddings.sum() * 0.0
        return _reduce(losses, self.average)


class BatchAllTripletLoss(_TripletLoss):
    """Loss over every valid triplet in the batch.

    ``average="positive"`` (the default, as in Hermans et al. and pytorch-metric-learning's
    AvgNonZeroReducer) averages over the triplets with a positive loss; ``"all"`` over every
    valid triplet. After each call, ``stats`` holds ``valid`` (number of valid triplets),
    ``active`` (those with positive loss) and ``fraction`` (active / valid, 0 when none),
    and ``fraction_positive`` the same fraction, for logging.
    """

    def __init__(self, margin: float = 0.2, squared: bool = False, average: str = "positive"):
        super().__init__(margin, squared, average)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        _check(embeddings, labels)
        d = pairwise_distances(embeddings, self.squared)
        pos, neg = _masks(labels)
        # valid[a, p, n]: p is a positive of a, n a negative of a.
        valid = pos.unsqueeze(2) & neg.unsqueeze(1)
        raw = d.unsqueeze(2) - d.unsqueeze(1) + self.margin
        losses = F.relu(raw[valid])
        n_valid = int(valid.sum())
        n_active = int((losses > 0).sum())
        return self._finish(embeddings, losses, n_valid, n_active)


class BatchHardTripletLoss(_TripletLoss):
    """For each anchor, the farthest positive against the nearest negative.

    Anchors without a positive or without a negative in the batch are left out. The loss per
    anchor is ``relu(d_ap - d_an + margin)``, or with ``soft=True`` ``softplus(d_ap - d_an +
    margin)`` (Hermans et al.'s soft margin is ``margin=0``). ``average="all"`` (the default, as
    in Hermans et al.) averages over the valid anchors; ``"positive"`` over those with a positive
    loss. ``stats`` holds ``valid`` (anchors used), ``active`` (anchors whose hardest triplet
    still violates the margin: d_ap - d_an + margin > 0) and ``fraction`` (active / valid).
    """

    def __init__(self, margin: float = 0.2, squared: bool = False, soft: bool = False, average: str = "all"):
        super().__init__(margin, squared, average)
        self.soft = soft

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        _check(embeddings, labels)
        d = pairwise_distances(embeddings, self.squared)
        pos, neg = _masks(labels)
        anchors = pos.any(1) & neg.any(1)
        # Masked entries never win: -inf for the max over positives, +inf for the min over negatives.
        hardest_pos = d.masked_fill(~pos, float("-inf")).amax(1)[anchors]
        hardest_neg = d.masked_fill(~neg, float("inf")).amin(1)[anchors]
        raw = hardest_pos - hardest_neg + self.margin
        losses = F.softplus(raw) if self.soft else F.relu(raw)
        n_valid = int(anchors.sum())
        n_active = int((raw > 0).sum())
        return self._finish(embeddings, losses, n_valid, n_active)


LOSSES = {"batch-all": BatchAllTripletLoss, "batch-hard": BatchHardTripletLoss}
