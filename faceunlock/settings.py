"""Settings changed from the desktop app: a small overlay in the state directory, over the root config.

The daemon runs as the unprivileged user ``faceunlock`` on a read-only system,
so it cannot write /etc/faceunlock/config.toml. What an authorised user
changes in faceunlock-settings (through polkit's org.faceunlock.configure) is
written by the daemon to ``<store>/settings.json`` (the StateDirectory,
/var/lib/faceunlock) and merged over the root config by the daemon and the
PAM client alike. The overlay can say only:

- ``verify.security_level``: strict, balanced or fast (all above the floor);
- ``pam.sudo``, ``pam.su``, ``pam.polkit``, ``pam.login`` false: take that
  service (and its ``-i``/``-l`` twin) out of ``[pam] services``;
- ``pam.lock_screen`` false: take the lock screens and display managers out
  of ``[pam] services``, and turn the daemon's automatic unlock off;
- ``pam.enabled`` false: face unlock off everywhere, as ``faceunlock disable``
  (every PAM service, and the automatic unlock).

So it can only pick a threshold the model card calibrated, or remove PAM
services: it can never add one, touch liveness, ``consecutive``, the camera
or ``insecure``. It is read only when it is a regular file owned by root or
the daemon's user, writable by its owner alone, in a folder that only root or
that user can change, below folders only root can change. Anything else
about it (untrusted, unreadable, malformed, an unknown key) is an error, and
the callers fail closed: no face unlock until it is fixed or removed.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from pathlib import Path

from faceunlock import config as config_mod
from faceunlock.atomic import atomic_write
from faceunlock.config import SECURITY_LEVELS, Config
from faceunlock.errors import ConfigError

FILE_NAME = "settings.json"
SERVICE_USER = "faceunlock"
MAX_BYTES = 4096
SWITCHES = config_mod.SWITCHES
"""Each on/off key and the PAM services it stands for: off removes them, on never adds one."""
MASTER = config_mod.MASTER_SWITCH
"""The switch for everything: off turns every PAM service and the automatic unlock off."""
KEYS = {"verify.security_level": SECURITY_LEVELS, MASTER: (True, False)} | {
    key: (True, False) for key in SWITCHES
}
"""Every key the overlay may hold, with its allowed values."""


def path_for(cfg: Config) -> Path:
    return Path(cfg.store.path) / FILE_NAME


def service_uid() -> int | None:
    try:
        return pwd.getpwnam(SERVICE_USER).pw_uid
    except KeyError:
        return None


def check_value(key: str, value) -> object:
    """A value the overlay may hold for key; ConfigError otherwise."""
    if key not in KEYS:
        raise ConfigError(f"{key!r} cannot be changed from the settings app; known: {', '.join(KEYS)}")
    allowed = KEYS[key]
    if isinstance(allowed[0], bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
    elif value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return value


def check_trusted(path: Path, st: os.stat_result) -> None:
    """The overlay and its folder belong to root or the daemon's user; every folder above to root."""
    owners = {0} | ({service_uid()} - {None})
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"settings overlay {path} is not a regular file")
    if st.st_uid not in owners or st.st_mode & 0o022:
        raise ConfigError(
            f"settings overlay {path} is owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}: "
            f"it must belong to root or {SERVICE_USER} and be writable by its owner alone"
        )
    folder = Path(os.path.realpath(path)).parent
    fst = folder.stat()
    if fst.st_uid not in owners or fst.st_mode & 0o022:
        raise ConfigError(
            f"settings overlay {path} is in {folder}, owned by uid {fst.st_uid} with mode "
            f"{stat.S_IMODE(fst.st_mode):04o}: someone else could replace it"
        )
    for parent in folder.parents:
        pst = parent.stat()
        sticky = pst.st_mode & stat.S_ISVTX and pst.st_uid == 0
        if pst.st_uid != 0 or (pst.st_mode & 0o022 and not sticky):
            raise ConfigError(
                f"settings overlay {path} is below {parent}, owned by uid {pst.st_uid} with mode "
                f"{stat.S_IMODE(pst.st_mode):04o}: someone other than root could replace it"
            )


class OverlayUnreadable(ConfigError):
    """The overlay's folder or file may not be read by this user (the state folder is the daemon's)."""


def read(path: Path) -> dict:
    """The overlay's values ({} when there is none); ConfigError when it cannot be trusted or used."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return {}
    except PermissionError as exc:
        raise OverlayUnreadable(f"cannot read settings overlay {path}: {exc.strerror}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings overlay {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        check_trusted(path, os.fstat(fh.fileno()))
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"settings overlay {path} is larger than {MAX_BYTES} bytes")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"settings overlay {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"settings overlay {path} must hold one JSON object")
    try:
        return {key: check_value(key, value) for key, value in raw.items()}
    except ConfigError as exc:
        raise ConfigError(f"settings overlay {path}: {exc}") from None


def apply(cfg: Config, values: dict) -> Config:
    """cfg with the overlay's values applied; every key can only pick a calibrated level or remove."""
    values = {key: check_value(key, value) for key, value in values.items()}
    if "verify.security_level" in values:
        cfg = config_mod.replace(cfg, "verify", security_level=values["verify.security_level"])
    removed = {
        service for key, services in SWITCHES.items() if values.get(key) is False for service in services
    }
    if values.get("pam.lock_screen") is False or values.get(MASTER) is False:
        cfg = config_mod.replace(cfg, "daemon", auto_unlock=False)
    if values.get(MASTER) is False:
        cfg = config_mod.replace(cfg, "pam", enabled=False)
    if removed:
        services = [s for s in cfg.pam.services if s not in removed]
        cfg = config_mod.replace(cfg, "pam", services=services)
    return cfg


def effective(cfg: Config) -> Config:
    """The root config with the overlay beside its templates applied; ConfigError if it is unusable."""
    return apply(cfg, read(path_for(cfg)))


def current(cfg: Config, values: dict) -> dict:
    """What the settings app shows: every overlay key's value in effect, from the overlay or the config."""
    merged = apply(cfg, values)
    shown: dict = {"verify.security_level": merged.verify.security_level, MASTER: merged.pam.enabled}
    for key in SWITCHES:
        shown[key] = values.get(key, True) and configured(cfg, key)
    return shown


def configured(cfg: Config, key: str) -> bool:
    """Whether the root config lists any of the switch's services: only then can the app turn it on."""
    return bool(set(cfg.pam.services) & set(SWITCHES[key]))


def check_change(cfg: Config, key: str, value) -> object:
    """check_value, and refuse to turn on a switch whose services the root config does not list."""
    value = check_value(key, value)
    if value is True and key == MASTER and not cfg.pam.enabled:
        raise ConfigError(
            f"{key} cannot be turned on here: the root config turns face unlock off "
            "([pam] enabled = false); an administrator runs: sudo faceunlock enable"
        )
    if value is True and key in SWITCHES and not configured(cfg, key):
        raise ConfigError(
            f"{key} cannot be turned on here: {' or '.join(SWITCHES[key])} is not in [pam] services of "
            "the root config; an administrator adds it there (faceunlock config set pam.services ...)"
        )
    return value


def write(path: Path, values: dict, owner: tuple[int, int] | None = None) -> None:
    """Replace the overlay atomically, mode 0600, owned by whoever writes it (the daemon's user) or owner."""
    clean = {key: check_value(key, value) for key, value in sorted(values.items())}
    path.parent.mkdir(mode=0o700, exist_ok=True)  # the state folder, before the first enrolment made it
    atomic_write(path, (json.dumps(clean, indent=1) + "\n").encode(), mode=0o600, owner=owner)
