"""Install and uninstall the service files under a root (``/``, or a staging directory for tests).

The unit's ExecStart and the PAM profile run this environment's interpreter
with ``-I`` (``python -I -m faceunlock ...``). Every PAM stack and the daemon
then run this environment's code, so install refuses an environment that
anyone but root could change (a virtual environment in a home folder, a
checkout owned by a user): malware running as that user would otherwise
become root without a password. Uninstall never deletes the state directory
(the enrolled templates) unless asked to purge.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import faceunlock
from faceunlock.atomic import atomic_write
from faceunlock.errors import UserError
from faceunlock.paths import package_data
from faceunlock.service.names import BUS_NAME

SERVICE_USER = "faceunlock"
UNIT = "etc/systemd/system/faceunlock.service"
POLICY = f"usr/share/dbus-1/system.d/{BUS_NAME}.conf"
ACTIVATION = f"usr/share/dbus-1/system-services/{BUS_NAME}.service"
PAM_PROFILE = "usr/share/pam-configs/faceunlock"
SYSUSERS = "usr/lib/sysusers.d/faceunlock.conf"
POLKIT = "usr/share/polkit-1/rules.d/50-faceunlock.rules"
POLKIT_ACTIONS = "usr/share/polkit-1/actions/org.faceunlock.policy"
DESKTOP = "usr/share/applications/org.faceunlock.Settings.desktop"
MANUALS = {
    "usr/share/man/man1/faceunlock.1": "man/faceunlock.1",
    "usr/share/man/man1/faceunlock-settings.1": "man/faceunlock-settings.1",
    "usr/share/man/man5/faceunlock.conf.5": "man/faceunlock.conf.5",
    "usr/share/man/man8/faceunlock-pam.8": "man/faceunlock-pam.8",
}
COMPLETIONS = {
    "usr/share/bash-completion/completions/faceunlock": "completions/faceunlock.bash",
    "usr/share/zsh/vendor-completions/_faceunlock": "completions/_faceunlock",
}
STATE = "var/lib/faceunlock"
FILES = {
    UNIT: "systemd/faceunlock.service",
    POLICY: f"dbus/{BUS_NAME}.conf",
    ACTIVATION: f"dbus/{BUS_NAME}.service",
    PAM_PROFILE: "pam/pam-configs/faceunlock",
    SYSUSERS: "systemd/faceunlock.sysusers",
    POLKIT: "polkit/50-faceunlock.rules",
    POLKIT_ACTIONS: "polkit/org.faceunlock.policy",
    DESKTOP: "desktop/org.faceunlock.Settings.desktop",
    **MANUALS,
    **COMPLETIONS,
}
PACKAGE_PLACES = {UNIT: "lib/systemd/system/faceunlock.service"}
"""Where the Debian package puts a file of FILES elsewhere (a package's units live in /lib)."""


def package_files(usr_lib: bool = False) -> dict[str, Path]:
    """What scripts/build-deb.sh installs from FILES, the list `faceunlock install` uses too, so that
    the two cannot drift: each file's place in the package and its source in the package data.

    usr_lib: a release whose packages ship /lib's files in /usr/lib (Debian 13 and later, merged /usr;
    Debian 12 still ships them in /lib)."""
    places = {PACKAGE_PLACES.get(rel, rel): package_data(src) for rel, src in FILES.items()}
    return {(f"usr/{p}" if usr_lib and p.startswith("lib/") else p): s for p, s in places.items()}


PAM_MODULE = f"lib/{sysconfig.get_config_var('MULTIARCH') or 'x86_64-linux-gnu'}/security/pam_faceunlock.so"
"""Where libpam looks for modules on Debian (/lib/<multiarch>/security, /usr/lib/... when merged)."""
BINARIES = {PAM_MODULE: "pam/pam_faceunlock.so"}
"""Built files installed as they are (make -C pam builds the module; scripts/setup.sh runs it)."""
PACKAGED_PYTHON = "/usr/lib/faceunlock/bin/python"
MAX_WALK = 200_000


def interpreter() -> Path:
    """This environment's python (not resolved: a venv's python is a link to the base interpreter)."""
    python = Path(sys.executable).absolute()
    if any(c.isspace() for c in str(python)):
        raise UserError(f"the interpreter's path {python} contains white space; unit and PAM lines cannot")
    return python


def daemon_command(python: Path) -> str:
    """The unit's ExecStart: the CLI's daemon command in an isolated interpreter."""
    return f"{python} -I -m faceunlock daemon"


def pam_command(python: Path) -> str:
    """What pam_exec runs: the PAM client in an isolated interpreter."""
    return f"{python} -I -m faceunlock.service.pam_client"


def unsafe(path: Path) -> str | None:
    """Why someone other than root could change path (or what it names), or None."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path} cannot be checked: {exc.strerror}"
    writable = st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode)
    sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}"
    if writable and not sticky_dir:
        return f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def chain(path: Path) -> list[Path]:
    """path and every folder above it, and the same for each link it goes through and its real path:
    whoever can change any of them can change what path runs."""
    paths = [path, *path.parents]
    hop = path
    for _ in range(40):
        if not hop.is_symlink():
            break
        hop = Path(os.path.abspath(os.path.join(hop.parent, os.readlink(hop))))
        paths += [hop, *hop.parents]
    real = Path(os.path.realpath(path))
    if real != path:
        paths += [real, *real.parents]
    return list(dict.fromkeys(paths))


def import_path(python: Path) -> list[Path]:
    """Every folder `python -I` imports from: its standard library, every site folder that `site`
    reads .pth files from (dist-packages included, and the system's for a venv that sees them),
    and what those .pth files added.

    The interpreter is asked with -S, so that no .pth file runs during the check; the site folders
    and .pth additions come from this process, which runs the same interpreter and environment.
    """
    proc = subprocess.run(
        [str(python), "-I", "-S", "-c", "import json, sys; print(json.dumps(sys.path))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise UserError(f"cannot ask {python} for its import path: {proc.stderr.strip()[-500:]}")
    entries = [*json.loads(proc.stdout), *site.getsitepackages(), *sys.path]
    return list(dict.fromkeys(Path(e) for e in entries if e.startswith("/")))


def check_environment(python: Path) -> None:
    """Refuse to wire root's PAM stacks and daemon to code that a non-root user could change.

    Checked: the interpreter (and its real path) and the folders above them, the environment, the
    faceunlock package (an editable install points at a checkout), every folder of the interpreter's
    import path (import_path) and every file under them and the package. A folder that does not
    exist is checked through its parents, which must keep anyone else from creating it.
    """
    package = Path(faceunlock.__file__).resolve().parent
    data = [Path(os.path.realpath(p)) for p in package_data().iterdir()]
    roots = [Path(sys.prefix), package, *data]
    check_paths([*chain(python), *(p for r in roots for p in chain(r))])
    search = import_path(python)
    check_paths([p for r in search for p in chain(r)])
    roots += search
    seen = 0
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                seen += 1
                if seen > MAX_WALK:
                    raise UserError(untrusted(f"more than {MAX_WALK} files to check under {root}"))
                why = unsafe(Path(folder) / name)
                if why:
                    raise UserError(untrusted(why))


def check_paths(paths: list[Path]) -> None:
    """Each existing path: root's, changeable by root alone, and a folder others may enter."""
    for path in paths:
        if not os.path.lexists(path):
            continue
        why = unsafe(path)
        if why is None and path.is_dir() and not os.stat(path).st_mode & 0o001:
            why = f"{path} is closed to other users, so the daemon's user {SERVICE_USER} could not read it"
        if why:
            raise UserError(untrusted(why))


def untrusted(why: str) -> str:
    return (
        f"refusing to install: {why}. The daemon and every PAM stack would run this code as root, so "
        "only root may be able to change it. Install faceunlock into a root-owned place instead: the "
        "Debian package (scripts/build-deb.sh) puts it in /usr/lib/faceunlock, or as root: "
        "python3 -m venv --system-site-packages /opt/faceunlock && /opt/faceunlock/bin/pip install ."
    )


def render(rel: str, text: str, python: Path) -> str:
    """A shipped file with this environment's interpreter written in."""
    if rel == UNIT:
        return "".join(
            f"ExecStart={daemon_command(python)}\n" if line.startswith("ExecStart=") else line
            for line in text.splitlines(keepends=True)
        )
    if rel == DESKTOP:
        return text.replace(f"{PACKAGED_PYTHON} ", f"{python} ")
    return text


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


def service_account() -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def install(root: str | Path = "/") -> list[str]:
    """Put the unit, bus files, PAM profile, sysusers, polkit files, the settings app's launcher, man pages,
    shell completion and the state directory under root."""
    root = Path(root).absolute()
    check_root(root)
    python = interpreter()
    check_environment(python)
    done = []
    for src in BINARIES.values():
        if not package_data(src).is_file():
            raise UserError(f"{src} is not built: make -C pam (scripts/setup.sh does), then install again")
    contents = {rel: render(rel, package_data(s).read_text(), python).encode() for rel, s in FILES.items()}
    contents |= {rel: package_data(src).read_bytes() for rel, src in BINARIES.items()}
    for rel, data in contents.items():
        path = root / rel
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomic_write(path, data, mode=0o644)
        done.append(f"installed {path}")
    if root == Path("/") and shutil.which("systemd-sysusers"):
        done.append(best_effort("systemd-sysusers", str(root / SYSUSERS)))
    state = root / STATE
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    account = service_account() if root == Path("/") else None
    if account:
        os.chown(state, *account)
    done.append(f"state directory {state} (mode 0700, owner {SERVICE_USER if account else 'root'})")
    if live(root):
        done.append(best_effort("systemctl", "daemon-reload"))
        done.append(best_effort("systemctl", "reload", "dbus.service"))
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
    for rel in [*FILES, *BINARIES]:
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


if __name__ == "__main__":
    for place, source in package_files(usr_lib="--usr-lib" in sys.argv[1:]).items():
        print(f"{source}\t{place}")
