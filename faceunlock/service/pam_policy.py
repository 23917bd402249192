"""The rules of a PAM request, held by the daemon alone: may face unlock answer it, and how.

The PAM side (pam_faceunlock.so, or the pam_exec client) only forwards the PAM items, the PAM
application's real uid and SSH markers; the daemon sees the caller's pid and uid from the bus.
Here, in one place:

- the items are parsed and bounded; a non-root caller speaks only for itself (its uid is the real
  uid, and it cannot claim a confirmation);
- face unlock switched off, a PAM service not in ``[pam] services``, a remote PAM_RHOST (only
  empty, a literal loopback address or an X display ``:N[.M]`` are local), the services ``sshd``
  and ``ssh``, PAM_TTY ``ssh`` and SSH variables are refused;
- the requester (the real uid when it is not root, else PAM_RUSER) must be PAM_USER unless
  ``[pam] other_user``;
- the services of ``[pam] confirm`` scan only after the user confirmed (an empty Enter at the
  module's prompt), and only a root caller may say so.

Presence (faceunlock.service.local_session), the daemon's own polkit questions, a fresh lock and
the lockout are the daemon's checks on top (FaceUnlockService.pam_refusal).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from faceunlock.config import PamConfig
from faceunlock.service.auth import name_of, uid_of

X_DISPLAY_RE = re.compile(r"^:[0-9]+(\.[0-9]+)?$")
REMOTE_SERVICES = ("sshd", "ssh")
MAX_ITEM = 256
KEYS = ("user", "service", "ruser", "rhost", "tty", "ruid", "ssh", "confirmed", "step")
STEPS = ("check", "scan")


@dataclass(frozen=True)
class Items:
    """One PAM request as the daemon reads it."""

    user: str
    service: str
    ruser: str = ""
    rhost: str = ""
    tty: str = ""
    ruid: int = 0
    ssh: bool = False
    confirmed: bool = False
    step: str = "scan"


def parse(raw: dict, caller_uid: int) -> Items:
    """Items from the forwarded dictionary; ValueError naming what is wrong.

    A non-root caller (a locker running PAM as the user) is its own requester: its uid from the bus
    replaces what it says, and it cannot confirm for the user.
    """
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ValueError("items must map names to strings")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown item(s): {', '.join(unknown)}")
    for key, value in raw.items():
        if len(value) > MAX_ITEM or "\0" in value:
            raise ValueError(f"item {key} is longer than {MAX_ITEM} characters or holds NUL")
    if not raw.get("user"):
        raise ValueError("no user")
    step = raw.get("step", "scan")
    if step not in STEPS:
        raise ValueError(f"step must be one of {', '.join(STEPS)}")
    ruid = raw.get("ruid", "")
    if caller_uid != 0:
        uid = caller_uid
    elif ruid.isdigit() and len(ruid) <= 10:
        uid = int(ruid)
    else:
        raise ValueError(f"ruid {ruid!r} is not a uid")
    return Items(
        user=raw["user"],
        service=raw.get("service", ""),
        ruser=raw.get("ruser", ""),
        rhost=raw.get("rhost", ""),
        tty=raw.get("tty", ""),
        ruid=uid,
        ssh=raw.get("ssh", "") not in ("", "0"),
        confirmed=caller_uid == 0 and raw.get("confirmed", "") == "1",
        step=step,
    )


def is_local(rhost: str) -> bool:
    """PAM_RHOST names this machine: empty, a literal loopback address, or an X display ":N[.M]".
    A name such as localhost is not: it comes from DNS, which a remote side can steer."""
    if rhost == "" or X_DISPLAY_RE.fullmatch(rhost):
        return True
    try:
        address = ipaddress.ip_address(rhost)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def remote(items: Items) -> str | None:
    """Why the request comes from another machine, or None."""
    if not is_local(items.rhost):
        return f"remote login from {items.rhost!r}"
    if items.service in REMOTE_SERVICES:
        return "SSH login"
    if items.tty == "ssh" or items.ssh:
        return "SSH session"
    return None


def requester(items: Items) -> tuple[str, int | None] | None:
    """Who asks, as (name, uid): the PAM application's real uid when it is not root, else
    PAM_RUSER; None for a root application without PAM_RUSER (a display manager, login)."""
    if items.ruid != 0:
        return name_of(items.ruid), items.ruid
    return (items.ruser, uid_of(items.ruser)) if items.ruser else None


def refusal(items: Items, pam: PamConfig) -> str | None:
    """Why face unlock must not answer this request (from its items alone), or None.

    A service the configuration leaves out is refused with an empty reason: PAM stacks include
    face unlock in many services (chfn, chsh), and their users need not read about it.
    """
    if not pam.enabled:
        return "face unlock is switched off (faceunlock enable turns it on)"
    if items.service not in pam.services:
        return ""
    why = remote(items)
    if why:
        return why
    asker = requester(items)
    if asker is not None and asker[0] != items.user and not pam.other_user:
        return f"{asker[0]} may not authenticate as {items.user} by face ([pam] other_user)"
    return None


def needs_confirmation(items: Items, pam: PamConfig) -> bool:
    """The service is in confirm mode and the user has not confirmed."""
    return items.service in pam.confirm and not items.confirmed


def answer(decision) -> tuple[str, str]:
    """The (result, message) a scan's Decision gives the PAM side: a plain line for the person."""
    if decision.matched:
        return "match", "Face recognised."
    if decision.liveness in ("fail", "doubt") and decision.decision == "no-match":
        return "no-match", "Face not accepted: it looks like a photo or a screen."
    messages = {
        "no-match": "Face not recognised.",
        "no-face": "No face in view.",
        "timeout": "Face not recognised in time.",
        "locked-out": f"Face unlock is locked: {decision.reason}.",
        "not-enrolled": "",
    }
    if decision.decision in messages:
        return decision.decision, messages[decision.decision]
    return "error", "Face unlock failed (the daemon's log says why)."
