"""Presentation-attack evaluation in the ISO/IEC 30107-3 style, over every window a scan could see.

Each clip (a live or attack video, a segment of one, or a MADE clip) is analysed once, frame by
frame, with both liveness networks and the motion cues; every window of a given length is then
replayed through a fresh ``verify.Scan``, exactly as a scan of that many frames would see it.

- Scan level (the whole policy, face match included): an attack window is accepted when the scan
  ends in ``match``; APCER per attack kind = accepted / attack windows. A live window is rejected
  when it does not end in ``match``; BPCER = rejected / live windows. Attacks and live clips are
  matched against their person's own enrolment, so only liveness can stop a replay.
- PAD level (liveness alone): a window's statistic is the highest liveness score its scan reaches
  before a clear-attack end; at threshold t it is accepted when that is >= t. This gives the DET
  curve and the PAD-only APCER/BPCER at each level's threshold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceunlock.config import Config
from faceunlock.enroll import frame_problem
from faceunlock.liveness.card import LivenessCard
from faceunlock.pipeline import FrameResult, Pipeline
from faceunlock.verify import Scan, scan

LENGTHS = (8, 15, 30, 60, 150)
CACHE_VERSION = 3
ENROL_VERSION = 3
"""Bump these when the analysis (or the MADE clips) or the enrolment change, so caches are not reused."""
ENROL_FRAMES = 10


@dataclass
class Clip:
    """One labelled clip. `label` is "live" or the attack kind; MADE clips say so in `made`."""

    name: str
    label: str
    person: str
    role: str
    frames: Callable[[], Iterable[np.ndarray]] = field(repr=False)
    enrol: Callable[[], Iterable[np.ndarray]] | None = field(default=None, repr=False)
    room: str = ""
    instrument: str = ""
    made: bool = False
    revision: str = ""
    """A MADE clip's recipe version: part of its cache key."""

    @property
    def live(self) -> bool:
        return self.label == "live"


@dataclass
class Analysed:
    clip: Clip
    results: list[FrameResult]
    anchors: np.ndarray | None
    enrol_problem: str = ""


@dataclass
class Window:
    """What a fresh scan over one window did."""

    outcome: str | None
    frames: int
    max_score: float | None
    min_score: float | None


def analyse(pipeline: Pipeline, frames: Iterable[np.ndarray]) -> list[FrameResult]:
    """Every frame through the pipeline, each against the one before (both networks run)."""
    results: list[FrameResult] = []
    previous = None
    for rgb in frames:
        result = pipeline.analyse(rgb, previous=previous)
        if previous is not None and previous.live is not None:
            previous.live.motion = None
        result.chip = None
        results.append(result)
        previous = result
    if previous is not None and previous.live is not None:
        previous.live.motion = None
    return results


def anchors_from(
    pipeline: Pipeline, frames: Iterable[np.ndarray], cfg: Config, step: int = 1
) -> tuple[np.ndarray | None, str]:
    """Up to ENROL_FRAMES embeddings, evenly spread over the usable enrolment frames (every
    `step`-th frame is looked at)."""
    kept, problems = [], {}
    for rgb in itertools.islice(frames, 0, None, step):
        result = pipeline.analyse(rgb)
        problem = frame_problem(result, cfg.verify)
        if problem is None:
            kept.append(result.embedding)
        else:
            problems[problem] = problems.get(problem, 0) + 1
    if not kept:
        return None, f"only {len(kept)} usable enrolment frames (rejected: {problems})"
    step = max(1, len(kept) // ENROL_FRAMES)
    return np.stack(kept[::step][:ENROL_FRAMES]), ""


def prepare(pipeline: Pipeline, clip: Clip, cfg: Config, cache: Path | None = None) -> Analysed:
    """Enrol and analyse a clip. With `cache`, the analysis and the enrolment are each kept in a
    pickle keyed by the clip, the models and their code versions (a local cache: trust it as your
    own files)."""

    def cached(kind: str, version: int, compute):
        if cache is None:
            return compute()
        networks = [n.onnx_sha256 for n in pipeline.live_card.networks]
        models = [pipeline.fingerprint, pipeline.embedder.source, *networks]
        ident = (version, clip.name, models) + ((clip.revision,) if clip.revision else ())
        key = hashlib.sha256(repr(ident).encode()).hexdigest()[:16]
        path = cache / f"{clip.name}-{kind}-{key}.pkl"
        if path.exists():
            return pickle.loads(path.read_bytes())
        value = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(value))
        return value

    def enrol():
        return (None, "no enrolment") if clip.enrol is None else anchors_from(pipeline, clip.enrol(), cfg)

    anchors, problem = cached("enrol", ENROL_VERSION, enrol)
    results = cached("frames", CACHE_VERSION, lambda: analyse(pipeline, clip.frames()))
    return Analysed(clip, results, anchors, problem)


