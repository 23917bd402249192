"""Where face unlock sits in each PAM service's auth stack, read from /etc/pam.d.

A service's auth stack is its ``auth`` lines with ``@include``, ``auth include`` and
``auth substack`` followed, in order. Each face unlock line (pam_faceunlock.so, or pam_exec
running faceunlock's PAM client) is reported with its control, its position, the position of
the first password module (pam_unix), and what is wrong with it:

- a control under which a face failure can fail the login (``required``, ``requisite``,
  brackets without ``default=ignore``): the password must still work;
- a control under which a match does not end the stack (``optional``): the password is asked anyway;
- a place after the password module: the password is asked first.
"""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

PASSWORD_MODULES = ("pam_unix.so", "pam_sss.so", "pam_ldap.so", "pam_krb5.so", "pam_winbind.so")
MODULE = "pam_faceunlock.so"
MODULE_DIR = f"/lib/{sysconfig.get_config_var('MULTIARCH') or 'x86_64-linux-gnu'}/security"
MAX_DEPTH = 8


@dataclass
class Line:
    control: str
    module: str
    args: list[str]
    via: str

    @property
    def is_face(self) -> bool:
        if self.module.rsplit("/", 1)[-1] == MODULE:
            return True
        return self.module.endswith("pam_exec.so") and any("faceunlock" in a for a in self.args)

    @property
    def program(self) -> str:
        """The code the line runs as root: the module's file, or the program pam_exec runs (its
        first argument that is an absolute path)."""
        if self.module.rsplit("/", 1)[-1] == MODULE:
            return self.module if self.module.startswith("/") else f"{MODULE_DIR}/{self.module}"
        return next((a for a in self.args if a.startswith("/")), "")


@dataclass
class FaceLine:
    """One face unlock line in one service's auth stack."""

    service: str
    position: int
    control: str
    program: str
    via: str
    password_position: int | None
    problems: list[str] = field(default_factory=list)


def tokens(line: str) -> list[str]:
    """A PAM line split into fields; a bracketed control stays one field."""
    line = line.split("#", 1)[0].strip()
    match = re.match(r"^(\S+)\s+(\[[^\]]*\])\s*(.*)$", line)
    if match:
        return [match.group(1), match.group(2), *match.group(3).split()]
    return line.split()


def auth_stack(folder: Path, service: str, via: str = "", depth: int = 0) -> list[Line]:
    """The service's auth lines, includes followed."""
    if depth > MAX_DEPTH:
        return []
    try:
        text = (folder / service).read_text(errors="replace")
    except OSError:
        return []
    where = via or service
    stack: list[Line] = []
    for raw in text.splitlines():
        fields = tokens(raw)
        if not fields:
            continue
        if fields[0] == "@include" and len(fields) > 1:
            stack += auth_stack(folder, fields[1], fields[1], depth + 1)
            continue
        kind = fields[0].lstrip("-")
        if kind != "auth" or len(fields) < 3:
            continue
        if fields[1] in ("include", "substack"):
            stack += auth_stack(folder, fields[2], fields[2], depth + 1)
        else:
            stack.append(Line(fields[1], fields[2], fields[3:], where))
    return stack


def control_problems(control: str) -> list[str]:
    """What is wrong with a face line's control, or nothing."""
    if control in ("required", "requisite"):
        return [f"control {control!r}: a face that does not match fails the login, password or not"]
    if control == "optional":
        return ["control 'optional': a match does not end the stack, so the password is asked anyway"]
    if control == "sufficient":
        return []
    if control.startswith("["):
        actions = dict(item.split("=", 1) for item in control.strip("[]").split() if "=" in item)
        problems = []
        if actions.get("default") != "ignore":
            problems.append(f"control {control}: without default=ignore a face failure can fail the login")
        success = actions.get("success", "")
        if not (success == "done" or success.isdigit()):
            problems.append(f"control {control}: a match does not end or skip the password")
        return problems
    return [f"unknown control {control!r}"]


def face_lines(folder: Path) -> list[FaceLine]:
    """Every face unlock line of every service under folder (one entry per service and line)."""
    found = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.startswith("common-"):
            continue
        stack = auth_stack(folder, path.name)
        password = next(
            (i for i, x in enumerate(stack) if x.module.rsplit("/", 1)[-1] in PASSWORD_MODULES), None
        )
        for i, line in enumerate(stack):
            if not line.is_face:
                continue
            face = FaceLine(path.name, i, line.control, line.program, line.via, password)
            face.problems = control_problems(line.control)
            if password is not None and i > password:
                face.problems.append("it comes after the password module, so the password is asked first")
            found.append(face)
    return found
