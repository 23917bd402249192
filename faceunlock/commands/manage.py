"""`faceunlock list|remove|clear`: inspect and delete enrolments."""

from __future__ import annotations

import argparse
import os

from faceunlock.commands.common import add_store, load_config
from faceunlock.errors import UserError
from faceunlock.lockout import Lockout
from faceunlock.runtime import open_store


def register(sub) -> None:
    """Add the list, remove and clear parsers."""
    for name, text in (
        ("list", "list a user's enrolments"),
        ("remove", "remove one enrolment by label"),
        ("clear", "remove all of a user's enrolments"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--user", required=True)
        if name == "remove":
            p.add_argument("--label", required=True)
        add_store(p)
        p.add_argument("--config", help="TOML config file")
        p.set_defaults(run=run)
    p = sub.add_parser(
        "password-used", help="record a successful password login (run from PAM after pam_unix)"
    )
    p.add_argument("--user", help="the user (default: $PAM_USER, as pam_exec sets it)")
    add_store(p)
    p.add_argument("--config", help="TOML config file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if args.command == "password-used":
        user = args.user or os.environ.get("PAM_USER", "")
        if not user:
            raise UserError("no user: pass --user, or run it from pam_exec, which sets PAM_USER")
        if os.environ.get("PAM_TYPE", "auth") != "auth":
            return 0
        Lockout(cfg.store.path, cfg.verify).password_used(user)
        print(f"recorded a password login for {user}; face unlock lockout cleared")
        return 0
    store = open_store(cfg)
    if args.command == "list":
        template = store.load(args.user)
        print(f"user {args.user}: {len(template.enrolments)} enrolment(s), updated {template.updated}")
        for e in template.enrolments:
            print(f"  {e.label:<20} {len(e.embeddings):>3} embeddings  created {e.created}")
        return 0
    if args.command == "remove":
        left = store.remove(args.user, args.label)
        remaining = 0 if left is None else len(left.enrolments)
        print(f"removed enrolment {args.label!r} of {args.user}; {remaining} left")
        return 0
    if store.clear(args.user):
        print(f"removed all enrolments of {args.user}")
        return 0
    print(f"user {args.user} had no enrolments")
    return 1