def pad_only(card: LivenessCard) -> LivenessCard:
    """The card with no pass threshold, so a scan runs on until a clear attack or the window's end."""
    return dataclasses.replace(card, thresholds={k: 2.0 for k in card.thresholds})


def replay(
    results: list[FrameResult],
    start: int,
    length: int,
    anchors: np.ndarray,
    threshold: float,
    cfg: Config,
    card: LivenessCard | None,
    fusion: dict | None = None,
) -> Window:
    """A fresh scan over results[start:start + length]; `fusion` is the recognition card's rule and
    window (faceunlock.verify.fusion_of), with `threshold` its attempt-level threshold."""
    state = Scan("window", anchors, threshold, cfg.verify, cfg.liveness, card, **(fusion or {}))
    scores = []
    for result in results[start : start + length]:
        done = state.feed(result)
        if state.verdict is not None and state.verdict.score is not None:
            scores.append(state.verdict.score)
        if done:
            break
    return Window(state.outcome, state.frames, max(scores, default=None), min(scores, default=None))


def windows(
    item: Analysed,
    length: int,
    threshold: float,
    cfg: Config,
    card: LivenessCard | None,
    stride: int = 1,
    pad_level: bool = True,
    scan_level: bool = True,
    fusion: dict | None = None,
) -> dict:
    """Scan-level and PAD-level outcomes (either can be left out) of every window of `length`
    frames of one clip."""
    results = item.results
    starts = range(0, max(0, len(results) - length) + 1, stride) if len(results) >= length else []
    anchors = item.anchors if item.anchors is not None else np.full((1, 128), 1e3, np.float32)
    matched, attacked, scores, lows = 0, 0, [], []
    pad_card = pad_only(card) if card is not None and pad_level else None
    for s in starts:
        if scan_level:
            w = replay(results, s, length, anchors, threshold, cfg, card, fusion)
            matched += w.outcome == "match"
            attacked += w.outcome == "attack"
        if pad_card is not None:
            p = replay(results, s, length, anchors, threshold, cfg, pad_card, fusion)
            scores.append(-1.0 if p.max_score is None else p.max_score)
            lows.append(p.min_score)
    return {
        "windows": len(starts),
        "matched": matched,
        "attack_ended": attacked,
        "pad_scores": scores,
        "pad_min_scores": lows,
    }


def rates(
    items: list[Analysed],
    lengths: Iterable[int],
    threshold: float,
    cfg: Config,
    card,
    fusion: dict | None = None,
) -> dict:
    """Per window length: APCER per attack kind and BPCER, scan level and PAD level.

    PAD-level rates count only the windows where the liveness check reached a score (enough
    usable frames of one tracked face); the share of windows where it did not is `not_acquired`
    (failure to acquire). Scan-level rates count every window; for live clips,
    `bpcer_liveness_off` is the scan-level BPCER of the same windows with liveness off (what the
    face match and the frame gates alone reject).
    """
    level_t = card.threshold(cfg.verify.security_level) if card is not None else None
    off = dataclasses.replace(cfg, liveness=dataclasses.replace(cfg.liveness, enabled=False))
    out = {}
    for length in lengths:
        kinds: dict[str, dict] = {}
        per_clip = {}
        for item in items:
            w = windows(item, length, threshold, cfg, card, fusion=fusion)
            per_clip[item.clip.name] = {k: v for k, v in w.items() if not k.startswith("pad_")}
            k = kinds.setdefault(item.clip.label, {"windows": 0, "matched": 0, "scores": [], "face_only": 0})
            k["windows"] += w["windows"]
            k["matched"] += w["matched"]
            k["scores"] += [v for v in w["pad_scores"] if v >= 0]
            if item.clip.live and card is not None:
                k["face_only"] += windows(item, length, threshold, off, None, pad_level=False, fusion=fusion)[
                    "matched"
                ]
        table = {}
        for label, k in kinds.items():
            n, decided = k["windows"], len(k["scores"])
            passed = sum(v >= level_t for v in k["scores"]) if level_t is not None else 0
            row = {"windows": n, "not_acquired": (n - decided) / n if n and card else None}
            if label == "live":
                row.update(
                    rejected=n - k["matched"],
                    bpcer=(n - k["matched"]) / n if n else None,
                    bpcer_liveness_off=(n - k["face_only"]) / n if n and card else None,
                    pad_bpcer=(decided - passed) / decided if decided else None,
                )
            else:
                row.update(
                    accepted=k["matched"],
                    apcer=k["matched"] / n if n else None,
                    pad_apcer=passed / decided if decided else None,
                )
            row["pad_scores"] = k["scores"]
            table[label] = row
        out[length] = {"kinds": table, "clips": per_clip}
    return out


