"""Which security checks would survive being deleted? A small, rerunnable mutation check.

Each mutation below removes or inverts one security check of faceunlock (a line of
faceunlock/service/, config.py, store.py, lockout.py, atomic.py, ...), then runs only the
tests that should notice. A mutation is "caught" when at least one of them fails, and
"SURVIVED" when all pass: then no test would notice that check going away.

The checkout's own files are changed in place (the tests start the daemon with `python -I`,
which imports the installed package, the checkout), and every file is restored byte for
byte afterwards, also on Ctrl-C. Run as root with the test data present, like CI:

    sudo CI=true .venv/bin/python scripts/mutation_check.py            # all, about 20 minutes
    sudo CI=true .venv/bin/python scripts/mutation_check.py --only lockout  # names containing it
    ... --json out.json                                                # the results as JSON

Exit status 0 when every mutation was caught, 1 when one survived, 2 when a mutation no longer
applies (its code moved: update the table).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


M = Mutation
MUTATIONS = (
    # issue 24: the seven checks no test caught
    M(
        "install: walk every file of the import path",
        "faceunlock/service/install.py",
        "                why = unsafe(Path(folder) / name)\n",
        "                why = None\n",
        ("tests/test_service_install.py",),
    ),
    M(
        "install: every link the interpreter's path goes through",
        "faceunlock/service/install.py",
        "        paths += [hop, *hop.parents]\n",
        "        pass\n",
        ("tests/test_service_install.py",),
    ),
    M(
        "install: the interpreter's real path",
        "faceunlock/service/install.py",
        "        paths += [real, *real.parents]\n",
        "        pass\n",
        ("tests/test_service_install.py",),
    ),
    M(
        "store: repair the store folder to 0700",
        "faceunlock/store.py",
        "            os.chmod(self.root, 0o700)\n",
        "            pass\n",
        ("tests/test_store.py",),
    ),
    M(
        "lockout: validate the lockouts count",
        "faceunlock/lockout.py",
        "not isinstance(lockouts, int) or isinstance(lockouts, bool) or not 0 <= lockouts <= 64:\n",
        "False:\n",
        ("tests/test_policy.py",),
    ),
    M(
        "lockout: a password login clears the lockout",
        "faceunlock/lockout.py",
        '        self.write(user, {**FRESH, "password_at"',
        '        self.write(user, {**self.read(user), "password_at"',
        ("tests/test_policy.py",),
    ),
    M(
        "pam: the service ssh is remote",
        "faceunlock/service/pam_policy.py",
        'REMOTE_SERVICES = ("sshd", "ssh")',
        'REMOTE_SERVICES = ("sshd",)',
        ("tests/test_pam_policy.py",),
    ),
    M(
        "pam: SSH_TTY marks an SSH session",
        "faceunlock/service/pam_client.py",
        'SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")',
        'SSH_VARIABLES = ("SSH_CONNECTION", "SSH_CLIENT")',
        ("tests/test_service_pam.py",),
    ),
    # issue 19: presence, admin actions, root writes, the interpreter
    M(
        "presence: a request outside any session is refused",
        "faceunlock/service/local_session.py",
        "    return system_rule(logind, systemd, req, console)\n",
        "    return None\n",
        ("tests/test_local_session.py", "tests/test_service_pam.py"),
    ),
    M(
        "presence: the display manager's own unit only",
        "faceunlock/service/local_session.py",
        "    if unit is not None and unit == systemd.display_manager():\n",
        "    if True:\n",
        ("tests/test_local_session.py", "tests/test_service_pam.py"),
    ),
    M(
        "presence: login on the console in front only",
        "faceunlock/service/local_session.py",
        "        if vt != front:\n",
        "        if False:\n",
        ("tests/test_local_session.py",),
    ),
    M(
        "presence: the user's own systemd services only when opted in",
        "faceunlock/service/local_session.py",
        "        if req.user_services:\n",
        "        if True:\n",
        ("tests/test_local_session.py", "tests/test_service_pam.py"),
    ),
    M(
        "presence: the session must be the requester's",
        "faceunlock/service/local_session.py",
        "    if not req.owns(s.uid, s.user):\n",
        "    if False:\n",
        ("tests/test_local_session.py", "tests/test_service_pam.py"),
    ),
    M(
        "presence: the session must be active on a seat",
        "faceunlock/service/local_session.py",
        "    if not s.active:\n",
        "    if False:\n",
        ("tests/test_local_session.py",),
    ),
    M(
        "requester: the PAM application's real uid, not PAM_RUSER",
        "faceunlock/service/pam_policy.py",
        "    if items.ruid != 0:\n",
        "    if False:\n",
        ("tests/test_pam_policy.py",),
    ),
    M(
        "requester: the fallback client forwards the application's real uid",
        "faceunlock/service/pam_client.py",
        '    out["ruid"] = str(real_uid(app_pid) or os.getuid())\n',
        '    out["ruid"] = "0"\n',
        ("tests/test_service_pam.py",),
    ),
    M(
        "pam: localhost is not a local PAM_RHOST",
        "faceunlock/service/pam_policy.py",
        '    if rhost == "" or X_DISPLAY_RE.fullmatch(rhost):\n',
        '    if rhost in ("", "localhost") or X_DISPLAY_RE.fullmatch(rhost):\n',
        ("tests/test_pam_policy.py",),
    ),
    M(
        "pam: a remote PAM_RHOST is refused",
        "faceunlock/service/pam_policy.py",
        "    if not is_local(items.rhost):\n",
        "    if False:\n",
        ("tests/test_pam_policy.py", "tests/test_service_pam.py"),
    ),
    M(
        "pam: only the services of [pam] services",
        "faceunlock/service/pam_policy.py",
        "    if items.service not in pam.services:\n",
        "    if False:\n",
        ("tests/test_pam_policy.py",),
    ),
    M(
        "daemon: no root Verify while polkit asks about its own actions",
        "faceunlock/service/daemon.py",
        "        if uid == 0 and self.own_questions:\n            raise",
        "        if False:\n            raise",
        ("tests/test_service_desktop.py",),
    ),
    M(
        "daemon: no PAM request while polkit asks about its own actions",
        "faceunlock/service/daemon.py",
        "        if uid == 0 and self.own_questions:\n            return",
        "        if False:\n            return",
        ("tests/test_service_desktop.py",),
    ),
    M(
        "daemon: a lock screen within the grace period after the lock",
        "faceunlock/service/daemon.py",
        "        if items.service in LOCK_SCREENS and self.just_locked(items.user):\n",
        "        if False:\n",
        ("tests/test_service_logind.py",),
    ),
    M(
        "daemon: PasswordUsed is for root only",
        "faceunlock/service/daemon.py",
        '        require_root(caller_uid(self.bus, call.sender), "PasswordUsed")\n',
        "",
        ("tests/test_service_pam.py",),
    ),
    M(
        "pam: a non-root caller speaks only for itself",
        "faceunlock/service/pam_policy.py",
        "    if caller_uid != 0:\n        uid = caller_uid\n",
        "    if False:\n        uid = caller_uid\n",
        ("tests/test_pam_policy.py",),
    ),
    M(
        "pam: only root may confirm",
        "faceunlock/service/pam_policy.py",
        'confirmed=caller_uid == 0 and raw.get("confirmed", "") == "1",',
        'confirmed=raw.get("confirmed", "") == "1",',
        ("tests/test_pam_policy.py",),
    ),
    M(
        "pam: confirm mode scans only after the Enter",
        "faceunlock/service/pam_policy.py",
        "    return items.service in pam.confirm and not items.confirmed\n",
        "    return False\n",
        ("tests/test_pam_policy.py", "tests/test_service_pam.py"),
    ),
    M(
        "pam: sudo, su, login and polkit are opt-in",
        "faceunlock/config.py",
        "PAM_SERVICES = LOCK_SCREENS\n",
        "PAM_SERVICES = (*LOCK_SCREENS, *ELEVATION_SERVICES)\n",
        ("tests/test_pam_policy.py",),
    ),
    M(
        "module: only a match is PAM_SUCCESS",
        "pam/pam_faceunlock.c",
        '"Face not recognised.");\n		return PAM_IGNORE;\n',
        '"Face not recognised.");\n		return PAM_SUCCESS;\n',
        ("tests/test_service_pam.py",),
    ),
    M(
        "module: an unknown reply is never a match",
        "pam/faceunlock_reply.c",
        "			return OUTCOMES[i].outcome;\n	return FU_UNAVAILABLE;\n",
        "			return OUTCOMES[i].outcome;\n	return FU_MATCH;\n",
        ("tests/test_service_pam.py",),
    ),
    M(
        "daemon: State is private",
        "faceunlock/service/daemon.py",
        '    PRIVATE_PROPERTIES = frozenset({"State"})\n',
        "    PRIVATE_PROPERTIES = frozenset()\n",
        ("tests/test_service_auth.py",),
    ),
    M(
        "daemon: non-root callers act on themselves only",
        "faceunlock/service/auth.py",
        "    if uid_of(user) != uid:\n",
        "    if False:\n",
        ("tests/test_service_auth.py", "tests/test_service_desktop.py"),
    ),
    M(
        "daemon: SetSetting merges into the overlay on disk",
        "faceunlock/service/daemon.py",
        "            current = settings.read(settings.path_for(self.root_cfg))\n",
        "            current = self.overlay\n",
        ("tests/test_service_desktop.py",),
    ),
    M(
        "daemon: a settings switch never turns on a service the config does not list",
        "faceunlock/service/daemon.py",
        "            value = settings.check_change(self.root_cfg, key, value)\n",
        "            value = settings.check_value(key, value)\n",
        ("tests/test_service_auth.py",),
    ),
    M(
        "logind: arm only the active session of a seat",
        "faceunlock/service/logind.py",
        '        if not seat or props.get("Active") is not True:\n',
        "        if False:\n",
        ("tests/test_service_logind.py",),
    ),
    M(
        "logind: only logind's own signals",
        "faceunlock/service/logind.py",
        "            if self.owner is None or sender != self.owner:\n",
        "            if False:\n",
        ("tests/test_service_logind.py", "tests/test_isolation.py"),
    ),
    M(
        "atomic: folders opened without following a link",
        "faceunlock/atomic.py",
        "FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC\n",
        "FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC\n",
        ("tests/test_policy.py",),
    ),
    M(
        "lockout: state read without blocking on a FIFO",
        "faceunlock/atomic.py",
        "os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)\n",
        "os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)\n",
        ("tests/test_policy.py",),
    ),
    M(
        "audit: snapshots never written through a link (atomic.CREATE_FLAGS)",
        "faceunlock/atomic.py",
        "CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC",
        "CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC",
        ("tests/test_audit.py",),
    ),
    M(
        "install: every site folder that -I reads",
        "faceunlock/service/install.py",
        "    entries = [*json.loads(proc.stdout), *site.getsitepackages(), *sys.path]\n",
        '    entries = [p for p in sys.path if p.endswith("site-packages")]\n',
        ("tests/test_service_install.py",),
    ),
    M(
        "config: the trusted file is root's and writable by root alone",
        "faceunlock/config.py",
        "    if st.st_uid != 0 or st.st_mode & 0o022:\n",
        "    if False:\n",
        ("tests/test_config.py",),
    ),
    M(
        "config: unsafe settings need insecure = true",
        "faceunlock/config.py",
        '    if below and not cfg.insecure:\n        raise ConfigError(\n            f"unsafe setting(s)',
        '    if False:\n        raise ConfigError(\n            f"unsafe setting(s)',
        ("tests/test_config.py", "tests/test_fuzz.py"),
    ),
    M(
        "store: a template owned by another user is refused",
        "faceunlock/store.py",
        "        if st.st_uid not in trusted:\n",
        "        if False:\n",
        ("tests/test_store.py",),
    ),
    M(
        "store: the content checksum",
        "faceunlock/store.py",
        '    expect(stored_digest == digest, path, "content checksum mismatch (edited or damaged)")\n',
        "",
        ("tests/test_store.py", "tests/test_fuzz.py"),
    ),
    M(
        "automatic unlock: face unlock switched off ([pam] enabled = false)",
        "faceunlock/service/daemon.py",
        "            if not switched_on:\n",
        "            if False:\n",
        ("tests/test_service_logind.py",),
    ),
    M(
        "settings: the master switch turns the automatic unlock off",
        "faceunlock/settings.py",
        '    if values.get("pam.lock_screen") is False or values.get(MASTER) is False:\n',
        '    if values.get("pam.lock_screen") is False:\n',
        ("tests/test_settings.py",),
    ),
    M(
        "daemon enrolment: another person's face is not added as a look",
        "faceunlock/service/daemon.py",
        "            self.refuse_another_person(user, label, anchors, cfg)\n",
        "",
        ("tests/test_service_desktop.py",),
    ),
    M(
        "CancelEnroll: only the caller's own enrolment",
        "faceunlock/service/daemon.py",
        "        stop = self.enrolments.get(call.sender)\n",
        "        stop = next(iter(self.enrolments.values()), None)\n",
        ("tests/test_service_desktop.py",),
    ),
    M(
        "IR mode: a colour frame is not the IR camera",
        "faceunlock/vision/ir_cues.py",
        '        return ["not-ir"]\n',
        "        return []\n",
        ("tests/test_ir_cues.py",),
    ),
    M(
        "IR mode: a face dark in IR is a screen",
        "faceunlock/vision/ir_cues.py",
        '        return ["ir-dark-face"]\n',
        "        return []\n",
        ("tests/test_ir_cues.py",),
    ),
    M(
        "scan: an IR cue ends the scan as an attack",
        "faceunlock/verify.py",
        '            self.verdict = Verdict("attack", 0.0, f"IR cue: {named}")\n            return\n',
        "",
        ("tests/test_ir_cues.py",),
    ),
    # issue 20: learned looks
    M(
        "learning: a near miss in liveness doubt is never learned",
        "faceunlock/learnable.py",
        '    if decision.liveness != "pass":\n',
        "    if False:\n",
        ("tests/test_learning.py",),
    ),
    M(
        "learning: only a near miss under the per-pair threshold is learned",
        "faceunlock/learnable.py",
        "    if decision.distance is None or not decision.distance < per_pair_threshold:\n",
        "    if decision.distance is None:\n",
        ("tests/test_learning.py",),
    ),
    M(
        "renewal: only under the strict scan threshold",
        "faceunlock/learnable.py",
        "    if decision.distance is None or not decision.distance < strict_scan_threshold:\n",
        "    if decision.distance is None:\n",
        ("tests/test_learning.py",),
    ),
    M(
        "renewal: only with the strict level's liveness score",
        "faceunlock/learnable.py",
        "    if not decision.liveness_score >= strict_live_threshold:\n",
        "    if False:\n",
        ("tests/test_learning.py",),
    ),
    M(
        "store: one read-modify-write at a time, across processes and threads (flock)",
        "faceunlock/store.py",
        "                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n",
        "                pass\n",
        ("tests/test_learning.py",),
    ),
    M(
        "liveness fit: a cue must raise the live share the threshold rule accepts",
        "faceunlock/training/liveness_fit.py",
        "            if not allowed or tried[allowed[0]][0] < shares[0] + min_gain:\n",
        "            if not allowed:\n",
        ("tests/test_liveness_fit.py",),
    ),
    M(
        "liveness fit: a cue may not raise the attack share the threshold rule accepts",
        "faceunlock/training/liveness_fit.py",
        "if tried[j][1] <= shares[1] + max_attack_rise and losses[j] <= loss]",
        "if losses[j] <= loss]",
        ("tests/test_liveness_fit.py",),
    ),
    M(
        "renewal: only a learned look",
        "faceunlock/learnable.py",
        '    if decision.decision != "match" or not is_learned(decision.look):\n',
        '    if decision.decision != "match" or not decision.look:\n',
        ("tests/test_learning.py",),
    ),
    M(
        "renewal: only an unlock or a PAM scan renews, not a test or a D-Bus Verify",
        "faceunlock/service/daemon.py",
        '            if service == "logind" or service.startswith("pam:"):\n',
        "            if True:\n",
        ("tests/test_learning.py",),
    ),
    M(
        "face metering: the scan tells the camera where the face is",
        "faceunlock/verify.py",
        "            meter(rgb, previous.face)\n",
        "            pass\n",
        ("tests/test_exposure.py",),
    ),
    M(
        "face metering: never a longer exposure than the camera's own",
        "faceunlock/exposure.py",
        "        new = min(self.range.clamp(self.value * factor), self.ceiling)\n",
        "        new = self.range.clamp(self.value * factor)\n",
        ("tests/test_exposure.py",),
    ),
    M(
        "face metering: never a frame dark enough to be skipped",
        "faceunlock/exposure.py",
        "            factor = min(1.0, max(factor, self.floor / max(float(rgb[::4, ::4].mean()), 1.0)))\n",
        "            pass\n",
        ("tests/test_exposure.py",),
    ),
    M(
        "face metering: a run of dark frames gives the camera back",
        "faceunlock/exposure.py",
        "        if self.dark_run >= DARK_RUN:\n",
        "        if False:\n",
        ("tests/test_exposure.py",),
    ),
    M(
        "face metering: a bounded number of changes",
        "faceunlock/exposure.py",
        " or self.changes >= MAX_CHANGES:\n",
        ":\n",
        ("tests/test_exposure.py",),
    ),
    M(
        "face metering: closing the camera gives its exposure back",
        "faceunlock/camera.py",
        "            exposure.restore()\n",
        "            pass\n",
        ("tests/test_exposure.py",),
    ),
    # the lockout through a whole attempt (found by an audit: no test removed it)
    M(
        "attempt: a locked-out user is refused unscanned",
        "faceunlock/attempt.py",
        "    if blocked:\n",
        "    if False:\n",
        ("tests/test_cli.py",),
    ),
    M(
        "attempt: a judged failure counts toward the lockout",
        "faceunlock/attempt.py",
        "        guard.record(user, decision.matched, judged=decision.judged > 0)\n",
        "        pass\n",
        ("tests/test_cli.py",),
    ),
    M(
        "PAM: a locked-out user is refused before the camera opens",
        "faceunlock/service/daemon.py",
        "            return Lockout(self.cfg.store.path, self.cfg.verify).blocked(items.user)\n",
        "            return None\n",
        ("tests/test_service_pam.py",),
    ),
    M(
        "daemon: a user's scan holds the camera 10 s at most",
        "faceunlock/service/daemon.py",
        "        cap = MAX_TIMEOUT if uid == 0 else NON_ROOT_TIMEOUT\n",
        "        cap = MAX_TIMEOUT\n",
        ("tests/test_service_daemon.py",),
    ),
    M(
        "daemon: a D-Bus Verify reads the settings afresh and fails closed on an unusable overlay",
        "faceunlock/service/daemon.py",
        '                return Decision(user=user, decision="error", reason=f"face unlock is off: {exc}")\n'
        '            return self.scan(user, anchors, deadline, "dbus")\n',
        '                pass\n            return self.scan(user, anchors, deadline, "dbus")\n',
        ("tests/test_settings.py",),
    ),
    M(
        "daemon: the locks are watched for the grace period with the automatic unlock off",
        "faceunlock/service/daemon.py",
        "        if watch and self.logind is None:\n",
        "        if unlock and self.logind is None:\n",
        ("tests/test_service_logind.py",),
    ),
    M(
        "logind: with the automatic unlock off, a trigger scans nothing",
        "faceunlock/service/logind.py",
        '        if not self.unlock:\n            return "automatic unlock is off"\n',
        "",
        ("tests/test_service_logind.py",),
    ),
    M(
        "scan: liveness evidence starts over with a new face",
        "faceunlock/verify.py",
        "        if not same_track:\n            self.evidence = Evidence()\n",
        "",
        ("tests/test_policy.py",),
    ),
    M(
        "learning: only the frames of the face the liveness verdict is about",
        "faceunlock/verify.py",
        "        if not self.best_embeddings or self.best_track != self.tracks:\n",
        "        if not self.best_embeddings:\n",
        ("tests/test_policy.py",),
    ),
    M(
        "logind: a scan's match never unlocks a lock that came after it started",
        "faceunlock/service/logind.py",
        "        if self.armed.get(armed.path) is not armed:\n",
        "        if False:\n",
        ("tests/test_service_logind.py",),
    ),
    M(
        "logind: UnlockNow asks only for the caller's own session",
        "faceunlock/service/logind.py",
        "            if (not session_id or a.session_id == session_id) and uid in (0, a.uid)\n",
        "            if (not session_id or a.session_id == session_id)\n",
        ("tests/test_service_logind.py",),
    ),
    M(
        "daemon: UnlockNow only from the caller's own local session",
        "faceunlock/service/daemon.py",
        "        if uid != 0:\n"
        "            self.require_local(call, uid, name_of(uid))\n"
        "        self.logind.request(",
        "        self.logind.request(",
        ("tests/test_service_logind.py",),
    ),
    M(
        "guided enrolment: multiple_faces = reject holds there too",
        "faceunlock/guided.py",
        "    if result.detection.crowded or "
        '(result.detection.multiple and policy.multiple_faces == "reject"):\n',
        "    if result.detection.crowded:\n",
        ("tests/test_guided.py",),
    ),
    # the liveness verdict itself (faceunlock/liveness/score.py, faceunlock/verify.py)
    M(
        "liveness verdict: the security level's own threshold",
        "faceunlock/liveness/score.py",
        "    threshold = card.threshold(level)\n",
        '    threshold = card.threshold("fast")\n',
        ("tests/test_policy.py",),
    ),
    M(
        "liveness verdict: a pass needs the evidence of enough frames",
        "faceunlock/liveness/score.py",
        "    if evidence.frames < need:\n",
        "    if evidence.frames < 1:\n",
        ("tests/test_policy.py",),
    ),
    M(
        "liveness verdict: a clear attack ends the scan",
        "faceunlock/liveness/score.py",
        "    if score < card.attack_below:\n",
        "    if False:\n",
        ("tests/test_policy.py",),
    ),
    M(
        "liveness verdict: doubt is not live",
        "faceunlock/liveness/score.py",
        "    if score >= threshold:\n",
        "    if score >= card.attack_below:\n",
        ("tests/test_policy.py",),
    ),
    M(
        "liveness verdict: the track's last frames must score live too (no vouching by another face)",
        "faceunlock/liveness/score.py",
        "        if recent < threshold:\n",
        "        if False:\n",
        ("tests/test_policy.py",),
    ),
    M(
        "scan: a match needs the verdict live",
        "faceunlock/verify.py",
        '        elif self.verdict.state == "live" and matched:\n',
        "        elif matched:\n",
        ("tests/test_policy.py",),
    ),
)


def run_tests(tests: tuple[str, ...], timeout: float) -> tuple[bool, str]:
    """Whether the tests pass, and the last line pytest printed."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode == 0, lines[-1] if lines else proc.stderr.strip()[-200:]


def apply(m: Mutation) -> tuple[Path, bytes] | None:
    path = ROOT / m.file
    original = path.read_bytes()
    text = original.decode()
    if text.count(m.old) != 1:
        return None
    path.write_text(text.replace(m.old, m.new))
    return path, original


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="run only the mutations whose name contains this")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per mutation's tests")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.only in m.name]
    results = []
    stale = False
    for m in chosen:
        started = time.monotonic()
        applied = apply(m)
        if applied is None:
            print(f"STALE     {m.name}: the code to mutate is not (exactly once) in {m.file}", flush=True)
            results.append({"name": m.name, "result": "stale"})
            stale = True
            continue
        path, original = applied
        try:
            passed, last = run_tests(m.tests, args.timeout)
        finally:
            path.write_bytes(original)
        result = "SURVIVED" if passed else "caught"
        print(f"{result:<9} {m.name}  ({time.monotonic() - started:.0f} s: {last})", flush=True)
        results.append(
            {"name": m.name, "file": m.file, "tests": list(m.tests), "result": result, "last": last}
        )
    caught = sum(r["result"] == "caught" for r in results)
    print(f"\n{caught} of {len(results)} mutations caught")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if stale:
        return 2
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
