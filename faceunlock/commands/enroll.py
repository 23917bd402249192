"""`faceunlock enroll`: capture good frames of one face and store their embeddings."""

from __future__ import annotations

import argparse
import sys

from faceunlock import config as config_mod
from faceunlock import runtime
from faceunlock.commands.common import add_common, add_store, load_config
from faceunlock.model import load_card
from faceunlock.store import check_label, check_user


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("enroll", help="capture and store a user's face")
    p.add_argument("--user", required=True)
    p.add_argument("--source", help="camera device or index, video, image or folder of images")
    p.add_argument("--label", default="default", help="name of this enrolment (default: default)")
    p.add_argument("--frames", type=int, help="good frames to capture (default 10)")
    p.add_argument("--timeout", type=float, help="seconds to try for (default 30)")
    add_store(p)
    add_common(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_user(args.user)
    check_label(args.label)
    cfg = config_mod.replace(load_config(args), "enroll", frames=args.frames, timeout=args.timeout)
    card = load_card()
    store = runtime.open_store(cfg, card)
    store.existing(args.user)
    pipeline = runtime.load_pipeline(cfg, card, args.threads)
    wanted = cfg.enroll.frames
    last = [None]

    def progress(kept: int, total: int, hint: str | None) -> None:
        if hint and hint != last[0]:
            print(f"\r  {hint:<72}", file=sys.stderr)
        last[0] = hint
        bar = "#" * kept + "." * (total - kept)
        print(f"\r  capturing [{bar}] {kept}/{total}", end="", file=sys.stderr, flush=True)

    print(f"Enrolling {args.user}: look at the camera ({cfg.camera.source})", file=sys.stderr)
    try:
        embeddings = runtime.enrol_capture(pipeline, cfg, wanted, progress)
    finally:
        print(file=sys.stderr)
    template = store.add(args.user, args.label, embeddings)
    print(
        f"enrolled {args.user} ({args.label}): {len(embeddings)} embeddings; "
        f"{len(template.enrolments)} enrolment(s) in {store.path_for(args.user)}"
    )
    return 0
