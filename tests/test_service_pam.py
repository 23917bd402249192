"""The PAM side, end to end: pamtester -> libpam -> pam_faceunlock.so (or pam_exec.so running the
Python fallback client) -> the daemon on a private bus, which holds every rule.

A test service file in /etc/pam.d/ loads the real module, built by `make -C pam` (bus= points it at
the test bus, as an administrator's PAM line could), then pam_deny: pamtester succeeds only on a
match. The daemon asks the logind and systemd stand-ins where pamtester runs: tests place this test
process (pamtester's parent) in a session or a unit first. What the module shows the person is in
pamtester's output; why the daemon refused is in its log, also collected into `out`.
"""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from missing import unavailable
from service_harness import ROOT, Bus, need, need_root, wait_for

from faceunlock.service import pam_client
from faceunlock.service.install import pam_command

PAM_DIR = Path("/etc/pam.d")
CLIENT_TIMEOUT_S = 20
NO_HANG_S = 10.0
"""A refusal or a missing daemon must not wait for the scan's deadline (CLIENT_TIMEOUT_S, and the
client's own alarm after it). This bound only tells a fall-through from a hang, whatever the load:
how fast the password prompt comes is measured by benchmarks/service_latency.py
(pam.pamtester_no_daemon_ms)."""


def build(*targets: str) -> None:
    """make -C pam TARGETS (the module is built by scripts/setup.sh; the variants here)."""
    need("make")
    proc = subprocess.run(["make", "-s", "-C", str(ROOT / "pam"), *targets], capture_output=True, text=True)
    if proc.returncode != 0:
        unavailable(f"cannot build {' '.join(targets)}: {proc.stderr[-2000:]}")


def module_line(address: str, so: str = "pam_faceunlock.so", kind: str = "auth") -> str:
    control = "[success=done default=ignore]" if kind == "auth" else "optional"
    return f"{kind} {control} {ROOT / 'pam' / so} bus={address} timeout={CLIENT_TIMEOUT_S}\n"


def client_line(address: str, log: Path) -> str:
    return (
        f"auth [success=done default=ignore] pam_exec.so quiet log={log} "
        f"{pam_command(Path(sys.executable))} --bus-address {address} --timeout {CLIENT_TIMEOUT_S}\n"
    )


@dataclass
class Stack:
    """A PAM service file under /etc/pam.d and how to run pamtester on it."""

    name: str
    service: object

    def run(self, user: str, *items: str, stdin: str = "", ops=("authenticate",)) -> tuple[int, float, str]:
        """pamtester's exit status, time and output, with what the client and the daemon logged."""
        log = self.service.folder / "pam-client.log"
        start = log.stat().st_size if log.exists() else 0
        daemon_start = len(self.service.log_text())
        code, elapsed, out = pamtester(self.name, user, *items, stdin=stdin, ops=ops)
        text = log.read_bytes()[start:].decode(errors="replace") if log.exists() else ""
        return code, elapsed, out + text + self.service.log_text()[daemon_start:]


def write_stack(name: str, *lines: str) -> Path:
    path = PAM_DIR / name
    path.write_text("".join(lines) + "auth requisite pam_deny.so\naccount required pam_permit.so\n")
    return path


def password_stack(service, name: str) -> Path:
    """name's stack: the module, then pam_exec taking the password typed at the module's prompt
    (expose_authtok), then the module's account stage, which tells the daemon a password was used."""
    return write_stack(
        name,
        module_line(service.bus.address),
        "auth sufficient pam_exec.so expose_authtok /bin/true\n",
        module_line(service.bus.address, kind="account"),
    )


