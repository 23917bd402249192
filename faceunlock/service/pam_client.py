"""faceunlock-pam: the PAM client that pam_exec.so runs. Exit status 0 only on a verified match.

Run it as ``python -I -m faceunlock.service.pam_client`` (``faceunlock install``
writes that line), so that no ``PYTHON*`` variable of the PAM environment can
load code into it; GLib's own variables are dropped before gi loads.

Before it asks the warm daemon to Verify PAM_USER over the system bus, it
refuses (exit 2, no scan):
- face unlock switched off (``[pam] enabled = false``: ``faceunlock disable``);
- anything but the auth phase, a PAM service not in ``[pam] services``, a
  remote PAM_RHOST (only empty, a literal loopback address or an X display
  ``:N[.M]`` are local: a name such as ``localhost`` comes from DNS, which a
  remote side can steer), SSH variables;
- a requester other than PAM_USER, as in ``su bob`` typed by alice, unless
  ``[pam] other_user = true``. The requester is the real uid of the PAM
  application when it is not root (polkit-agent-helper-1 started by alice's
  agent is alice, whatever PAM_RUSER says), PAM_RUSER only when it is root;
- a request not proven to come from a person at the machine
  (faceunlock.service.local_session, asked of logind and systemd): a job of
  cron or at, a service, or ``systemd-run --user`` never passes.

It never hangs: the call does not start the daemon on demand, a daemon
that does not answer a property read within 0.5 s (stopped, wedged) is not
asked to scan, an alarm (unblocked first, since PAM applications may block it) and a watchdog thread
both end the process, and the config must be a trusted file
(faceunlock.config.check_trusted), with the settings app's overlay applied
(faceunlock.settings: it can only remove services). It imports only the standard library, Gio
and faceunlock's config: no torch, numpy or OpenCV.

The bus address comes from ``--bus-address`` (root-owned PAM configuration)
or is the standard system bus socket, never from the environment.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import pwd
import re
import signal
import sys
import threading
from pathlib import Path

from faceunlock.service.names import BUS_NAME, INTERFACE, OBJECT_PATH, SYSTEM_BUS_ADDRESS

EXIT_MATCH, EXIT_NO_MATCH, EXIT_REFUSED, EXIT_UNAVAILABLE = 0, 1, 2, 3
SLACK_S = 3.0
PROBE_TIMEOUT_MS = 500
X_DISPLAY_RE = re.compile(r"^:[0-9]+(\.[0-9]+)?$")
SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")


def is_local(rhost: str) -> bool:
    """PAM_RHOST names this machine: empty, a literal loopback address, or an X display ":N[.M]"."""
    if rhost == "" or X_DISPLAY_RE.fullmatch(rhost):
        return True
    try:
        address = ipaddress.ip_address(rhost)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def refusal(env: dict[str, str], services: tuple[str, ...] | None = None) -> str | None:
    """Why this PAM conversation must not use face unlock (from its items alone), or None."""
    if env.get("PAM_TYPE", "auth") != "auth":
        return f"only the auth phase is supported, not {env.get('PAM_TYPE')!r}"
    if not env.get("PAM_USER"):
        return "PAM_USER is not set"
    service = env.get("PAM_SERVICE", "")
    if services is not None and service not in services:
        return f"PAM service {service!r} is not in [pam] services"
    rhost = env.get("PAM_RHOST", "")
    if not is_local(rhost):
        return f"remote login from {rhost!r}"
    if service in ("sshd", "ssh"):
        return "SSH login"
    if env.get("PAM_TTY", "") == "ssh" or any(env.get(v) for v in SSH_VARIABLES):
        return "SSH session"
    return None


def real_uid(pid: int) -> int:
    """The real uid of process pid (the PAM application), from /proc; this process's own if unreadable
    (pam_exec's child keeps the application's real uid)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return os.getuid()


