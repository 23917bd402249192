"""Fit the liveness fusion on the FITTING clips only and write it, with its thresholds, into the card.

    .venv/bin/python scripts/fit_liveness.py [--data ../shared/data] [--cache cache/liveness] \
        [--card models/minifasnet.json] [--prints 30] [--features pad,stillness] [--lights bright]

The split (which clips fit, which are held out for reporting) is in
faceunlock/evaluation/shared_data.py; the procedure in faceunlock/training/liveness_fit.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections import Counter
from datetime import date
from pathlib import Path

from faceunlock.config import Config
from faceunlock.evaluation import liveness as ev
from faceunlock.evaluation.sessions import LIGHT_NAMES, relit_clip
from faceunlock.evaluation.shared_data import FIT, made_clips, recorded_clips
from faceunlock.liveness.card import load_liveness_card
from faceunlock.liveness.score import FEATURES
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline
from faceunlock.training import liveness_fit as fit


def extreme_scores(items, cfg, card, threshold) -> tuple[float, float, dict]:
    """(lowest score of any live window, highest of any attack window) over every fitting window."""
    live_min, attack_max, per_kind = 1.0, 0.0, {}
    for item in items:
        for length in ev.LENGTHS:
            w = ev.windows(item, length, threshold, cfg, card, scan_level=False)
            if item.clip.live:
                lows = [v for v in w["pad_min_scores"] if v is not None]
                live_min = min([live_min] + lows)
            else:
                top = max(w["pad_scores"], default=0.0)
                attack_max = max(attack_max, top)
                per_kind[item.clip.label] = max(per_kind.get(item.clip.label, 0.0), top)
    return live_min, attack_max, per_kind


def listed(parser: argparse.ArgumentParser, option: str, value: str | None, allowed) -> list[str]:
    """A comma-separated option's distinct names, each one of `allowed`; [] without the option."""
    if value is None:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    wrong = [n for n in names if n not in allowed]
    if not names or wrong or len(set(names)) != len(names):
        parser.error(
            f"{option} {value!r}: give distinct names from {', '.join(allowed)}"
            + (f" (not among them: {', '.join(wrong)})" if wrong else "")
        )
    return names


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("FACEUNLOCK_DATA", "../shared/data"))
    p.add_argument("--cache", default="cache/liveness")
    p.add_argument("--card", default="models/minifasnet.json")
    p.add_argument("--prints", type=int, default=30)
    p.add_argument("--min-frames", type=int, default=8)
    p.add_argument(
        "--features",
        help="fit these features (comma-separated) instead of choosing them greedily, e.g. to re-fit "
        "a card's own features on today's analysis",
    )
    p.add_argument(
        "--lights",
        help="also fit on every fitting clip under these light changes (comma-separated names from "
        "faceunlock.evaluation.sessions.LIGHT_NAMES, e.g. bright): live and attack clips alike, so the "
        "thresholds still see the attacks in that light",
    )
    args = p.parse_args()
    fixed = listed(p, "--features", args.features, fit.SELECTABLE)
    lights = listed(p, "--lights", args.lights, LIGHT_NAMES)
    import torch

    torch.set_num_threads(1)
    cfg = Config()
    card = load_liveness_card()
    pipeline = Pipeline(cfg, load_card(), threads=1, all_cues=True)
    data = Path(args.data)
    clips = recorded_clips(data, FIT) + made_clips(data, FIT, args.prints)
    clips += [relit_clip(c, light) for light in lights for c in clips]
    items = [ev.prepare(pipeline, c, cfg, Path(args.cache)) for c in clips]
    samples = fit.gather(items, cfg, card)
    if fixed:
        names, cols = fixed, [FEATURES.index(f) for f in fixed]
        loss, shares = fit.cross_validate(samples, cols)
        trace = [{"+".join(fixed): round(float(loss), 5)}]
        tails = [{"+".join(fixed): [round(v, 5) for v in shares]}]
    else:
        names, trace, tails = fit.select(samples)
    fusion, _ = fit.fit_fusion(samples, names, args.min_frames)
    fitted = dataclasses.replace(card, fusion=fusion, min_frames=args.min_frames)
    threshold = load_card().threshold(cfg.verify.security_level)
    live_min, _, _ = extreme_scores([i for i in items if i.clip.live], cfg, fit.silent(fitted), threshold)
    cut = fit.choose_thresholds(live_min, 0.0)["attack_below"]
    with_cut = dataclasses.replace(fit.silent(fitted), attack_below=cut)
    _, attack_max, per_kind = extreme_scores([i for i in items if not i.clip.live], cfg, with_cut, threshold)
    thresholds = fit.choose_thresholds(live_min, attack_max)
    print(f"features chosen: {names}")
    for step, (losses, shares) in enumerate(zip(trace, tails, strict=True), 1):
        print(f"  step {step}, cross-validated log-loss with each candidate added: {losses}")
        print(f"    (live, attack) shares the fold's rule threshold accepts: {shares}")
    print(f"fusion: {fusion}")
    print(f"lowest live window score {live_min:.4f}, highest attack window score {attack_max:.4f} {per_kind}")
    print(f"thresholds: {thresholds}")
    raw = json.loads(Path(args.card).read_text())
    raw["fusion"] = {
        "features": list(fusion.features),
        "weights": list(fusion.weights),
        "mean": list(fusion.mean),
        "std": list(fusion.std),
        "bias": fusion.bias,
        "min_frames": args.min_frames,
        "schedule": "frame k of a scan runs network k mod 2: one network per frame, the two scales alternate",
    }
    raw["thresholds"] = thresholds
    raw["fitting"] = {
        "command": "python scripts/fit_liveness.py --data ../shared/data --cache cache/liveness"
        + (f" --features {','.join(fixed)}" if fixed else "")
        + (f" --lights {','.join(lights)}" if lights else ""),
        "date": date.today().isoformat(),
        "split": "faceunlock/evaluation/shared_data.py (role 'fit'); nothing from the 'report' role",
        "clips": dict(Counter(i.clip.label for i in items)),
        "people_in_videos": len({i.clip.person for i in items if i.clip.label != "made-print"}),
        "print_identities": len({i.clip.person for i in items if i.clip.label == "made-print"}),
        "samples": {"live": int((samples.y == 1).sum()), "attack": int((samples.y == 0).sum())},
        "selection_trace": trace,
        "selection_tail_trace": tails,
        "rule": "4. Thresholds" + fit.__doc__.split("4. Thresholds")[1].rstrip().replace("\n   ", ""),
        "lowest_live_window_score": round(live_min, 6),
        "highest_attack_window_score": round(attack_max, 6),
        "highest_attack_window_score_per_kind": {k: round(v, 6) for k, v in per_kind.items()},
    }
    Path(args.card).write_text(json.dumps(raw, indent=1) + "\n")
    print(f"wrote {args.card}")


if __name__ == "__main__":
    main()
