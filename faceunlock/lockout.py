"""Per-user lockout after repeated failed scans, and the "password used recently" rule.

Only scans that judged a face count as failures: a scan that saw no face (an
empty desk, a covered lens) says nothing about an attacker, and counting it
would let anyone lock the owner out with repeated ``su owner``. Each lockout
in a row lasts twice as long as the one before (up to a day), until a match
or a password login resets the count.

State lives in <store>/state/<user>.json (directory 0700, file 0600, atomic
writes). Unreadable state fails closed: face unlock stays off for that user
until the file is removed, and everything falls through to the password.

Root writes here too (``faceunlock password-used`` from a PAM stack), into a
folder the daemon's user owns: every read and write goes through folder
descriptors without following links (faceunlock.atomic), and the state folder
is handed to that user through its descriptor, so a compromised daemon cannot
turn root's write into a chown or a write of another file.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from faceunlock.atomic import atomic_write, make_folder, read_private
from faceunlock.config import VerifyConfig
from faceunlock.errors import StoreError
from faceunlock.store import TemplateStore, check_user

MAX_LOCKOUT_S = 86400.0
MAX_STATE_BYTES = 4096
FRESH = {"failures": 0, "locked_until": 0.0, "password_at": 0.0, "lockouts": 0}


def boot_time() -> float:
    """The time of the last boot, from /proc/stat (0 if unknown)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def counts(value) -> bool:
    """A count or a time the state may hold: a finite number, not negative (NaN would never block)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


class Lockout:
    """Failure counting and the password-recency rule for one store."""

    def __init__(self, store_root: Path | str, policy: VerifyConfig):
        self.dir = Path(store_root) / "state"
        self.policy = policy

    def path(self, user: str) -> Path:
        return self.dir / f"{check_user(user)}.json"

    def read(self, user: str) -> dict:
        try:
            raw = json.loads(read_private(self.path(user), MAX_STATE_BYTES))
        except FileNotFoundError:
            return dict(FRESH)
        except (OSError, ValueError) as exc:
            raise ValueError(f"lockout state {self.path(user)} is unreadable ({exc}); remove it") from None
        if not isinstance(raw, dict) or not all(
            counts(raw.get(k)) for k in ("failures", "locked_until", "password_at")
        ):
            raise ValueError(f"lockout state {self.path(user)} is malformed; remove it")
        lockouts = raw.get("lockouts", 0)
        if not isinstance(lockouts, int) or isinstance(lockouts, bool) or not 0 <= lockouts <= 64:
            raise ValueError(f"lockout state {self.path(user)} is malformed (lockouts); remove it")
        return {**raw, "lockouts": lockouts}

    def write(self, user: str, state: dict) -> None:
        store = TemplateStore(self.dir.parent)
        store.ensure_root()
        owner = store.owner()
        try:
            make_folder(self.dir, owner)
            atomic_write(self.path(user), json.dumps(state).encode(), owner=owner)
        except OSError as exc:
            raise StoreError(f"cannot write lockout state {self.path(user)}: {exc}") from None

    def blocked(self, user: str, now: float | None = None) -> str | None:
        """Why face unlock is off for this user right now, or None."""
        now = time.time() if now is None else now
        try:
            state = self.read(user)
        except ValueError as exc:
            return str(exc)
        if state["locked_until"] > now:
            left = state["locked_until"] - now
            return (
                f"locked out for {left:.0f} more s after {self.policy.max_failures} failed scans in a row "
                f"(lockout {state['lockouts']} in a row; a password login ends it)"
            )
        p = self.policy
        if p.password_max_age_hours > 0 and now - state["password_at"] > p.password_max_age_hours * 3600:
            return f"a password login is required first (none in the last {p.password_max_age_hours:g} h)"
        if p.password_since_boot and state["password_at"] < boot_time():
            return "a password login is required first (none since boot)"
        return None

    def record(self, user: str, matched: bool, judged: bool = True, now: float | None = None) -> None:
        """Count a failed scan that judged a face (locking out at max_failures), or reset on a match.

        The n-th lockout in a row lasts lockout_seconds * 2**(n-1), at most MAX_LOCKOUT_S.
        """
        now = time.time() if now is None else now
        state = self.read(user)
        if matched:
            state["failures"] = state["lockouts"] = 0
        elif judged:
            state["failures"] += 1
            if state["failures"] >= self.policy.max_failures:
                length = min(MAX_LOCKOUT_S, self.policy.lockout_seconds * 2 ** state["lockouts"])
                state["locked_until"] = now + length
                state["failures"] = 0
                state["lockouts"] += 1
        else:
            return
        self.write(user, state)

    def password_used(self, user: str, now: float | None = None) -> None:
        """Note a successful password login: clears the lockout and satisfies the recency rule."""
        self.write(user, {**FRESH, "password_at": time.time() if now is None else now})