def requester(env: dict[str, str], app_pid: int) -> tuple[str, int | None] | None:
    """Who asks, as (name, uid): the real uid of the PAM application (or of this client) when it is
    not root, else PAM_RUSER; None for a root application without PAM_RUSER (a display manager, login)."""
    uid = real_uid(app_pid) or os.getuid()
    if uid != 0:
        try:
            return pwd.getpwuid(uid).pw_name, uid
        except KeyError:
            return f"uid {uid}", uid
    ruser = env.get("PAM_RUSER", "")
    return (ruser, uid_of(ruser)) if ruser else None


def uid_of(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def say(text: str) -> None:
    """A line for the PAM conversation (pam_exec's stdout option shows it to the user)."""
    print(text, flush=True)


def complain(text: str) -> None:
    print(f"faceunlock-pam: {text}", file=sys.stderr, flush=True)


def connect(address: str):
    from gi.repository import Gio

    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def not_local(conn, env: dict[str, str], pam) -> str | None:
    """Why the request is not proven to come from a person at the machine (asks logind and systemd),
    or None. The PAM application is this process's parent (pam_exec forks it)."""
    from faceunlock.service.local_session import Logind, LogindError, Request, Systemd
    from faceunlock.service.local_session import refusal as session_refusal

    app, user = os.getppid(), env["PAM_USER"]
    asker = requester(env, app)
    req = Request(
        pid=app,
        user=user,
        uid=uid_of(user),
        requester=asker[1] if asker else None,
        tty=env.get("PAM_TTY", ""),
        any_user=pam.other_user,
        user_services=pam.user_services,
    )
    try:
        return session_refusal(Logind(conn), req, Systemd(conn))
    except LogindError as exc:
        return f"cannot prove a person at the machine: {exc}"


def daemon_property(conn, name: str):
    """A property of the daemon, read within PROBE_TIMEOUT_MS; raises GLib.Error if it does not answer.

    Properties are served by the daemon's main loop, which never waits for the camera, so a live
    daemon answers in milliseconds even mid-scan. A stopped (SIGSTOP) or wedged one would otherwise
    hold the PAM stack for the whole Verify timeout before the password prompt.
    """
    from gi.repository import Gio, GLib

    reply = conn.call_sync(
        BUS_NAME,
        OBJECT_PATH,
        "org.freedesktop.DBus.Properties",
        "Get",
        GLib.Variant("(ss)", (INTERFACE, name)),
        GLib.VariantType("(v)"),
        Gio.DBusCallFlags.NO_AUTO_START,
        PROBE_TIMEOUT_MS,
        None,
    )
    return reply.unpack()[0]


def probe(conn) -> None:
    """Make sure the daemon answers before a scan is asked of it (see daemon_property)."""
    daemon_property(conn, "Version")


def daemon_settings(conn) -> dict:
    """The settings the daemon has in effect (its Settings property)."""
    return dict(daemon_property(conn, "Settings"))


def verify(conn, user: str, timeout: float) -> tuple[str, str]:
    """Ask the daemon; returns (decision, reason). Raises GLib.Error when it cannot be asked."""
    from gi.repository import Gio, GLib

    reply = conn.call_sync(
        BUS_NAME,
        OBJECT_PATH,
        INTERFACE,
        "Verify",
        GLib.Variant("(su)", (user, int(timeout * 1000))),
        GLib.VariantType("(ssa{sv})"),
        Gio.DBusCallFlags.NO_AUTO_START,
        int((timeout + SLACK_S) * 1000),
        None,
    )
    decision, reason, _details = reply.unpack()
    return decision, reason


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="faceunlock-pam", description="Face unlock for PAM: the client that pam_exec.so runs."
    )
    p.add_argument("--bus-address", default=SYSTEM_BUS_ADDRESS, help="D-Bus address of the system bus")
    p.add_argument("--config", help="config file (default /etc/faceunlock/config.toml); must be trusted")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds the scan may take (default 5)")
    p.add_argument("--quiet", action="store_true", help="print nothing for the PAM conversation")
    return p


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not 0.2 <= args.timeout <= 60:
        p.error("--timeout must be between 0.2 and 60 seconds")
    return args


