"""`faceunlock list|remove|clear`: inspect and delete enrolments (deleting asks first, unless -y)."""

from __future__ import annotations

import argparse
import os

from faceunlock.commands import as_user
from faceunlock.commands.common import add_store, confirmed, load_config
from faceunlock.errors import EXIT_NO_MATCH, UserError
from faceunlock.lockout import Lockout
from faceunlock.runtime import open_store
from faceunlock.store import is_learned


def register(sub) -> None:
    """Add the list, remove and clear parsers."""
    for name, text in (
        ("list", "list a user's enrolments"),
        ("remove", "remove one enrolment by label"),
        ("clear", "remove all of a user's enrolments"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--user", required=True, help="the login name")
        if name == "remove":
            p.add_argument("--label", required=True, help="the enrolment to remove (see list)")
        if name in ("remove", "clear"):
            p.add_argument("-y", "--yes", action="store_true", help="delete without asking")
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
    if as_user.wanted(args):
        return as_user.manage(args)
    store = open_store(cfg)
    if args.command == "list":
        template = store.load(args.user)
        print(f"user {args.user}: {len(template.enrolments)} enrolment(s), updated {template.updated}")
        for e in template.enrolments:
            note = "  learned from a password login after a near miss" if is_learned(e.label) else ""
            note += f", renewed {e.renewed} by a confident match" if e.renewed else ""
            print(f"  {e.label:<24} {len(e.embeddings):>3} embeddings  created {e.created}{note}")
        return 0
    if args.command == "remove":
        store.load(args.user)
        if not confirmed(args, f"Delete the enrolment {args.label!r} of {args.user}?"):
            return EXIT_NO_MATCH
        left = store.remove(args.user, args.label)
        remaining = 0 if left is None else len(left.enrolments)
        print(f"removed enrolment {args.label!r} of {args.user}; {remaining} left")
        return 0
    if not store.exists(args.user):
        print(f"user {args.user} had no enrolments")
        return EXIT_NO_MATCH
    if not confirmed(args, f"Delete every enrolment of {args.user}? Face unlock then stops for them."):
        return EXIT_NO_MATCH
    store.clear(args.user)
    print(f"removed all enrolments of {args.user}")
    return 0