@pytest.fixture(params=["module", "client"])
def any_side(request, service):
    """faceunlock-test through the native module, then through the pam_exec fallback."""
    need_root()
    need("pamtester")
    if request.param == "module":
        build("pam_faceunlock.so")
        line = module_line(service.bus.address)
    else:
        line = client_line(service.bus.address, service.folder / "pam-client.log")
    path = write_stack("faceunlock-test", line)
    try:
        yield Stack(path.name, service)
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture
def pam_service(service):
    """faceunlock-test through the native module."""
    need_root()
    need("pamtester")
    build("pam_faceunlock.so")
    path = write_stack("faceunlock-test", module_line(service.bus.address))
    try:
        yield Stack(path.name, service)
    finally:
        path.unlink(missing_ok=True)


def pamtester(service_name: str, user: str, *items: str, stdin: str = "", ops=("authenticate",), env=None):
    args = ["pamtester", "-v"]
    for item in items:
        args += ["-I", item]
    started = time.monotonic()
    proc = subprocess.run(
        [*args, service_name, user, *ops], input=stdin, capture_output=True, text=True, timeout=90, env=env
    )
    return proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr


def test_enrolled_face_authenticates(any_side, service):
    service.point_camera("live-a")
    with service.in_session("c1"):
        code, _, out = any_side.run("alice")
    assert code == 0, out + service.log_text()
    assert "service=pam:faceunlock-test decision=match" in service.last_attempt("alice")
    assert "Face recognised." in out


def test_the_module_tells_the_person_what_happens(pam_service, service):
    service.point_camera("live-a")
    with service.in_session("c1"):
        code, _, out = pam_service.run("alice")
    assert code == 0 and out.index("Looking for your face") < out.index("Face recognised."), out


def test_another_person_falls_through(any_side, service):
    """bob, at his own seat, with person A in view: scanned, judged, no match."""
    service.point_camera("live-a")
    with service.in_session("c2"):
        code, _, out = any_side.run("bob")
    assert code != 0, out
    assert "decision=no-match" in service.last_attempt("bob")
    assert "Face not recognised." in out


@pytest.mark.parametrize("rhost", ["10.1.2.3", "::ffff:10.0.0.5", "127.evil.example", ":0evil"])
def test_remote_host_is_refused_without_a_scan(any_side, service, rhost):
    service.point_camera("live-a")
    before = service.done_scans("alice")
    with service.in_session("c1"):
        code, elapsed, out = any_side.run("alice", f"rhost={rhost}")
    assert code != 0 and f"remote login from {rhost!r}" in out, out
    assert service.done_scans("alice") == before
    assert elapsed < NO_HANG_S


def test_a_locked_out_user_falls_through_without_a_scan(any_side, service):
    """alice at her own seat, her face in view, but locked out after failed scans: the daemon refuses
    before opening the camera (no attempt is even logged), and the password prompt follows."""
    from faceunlock.config import VerifyConfig
    from faceunlock.lockout import FRESH, Lockout

    service.point_camera("live-a")
    guard = Lockout(service.folder / "store", VerifyConfig())
    guard.write(
        "alice", {**FRESH, "password_at": time.time(), "locked_until": time.time() + 600, "lockouts": 1}
    )
    before = service.done_scans("alice")
    try:
        with service.in_session("c1"):
            code, elapsed, out = any_side.run("alice")
    finally:
        guard.path("alice").unlink()
    assert code != 0 and "locked out for" in out, out
    assert service.done_scans("alice") == before
    assert elapsed < NO_HANG_S


def test_su_from_a_remote_session_falls_through_without_a_scan(pam_service, service):
    """`su alice` typed in an SSH login: no PAM_RHOST, a pts terminal, but logind says the session
    (c3: no seat, Remote=yes) is remote. The enrolled face is in view; nothing is scanned."""
    service.point_camera("live-a")
    before = service.done_scans("alice")
    with service.in_session("c3"):
        code, elapsed, out = pam_service.run("alice", "tty=/dev/pts/3", "ruser=alice")
    assert code != 0, out
    assert "remote session" in out
    assert service.done_scans("alice") == before
    assert elapsed < NO_HANG_S


