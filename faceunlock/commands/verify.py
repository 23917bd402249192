"""`faceunlock verify`: scan frames and decide whether the enrolled user is in view.

Exit status: 0 recognised, 1 not recognised (another face, no face, a timeout, a lockout), 3 an
error that decided nothing (no such file, a bad config, not enrolled); 2 is a usage error."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from faceunlock import config as config_mod
from faceunlock import runtime
from faceunlock.commands.common import add_common, add_store, load_config
from faceunlock.decision import Decision
from faceunlock.errors import EXIT_ERROR, EXIT_NO_MATCH, EXIT_OK, describe
from faceunlock.model import load_card
from faceunlock.store import NotEnrolled


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("verify", help="check whether the enrolled user is in view")
    p.add_argument("--user", required=True, help="the login name to check")
    p.add_argument("--source", help="camera device or index, video, image or folder of images")
    p.add_argument("--timeout", type=float, help="seconds a scan may take (default 5)")
    p.add_argument("--level", choices=("strict", "balanced", "fast"), help="security level")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--verbose", action="store_true", help="also print the measured details of the scan")
    add_store(p)
    add_common(p)
    p.set_defaults(run=run)


def decide(args: argparse.Namespace, started: float) -> Decision:
    """Run one verification; every failure becomes a non-match Decision with its reason."""
    try:
        cfg = config_mod.replace(load_config(args), "verify", timeout=args.timeout, security_level=args.level)
        card = load_card()
        threshold = card.scan_threshold(cfg.verify.security_level)
        template = runtime.open_store(cfg, card).load(args.user)
        deadline = time.monotonic() + cfg.verify.timeout
        with runtime.start_camera(cfg, deadline) as camera:  # opens while the models load
            pipeline = runtime.load_pipeline(cfg, card, args.threads, one_shot=True)
            anchors = template.anchors()
            return runtime.verify_scan(pipeline, cfg, args.user, anchors, threshold, deadline, "cli", camera)
    except NotEnrolled as exc:
        kind, reason = "not-enrolled", str(exc)
    except Exception as exc:  # noqa: BLE001  (fail closed: any error is a non-match)
        kind, reason = "error", describe(exc)
    return Decision(
        user=args.user, decision=kind, elapsed_ms=(time.monotonic() - started) * 1e3, reason=reason
    )


BROKEN = ("error", "not-enrolled")
"""Decisions that decided nothing: something is broken (exit EXIT_ERROR, not EXIT_NO_MATCH)."""


def plain(decision: Decision) -> str:
    """The outcome in words a person uses; the measured details are for --verbose and --json."""
    user = decision.user
    if decision.matched:
        return f"{user} recognised."
    if decision.decision == "no-match" and decision.liveness in ("fail", "doubt"):
        return f"not accepted: this looks like a photo or a screen, not {user} in person."
    words = {
        "no-match": f"not recognised: the face in view is not {user}'s.",
        "no-face": "no face in view." + (f" {decision.reason}" if "dark" in decision.reason else ""),
        "timeout": f"{user} not recognised in time.",
        "locked-out": f"face unlock is locked for {user}: {decision.reason}.",
    }
    return words.get(decision.decision, decision.reason)


def details(decision: Decision) -> str:
    """The measured details of a scan, one line (--verbose)."""
    parts = [f"{decision.decision}: {decision.reason}"]
    if decision.distance is not None:
        parts.append(f"fused score {decision.distance:.3f} (threshold {decision.threshold:.3f})")
    if decision.liveness_score is not None:
        parts.append(f"liveness {decision.liveness} {decision.liveness_score:.3f}")
    parts.append(f"{decision.frames} frames, {decision.elapsed_ms:.0f} ms")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if not args.verbose:
        logging.getLogger("faceunlock.audit").setLevel(logging.WARNING)  # the audit line is the journal's
    decision = decide(args, started)
    if args.json:
        print(json.dumps(decision.as_dict()))
    elif decision.decision in BROKEN:
        print(f"faceunlock: error: {decision.reason}", file=sys.stderr)
    else:
        print(plain(decision))
        if args.verbose:
            print(details(decision))
    if decision.matched:
        return EXIT_OK
    return EXIT_ERROR if decision.decision in BROKEN else EXIT_NO_MATCH
