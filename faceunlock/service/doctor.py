"""`faceunlock doctor`: what is wrong with this installation, and how to fix it.

Each check gives findings: ``ok``, ``info`` (worth knowing, nothing broken) or ``problem``
(face unlock cannot work, or is set up unsafely). Checks: the config file (owner, mode,
folders, validity, ``insecure``), the camera (opens, formats, IR or RGB, dark emitter
frames), the daemon (running, version, model), the PAM stacks (which services include
face unlock, and where it sits relative to the password), the enrolments (count, model
fingerprint) and the lockout state. Nothing here changes the system, starts the daemon
or waits without a timeout.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from faceunlock import __version__
from faceunlock import settings as settings_file
from faceunlock.config import (
    DEFAULT_PATH,
    PAM_SERVICES,
    REMOTE_SERVICES,
    Config,
    below_floor,
    check_trusted,
    device_path,
    load,
)
from faceunlock.errors import ConfigError, StoreError
from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH, SYSTEM_BUS_ADDRESS

PAM_DIR = Path("/etc/pam.d")
CALL_TIMEOUT_MS = 2000
GREY_TOLERANCE = 3
DARK_ALL = 0.95


@dataclass
class Finding:
    check: str
    status: str
    message: str
    fix: str = ""
    details: dict = field(default_factory=dict)


def ok(check: str, message: str, **details) -> Finding:
    return Finding(check, "ok", message, details=details)


def info(check: str, message: str, fix: str = "", **details) -> Finding:
    return Finding(check, "info", message, fix, details)


def problem(check: str, message: str, fix: str = "", **details) -> Finding:
    return Finding(check, "problem", message, fix, details)


# ---------------------------------------------------------------------- config
def check_config(path: Path | None) -> tuple[list[Finding], Config | None]:
    """The config file: present, trusted (root's alone), valid, and whether it allows insecure settings."""
    if path is None:
        if not DEFAULT_PATH.exists():
            return [ok("config", f"no {DEFAULT_PATH}: the defaults apply")], Config()
        path = DEFAULT_PATH
    findings = []
    try:
        st = os.stat(path)
    except OSError as exc:
        return [problem("config", f"cannot read {path}: {exc.strerror}")], None
    owner = f"uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}"
    try:
        check_trusted(path, st)
        findings.append(ok("config", f"{path} belongs to root alone ({owner})"))
    except ConfigError as exc:
        findings.append(
            problem(
                "config",
                f"{exc}; the daemon and the PAM client refuse it",
                f"sudo chown root:root {path} && sudo chmod 644 {path} (and fix the folders above it)",
            )
        )
    try:
        cfg = load(path)
    except ConfigError as exc:
        findings.append(problem("config", str(exc), f"edit {path}; man 5 faceunlock.conf lists every key"))
        return findings, None
    if cfg.insecure:
        below = below_floor(cfg, daemon=True)
        findings.append(
            problem(
                "config",
                f"insecure = true: settings below the safe floor are allowed "
                f"({'; '.join(below) or 'none now'}); every attempt is logged as insecure",
                f"remove insecure = true from {path} (it is for test rigs)",
                below_floor=below,
            )
        )
    return findings, cfg


# ---------------------------------------------------------------------- camera
def device_of(source: str) -> str | None:
    path = device_path(source)
    return path if path.startswith("/dev/") else None


def analyse_frames(frames: list, dark_threshold: float) -> dict:
    """Counts of black, dark and usable frames, and whether they are grey (as IR frames are)."""
    from faceunlock.camera import classify_brightness

    kinds = [classify_brightness(f, dark_threshold) for f in frames]
    usable = [f for f, k in zip(frames, kinds, strict=True) if k == "ok"]
    grey = bool(usable) and all(
        int(abs(f[::8, ::8].astype(int) - f[::8, ::8, :1].astype(int)).max()) <= GREY_TOLERANCE
        for f in usable
    )
    return {
        "frames": len(frames),
        "black": kinds.count("black"),
        "dark": kinds.count("dark"),
        "usable": len(usable),
        "grey": grey,
    }


def read_frames(cfg: Config, count: int) -> list:
    """Up to count raw frames (dark ones too) within the camera's timeouts; raises CameraError."""
    from faceunlock.runtime import open_camera

    frames = []
    deadline = time.monotonic() + cfg.camera.open_timeout + count * cfg.camera.read_timeout
    with open_camera(cfg) as source:
        for frame in source.raw_frames():
            frames.append(frame)
            if len(frames) >= count or time.monotonic() > deadline:
                break
    return frames


def check_camera(cfg: Config, count: int = 30) -> list[Finding]:
    """Does the camera open, what does it offer, is it IR, and are its emitter frames dark?"""
    from faceunlock.errors import CameraError

    source = cfg.camera.source
    findings = []
    device = device_of(source)
    infrared = None
    if device is None:
        status = info if cfg.insecure else problem
        findings.append(
            status(
                "camera",
                f"camera.source {source!r} is a file or folder, not a camera: the daemon accepts it only "
                "with insecure = true",
                "set camera.source to the camera's device, such as /dev/video0 (v4l2-ctl --list-devices)",
            )
        )
    else:
        from faceunlock import v4l2

        try:
            dev = v4l2.query(device)
        except OSError as exc:
            return [
                problem(
                    "camera",
                    f"{device} cannot be opened: {exc.strerror}",
                    "check that it exists (v4l2-ctl --list-devices), is free, and belongs to group video",
                )
            ]
        infrared = dev.infrared
        kind = "infrared (grey formats only)" if infrared else "RGB"
        status = ok if dev.capture else problem
        findings.append(
            status(
                "camera",
                f"{device}: {dev.card} ({dev.driver}), {kind}; formats {', '.join(dev.formats) or 'none'}",
                "" if dev.capture else "this node cannot capture video; pick another /dev/videoN",
                driver=dev.driver,
                card=dev.card,
                formats=dev.formats,
                infrared=infrared,
            )
        )
        if cfg.camera.exposure == "face":
            findings.append(metering(device))
    try:
        frames = read_frames(cfg, count)
    except CameraError as exc:
        findings.append(
            problem("camera", f"no frames from {source}: {exc}", "see the camera's message above")
        )
        return findings
    stats = analyse_frames(frames, cfg.camera.dark_threshold)
    dark = stats["black"] + stats["dark"]
    share = dark / max(1, stats["frames"])
    if stats["frames"] == 0:
        findings.append(problem("camera", f"{source} gave no frame", **stats))
    elif share >= DARK_ALL:
        findings.append(
            problem(
                "camera",
                f"{dark} of {stats['frames']} frames are dark: a covered lens, a closed shutter, or an IR "
                "emitter that does not fire",
                "uncover the camera; for an IR camera, turn its emitter on (e.g. linux-enable-ir-emitter)",
                **stats,
            )
        )
    else:
        grey = "grey (as infrared frames are)" if stats["grey"] else "colour"
        emitter = f"; {dark} dark frames (skipped, as an IR emitter's off frames are)" if dark else ""
        findings.append(
            ok("camera", f"{stats['usable']} of {stats['frames']} frames usable, {grey}{emitter}", **stats)
        )
    return findings


def metering(device: str) -> Finding:
    """Can the camera's exposure be shortened for a washed-out face ([camera] exposure = face)?"""
    from faceunlock.exposure import why_not_metered

    why = why_not_metered(device)
    if why is None:
        return ok("camera", f"{device}: its exposure can be shortened for a washed-out face (face metering)")
    return info(
        "camera",
        f"{device}: no face metering ({why}): in bright light the camera's own exposure is used",
        "a camera with a manual exposure mode (v4l2-ctl -d DEVICE --list-ctrls: auto_exposure) can have it",
    )


# ---------------------------------------------------------------------- daemon
INSTALL = "sudo faceunlock install, or the package"


def bus_call(conn, name: str, path: str, iface: str, method: str, args, reply: str):
    from faceunlock.service.bus_call import call

    return call(conn, name, path, iface, method, args, reply, CALL_TIMEOUT_MS)[0]


def check_daemon(address: str = SYSTEM_BUS_ADDRESS, root: Path = Path("/")) -> list[Finding]:
    """Is the daemon on the bus, and does it run this version and this model? (`root`: where to
    look for the installed D-Bus files when the bus cannot be asked.)"""
    from gi.repository import Gio, GLib

    from faceunlock.model import load_card

    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    dbus = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
    try:
        conn = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)
        running = bus_call(conn, *dbus, "NameHasOwner", GLib.Variant("(s)", (BUS_NAME,)), "(b)")
        if not running:
            activatable = BUS_NAME in bus_call(conn, *dbus, "ListActivatableNames", None, "(as)")
            if not activatable:
                return [problem("daemon", "the daemon is not installed", INSTALL)]
            enabled = unit_enabled()
            return [
                info(
                    "daemon",
                    f"not running; D-Bus starts it on the first request (unit {enabled}); automatic "
                    "unlock of locked sessions needs it running",
                    "" if enabled == "enabled" else "sudo systemctl enable --now faceunlock.service",
                )
            ]
        props = bus_call(
            conn,
            BUS_NAME,
            OBJECT_PATH,
            "org.freedesktop.DBus.Properties",
            "GetAll",
            GLib.Variant("(s)", (INTERFACE,)),
            "(a{sv})",
        )
    except GLib.Error as exc:
        if not installed(root):
            return [problem("daemon", "faceunlock is not installed", INSTALL)]
        return [
            problem(
                "daemon",
                f"cannot ask the system bus: {exc.message}",
                "the D-Bus system bus is down: sudo systemctl start dbus.service, or reboot",
            )
        ]
    card = load_card()
    model = f"{card.name} sha256:{card.sha256[:16]}"
    findings = []
    details = {"version": props.get("Version"), "model": props.get("Model"), "state": props.get("State")}
    if props.get("Version") != __version__ or props.get("Model") != model:
        findings.append(
            problem(
                "daemon",
                f"the running daemon is {props.get('Version')} with {props.get('Model')}; installed here: "
                f"{__version__} with {model}",
                "sudo systemctl restart faceunlock.service",
                **details,
            )
        )
    else:
        findings.append(
            ok("daemon", f"running: version {__version__}, model {model}, {props.get('State')}", **details)
        )
    return findings