def test_su_to_another_user_falls_through_without_a_scan(pam_service, service):
    """`su bob` typed by alice in her local session, with bob's face in view: refused, never scanned."""
    service.point_camera("photos-b")
    before = service.done_scans("bob")
    with service.in_session("c1"):
        code, _, out = pam_service.run("bob", "ruser=alice", "tty=/dev/pts/1")
        code_no_ruser, _, out_no_ruser = pam_service.run("bob", "tty=/dev/pts/1")
    assert code != 0 and "alice may not authenticate as bob" in out, out
    assert code_no_ruser != 0 and "session c1 of alice, not from a session of bob" in out_no_ruser, (
        out_no_ruser
    )
    assert service.done_scans("bob") == before


def test_the_display_manager_for_a_user_not_at_the_seat_falls_through(pam_service, service):
    """The display manager's own unit asks for carol, who has no session at any seat: refused
    before any scan."""
    with service.in_unit("gdm.service", display_manager="gdm.service"):
        code, _, out = pam_service.run("carol")
    assert code != 0 and "no greeter or session of carol is in front" in out, out
    assert "not-enrolled" not in out


def test_the_display_manager_for_the_user_at_the_seat_may_scan(pam_service, service):
    """The same, for alice, whose own session is the active one at seat0: how GDM's PAM worker
    re-authenticates at the lock screen. Allowed, and her face matches."""
    service.point_camera("live-a")
    with service.in_unit("gdm.service", display_manager="gdm.service"):
        code, _, out = pam_service.run("alice")
    assert code == 0, out


@pytest.mark.parametrize("unit", ["cron.service", "atd.service", "run-u7.service", ""])
def test_a_job_with_no_session_falls_through_while_the_user_sits_at_the_desk(any_side, service, unit):
    """A cron or at job, or a transient system service, of alice's or anyone's: no logind session.
    alice sits at her seat (session c1, active) with her face in view; nothing is scanned. The old
    rule passed any such process because *some* local session of alice was active."""
    service.point_camera("live-a")
    before = service.done_scans("alice")
    with service.in_unit(unit, display_manager="gdm.service"):
        code, _, out = any_side.run("alice", "ruser=alice")
    assert code != 0, out
    assert f"outside any login session ({unit or 'no unit'})" in out, out
    assert service.done_scans("alice") == before


def test_a_user_service_falls_through_unless_opted_in(pam_service, service):
    """systemd-run --user from an SSH login: a process of alice's own systemd, no session."""
    service.point_camera("live-a")
    before = service.done_scans("alice")
    service.standin().MapPidUser(os.getpid(), 1000)
    try:
        code, _, out = pam_service.run("alice")
    finally:
        service.standin().MapPidUser(os.getpid(), 0)
    assert code != 0 and "own systemd services" in out, out
    assert service.done_scans("alice") == before


def test_daemon_down_falls_through_without_waiting(tmp_path, service):
    """A bus without the daemon, and a bus that is not there at all, through the module and the
    fallback client: out at once, not at the deadline."""
    need_root()
    need("pamtester")
    build("pam_faceunlock.so")
    os.chmod(tmp_path, 0o755)
    with Bus(tmp_path) as bare:
        paths = []
        for address in (bare.address, "unix:path=/no"):
            for kind, line in (
                ("module", module_line(address)),
                ("client", client_line(address, tmp_path / "client.log")),
            ):
                paths.append(write_stack(f"faceunlock-test-down-{kind}-{len(paths)}", line))
        try:
            for path in paths:
                code, elapsed, out = pamtester(path.name, "alice")
                assert code != 0, out
                assert elapsed < NO_HANG_S, f"{path.name}: {elapsed:.2f} s"
        finally:
            for path in paths:
                path.unlink(missing_ok=True)


