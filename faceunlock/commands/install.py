"""`faceunlock install|uninstall`: put the unit, bus policy, PAM profile and state directory in place."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add the install and uninstall parsers."""
    p = sub.add_parser("install", help="install the systemd unit, D-Bus files, PAM profile, state directory")
    p.add_argument("--root", default="/", help="staging prefix (default /)")
    p.set_defaults(run=run)
    p = sub.add_parser("uninstall", help="remove what install put in place (templates only with --purge)")
    p.add_argument("--root", default="/", help="staging prefix (default /)")
    p.add_argument("--purge", action="store_true", help="also delete the state directory and enrolled faces")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from faceunlock.service import install

    if args.command == "install":
        lines = install.install(args.root)
    else:
        lines = install.uninstall(args.root, purge=args.purge)
    print("\n".join(lines))
    return 0
