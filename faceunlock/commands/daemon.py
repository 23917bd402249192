"""`faceunlock daemon`: the D-Bus system service (run by systemd)."""

from __future__ import annotations

import argparse

from faceunlock import config as config_mod


def register(sub) -> None:
    """Add this subcommand's parser."""
    p = sub.add_parser("daemon", help="run the D-Bus system service (normally started by systemd)")
    p.add_argument("--config", help="TOML config file (default: /etc/faceunlock/config.toml if present)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve with a trusted config only: root-owned, writable by root alone, a real camera unless insecure."""
    from faceunlock.service.isolate import scrub_environment

    scrub_environment()
    cfg = config_mod.require_daemon_safe(config_mod.load(args.config, trusted=True))
    from faceunlock.service.daemon import serve

    return serve(cfg, args.config)