def test_client_imports_no_heavy_modules():
    """The fallback client runs its whole path (here: no daemon) without torch, numpy or OpenCV."""
    code = (
        "import sys; from faceunlock.service import pam_client as c; "
        "rc = c.main(['--bus-address', 'unix:path=/nonexistent']); "
        "print(rc, sorted(m for m in ('torch', 'numpy', 'cv2', 'pydbus') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PAM_USER": "alice", "PAM_SERVICE": "sudo"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.strip() == "3 []", proc.stdout + proc.stderr


def test_the_client_forwards_the_applications_real_uid_not_pam_ruser():
    """polkit-agent-helper-1 is set-uid root and sets PAM_RUSER to the user it authenticates; its
    real uid is whoever's agent started it, and that is what goes to the daemon."""
    need_root()
    need("setpriv")
    child = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "30"])
    try:
        assert wait_for(lambda: pam_client.real_uid(child.pid) == 65534, 5)
        env = {"PAM_USER": "bob", "PAM_RUSER": "bob", "PAM_SERVICE": "polkit-1"}
        assert pam_client.items(env, child.pid, "check")["ruid"] == "65534"
        assert pam_client.items(env, os.getpid(), "scan")["ruid"] == "0"
        assert pam_client.items({**env, "SSH_TTY": "/dev/pts/2"}, os.getpid(), "scan")["ssh"] == "1"
    finally:
        child.kill()
        child.wait()


def test_confirm_mode_scans_only_after_an_empty_enter(service):
    """faceunlock-confirm is in [pam] confirm: the module asks first. An empty Enter scans (and the
    face matches); a typed password never scans and stays PAM_AUTHTOK for the next module (here
    pam_exec expose_authtok, which reads it without asking again). The fallback client cannot ask,
    so it refuses."""
    need_root()
    need("pamtester")
    build("pam_faceunlock.so")
    seen = service.folder / "authtok-seen"
    take = service.folder / "take-authtok"
    take.write_text(f"#!/bin/sh\ncat > {seen}\n")
    take.chmod(0o755)
    path = write_stack(
        "faceunlock-confirm",
        module_line(service.bus.address),
        f"auth sufficient pam_exec.so expose_authtok {take}\n",
    )
    stack = Stack(path.name, service)
    service.point_camera("live-a")
    try:
        before = service.done_scans("alice")
        with service.in_session("c1"):
            face = stack.run("alice", stdin="\n")
            typed = stack.run("alice", stdin="the-password\n")
            write_stack(path.name, client_line(service.bus.address, service.folder / "pam-client.log"))
            fallback = stack.run("alice")
        assert face[0] == 0 and "Press Enter to use your face" in face[2] and "Face recognised." in face[2], (
            face
        )
        assert service.done_scans("alice") == [*before, "match"], "one scan: after the empty Enter"
        assert typed[0] == 0 and seen.read_text().strip("\0\n") == "the-password", typed
        assert "Looking for your face" not in typed[2]
        assert fallback[0] != 0 and "needs pam_faceunlock.so" in fallback[2], fallback
        assert service.done_scans("alice") == [*before, "match"]
    finally:
        path.unlink(missing_ok=True)
        seen.unlink(missing_ok=True)


def test_a_password_login_is_reported_by_the_account_stage(service):
    """The module's account stage: our auth ran without a match and a password module accepted a
    typed password, so the daemon records a password login (PasswordUsed), which ends a lockout.
    Here the password is typed at the confirm prompt (our module keeps it as PAM_AUTHTOK) and taken
    by pam_exec expose_authtok; after a face match nothing is recorded."""
    need_root()
    need("pamtester")
    build("pam_faceunlock.so")
    path = password_stack(service, "faceunlock-confirm")
    stack = Stack(path.name, service)
    state = service.folder / "store" / "state" / "alice.json"
    state.unlink(missing_ok=True)
    try:
        with service.in_session("c1"):
            service.point_camera("live-a")
            code, _, out = stack.run("alice", stdin="a-password\n", ops=("authenticate", "acct_mgmt"))
            assert code == 0 and "password login of alice recorded" in out, out
            assert json.loads(state.read_text())["password_at"] > time.time() - 60
            code, _, out = stack.run("alice", stdin="\n", ops=("authenticate", "acct_mgmt"))
            assert code == 0 and "Face recognised." in out and "password login" not in out, out
    finally:
        path.unlink(missing_ok=True)


