"""Changing the config file from the command line: one key at a time, through the typed config.

``set`` reads the file's explicit keys, changes one (parsed from text into the
key's type), validates the whole document exactly as loading does (ranges,
choices, the safe floor), renders it as TOML, checks that the text reads back
to the same values, and replaces the file atomically, root-owned, mode 0644.
Only explicit keys are written (defaults stay defaults); comments in the old
file are not kept: each key is written with its documentation instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from pathlib import Path

from faceunlock import config as config_mod
from faceunlock.atomic import atomic_write
from faceunlock.config import Config
from faceunlock.errors import ConfigError

TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}
HEADER = (
    "# faceunlock configuration, written by `faceunlock config set`.\n"
    "# Only keys that differ from their defaults need to be here; see faceunlock.conf(5).\n"
)


def sections() -> dict[str, dict[str, dataclasses.Field]]:
    """Every key of the typed config: {"": top-level fields, "camera": {...}, ...}."""
    out: dict[str, dict[str, dataclasses.Field]] = {"": {}}
    for f in dataclasses.fields(Config):
        if f.default is dataclasses.MISSING:
            out[f.name] = {g.name: g for g in dataclasses.fields(f.default_factory)}
        else:
            out[""][f.name] = f
    return out


def field_of(key: str) -> tuple[str, dataclasses.Field]:
    """The section and field named by KEY (``section.name``, or a top-level name such as ``insecure``)."""
    section, _, name = key.rpartition(".")
    fields = sections().get(section)
    if fields is None or name not in fields:
        known = [f"{s}.{n}" if s else n for s, fs in sections().items() for n in fs]
        near = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(near)}?" if near else "faceunlock config show lists every key"
        raise ConfigError(f"unknown key {key!r}; {hint}")
    return section, fields[name]


def parse_value(key: str, f: dataclasses.Field, text: str):
    """Text from the command line as the key's type (not yet range-checked)."""
    kind = type(f.default)
    word = text.strip().lower()
    try:
        if kind is bool:
            if word in TRUE | FALSE:
                return word in TRUE
            raise ValueError("expected true or false")
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            if text.strip().startswith("["):
                return tomllib.loads(f"v = {text}")["v"]
            return [item.strip() for item in text.split(",") if item.strip()]
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read {text!r} as {kind.__name__}: {exc}") from None
    return text


def toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{value!r} cannot be written")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_string(str(value))


def render(raw: dict) -> str:
    """The explicit keys of a config document as TOML, each with its documentation."""
    lines = [HEADER]
    for section, fields in sections().items():
        values = raw.get(section, {}) if section else {k: v for k, v in raw.items() if k in fields}
        keys = [name for name in fields if name in values]
        if not keys:
            continue
        if section:
            lines.append(f"\n[{section}]\n")
        for name in keys:
            doc = fields[name].metadata.get("doc", "")
            lines.append(f"{name} = {toml_value(values[name])}" + (f"  # {doc}\n" if doc else "\n"))
    return "".join(lines)


def read_raw(path: Path) -> dict:
    """The file's explicit keys ({} when it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def set_value(path: Path, key: str, text: str) -> Config:
    """Set one key in the file (validated as a whole) and write it atomically, root-owned, 0644."""
    section, f = field_of(key)
    raw = read_raw(path)
    value = parse_value(key, f, text)
    if section:
        if not isinstance(raw.get(section, {}), dict):
            raise ConfigError(f"[{section}] in {path} is not a table")
        raw.setdefault(section, {})[f.name] = value
    else:
        raw[f.name] = value
    try:
        cfg = config_mod.from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"not changed: {exc}") from None
    text_out = render(raw)
    if config_mod.from_dict(tomllib.loads(text_out)) != cfg:
        raise ConfigError(f"internal error: the rendered config of {key} does not read back the same")
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        atomic_write(path, text_out.encode(), mode=0o644, owner=(0, 0))
    except PermissionError:
        raise ConfigError(
            f"cannot write {path}: the config is root's (sudo faceunlock config set ...)"
        ) from None
    return cfg


def value_of(cfg: Config, key: str):
    section, f = field_of(key)
    return getattr(getattr(cfg, section), f.name) if section else getattr(cfg, f.name)


def show(value) -> str:
    """A value as it is written in the file."""
    return toml_value(value)


def bare(value) -> str:
    """A value as a script wants it: text without quotes, a list comma-separated, true or false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(bare(v) for v in value)
    return str(value)
