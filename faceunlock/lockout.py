"""Per-user lockout after repeated failed scans, and the "password used recently" rule.

State lives in <store>/state/<user>.json (directory 0700, file 0600, atomic
writes). Unreadable state fails closed: face unlock stays off for that user
until the file is removed, and everything falls through to the password.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from faceunlock.atomic import atomic_write
from faceunlock.config import VerifyConfig
from faceunlock.store import check_user


def boot_time() -> float:
    """The time of the last boot, from /proc/stat (0 if unknown)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


class Lockout:
    """Failure counting and the password-recency rule for one store."""

    def __init__(self, store_root: Path | str, policy: VerifyConfig):
        self.dir = Path(store_root) / "state"
        self.policy = policy

    def path(self, user: str) -> Path:
        return self.dir / f"{check_user(user)}.json"

    def read(self, user: str) -> dict:
        try:
            raw = json.loads(self.path(user).read_text())
        except FileNotFoundError:
            return {"failures": 0, "locked_until": 0.0, "password_at": 0.0}
        except (OSError, ValueError) as exc:
            raise ValueError(f"lockout state {self.path(user)} is unreadable ({exc}); remove it") from None
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), (int, float)) for k in ("failures", "locked_until", "password_at")
        ):
            raise ValueError(f"lockout state {self.path(user)} is malformed; remove it")
        return raw

    def write(self, user: str, state: dict) -> None:
        self.dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        atomic_write(self.path(user), json.dumps(state).encode())

    def blocked(self, user: str, now: float | None = None) -> str | None:
        """Why face unlock is off for this user right now, or None."""
        now = time.time() if now is None else now
        try:
            state = self.read(user)
        except ValueError as exc:
            return str(exc)
        if state["locked_until"] > now:
            left = state["locked_until"] - now
            return f"locked out for {left:.0f} more s after {self.policy.max_failures} failed scans in a row"
        p = self.policy
        if p.password_max_age_hours > 0 and now - state["password_at"] > p.password_max_age_hours * 3600:
            return f"a password login is required first (none in the last {p.password_max_age_hours:g} h)"
        if p.password_since_boot and state["password_at"] < boot_time():
            return "a password login is required first (none since boot)"
        return None

    def record(self, user: str, matched: bool, now: float | None = None) -> None:
        """Count a failed scan (locking out at max_failures) or reset the count on a match."""
        now = time.time() if now is None else now
        state = self.read(user)
        if matched:
            state["failures"] = 0
        else:
            state["failures"] += 1
            if state["failures"] >= self.policy.max_failures:
                state["locked_until"] = now + self.policy.lockout_seconds
                state["failures"] = 0
        self.write(user, state)

    def password_used(self, user: str, now: float | None = None) -> None:
        """Note a successful password login: clears the lockout and satisfies the recency rule."""
        self.write(
            user, {"failures": 0, "locked_until": 0.0, "password_at": time.time() if now is None else now}
        )