def test_only_root_may_report_a_password_login(service):
    """A user could otherwise end their own lockout without typing the password."""
    need("setpriv")
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "dbus-send",
            "--system",
            "--print-reply",
        ]
        + ["--dest=org.faceunlock.FaceUnlock1", "/org/faceunlock/FaceUnlock1"]
        + ["org.faceunlock.FaceUnlock1.PasswordUsed", "string:nobody"],
        env=service.bus.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0 and "PermissionDenied" in proc.stderr, proc.stderr


def test_the_module_under_address_sanitizer(service):
    """The AddressSanitizer and UndefinedBehaviorSanitizer build, loaded into pamtester: a match, a
    refusal, a missing daemon, and the confirm prompt run without a report."""
    need_root()
    need("pamtester")
    build("pam_faceunlock-asan.so")
    runtime = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    if not Path(runtime).exists():
        unavailable(f"no AddressSanitizer runtime ({runtime})")
    env = {**os.environ, "LD_PRELOAD": runtime, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"}
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    cases = {
        "faceunlock-test": (module_line(service.bus.address, "pam_faceunlock-asan.so"), "alice", "", 0),
        "faceunlock-confirm": (module_line(service.bus.address, "pam_faceunlock-asan.so"), "alice", "\n", 0),
        "faceunlock-test-down": (module_line("unix:path=/no", "pam_faceunlock-asan.so"), "alice", "", None),
    }
    service.point_camera("live-a")
    for name, (line, user, stdin, want) in cases.items():
        path = write_stack(name, line)
        try:
            with service.in_session("c1"):
                code, _, out = pamtester(name, user, stdin=stdin, env=env)
                refused = pamtester(name, "bob", "rhost=10.0.0.1", env=env)
        finally:
            path.unlink(missing_ok=True)
        assert (
            "ERROR: AddressSanitizer" not in out + refused[2] and "runtime error" not in out + refused[2]
        ), out
        assert want is None and code != 0 or code == want, (name, out)


def test_the_module_is_hardened_and_exports_only_the_pam_entry_points():
    build("pam_faceunlock.so")
    so = ROOT / "pam" / "pam_faceunlock.so"
    need("readelf")
    dynamic = subprocess.run(["readelf", "-dW", str(so)], capture_output=True, text=True).stdout
    segments = subprocess.run(["readelf", "-lW", str(so)], capture_output=True, text=True).stdout
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", str(so)], capture_output=True, text=True).stdout
    assert "BIND_NOW" in dynamic and "GNU_RELRO" in segments, "full RELRO"
    stack = next(line for line in segments.splitlines() if "GNU_STACK" in line)
    assert "RWE" not in stack, "no executable stack"
    exported = sorted(
        f[-1]
        for f in (line.split() for line in symbols.splitlines())
        if len(f) >= 8 and f[4] == "GLOBAL" and f[6] != "UND"
    )
    assert exported == ["pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_setcred"], exported
    needed = sorted(line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line)
    assert needed == ["libc.so.6", "libpam.so.0", "libsystemd.so.0"], needed


def test_the_reply_parsing_survives_fuzzing():
    """pam/fuzz_reply, built with AddressSanitizer and UBSan: 200,000 random and crafted replies."""
    build("fuzz_reply")
    proc = subprocess.run(
        [str(ROOT / "pam" / "fuzz_reply"), "200000", str(int(time.time()))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "no violation" in proc.stdout, proc.stdout + proc.stderr
