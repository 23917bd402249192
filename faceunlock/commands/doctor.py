"""`faceunlock doctor`: check camera, daemon, PAM stacks, enrolments, lockout and config; say how to fix."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from faceunlock.service.names import SYSTEM_BUS_ADDRESS

MARKS = {"ok": "ok", "info": "--", "problem": "!!"}


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("doctor", help="say what is wrong with this installation and how to fix it")
    p.add_argument("--config", help="config file (default: /etc/faceunlock/config.toml if present)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--frames", type=int, default=30, help="camera frames to read (default 30)")
    p.add_argument("--pam-dir", default="/etc/pam.d", help=argparse.SUPPRESS)
    p.add_argument("--bus-address", default=SYSTEM_BUS_ADDRESS, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceunlock.service.doctor import diagnose, exit_status

    findings = diagnose(
        Path(args.config) if args.config else None, Path(args.pam_dir), args.bus_address, max(1, args.frames)
    )
    status = exit_status(findings)
    if args.json:
        problems = sum(f.status == "problem" for f in findings)
        print(
            json.dumps({"ok": status == 0, "problems": problems, "findings": [asdict(f) for f in findings]})
        )
        return status
    for f in findings:
        print(f"[{MARKS[f.status]}] {f.check:<10} {f.message}")
        if f.fix and f.status != "ok":
            print(f"   {'':<10} fix: {f.fix}")
    print("no problems found" if status == 0 else "problems found (marked !!)")
    return status
