"""`faceunlock enroll`: guided enrolment through a few head poses, or a plain capture of N frames."""

from __future__ import annotations

import argparse
import json
import pwd
import sys

from faceunlock import config as config_mod
from faceunlock import runtime
from faceunlock.commands import as_user
from faceunlock.commands.common import add_common, add_store, load_config
from faceunlock.config import ENROL_POSES
from faceunlock.errors import EnrollError, UserError
from faceunlock.model import load_card
from faceunlock.store import check_label, check_user


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("enroll", help="capture and store a user's face, guided through a few head poses")
    p.add_argument("--user", required=True, help="the login name to enrol")
    p.add_argument("--source", help="camera device or index, video, image or folder of images")
    p.add_argument("--label", default="default", help="name of this enrolment (default: default)")
    p.add_argument(
        "--frames", type=int, help="no guidance: keep the first N good frames (for a folder of photos)"
    )
    p.add_argument("--poses", help=f"comma-separated poses to ask for (default: {','.join(ENROL_POSES)})")
    p.add_argument("--timeout", type=float, help="seconds to try for (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object with each capture's quality")
    p.add_argument("-y", "--yes", action="store_true", help="add a look that does not resemble the enrolment")
    add_store(p)
    add_common(p)
    p.set_defaults(run=run)


def plain(pipeline, cfg, quiet: bool):
    wanted = cfg.enroll.frames
    last = [None]

    def progress(kept: int, total: int, hint: str | None) -> None:
        if quiet:
            return
        if hint and hint != last[0]:
            print(f"\r  {hint:<72}", file=sys.stderr)
        last[0] = hint
        bar = "#" * kept + "." * (total - kept)
        print(f"\r  capturing [{bar}] {kept}/{total}", end="", file=sys.stderr, flush=True)

    try:
        return runtime.enrol_capture(pipeline, cfg, wanted, progress), {"mode": "plain", "frames": wanted}
    finally:
        if not quiet:
            print(file=sys.stderr)


def guided(pipeline, cfg, quiet: bool):
    said = [None]

    def progress(step, _rgb, _result) -> None:
        line = f"[{step.done}/{step.total} poses] {step.pose}: {step.hint}"
        if not quiet and line != said[0]:
            print(f"  {line}", file=sys.stderr, flush=True)
        said[0] = line

    anchors, report = runtime.guided_capture(pipeline, cfg, progress)
    return anchors, {"mode": "guided", **report}


def account_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def resembles(template, anchors, per_pair: float, args: argparse.Namespace) -> bool:
    """A new look must be the same person as the user's enrolment: its centroid under the per-pair
    threshold from some existing look's. Otherwise say so, and ask (fprintd refuses a duplicate
    finger; here another person's face added as a look would unlock the account)."""
    nearest = template.distance_to(anchors, replacing=args.label) if template else None
    if nearest is None or nearest < per_pair:
        return True
    print(
        f"This face does not resemble the enrolment of {args.user} (distance {nearest:.3f}, the same "
        f"person stays under {per_pair:.3f}): is it someone else?",
        file=sys.stderr,
    )
    if args.yes:
        return True
    print("Add it anyway? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    check_user(args.user)
    check_label(args.label)
    if as_user.wanted(args):
        return as_user.enroll(args)
    if args.store is None and not account_exists(args.user):
        raise UserError(
            f"there is no account {args.user!r} on this machine: face unlock enrols the faces of its users "
            "(a test or evaluation store given with --store may hold any name)"
        )
    poses = [p.strip() for p in args.poses.split(",")] if args.poses else None
    cfg = config_mod.replace(
        load_config(args), "enroll", frames=args.frames, timeout=args.timeout, poses=poses
    )
    card = load_card()
    store = runtime.open_store(cfg, card)
    store.existing(args.user)
    pipeline = runtime.load_pipeline(cfg, card, args.threads)
    how = "look at the camera" if args.frames else "follow the instructions"
    print(f"Enrolling {args.user}: {how} ({cfg.camera.source})", file=sys.stderr)
    capture = plain if args.frames else guided
    try:
        anchors, report = capture(pipeline, cfg, args.json)
    except EnrollError as exc:
        if args.json:
            print(
                json.dumps(
                    {"user": args.user, "enrolled": False, "error": str(exc), **getattr(exc, "report", {})}
                )
            )
        raise
    if not resembles(store.existing(args.user), anchors, card.threshold(cfg.verify.security_level), args):
        raise UserError(f"not enrolled: the new look does not resemble {args.user}'s enrolment")
    template = store.add(args.user, args.label, anchors)
    if args.json:
        print(
            json.dumps(
                {"user": args.user, "label": args.label, "enrolled": True, "anchors": len(anchors), **report}
            )
        )
    else:
        poses = f" from poses {', '.join(report['captured'])}" if report["mode"] == "guided" else ""
        print(
            f"enrolled {args.user} ({args.label}): {len(anchors)} embeddings{poses}; "
            f"{len(template.enrolments)} enrolment(s) in {store.path_for(args.user)}"
        )
    return 0
