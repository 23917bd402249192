"""Fit the liveness fusion and choose its thresholds, on fitting clips only (numpy, no torch).

1. Samples: from every fitting clip, windows starting every `stride` frames, replayed through a
   scan that never decides; the window features at the end of each window of 8, 12, 16, 24 and
   30 frames are one sample (label 1 live, 0 attack). Each clip's samples weigh 1 in total, and
   each class weighs the same, so no clip or class dominates.
2. Logistic regression (L2-penalised, Newton steps) on standardised features; a missing feature
   is the mean (0 after standardising), as at run time.
3. Features are chosen by greedy forward selection on grouped K-fold cross-validation (groups =
   people), for what the thresholds (4.) will make of them (`cross_validate`): in each fold, at the
   rule's balanced level on the training folds (above every training attack sample, at least
   0.5), the share of the held-out fold's live samples accepted, and of its attack samples. The
   networks' evidence (`pad`) is the base; a cue is added only if it raises that live share by at
   least `min_gain`, without raising the attack share by more than `max_attack_rise` or the
   cross-validated log-loss at all, so a cue must earn its place where it counts. (Log-loss
   alone, which weighs every window alike, added `flicker` on the fitting data of 2026-12-07
   while lifting a few MADE attack windows over nearly every live one.) Every candidate's
   cross-validated log-loss is traced beside it. Raw motion is not a candidate (see SELECTABLE).
4. Thresholds, from every window of every fitting clip at the policy's window lengths:
   `attack_below` is half the lowest score any live window's scan reaches (no fitting live scan
   is ever cut short as an attack); `balanced` is the lowest threshold with no fitting attack
   window accepted, and at least 0.5; `strict` adds 1 to balanced's log-odds, `fast` takes 1
   off (and stays above attack_below).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from faceunlock.config import Config
from faceunlock.evaluation.liveness import Analysed, pad_only
from faceunlock.liveness.card import Fusion, LivenessCard
from faceunlock.liveness.score import FEATURES
from faceunlock.verify import Scan

SELECTABLE = tuple(f for f in FEATURES if f != "motion")
"""Features the selection may choose. Raw ``motion`` is left out on principle: it rewards a face
for moving a lot, which an attacker controls (shake the phone); ``stillness`` keeps its useful,
one-sided half."""
SAMPLE_LENGTHS = (8, 12, 16, 24, 30)


def silent(card: LivenessCard) -> LivenessCard:
    """The card with no pass threshold and no attack cut: a scan that only gathers evidence."""
    return dataclasses.replace(pad_only(card), attack_below=0.0)


def clip_samples(item: Analysed, cfg: Config, card: LivenessCard, stride: int = 3) -> np.ndarray:
    """(n, len(FEATURES)) window features of one clip (NaN: not measurable)."""
    rows = []
    longest = max(SAMPLE_LENGTHS)
    quiet = silent(card)
    for start in range(0, max(1, len(item.results) - min(SAMPLE_LENGTHS) + 1), stride):
        scan = Scan("fit", np.zeros((1, 128), np.float32), 0.0, cfg.verify, cfg.liveness, quiet)
        for n, result in enumerate(item.results[start : start + longest], 1):
            scan.feed(result)
            if n in SAMPLE_LENGTHS and scan.evidence.frames >= quiet.min_frames:
                f = scan.evidence.features()
                rows.append([np.nan if f[k] is None else f[k] for k in FEATURES])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES))


@dataclasses.dataclass
class Samples:
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    group: np.ndarray


def gather(items: list[Analysed], cfg: Config, card: LivenessCard) -> Samples:
    xs, ys, ws, gs = [], [], [], []
    for item in items:
        x = clip_samples(item, cfg, card)
        if not len(x):
            continue
        xs.append(x)
        ys.append(np.full(len(x), float(item.clip.live)))
        ws.append(np.full(len(x), 1.0 / len(x)))
        gs.append(np.full(len(x), item.clip.person, dtype=object))
    y = np.concatenate(ys)
    w = np.concatenate(ws)
    for label in (0.0, 1.0):
        w[y == label] /= w[y == label].sum()
    return Samples(np.concatenate(xs), y, w, np.concatenate(gs))


def standardise(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and std per column, ignoring NaN."""
    mean, std = [], []
    for col in x.T:
        ok = ~np.isnan(col)
        m = float(np.average(col[ok], weights=w[ok])) if ok.any() else 0.0
        s = float(np.sqrt(np.average((col[ok] - m) ** 2, weights=w[ok]))) if ok.any() else 1.0
        mean.append(m)
        std.append(s if s > 1e-9 else 1.0)
    return np.asarray(mean), np.asarray(std)


def design(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (x - mean) / std
    return np.where(np.isnan(z), 0.0, z)


def fit_logistic(z: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-3, iters: int = 100):
    """Weighted, L2-penalised logistic regression by Newton's method: (weights, bias)."""
    a = np.hstack([z, np.ones((len(z), 1))])
    beta = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ beta, -35, 35)))
        grad = a.T @ (w * (p - y)) + penalty * beta
        hess = (a * (w * p * (1 - p))[:, None]).T @ a + np.diag(penalty)
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(beta)), grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return beta[:-1], float(beta[-1])


