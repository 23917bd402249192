"""Install and uninstall the service files under a root (``/``, or a staging directory for tests).

The unit's ExecStart and the PAM profile point at this virtual environment's
``faceunlock`` and ``faceunlock-pam``. Uninstall never deletes the state
directory (the enrolled templates) unless asked to purge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from faceunlock.errors import UserError
from faceunlock.paths import package_data
from faceunlock.service.names import BUS_NAME

UNIT = "etc/systemd/system/faceunlock.service"
POLICY = f"usr/share/dbus-1/system.d/{BUS_NAME}.conf"
ACTIVATION = f"usr/share/dbus-1/system-services/{BUS_NAME}.service"
PAM_PROFILE = "usr/share/pam-configs/faceunlock"
STATE = "var/lib/faceunlock"
FILES = {
    UNIT: "systemd/faceunlock.service",
    POLICY: f"dbus/{BUS_NAME}.conf",
    ACTIVATION: f"dbus/{BUS_NAME}.service",
    PAM_PROFILE: "pam/pam-configs/faceunlock",
}
HOME_DIRS = ("/home/", "/root/", "/run/user/")


def bin_dir() -> Path:
    """The bin/ folder of the running virtual environment, with both entry points in it."""
    folder = Path(sys.executable).absolute().parent
    for name in ("faceunlock", "faceunlock-pam"):
        if not os.access(folder / name, os.X_OK):
            raise UserError(f"{folder / name} is missing: install the package into this environment first")
    if any(c.isspace() for c in str(folder)):
        raise UserError(f"the environment's path {folder} contains white space; unit and PAM lines cannot")
    return folder


def render(rel: str, text: str, folder: Path) -> str:
    """A shipped file with this environment's paths written in."""
    if rel == UNIT:
        lines = []
        for line in text.splitlines():
            if line.startswith("ExecStart="):
                line = f"ExecStart={folder / 'faceunlock'} daemon"
            elif line == "ProtectHome=true" and any(
                str(p).startswith(HOME_DIRS) for p in (folder, package_data().resolve())
            ):
                line = "ProtectHome=read-only"
            lines.append(line)
        return "\n".join(lines) + "\n"
    if rel == PAM_PROFILE:
        return text.replace("/usr/bin/faceunlock-pam", str(folder / "faceunlock-pam"))
    return text


def write(path: Path, text: str, mode: int) -> None:
    """Write atomically with the given mode."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def live(root: Path) -> bool:
    """Installing into the running system (not a staging directory) with systemd as init."""
    return root == Path("/") and Path("/run/systemd/system").is_dir()


def best_effort(*cmd: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"  could not run {' '.join(cmd)}: {exc}"
    status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()}"
    return f"  ran {' '.join(cmd)} ({status})"


def check_root(root: Path) -> None:
    if root == Path("/") and os.geteuid() != 0:
        raise UserError("installing into / needs root: sudo faceunlock install")


def install(root: str | Path = "/") -> list[str]:
    """Put the unit, bus policy, activation file, PAM profile and state directory under root."""
    root = Path(root).absolute()
    check_root(root)
    folder = bin_dir()
    done = []
    for rel, src in FILES.items():
        text = render(rel, package_data(src).read_text(), folder)
        write(root / rel, text, 0o644)
        done.append(f"installed {root / rel}")
    state = root / STATE
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    done.append(f"state directory {state} (mode 0700)")
    if live(root):
        done.append(best_effort("systemctl", "daemon-reload"))
    done += [
        "next steps:",
        "  systemctl enable --now faceunlock.service",
        "  faceunlock enroll --user USER --source /dev/video0   (or the D-Bus Enroll method)",
        "  pam-auth-update --enable faceunlock                  (Debian; other systems: pam/README.md)",
    ]
    return done


def uninstall(root: str | Path = "/", purge: bool = False) -> list[str]:
    """Remove what install put in place; the state directory (templates) only with purge."""
    root = Path(root).absolute()
    check_root(root)
    done = []
    if live(root):
        done.append(best_effort("systemctl", "disable", "--now", "faceunlock.service"))
    if root == Path("/") and (root / PAM_PROFILE).exists() and shutil.which("pam-auth-update"):
        done.append(best_effort("pam-auth-update", "--package", "--remove", "faceunlock"))
    for rel in FILES:
        path = root / rel
        if path.exists() or path.is_symlink():
            path.unlink()
            done.append(f"removed {path}")
    state = root / STATE
    if purge and state.exists():
        shutil.rmtree(state)
        done.append(f"purged {state} (enrolled templates deleted)")
    elif state.exists():
        done.append(f"kept {state} with the enrolled templates (use --purge to delete them)")
    if live(root):
        done.append(best_effort("systemctl", "daemon-reload"))
    return done
