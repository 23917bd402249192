"""Asking polkit whether a non-root caller may enrol or change settings, as fprintd does.

The subject is the caller's unique bus name (``system-bus-name``), so polkit
itself looks up its process, user and session; user interaction is allowed,
so the desktop's polkit agent asks for a password (polkit/org.faceunlock.policy:
the user's own to enrol or delete their face, an administrator's for settings;
nothing kept). The daemon refuses face checks while such a question is open
(FaceUnlockService.own_questions), so a face never answers it. The call is
made without blocking the main loop, and anything but a clear "authorised"
(no polkit on the bus, a timeout, a malformed answer) is a refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gi.repository import Gio, GLib

log = logging.getLogger("faceunlock.polkit")

POLKIT = "org.freedesktop.PolicyKit1"
AUTHORITY_PATH = "/org/freedesktop/PolicyKit1/Authority"
AUTHORITY = "org.freedesktop.PolicyKit1.Authority"
ENROLL = "org.faceunlock.enroll"
CONFIGURE = "org.faceunlock.configure"
ALLOW_USER_INTERACTION = 1
WORDS = {ENROLL: "enrol or delete a face", CONFIGURE: "change face unlock's settings"}
"""What each action lets a person do, for the refusal they read."""
TIMEOUT_MS = 5 * 60 * 1000
"""Long enough for a person to type a password into the polkit agent."""


def refusal(action: str, challenge: bool = False) -> str:
    """The words for a refusal: what was not allowed, then the polkit action an administrator looks up
    (and whether polkit wanted a password that it did not get)."""
    needed = ": authentication needed" if challenge else ""
    return f"not authorised to {WORDS.get(action, action)} (polkit action {action}{needed})"


def check(con: Gio.DBusConnection, sender: str, action: str, done: Callable[[str | None], None]) -> None:
    """Ask polkit about sender and action; later call done(None) if authorised, else done(why not)."""
    subject = ("system-bus-name", {"name": GLib.Variant("s", sender)})
    args = GLib.Variant("((sa{sv})sa{ss}us)", (subject, action, {}, ALLOW_USER_INTERACTION, ""))

    def answered(connection, result) -> None:
        try:
            reply = connection.call_finish(result)
            authorised, challenge, _details = reply.unpack()[0]
        except GLib.Error as exc:
            log.warning("polkit could not be asked about %s for %s: %s", action, sender, exc.message)
            done(f"polkit could not be asked ({exc.message})")
            return
        except (TypeError, ValueError) as exc:
            done(f"polkit gave an answer that cannot be read ({exc})")
            return
        if authorised is True:
            done(None)
        else:
            done(refusal(action, bool(challenge)))

    con.call(
        POLKIT,
        AUTHORITY_PATH,
        AUTHORITY,
        "CheckAuthorization",
        args,
        GLib.VariantType("((bba{ss}))"),
        Gio.DBusCallFlags.NONE,
        TIMEOUT_MS,
        None,
        answered,
    )
