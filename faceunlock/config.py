"""The one typed configuration, read from TOML and validated key by key.

Every key has a type and an allowed range or set of choices; an unknown key, a
wrong type or an out-of-range value raises ConfigError naming the key.

The file decides who may unlock, so the daemon and the PAM path read only a
trusted one: owned by root and writable by nobody else, in directories that
only root can change. Settings below the safe floor (liveness off, a single
frame deciding) are refused unless the file says ``insecure = true``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceunlock.errors import ConfigError
from faceunlock.paths import CONFIG_PATH, SNAPSHOT_DIR, STATE_DIR

DEFAULT_PATH = CONFIG_PATH
SECURITY_LEVELS = ("strict", "balanced", "fast")
LOCK_SCREENS = (
    "gdm-password",
    "lightdm",
    "sddm",
    "kde",
    "swaylock",
    "hyprlock",
    "i3lock",
    "xscreensaver",
    "gnome-screensaver",
    "cinnamon-screensaver",
    "mate-screensaver",
    "xfce4-screensaver",
    "kscreenlocker",
)
"""Lock screens and display managers: where a person at the seat asks to be let in."""
ELEVATION_SERVICES = ("sudo", "sudo-i", "su", "su-l", "login", "polkit-1")
"""Services that grant more (root, another account, a console login): a camera authenticates
passively, so these are opt-in, each by name in [pam] services."""
PAM_SERVICES = LOCK_SCREENS
"""PAM services that may use face unlock by default: the lock screens and display managers. With a
plain colour camera, anything more is opt-in ([pam] services); sudo and polkit-1 then ask for an
empty Enter first ([pam] confirm)."""
CONFIRM_SERVICES = ("sudo", "sudo-i", "polkit-1")
SWITCHES = {
    "pam.lock_screen": LOCK_SCREENS,
    "pam.sudo": ("sudo", "sudo-i"),
    "pam.su": ("su", "su-l"),
    "pam.polkit": ("polkit-1",),
    "pam.login": ("login",),
}
"""The settings app's on/off keys and the PAM services each stands for (faceunlock.settings)."""
MASTER_SWITCH = "pam.enabled"
"""The settings app's switch for everything: off is [pam] enabled = false."""
REMOTE_SERVICES = frozenset(
    {
        "sshd",
        "ssh",
        "cockpit",
        "xrdp-sesman",
        "xrdp",
        "vsftpd",
        "dovecot",
        "ftp",
        "imap",
        "pop3",
        "smtp",
        "rsh",
        "rlogin",
        "rexec",
        "telnet",
        "openvpn",
        "ppp",
        "samba",
        "cups",
        "webmin",
    }
)
"""Services that authenticate people who are not at the machine: never allowed, whatever the config."""
SERVICE_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
ENROL_POSES = ("straight", "left", "right", "up", "down")
"""The head poses guided enrolment can ask for (faceunlock.guided)."""


def opt(default, lo=None, hi=None, choices=None, doc="", item=None):
    """A config field with its allowed range or choices (item: a check for each element of a list)."""
    meta = {"lo": lo, "hi": hi, "choices": choices, "doc": doc, "item": item}
    return field(default=default, metadata=meta)


def pam_service(name: str) -> str:
    """Check one entry of [pam] services: a service name, and never a remote one."""
    if not isinstance(name, str) or not SERVICE_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not a PAM service name")
    if name in REMOTE_SERVICES:
        raise ValueError(f"{name!r} authenticates remote users and can never use face unlock")
    return name


def enrol_pose(name: str) -> str:
    """Check one entry of [enroll] poses."""
    if name not in ENROL_POSES:
        raise ValueError(f"{name!r} is not one of {', '.join(ENROL_POSES)}")
    return name


