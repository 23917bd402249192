"""What several subcommands share: the common options and the config with their overrides."""

from __future__ import annotations

import argparse

from faceunlock import config as config_mod


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="template directory (default: from config, /var/lib/faceunlock)")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: /etc/faceunlock/config.toml if present)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")


def load_config(args: argparse.Namespace) -> config_mod.Config:
    """The config file with the options every command shares (--source, --store) applied and validated.

    Each command applies its own options on top with config.replace.
    """
    cfg = config_mod.load(getattr(args, "config", None))
    cfg = config_mod.replace(cfg, "camera", source=getattr(args, "source", None))
    return config_mod.replace(cfg, "store", path=getattr(args, "store", None))
