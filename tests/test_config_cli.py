"""`faceunlock config show|get|set` and `disable|enable`: validated through the typed config, written
atomically, root-owned, mode 0644, and read back by the same loader."""

import json
import os
import stat
import tomllib

import pytest
from missing import need_root

from faceunlock import config, config_edit
from faceunlock.cli import main
from faceunlock.errors import EXIT_ERROR


@pytest.fixture
def path(tmp_path):
    os.chmod(tmp_path, 0o755)
    return tmp_path / "etc" / "config.toml"


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_set_get_show_round_trip(path, capsys):
    assert run(capsys, "config", "set", "verify.security_level", "strict", "--config", str(path))[0] == 0
    assert run(capsys, "config", "set", "verify.timeout", "7", "--config", str(path))[0] == 0
    code, out, _ = run(capsys, "config", "set", "pam.services", "sudo, su,swaylock", "--config", str(path))
    assert code == 0 and 'pam.services = ["sudo", "su", "swaylock"]' in out
    assert "restart faceunlock.service" not in out, "the PAM client reads [pam] on every request"
    cfg = config.load(path, trusted=os.geteuid() == 0)
    assert cfg.verify.security_level == "strict" and cfg.verify.timeout == 7.0
    assert cfg.pam.services == ("sudo", "su", "swaylock")
    assert run(capsys, "config", "get", "verify.timeout", "--config", str(path))[1] == "7.0\n"
    assert run(capsys, "config", "get", "liveness.window", "--config", str(path))[1] == "8\n"
    code, out, _ = run(capsys, "config", "show", "--config", str(path))
    assert 'verify.security_level = "strict"  # set' in out and "liveness.window = 8\n" in out
    shown = json.loads(run(capsys, "config", "show", "--json", "--config", str(path))[1])
    assert shown["config"]["verify.timeout"] == 7.0 and shown["config"]["insecure"] is False
    raw = tomllib.loads(path.read_text())
    assert raw == {
        "verify": {"security_level": "strict", "timeout": 7.0},
        "pam": {"services": ["sudo", "su", "swaylock"]},
    }


def test_written_file_is_root_owned_0644_and_trusted(path, capsys):
    need_root("writing a root-owned file needs root")
    assert run(capsys, "config", "set", "camera.source", '/dev/video2 "x"\\', "--config", str(path))[0] == 0
    st = path.stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o644
    assert config.load(path, trusted=True).camera.source == '/dev/video2 "x"\\'
    assert not [p for p in path.parent.iterdir() if p.name != "config.toml"], "no temporary file left behind"


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("verify.security_level", "lax", "is not one of strict, balanced, fast"),
        ("verify.timeout", "soon", "cannot read 'soon' as float"),
        ("verify.timeout", "1e9", "out of range"),
        ("liveness.enabled", "false", "unsafe setting(s): liveness.enabled = false"),
        ("verify.consecutive", "1", "unsafe setting(s)"),
        ("pam.services", "sudo,sshd", "can never use face unlock"),
        ("verify.nope", "1", "unknown key 'verify.nope'"),
        ("insecure", "maybe", "expected true or false"),
    ],
)
def test_bad_values_change_nothing(path, capsys, key, value, message):
    assert run(capsys, "config", "set", "verify.timeout", "9", "--config", str(path))[0] == 0
    before = path.read_bytes()
    code, _, err = run(capsys, "config", "set", key, value, "--config", str(path))
    assert code == EXIT_ERROR and message in err, err
    assert path.read_bytes() == before


def test_unsafe_values_need_insecure_first(path, capsys):
    assert run(capsys, "config", "set", "insecure", "true", "--config", str(path))[0] == 0
    assert run(capsys, "config", "set", "verify.consecutive", "1", "--config", str(path))[0] == 0
    assert config.load(path).verify.consecutive == 1
    code, _, err = run(capsys, "config", "set", "insecure", "false", "--config", str(path))
    assert code == EXIT_ERROR and "unsafe setting(s): verify.consecutive = 1" in err


def test_disable_and_enable_switch_every_pam_service(path, capsys):
    code, out, _ = run(capsys, "disable", "--config", str(path))
    assert code == 0 and "off (sudo, su, lock screens, the automatic unlock)" in out
    assert config.load(path).pam.enabled is False
    assert run(capsys, "enable", "--config", str(path))[0] == 0
    assert config.load(path).pam.enabled is True


def test_strings_with_any_character_survive_the_round_trip():
    for text in ['a"b', "c\\d", "tab\there", "nl\nx", "\x7f\x01", "\u00e9\U0001f600"]:
        rendered = config_edit.render({"camera": {"source": text}})
        assert tomllib.loads(rendered)["camera"]["source"] == text


def test_rendered_example_of_every_key_reads_back():
    """Every key of the typed config, at its default, renders and loads as the same config."""
    raw = {}
    for section, fields in config_edit.sections().items():
        for name, f in fields.items():
            value = f.default if f.default is not f.default_factory else None
            value = list(value) if isinstance(value, tuple) else value
            if section:
                raw.setdefault(section, {})[name] = value
            else:
                raw[name] = value
    assert config.from_dict(tomllib.loads(config_edit.render(raw))) == config.Config()