@dataclass(frozen=True)
class CameraConfig:
    source: str = opt(
        "auto",
        doc="auto (the camera enumerated first, by its /dev/v4l/by-id name, else /dev/video0), a V4L2 "
        "device, camera index, video, image or folder",
    )
    dark_threshold: float = opt(25.0, 0.0, 254.0, doc="skip frames whose mean grey level is below this")
    open_timeout: float = opt(5.0, 0.1, 60.0, doc="seconds allowed to open the camera")
    read_timeout: float = opt(2.0, 0.05, 30.0, doc="seconds allowed for one frame")
    exposure: str = opt(
        "face",
        choices=("face", "camera"),
        doc="face: when the face is washed out, shorten a V4L2 camera's exposure during the scan "
        "(manual mode) and give the camera its own back after; camera: leave exposure to the camera",
    )


@dataclass(frozen=True)
class DetectorConfig:
    min_face_size: int = opt(40, 12, 2000, doc="smallest face, in pixels, the detector looks for")
    max_side: int = opt(640, 0, 8192, doc="downscale frames whose long side exceeds this (0: never)")


@dataclass(frozen=True)
class VerifyConfig:
    security_level: str = opt("balanced", choices=SECURITY_LEVELS, doc="threshold from the model card")
    timeout: float = opt(5.0, 0.2, 120.0, doc="seconds a scan may take")
    consecutive: int = opt(2, 1, 30, doc="fused windows in a row of one tracked face needed")
    min_face_size: int = opt(80, 20, 2000, doc="faces smaller than this are not judged")
    min_sharpness: float = opt(
        15.0, 0.0, 10000.0, doc="variance of the chip's Laplacian, as if lit to at least mean grey 79"
    )
    multiple_faces: str = opt(
        "largest",
        choices=("largest", "reject"),
        doc="several faces: judge the largest unless another is of similar size (largest), or refuse",
    )
    max_failures: int = opt(5, 1, 100, doc="failed scans in a row before a lockout")
    lockout_seconds: float = opt(60.0, 0.0, 86400.0, doc="how long everything falls through after that")
    password_max_age_hours: float = opt(0.0, 0.0, 8760.0, doc="need a password login this recent (0: off)")
    password_since_boot: bool = opt(False, doc="require a password login since the last boot")


@dataclass(frozen=True)
class LivenessConfig:
    enabled: bool = opt(True, doc="the scored liveness check gates every match (false: off)")
    window: int = opt(8, 1, 300, doc="frames of one tracked face watched before its liveness score counts")
    ir: bool = opt(False, doc="IR camera: grey frames, and a face dark in IR is a screen")
    ir_min_face_level: float = opt(40.0, 0.0, 255.0, doc="IR mode: darkest mean grey level of a real face")


@dataclass(frozen=True)
class AuditConfig:
    snapshots: bool = opt(False, doc="keep a JPEG of the best frame of failed attempts")
    snapshot_dir: str = opt(str(SNAPSHOT_DIR), doc="where snapshots go (mode 0700)")
    snapshot_max_mb: float = opt(20.0, 0.1, 10000.0, doc="oldest snapshots are deleted above this")


@dataclass(frozen=True)
class EnrollConfig:
    frames: int = opt(10, 1, 200, doc="good frames captured by a plain (unguided) enrolment")
    timeout: float = opt(30.0, 1.0, 600.0, doc="seconds an enrolment may take")
    poses: tuple = opt(ENROL_POSES, doc="head poses guided enrolment asks for, in order", item=enrol_pose)
    per_pose: int = opt(2, 1, 5, doc="anchors kept per pose (the most different of its captures)")
    min_poses: int = opt(3, 1, 5, doc="poses needed (straight among them) for a guided enrolment")
    pose_timeout: float = opt(8.0, 1.0, 120.0, doc="seconds to wait for one pose before asking the next")
    learn: bool = opt(
        True,
        doc="keep a live near miss followed by the password as a learned look; a confident match renews one",
    )


@dataclass(frozen=True)
class StoreConfig:
    path: str = opt(str(STATE_DIR), doc="directory of template files (mode 0700)")