def arm_deadline(seconds: float) -> None:
    """End the process after seconds, however it is stuck: an alarm, and a thread in case it is blocked."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def expire() -> None:
        complain(f"gave up after {seconds:g} s")
        os._exit(EXIT_UNAVAILABLE)

    watchdog = threading.Timer(seconds + 0.5, expire)
    watchdog.daemon = True
    watchdog.start()


def gate(env: dict[str, str], pam) -> int | None:
    """The exit code when face unlock is off or refused for this request, else None."""
    if not pam.enabled:
        complain("face unlock is disabled (pam.enabled = false; faceunlock enable turns it on)")
        return EXIT_REFUSED
    why = checked(env, pam)
    if why:
        complain(f"face unlock refused: {why}")
        return EXIT_REFUSED
    return None


def pam_from_daemon(conn, base):
    """[pam] with the overlay the daemon has in effect: for a client that may not read the overlay
    (not root; the state folder is the daemon's). None, said why, when the daemon reports it unusable."""
    from faceunlock import settings

    values = daemon_settings(conn)
    if "error" in values:
        complain(f"face unlock is off: {values['error']}")
        return None
    return settings.apply(base, {key: values[key] for key in settings.KEYS if key in values}).pam


def checked(env: dict[str, str], pam) -> str | None:
    """The refusals that need no bus (pam: the [pam] config section), or None."""
    why = refusal(env, pam.services)
    if why:
        return why
    asker = requester(env, os.getppid())
    if asker is not None and asker[0] != env["PAM_USER"] and not pam.other_user:
        return f"{asker[0]} may not authenticate as {env['PAM_USER']} by face ([pam] other_user)"
    return None


def main(argv: list[str] | None = None) -> int:
    from faceunlock.service.isolate import scrub_environment

    scrub_environment()
    args = parse(argv)
    arm_deadline(args.timeout + 2 * SLACK_S)
    env = dict(os.environ)
    from faceunlock import config as config_mod
    from faceunlock import settings
    from faceunlock.errors import ConfigError

    try:
        base = config_mod.load(args.config, trusted=True)
        try:
            pam = settings.effective(base).pam
        except settings.OverlayUnreadable:
            if os.geteuid() == 0:
                raise
            pam = None
    except ConfigError as exc:
        complain(f"face unlock is off: {exc}")
        return EXIT_UNAVAILABLE
    if pam is not None and (code := gate(env, pam)) is not None:
        return code
    from gi.repository import GLib

    user = env["PAM_USER"]
    try:
        conn = connect(args.bus_address)
        try:
            if pam is None:
                pam = pam_from_daemon(conn, base)
                if pam is None:
                    return EXIT_UNAVAILABLE
                if (code := gate(env, pam)) is not None:
                    return code
            why = not_local(conn, env, pam)
            if why:
                complain(f"face unlock refused: {why}")
                return EXIT_REFUSED
            probe(conn)
            decision, reason = verify(conn, user, args.timeout)
        finally:
            conn.close_sync(None)
    except GLib.Error as exc:
        complain(f"the daemon cannot be asked: {exc.message}")
        return EXIT_UNAVAILABLE
    except Exception as exc:  # noqa: BLE001  (fail closed: anything unexpected falls through)
        complain(f"error: {type(exc).__name__}: {exc}")
        return EXIT_UNAVAILABLE
    if decision == "match":
        if not args.quiet:
            say("Face recognised.")
        return EXIT_MATCH
    complain(f"{decision}: {reason}")
    if not args.quiet and decision in ("no-match", "no-face", "timeout"):
        say("Face not recognised.")
    return EXIT_NO_MATCH


if __name__ == "__main__":
    sys.exit(main())
