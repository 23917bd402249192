"""Config loading: defaults, overrides, and errors that name the key."""

import os

import pytest
from missing import need_root

from faceunlock import config


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_are_safe():
    cfg = config.Config()
    assert cfg.verify.security_level == "balanced"
    assert cfg.verify.consecutive >= 2
    assert cfg.store.path == "/var/lib/faceunlock"


def test_valid_file(tmp_path):
    cfg = config.load(
        write(
            tmp_path, '[verify]\ntimeout = 3\nsecurity_level = "strict"\n[camera]\nsource = "/dev/video2"\n'
        )
    )
    assert cfg.verify.timeout == 3.0 and isinstance(cfg.verify.timeout, float)
    assert cfg.verify.security_level == "strict"
    assert cfg.camera.source == "/dev/video2"
    assert cfg.enroll.frames == 10


@pytest.mark.parametrize(
    "text,message",
    [
        ("[verify]\ntimeout = -1\n", r"verify.timeout: -1.0 is out of range"),
        ("[verify]\nconsecutive = 0\n", r"verify.consecutive: 0 is out of range"),
        ('[verify]\nsecurity_level = "lax"\n', r"verify.security_level: 'lax' is not one of"),
        ('[verify]\ntimeout = "soon"\n', r"verify.timeout: expected float, got str"),
        ("[verify]\nconsecutive = 2.5\n", r"verify.consecutive: expected int, got float"),
        ("[verify]\nconsecutive = true\n", r"verify.consecutive: expected int, got bool"),
        ("[verify]\ntimeout = nan\n", r"verify.timeout: must be a finite number"),
        ("[verify]\ncertainty = 3\n", r"\[verify\] unknown key\(s\): certainty"),
        ("[howdy]\nx = 1\n", r"unknown section\(s\): howdy"),
        ("verify = 3\n", r"\[verify\] must be a table"),
        ("[verify\n", r"not valid TOML"),
        ('[camera]\nsource = ""\n', r"camera.source: must be a non-empty string"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(write(tmp_path, text))


def test_missing_explicit_file(tmp_path):
    with pytest.raises(config.ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_not_utf8(tmp_path):
    p = tmp_path / "c.toml"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(config.ConfigError, match="cannot read config file"):
        config.load(p)


def test_command_line_overrides_are_validated():
    cfg = config.replace(config.Config(), "verify", timeout=2, security_level=None)
    assert cfg.verify.timeout == 2.0 and cfg.verify.security_level == "balanced"
    with pytest.raises(config.ConfigError, match="verify.timeout"):
        config.replace(config.Config(), "verify", timeout=0)


def test_example_config_documents_the_defaults():
    example = config.load(config_example())
    assert example == config.Config()


def config_example():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "docs" / "config.example.toml"


def trusted(tmp_path, text="", mode=0o644):
    os.chmod(tmp_path, 0o755)
    p = tmp_path / "config.toml"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_trusted_config_must_be_root_owned_and_not_writable_by_others(tmp_path):
    need_root("ownership checks need root")
    assert config.load(trusted(tmp_path), trusted=True) == config.Config()
    with pytest.raises(config.ConfigError, match="not writable by group or others"):
        config.load(trusted(tmp_path, mode=0o664), trusted=True)
    with pytest.raises(config.ConfigError, match="not writable by group or others"):
        config.load(trusted(tmp_path, mode=0o646), trusted=True)
    p = trusted(tmp_path)
    os.chown(p, 65534, 65534)
    with pytest.raises(config.ConfigError, match="owned by uid 65534"):
        config.load(p, trusted=True)
    assert config.load(p) == config.Config()


def test_trusted_config_in_a_folder_others_can_change(tmp_path):
    need_root("ownership checks need root")
    p = trusted(tmp_path)
    os.chmod(tmp_path, 0o777)
    with pytest.raises(config.ConfigError, match="someone other than root could replace the file"):
        config.load(p, trusted=True)
    os.chmod(tmp_path, 0o1777)
    assert config.load(p, trusted=True) == config.Config()


def test_config_that_is_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    with pytest.raises(config.ConfigError, match="not a regular file"):
        config.load(fifo)


def test_daemon_needs_a_camera_device_unless_insecure(tmp_path):
    folder = replace_source(config.Config(), str(tmp_path))
    with pytest.raises(config.ConfigError, match="is not a V4L2 character device"):
        config.require_daemon_safe(folder)
    insecure = config.from_dict({"insecure": True, "camera": {"source": str(tmp_path)}})
    assert config.require_daemon_safe(insecure) is insecure


def replace_source(cfg, source):
    return config.replace(cfg, "camera", source=source)


@pytest.mark.parametrize("key", ["frame_reach", "frame_cover"])
def test_removed_display_frame_keys_get_a_clear_error(tmp_path, key):
    """The edge veto's keys went with it (issue 9): say so, rather than 'unknown key'."""
    path = tmp_path / "c.toml"
    path.write_text(f"[liveness]\n{key} = 1.0\n")
    with pytest.raises(config.ConfigError, match=f"liveness.{key} is no longer a setting.*delete it"):
        config.load(path)


def test_liveness_can_still_be_turned_off(tmp_path):
    """enabled = false still means off (below the safe floor, so only with insecure = true)."""
    path = tmp_path / "c.toml"
    path.write_text("insecure = true\n[liveness]\nenabled = false\n")
    assert config.load(path).liveness.enabled is False
