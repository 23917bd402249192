"""What several subcommands share: config with command-line overrides, the store, the pipeline."""

from __future__ import annotations

import argparse

from faceunlock import config as config_mod
from faceunlock.camera import SourceOptions, open_source
from faceunlock.model import ModelCard, load_card
from faceunlock.store import TemplateStore


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="template directory (default: from config, /var/lib/faceunlock)")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: /etc/faceunlock/config.toml if present)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")


def load_config(args: argparse.Namespace) -> config_mod.Config:
    """The config file, with --source/--store/--timeout/--frames/--level applied and validated."""
    cfg = config_mod.load(getattr(args, "config", None))
    cfg = config_mod.replace(cfg, "camera", source=getattr(args, "source", None))
    cfg = config_mod.replace(cfg, "store", path=getattr(args, "store", None))
    if args.command == "verify":
        cfg = config_mod.replace(cfg, "verify", timeout=args.timeout, security_level=args.level)
    if args.command == "enroll":
        cfg = config_mod.replace(cfg, "enroll", frames=args.frames, timeout=args.timeout)
    return cfg


def open_store(cfg: config_mod.Config, card: ModelCard | None = None) -> TemplateStore:
    card = card or load_card()
    return TemplateStore(cfg.store.path, model_sha256=card.sha256, embedding=card.embedding_id)


def open_camera(cfg: config_mod.Config):
    c = cfg.camera
    options = SourceOptions(
        dark_threshold=c.dark_threshold, open_timeout=c.open_timeout, read_timeout=c.read_timeout
    )
    return open_source(c.source, options)


def make_pipeline(cfg: config_mod.Config, card: ModelCard, threads: int):
    from faceunlock.pipeline import Pipeline

    return Pipeline(cfg, card, threads=threads)
