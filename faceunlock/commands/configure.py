"""`faceunlock config show|get|set` and `faceunlock disable|enable`: the config file from the command line."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from faceunlock import config as config_mod
from faceunlock import config_edit, settings
from faceunlock.errors import ConfigError
from faceunlock.paths import CONFIG_PATH

AT_ONCE = ("pam",)
"""Sections the daemon reads again for every PAM request; it reads the others when it starts."""


def register(sub) -> None:
    """Add the config, disable and enable parsers."""
    p = sub.add_parser("config", help="show, read or change the configuration file")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = csub.add_parser("show", help="every key with the value in effect")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    get = csub.add_parser("get", help="print one key's value in effect (no quotes; lists comma-separated)")
    get.add_argument("key", metavar="KEY", help="section.name, for example verify.security_level")
    put = csub.add_parser("set", help="change one key (validated; written atomically, root-owned, 0644)")
    put.add_argument("key", metavar="KEY", help="section.name, for example verify.security_level")
    put.add_argument("value", metavar="VALUE", help="true/false, a number, a word, or a comma-separated list")
    for q in (show, get, put):
        q.add_argument("--config", help=f"config file (default {CONFIG_PATH})")
        q.set_defaults(run=run)
    for name, text in (
        ("disable", "turn face unlock off everywhere: every PAM service and the automatic unlock"),
        ("enable", "turn face unlock back on"),
    ):
        q = sub.add_parser(name, help=text)
        q.add_argument("--config", help=f"config file (default {CONFIG_PATH})")
        q.set_defaults(run=run)


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if args.config else CONFIG_PATH


def with_overlay(cfg: config_mod.Config) -> tuple[config_mod.Config, dict, str]:
    """The config in effect (the settings app's overlay applied), the overlay, and a note if unreadable."""
    try:
        values = settings.read(settings.path_for(cfg))
    except ConfigError as exc:
        return cfg, {}, f"the settings app's overlay is not applied here: {exc}"
    return settings.apply(cfg, values), values, ""


def forget_overlay_key(cfg: config_mod.Config, key: str) -> str | None:
    """The file now decides key: drop it from the settings app's overlay (kept by its owner)."""
    path = settings.path_for(cfg)
    try:
        values = settings.read(path)
    except ConfigError:
        return None
    if key not in values:
        return None
    del values[key]
    st = path.stat()
    settings.write(path, values, owner=(st.st_uid, st.st_gid))
    return f"removed {key} from the settings app's overlay {path}"


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    if args.command in ("disable", "enable"):
        config_edit.set_value(path, "pam.enabled", "true" if args.command == "enable" else "false")
        state = "on" if args.command == "enable" else "off (sudo, su, lock screens, the automatic unlock)"
        print(f"face unlock is {state}; set pam.enabled in {path}")
        return 0
    if args.action == "set":
        cfg = config_edit.set_value(path, args.key, args.value)
        value = config_edit.value_of(cfg, args.key)
        print(f"set {args.key} = {config_edit.show(value)} in {path}")
        note = forget_overlay_key(cfg, args.key) if os.geteuid() == 0 else None
        if note:
            print(note)
        if args.key.partition(".")[0] not in AT_ONCE:
            print("the daemon reads this when it starts: systemctl restart faceunlock.service")
        return 0
    cfg = config_mod.load(args.config)
    effective, overlay, note = with_overlay(cfg)
    if args.action == "get":
        print(config_edit.bare(config_edit.value_of(effective, args.key)))
        return 0
    rows = {}
    for section, fields in config_edit.sections().items():
        for name in fields:
            key = f"{section}.{name}" if section else name
            rows[key] = config_edit.value_of(effective, key)
    if args.json:
        print(
            json.dumps(
                {
                    "config": {k: list(v) if isinstance(v, tuple) else v for k, v in rows.items()},
                    "overlay": overlay,
                    "file": str(path),
                }
            )
        )
        return 0
    defaults = config_mod.Config()
    for key, value in rows.items():
        marks = []
        if value != config_edit.value_of(defaults, key):
            marks.append("set")
        if key in overlay or (key.startswith("pam.services") and overlay):
            marks.append("settings app")
        print(f"{key} = {config_edit.show(value)}" + (f"  # {', '.join(marks)}" if marks else ""))
    for key, value in overlay.items():
        print(f"# settings app: {key} = {config_edit.show(value)}")
    if note:
        print(f"# {note}")
    return 0