@dataclass(frozen=True)
class DaemonConfig:
    auto_unlock: bool = opt(True, doc="watch logind and unlock an enrolled user's locked session")
    grace_period: float = opt(3.0, 0.0, 3600.0, doc="seconds after a lock in which nothing unlocks")
    max_scans_per_lock: int = opt(3, 1, 100, doc="automatic scans allowed per lock")
    scan_timeout: float = opt(5.0, 0.5, 60.0, doc="seconds an automatic unlock scan may take")
    queue_size: int = opt(1, 0, 16, doc="requests that may wait for the camera; more get Busy at once")
    threads: int = opt(1, 1, 16, doc="inference threads per network; 1 is fastest when the CPU is shared")


@dataclass(frozen=True)
class PamConfig:
    enabled: bool = opt(
        True, doc="face unlock at all: PAM and the automatic unlock (faceunlock disable | enable)"
    )
    services: tuple = opt(PAM_SERVICES, doc="PAM services that may use face unlock", item=pam_service)
    confirm: tuple = opt(
        CONFIRM_SERVICES, doc="services that scan only after an empty Enter at the prompt", item=pam_service
    )
    other_user: bool = opt(False, doc="let one user authenticate as another who is in view (su bob)")
    user_services: bool = opt(
        False, doc="accept the user's own systemd services (GNOME's shell and terminals) as present"
    )


