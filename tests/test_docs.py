"""Documentation that ships is made from the code: the man pages and completion in the repository are
exactly what the parsers and the typed config give today, they render, and completion works."""

import dataclasses
import os
import re
import shutil
import subprocess

import pytest
from missing import unavailable

from faceunlock.commands.gendocs import ROOT, generated
from faceunlock.config import Config


def test_generated_files_are_up_to_date():
    stale = [rel for rel, text in generated().items() if (ROOT / rel).read_text() != text]
    assert not stale, f"regenerate with: python -m faceunlock.commands.gendocs  (stale: {', '.join(stale)})"


@pytest.mark.parametrize("page", ["faceunlock.1", "faceunlock.conf.5", "faceunlock-pam.8"])
def test_man_pages_render_without_warnings(page):
    man = shutil.which("man")
    if man is None:
        unavailable("man is not installed (scripts/setup.sh installs man-db)")
    proc = subprocess.run(
        [man, "--warnings", "-l", str(ROOT / "man" / page)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0", "PAGER": "cat"},
        timeout=60,
    )
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    text = re.sub(".\b", "", proc.stdout)
    assert text.startswith(page.rsplit(".", 1)[0].upper() + "(")
    assert "NAME" in text and "SEE ALSO" in text and "faceunlock \\" not in text


def test_every_command_and_config_key_is_in_the_man_pages():
    from faceunlock.cli import build_parser
    from faceunlock.commands.manpages import subcommands

    page = (ROOT / "man" / "faceunlock.1").read_text()
    for name, _help, _sub in subcommands(build_parser()):
        assert f'.SS "faceunlock {name.replace("-", chr(92) + "-")}' in page, name
    conf = (ROOT / "man" / "faceunlock.conf.5").read_text()
    for section in dataclasses.fields(Config):
        if section.default is dataclasses.MISSING:
            assert f'.SS "[{section.name}]"' in conf
            for key in dataclasses.fields(section.default_factory):
                assert f"\\fB{key.name}\\fR = " in conf, f"{section.name}.{key.name}"


def complete(*words: str) -> list[str]:
    script = (
        f"source {ROOT / 'completions' / 'faceunlock.bash'}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _faceunlock\n'
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    proc = subprocess.run(["bash", "-c", script, "bash", *words], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_bash_completion():
    assert complete("faceunlock", "en") == ["enroll", "enable"]
    assert complete("faceunlock", "enroll", "--so") == ["--source"]
    assert complete("faceunlock", "verify", "--level", "") == ["strict", "balanced", "fast"]
    assert complete("faceunlock", "config", "get", "verify.sec") == ["verify.security_level"]
    assert complete("faceunlock", "config", "set", "pam.ena") == ["pam.enabled"]
    assert complete("faceunlock", "eval", "lfw", "--pa") == ["--pairs"]
    assert complete("faceunlock", "--debug", "test", "--rec") == ["--record"]
    assert complete("faceunlock", "enroll", "--user", "alice", "--la") == ["--label"]
    assert "root" in complete("faceunlock", "enroll", "--user", "ro")
    assert complete("faceunlock", "test", "--source", str(ROOT / "completions" / "_face")) == [
        str(ROOT / "completions" / "_faceunlock")
    ]


def test_zsh_completion_parses():
    zsh = shutil.which("zsh")
    if zsh is None:
        unavailable("zsh is not installed (scripts/setup.sh installs it)")
    proc = subprocess.run(
        [zsh, "-n", str(ROOT / "completions" / "_faceunlock")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    text = (ROOT / "completions" / "_faceunlock").read_text()
    assert text.startswith("#compdef faceunlock") and "_faceunlock_config_set()" in text


def test_install_ships_the_pages_completion_policy_and_launcher():
    from pathlib import Path

    from faceunlock.paths import package_data
    from faceunlock.service import install

    for rel, src in install.FILES.items():
        assert package_data(src).is_file(), (rel, src)
    for rel in (*install.MANUALS, *install.COMPLETIONS, install.DESKTOP, install.POLKIT_ACTIONS):
        assert rel in install.FILES
    python = Path("/opt/faceunlock/bin/python")
    launcher = install.render(
        install.DESKTOP, package_data("desktop/org.faceunlock.Settings.desktop").read_text(), python
    )
    assert "Exec=/opt/faceunlock/bin/python -m faceunlock.gui.app\n" in launcher
