"""`faceunlock verify`: scan frames and decide whether the enrolled user is in view."""

from __future__ import annotations

import argparse
import json
import time

from faceunlock import config as config_mod
from faceunlock import runtime
from faceunlock.commands.common import add_common, add_store, load_config
from faceunlock.decision import Decision
from faceunlock.errors import describe
from faceunlock.model import load_card
from faceunlock.store import NotEnrolled


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("verify", help="check whether the enrolled user is in view")
    p.add_argument("--user", required=True)
    p.add_argument("--source", help="camera device or index, video, image or folder of images")
    p.add_argument("--timeout", type=float, help="seconds a scan may take (default 5)")
    p.add_argument("--level", choices=("strict", "balanced", "fast"), help="security level")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_store(p)
    add_common(p)
    p.set_defaults(run=run)


def decide(args: argparse.Namespace, started: float) -> Decision:
    """Run one verification; every failure becomes a non-match Decision with its reason."""
    try:
        cfg = config_mod.replace(load_config(args), "verify", timeout=args.timeout, security_level=args.level)
        card = load_card()
        threshold = card.threshold(cfg.verify.security_level)
        template = runtime.open_store(cfg, card).load(args.user)
        pipeline = runtime.load_pipeline(cfg, card, args.threads)
        deadline = time.monotonic() + cfg.verify.timeout
        return runtime.verify_scan(pipeline, cfg, args.user, template.anchors(), threshold, deadline, "cli")
    except NotEnrolled as exc:
        kind, reason = "not-enrolled", str(exc)
    except Exception as exc:  # noqa: BLE001  (fail closed: any error is a non-match)
        kind, reason = "error", describe(exc)
    return Decision(
        user=args.user, decision=kind, elapsed_ms=(time.monotonic() - started) * 1e3, reason=reason
    )


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    decision = decide(args, started)
    if args.json:
        print(json.dumps(decision.as_dict()))
    else:
        distance = "-" if decision.distance is None else f"{decision.distance:.3f}"
        print(
            f"{decision.decision}: {decision.reason} "
            f"(distance {distance}, threshold {decision.threshold}, frames {decision.frames}, "
            f"{decision.elapsed_ms:.0f} ms)"
        )
    return 0 if decision.matched else 1