def installed(root: Path = Path("/")) -> bool:
    """Whether the daemon's D-Bus files are in place (both the package and `faceunlock install`
    put them there), so that a bus we cannot reach is told apart from an install never done."""
    from faceunlock.service.install import ACTIVATION, POLICY

    return (root / POLICY).exists() and (root / ACTIVATION).exists()


def unit_enabled() -> str:
    try:
        proc = subprocess.run(
            ["systemctl", "is-enabled", "faceunlock.service"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return "state unknown"
    return proc.stdout.strip() or "state unknown"


# ---------------------------------------------------------------------- PAM
def untrusted_program(program: str) -> str | None:
    """Why the program on a PAM line is unsafe to run as root, or None."""
    if not program:
        return "the line names no program"
    path = Path(program)
    for p in [path, *path.parents]:
        try:
            st = os.lstat(p)
        except OSError as exc:
            return f"{p}: {exc.strerror}"
        writable = st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode)
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_uid != 0 or (writable and not sticky):
            return (
                f"{p} can be changed by uid {st.st_uid} or by group/others: PAM would run that code as root"
            )
    return None


def turned_off() -> Finding:
    return info(
        "pam",
        "face unlock is turned off ([pam] enabled = false): every PAM service asks for the password",
        "sudo faceunlock enable",
    )


def check_pam(folder: Path = PAM_DIR, allowed: tuple[str, ...] = PAM_SERVICES) -> list[Finding]:
    """Which PAM services include face unlock, where, and what is wrong with each line.

    allowed: the config's [pam] services, the ones the client answers for."""
    from faceunlock.service.pam_stacks import face_lines

    try:
        lines = face_lines(folder)
    except OSError as exc:
        return [problem("pam", f"cannot read {folder}: {exc.strerror}")]
    if not lines:
        return [
            info(
                "pam",
                f"face unlock is in no PAM service under {folder}",
                "sudo pam-auth-update --enable faceunlock",
            )
        ]
    findings = []
    services = sorted({x.service for x in lines})
    table = [asdict(x) for x in lines]
    summary = ", ".join(
        f"{x.service} (line {x.position + 1} of its auth stack, password at "
        f"{'-' if x.password_position is None else x.password_position + 1}, via {x.via})"
        for x in lines
    )
    bad = [x for x in lines if x.problems]
    if bad:
        for x in bad:
            findings.append(
                problem(
                    "pam",
                    f"{x.service}: " + "; ".join(x.problems),
                    "use pam-auth-update --enable faceunlock, or the line of pam/README.md, before pam_unix",
                )
            )
    else:
        findings.append(
            ok(
                "pam",
                f"face unlock before the password in {len(services)} service(s): {summary}",
                lines=table,
            )
        )
    remote = sorted(set(services) & REMOTE_SERVICES)
    if remote:
        findings.append(
            info(
                "pam", f"{', '.join(remote)} include(s) it too; the client refuses remote services, sessions"
            )
        )
    refused = sorted(set(services) - set(allowed) - REMOTE_SERVICES)
    if refused:
        findings.append(
            info(
                "pam",
                f"{', '.join(refused)} include(s) it, but the client refuses them: not in [pam] services",
                "add a service to [pam] services in the config to let it use face unlock",
            )
        )
    for program in sorted({x.program for x in lines}):
        why = untrusted_program(program)
        if why:
            findings.append(problem("pam", why, f"reinstall faceunlock into a root-owned place ({program})"))
    return findings


# ---------------------------------------------------------------------- enrolments and lockout
def check_enrolments(cfg: Config) -> tuple[list[Finding], list[str]]:
    """How many users are enrolled, and whether each template matches the installed model."""
    from faceunlock.runtime import open_store
    from faceunlock.store import OtherModel

    root = Path(cfg.store.path)
    if not root.exists():
        return [
            info(
                "enrolments", f"no store at {root}: nobody is enrolled", "sudo faceunlock enroll --user USER"
            )
        ], []
    if not os.access(root, os.R_OK | os.X_OK):
        return [info("enrolments", f"{root} is readable by its owner only", "run sudo faceunlock doctor")], []
    users = sorted(p.stem for p in root.glob("*.json") if p.name != settings_file.FILE_NAME)
    if not users:
        return [info("enrolments", "nobody is enrolled", "sudo faceunlock enroll --user USER")], []
    store = open_store(cfg)
    findings, good = [], []
    for user in users:
        try:
            template = store.load(user)
        except OtherModel:
            findings.append(
                problem(
                    "enrolments",
                    f"{user} was enrolled with another face model (before an upgrade): face unlock is off "
                    f"for {user} until they enrol again",
                    f"faceunlock enroll --user {user} (as {user}, or with sudo); the settings app's "
                    "Face page does the same",
                    other_model=True,
                )
            )
            continue
        except StoreError as exc:
            findings.append(
                problem(
                    "enrolments", f"{user}: {exc}", f"sudo faceunlock clear --user {user}, then enrol again"
                )
            )
            continue
        good.append(user)
        findings.append(
            ok("enrolments", f"{user}: {len(template.enrolments)} enrolment(s), model fingerprint matches")
        )
    return findings, good


def check_lockout(cfg: Config, users: list[str]) -> list[Finding]:
    """Users for whom face unlock is off right now, and why."""
    from faceunlock.lockout import Lockout

    guard = Lockout(cfg.store.path, cfg.verify)
    findings = []
    for user in users:
        why = guard.blocked(user)
        if why:
            findings.append(
                problem(
                    "lockout",
                    f"{user}: {why}",
                    f"log in with the password, or faceunlock password-used --user {user}",
                )
            )
    if not findings and users:
        findings.append(ok("lockout", f"no lockout for {', '.join(users)}"))
    return findings


# ---------------------------------------------------------------------- all
def diagnose(
    config: Path | None = None,
    pam_dir: Path = PAM_DIR,
    bus_address: str = SYSTEM_BUS_ADDRESS,
    frames: int = 30,
) -> list[Finding]:
    findings, cfg = check_config(config)
    findings += check_daemon(bus_address)
    findings += check_pam(pam_dir, cfg.pam.services if cfg else PAM_SERVICES)
    if cfg is not None and not cfg.pam.enabled:
        findings.append(turned_off())
    if cfg is None:
        return findings
    findings += check_camera(cfg, frames)
    enrolled, users = check_enrolments(cfg)
    findings += enrolled
    findings += check_lockout(cfg, users)
    return findings


def exit_status(findings: list[Finding]) -> int:
    return 1 if any(f.status == "problem" for f in findings) else 0


def upgrade_warnings(cfg: Config) -> list[str]:
    """What an upgrade must tell the administrator: the users whose templates the new model cannot
    use (the package's postinst prints these)."""
    findings, _users = check_enrolments(cfg)
    return [f"faceunlock: {f.message}; fix: {f.fix}" for f in findings if f.details.get("other_model")]


if __name__ == "__main__":
    for line in upgrade_warnings(load(None)):
        print(line, file=sys.stderr)
