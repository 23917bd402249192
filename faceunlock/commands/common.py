"""What several subcommands share: the common options and the config with their overrides."""

from __future__ import annotations

import argparse
import sys

from faceunlock import config as config_mod


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="template directory (default: from config, /var/lib/faceunlock)")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: /etc/faceunlock/config.toml if present)")
    p.add_argument("--threads", type=int, default=2, help="inference threads per network (default 2)")


def load_config(args: argparse.Namespace) -> config_mod.Config:
    """The config file with the options every command shares (--source, --store) applied and validated.

    Each command applies its own options on top with config.replace.
    """
    cfg = config_mod.load(getattr(args, "config", None))
    cfg = config_mod.replace(cfg, "camera", source=getattr(args, "source", None))
    return config_mod.replace(cfg, "store", path=getattr(args, "store", None))


def confirmed(args: argparse.Namespace, question: str) -> bool:
    """Ask on the terminal (or read the answer from standard input) unless --yes; only y or yes
    deletes. Nothing deleted is said, and exits 1."""
    if args.yes:
        return True
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        return True
    print("kept: nothing was deleted (-y deletes without asking)", file=sys.stderr)
    return False