def probability(z: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """The fusion's score of standardised feature rows."""
    return 1.0 / (1.0 + np.exp(-np.clip(z @ weights + bias, -35, 35)))


def log_loss(z: np.ndarray, y: np.ndarray, w: np.ndarray, weights: np.ndarray, bias: float) -> float:
    p = np.clip(probability(z, weights, bias), 1e-12, 1 - 1e-12)
    return float(-(w * (y * np.log(p) + (1 - y) * np.log(1 - p))).sum() / w.sum())


def cross_validate(s: Samples, cols: list[int], folds: int = 5) -> tuple[float, tuple[float, float]]:
    """Grouped K-fold cross-validation of a fit on these feature columns (groups: people, dealt
    round-robin in sorted order): the held-out log-loss, and the threshold rule's (live, attack)
    shares: in each fold, the threshold is the rule's balanced level on the training folds (above
    every attack sample, at least 0.5), and a held-out sample is accepted at or above it."""
    people = sorted(set(s.group))
    fold_of = {p: i % folds for i, p in enumerate(people)}
    fold = np.array([fold_of[g] for g in s.group])
    loss, accepted = 0.0, {1.0: 0.0, 0.0: 0.0}
    for k in range(folds):
        train, test = fold != k, fold == k
        if not test.any() or len(set(s.y[train])) < 2:
            continue
        mean, std = standardise(s.x[train][:, cols], s.w[train])
        weights, bias = fit_logistic(design(s.x[train][:, cols], mean, std), s.y[train], s.w[train])
        z = design(s.x[:, cols], mean, std)
        loss += log_loss(z[test], s.y[test], s.w[test], weights, bias) * s.w[test].sum()
        score = probability(z, weights, bias)
        threshold = choose_thresholds(0.0, float(score[train & (s.y == 0)].max(initial=0.0)))["balanced"]
        for label in accepted:
            rows = test & (s.y == label)
            accepted[label] += float((s.w[rows] * (score[rows] >= threshold)).sum())
    live = accepted[1.0] / float(s.w[s.y == 1].sum())
    return float(loss / s.w.sum()), (live, accepted[0.0] / float(s.w[s.y == 0].sum()))


def select(
    s: Samples, first: str = "pad", min_gain: float = 0.01, max_attack_rise: float = 0.005
) -> tuple[list[str], list[dict[str, float]], list[dict[str, list[float]]]]:
    """Greedy forward selection from `first` on the threshold rule's cross-validated shares (module
    docstring, 3.); returns the kept names and, per step, every candidate's cross-validated
    log-loss and its (live, attack) shares accepted."""
    chosen: list[int] = []
    shares, loss = (0.0, 0.0), math.inf
    trace, tails = [], []
    while True:
        candidates = [FEATURES.index(f) for f in SELECTABLE if FEATURES.index(f) not in chosen]
        if not candidates:
            break
        both = {j: cross_validate(s, chosen + [j]) for j in candidates}
        losses, tried = {j: v[0] for j, v in both.items()}, {j: v[1] for j, v in both.items()}
        order = sorted(candidates, key=lambda j: (-tried[j][0], losses[j]))
        trace.append({FEATURES[j]: round(float(losses[j]), 5) for j in order})
        tails.append({FEATURES[j]: [round(v, 5) for v in tried[j]] for j in order})
        if not chosen:
            j = FEATURES.index(first)
        else:
            allowed = [j for j in order if tried[j][1] <= shares[1] + max_attack_rise and losses[j] <= loss]
            if not allowed or tried[allowed[0]][0] < shares[0] + min_gain:
                break
            j = allowed[0]
        chosen.append(j)
        shares, loss = tried[j], losses[j]
    return [FEATURES[j] for j in chosen], trace, tails


def fit_fusion(s: Samples, names: list[str], min_frames: int) -> tuple[Fusion, int]:
    cols = [FEATURES.index(n) for n in names]
    mean, std = standardise(s.x[:, cols], s.w)
    weights, bias = fit_logistic(design(s.x[:, cols], mean, std), s.y, s.w)
    fusion = Fusion(
        features=tuple(names),
        weights=tuple(round(float(v), 6) for v in weights),
        mean=tuple(round(float(v), 6) for v in mean),
        std=tuple(round(float(v), 6) for v in std),
        bias=round(bias, 6),
    )
    return fusion, min_frames


def logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def choose_thresholds(live_min: float, attack_max: float) -> dict[str, float]:
    """The documented rule (module docstring) from the fitting windows' extreme scores."""
    attack_below = max(0.0, 0.5 * live_min)
    balanced = max(0.5, attack_max + 1e-4)
    strict = sigmoid(logit(balanced) + 1.0)
    fast = max(sigmoid(logit(balanced) - 1.0), attack_below + 1e-4)
    return {
        "strict": round(strict, 4),
        "balanced": round(balanced, 4),
        "fast": round(fast, 4),
        "attack_below": math.floor(attack_below * 1e4) / 1e4,
    }