def det_points(live_scores: list[float], attack_scores: list[float]) -> list[tuple[float, float, float]]:
    """(threshold, APCER, BPCER) at every distinct score."""
    live = np.asarray(live_scores)
    attack = np.asarray(attack_scores)
    points = []
    for t in np.unique(np.concatenate([live, attack, [0.0, 1.0]])):
        apcer = float((attack >= t).mean()) if len(attack) else 0.0
        bpcer = float((live < t).mean()) if len(live) else 0.0
        points.append((float(t), apcer, bpcer))
    return points


def time_to_match(
    pipeline: Pipeline,
    frames: list[np.ndarray],
    anchors: np.ndarray,
    threshold: float,
    cfg: Config,
    starts: Iterable[int],
) -> list[dict]:
    """Real, warm scans from each start frame (frames already decoded): decision, frames, wall ms,
    and the process's CPU ms (on a machine shared with other jobs, wall time also counts waiting
    for a core; with one torch and one ONNX Runtime thread, CPU time is the work itself)."""
    out = []
    for s in starts:
        t0, c0 = time.perf_counter(), time.process_time()
        d = scan(pipeline, iter(frames[s:]), "timing", anchors, threshold, cfg.verify, None, cfg.liveness)
        wall, cpu = (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3
        out.append({"start": int(s), "decision": d.decision, "frames": d.frames, "ms": wall, "cpu_ms": cpu})
    return out


def data_summary(items: list[Analysed]) -> dict:
    """Per label: clips, people, rooms, instruments, frames, and how many clips are MADE."""
    out: dict[str, dict] = {}
    for item in items:
        c = item.clip
        s = out.setdefault(
            c.label,
            {"clips": 0, "made_clips": 0, "frames": 0, "people": set(), "rooms": set(), "instruments": set()},
        )
        s["clips"] += 1
        s["made_clips"] += c.made
        s["frames"] += len(item.results)
        s["people"].add(c.person)
        s["rooms"].add(c.room)
        if c.instrument:
            s["instruments"].add(c.instrument)
    return {
        k: {
            **v,
            "people": sorted(v["people"]),
            "rooms": sorted(v["rooms"]),
            "instruments": sorted(v["instruments"]),
        }
        for k, v in out.items()
    }


def evaluate(
    items: list[Analysed],
    lengths: Iterable[int],
    threshold: float,
    cfg: Config,
    card,
    fusion: dict | None = None,
) -> dict:
    """The full report: data behind it, rates per window length, DET points per length."""
    usable = [i for i in items if i.anchors is not None]
    table = rates(usable, lengths, threshold, cfg, card, fusion)
    det = {}
    for length, r in table.items():
        live = r["kinds"].get("live", {}).get("pad_scores", [])
        attack = [s for k, v in r["kinds"].items() if k != "live" for s in v["pad_scores"]]
        det[length] = det_points(live, attack)
        for v in r["kinds"].values():
            v.pop("pad_scores")
    return {
        "level": cfg.verify.security_level,
        "match_threshold": threshold,
        "liveness_threshold": card.threshold(cfg.verify.security_level) if card else None,
        "attack_below": card.attack_below if card else None,
        "data": data_summary(usable),
        "not_enrolled": {i.clip.name: i.enrol_problem for i in items if i.anchors is None},
        "lengths": {str(k): v for k, v in table.items()},
        "det": {str(k): v for k, v in det.items()},
    }


def write_det(result: dict, out_dir: Path) -> Path:
    """DET curve (APCER against BPCER, PAD level) per window length, with the level's threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    floor = 1e-4
    for length, points in result["det"].items():
        a = np.maximum([p[1] for p in points], floor)
        b = np.maximum([p[2] for p in points], floor)
        ax.loglog(a, b, label=f"{length} frames", drawstyle="steps-post")
    ax.set_xlabel("APCER (attack windows accepted as live)")
    ax.set_ylabel("BPCER (live windows rejected)")
    t = result.get("liveness_threshold")
    ax.set_title(f"Liveness DET, PAD level ({result['level']} threshold {t}); 1e-4 = none", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out_dir / "liveness_det.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