@dataclass(frozen=True)
class Config:
    insecure: bool = opt(False, doc="allow settings below the safe floor (test rigs only; audited)")
    camera: CameraConfig = field(default_factory=CameraConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    enroll: EnrollConfig = field(default_factory=EnrollConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    pam: PamConfig = field(default_factory=PamConfig)


def check_value(section: str, f: dataclasses.Field, value: Any) -> Any:
    """Validate one value against its field's type and range; return it coerced."""
    key = f"{section}.{f.name}" if section else f.name
    meta = f.metadata
    kind = type(f.default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is tuple and isinstance(value, list):
        value = tuple(check_item(key, meta["item"], v) for v in value)
    if type(value) is not kind:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(meta['choices'])}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and not (lo <= value <= hi):
        raise ConfigError(f"{key}: {value!r} is out of range [{lo}, {hi}]")
    if kind is str and ("\0" in value or not value.strip()):
        raise ConfigError(f"{key}: must be a non-empty string")
    return value


def check_item(key: str, check, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


REMOVED = {
    "liveness.frame_reach": "the display-frame edge veto was replaced by the scored liveness check",
    "liveness.frame_cover": "the display-frame edge veto was replaced by the scored liveness check",
}
"""Keys of earlier versions, and why they went; a config that still sets one gets a clear error."""


def build_section(cls, section: str, raw: Any):
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table")
    for key in raw:
        why = REMOVED.get(f"{section}.{key}")
        if why:
            raise ConfigError(f"{section}.{key} is no longer a setting: {why}; delete it")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"[{section}] unknown key(s): {', '.join(unknown)}; known: {', '.join(fields)}")
    return cls(**{name: check_value(section, fields[name], v) for name, v in raw.items()})


def from_dict(raw: dict) -> Config:
    """Build a validated Config from a parsed TOML document; refuse unsafe settings unless insecure."""
    keys = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        sections = [name for name, f in keys.items() if f.default is dataclasses.MISSING]
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(sections)}")
    values = {}
    for name, f in keys.items():
        if name not in raw:
            continue
        if f.default is dataclasses.MISSING:
            values[name] = build_section(f.default_factory, name, raw[name])
        else:
            values[name] = check_value("", f, raw[name])
    cfg = Config(**values)
    below = below_floor(cfg)
    if below and not cfg.insecure:
        raise ConfigError(
            f"unsafe setting(s): {'; '.join(below)}. Set insecure = true at the top of the file "
            "to allow them (test rigs only; every attempt is then logged as insecure)"
        )
    return cfg


def below_floor(cfg: Config, daemon: bool = False) -> list[str]:
    """The settings under the safe floor (in daemon mode, a camera that is not a V4L2 device too)."""
    found = []
    if not cfg.liveness.enabled:
        found.append("liveness.enabled = false")
    if cfg.liveness.window < 2:
        found.append(f"liveness.window = {cfg.liveness.window} (< 2)")
    if cfg.verify.consecutive < 2:
        found.append(f"verify.consecutive = {cfg.verify.consecutive} (< 2)")
    if daemon and not_a_device(cfg.camera.source):
        found.append(f"camera.source = {cfg.camera.source!r} is not a V4L2 character device")
    return found


AUTO_CAMERA = "auto"


def device_path(source: str, dev: Path = Path("/dev")) -> str:
    """The device a camera source names: /dev/videoN for an index; for "auto", udev's stable name
    (/dev/v4l/by-id/...-video-index0, a capture node, not a metadata one) of the camera enumerated
    first, the lowest /dev/videoN, looked up afresh each time so that a camera plugged in later is
    found; else /dev/video0. The lowest number, not the first name: a device plugged in later gets
    a higher number than the built-in camera, whatever it calls itself."""
    if source == AUTO_CAMERA:
        found = []
        for link in (dev / "v4l" / "by-id").glob("*-video-index0"):
            with contextlib.suppress(OSError):
                target = link.resolve(strict=True)
                number = target.name.removeprefix("video")
                if stat.S_ISCHR(target.stat().st_mode) and number.isdigit():
                    found.append((int(number), str(link)))
        return min(found)[1] if found else str(dev / "video0")
    return f"{dev}/video{source}" if source.isdigit() else source


def is_char_device(source: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(device_path(source)).st_mode)
    except OSError:
        return False


def not_a_device(source: str) -> bool:
    """The camera source names something that is there and is not a character device (a file, a
    folder: frames a user could choose). A camera that is not plugged in yet is no such thing: the
    daemon starts without it and answers "no camera" until it appears."""
    try:
        return not stat.S_ISCHR(os.stat(device_path(source)).st_mode)
    except FileNotFoundError:
        return False
    except OSError:
        return True


def require_daemon_safe(cfg: Config) -> Config:
    """The daemon's extra floor: frames come from a camera device unless the file says insecure."""
    below = below_floor(cfg, daemon=True)
    if below and not cfg.insecure:
        raise ConfigError(f"refusing to serve with: {'; '.join(below)} (set insecure = true for a test rig)")
    return cfg


def check_trusted(path: Path, st: os.stat_result) -> None:
    """A file that decides who may unlock: owned by root, writable by nobody else, in root-only folders.

    A folder writable by others is accepted only with the sticky bit and a root owner (like /tmp),
    where nobody else can rename or replace root's entries.
    """
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"config file {path} is not a regular file")
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise ConfigError(
            f"config file {path} is owned by uid {st.st_uid} with mode {stat.S_IMODE(st.st_mode):04o}: "
            "it must be owned by root and not writable by group or others (chown root: and chmod 644 it)"
        )
    for folder in Path(os.path.realpath(path)).parents:
        fst = folder.stat()
        sticky = fst.st_mode & stat.S_ISVTX and fst.st_uid == 0
        if fst.st_uid != 0 or (fst.st_mode & 0o022 and not sticky):
            raise ConfigError(
                f"config file {path} is in {folder}, which is owned by uid {fst.st_uid} with mode "
                f"{stat.S_IMODE(fst.st_mode):04o}: someone other than root could replace the file"
            )


def load(path: Path | str | None = None, trusted: bool = False) -> Config:
    """Load a config file; the default path may be absent (defaults apply), an explicit one may not.

    The default file, and any file when ``trusted`` is asked for (the daemon, the PAM client), must
    pass check_trusted.
    """
    if path is None:
        if not DEFAULT_PATH.exists():
            return Config()
        path, trusted = DEFAULT_PATH, True
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if trusted:
            check_trusted(path, st)
        elif not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"config file {path} is not a regular file")
        try:
            text = fh.read(1024 * 1024).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def replace(cfg: Config, section: str, **changes) -> Config:
    """Return cfg with some keys of one section changed, validated like the file."""
    current = getattr(cfg, section)
    fields = {f.name: f for f in dataclasses.fields(current)}
    checked = {k: check_value(section, fields[k], v) for k, v in changes.items() if v is not None}
    return dataclasses.replace(cfg, **{section: dataclasses.replace(current, **checked)})
