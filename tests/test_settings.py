"""The settings app's overlay: only a few keys, never below the safe floor, trusted only from root or
the daemon's user, merged over the root config by the PAM client, and fail closed when unusable."""

import json
import os

import pytest
from missing import need_root

from faceunlock import config, settings
from faceunlock.errors import ConfigError


@pytest.fixture
def rig(tmp_path):
    """A trusted root config whose store (and so overlay) is a private folder."""
    os.chmod(tmp_path, 0o755)
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    path = tmp_path / "config.toml"
    path.write_text(f'[store]\npath = "{store}"\n')
    os.chmod(path, 0o644)
    return path, store


def overlay(store, values, mode=0o600):
    path = store / settings.FILE_NAME
    path.write_text(json.dumps(values))
    os.chmod(path, mode)
    return path


def test_overlay_picks_a_level_and_removes_services_only():
    cfg = config.replace(
        config.Config(), "pam", services=["sudo", "su", "login", "polkit-1", *config.LOCK_SCREENS]
    )
    merged = settings.apply(
        cfg, {"verify.security_level": "strict", "pam.sudo": False, "pam.lock_screen": False}
    )
    assert merged.verify.security_level == "strict"
    assert "sudo" not in merged.pam.services and "gdm-password" not in merged.pam.services
    assert set(merged.pam.services) == {"su", "login", "polkit-1"}
    assert merged.daemon.auto_unlock is False
    assert merged.liveness == cfg.liveness and merged.verify.consecutive == cfg.verify.consecutive
    assert settings.apply(cfg, {"pam.sudo": True}) == cfg, "true never adds a service"
    narrow = config.replace(cfg, "pam", services=["su"])
    assert settings.apply(narrow, {"pam.sudo": True}).pam.services == ("su",)
    rest = settings.apply(cfg, {"pam.su": False, "pam.polkit": False, "pam.login": False})
    assert set(rest.pam.services) == {"sudo", *config.LOCK_SCREENS} and rest.daemon.auto_unlock is True


def test_a_switch_is_shown_on_only_when_the_root_config_lists_it_and_only_then_turns_on():
    narrow = config.replace(config.Config(), "pam", services=["su", *config.LOCK_SCREENS])
    shown = settings.current(narrow, {"pam.lock_screen": False})
    assert shown["pam.su"] is True and shown["pam.lock_screen"] is False
    assert shown["pam.sudo"] is False and shown["pam.polkit"] is False and shown["pam.login"] is False
    assert settings.check_change(narrow, "pam.su", True) is True
    assert settings.check_change(narrow, "pam.sudo", False) is False
    for key, name in (("pam.sudo", "sudo or sudo-i"), ("pam.polkit", "polkit-1"), ("pam.login", "login")):
        with pytest.raises(ConfigError, match=f"{name} is not in \\[pam\\] services"):
            settings.check_change(narrow, key, True)


def test_the_master_switch_turns_everything_off_and_on_only_where_the_root_config_allows():
    cfg = config.Config()
    off = settings.apply(cfg, {"pam.enabled": False})
    assert off.pam.enabled is False and off.daemon.auto_unlock is False
    assert off.pam.services == cfg.pam.services and off.verify == cfg.verify
    assert settings.apply(cfg, {"pam.enabled": True}) == cfg
    assert settings.current(cfg, {})["pam.enabled"] is True
    assert settings.current(cfg, {"pam.enabled": False})["pam.enabled"] is False
    assert settings.check_change(cfg, "pam.enabled", True) is True
    disabled = config.replace(cfg, "pam", enabled=False)
    assert settings.current(disabled, {})["pam.enabled"] is False
    assert settings.apply(disabled, {"pam.enabled": True}).pam.enabled is False, "true never turns it on"
    assert settings.check_change(disabled, "pam.enabled", False) is False
    with pytest.raises(ConfigError, match="sudo faceunlock enable"):
        settings.check_change(disabled, "pam.enabled", True)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"liveness.enabled": False}, "cannot be changed from the settings app"),
        ({"insecure": True}, "cannot be changed from the settings app"),
        ({"verify.consecutive": 1}, "cannot be changed from the settings app"),
        ({"pam.services": ["sshd"]}, "cannot be changed from the settings app"),
        ({"verify.security_level": "none"}, "is not one of strict, balanced, fast"),
        ({"pam.sudo": "no"}, "must be true or false"),
    ],
)
def test_overlay_refuses_everything_else(rig, values, message):
    _, store = rig
    overlay(store, values)
    with pytest.raises(ConfigError, match=message):
        settings.read(store / settings.FILE_NAME)
    with pytest.raises(ConfigError):
        settings.apply(config.Config(), values)


def test_overlay_that_is_not_json_or_too_big_is_an_error(rig):
    _, store = rig
    path = store / settings.FILE_NAME
    for data in (b"{", b"[1]", b"\xff", b"{" + b" " * 5000 + b"}"):
        path.write_bytes(data)
        os.chmod(path, 0o600)
        with pytest.raises(ConfigError, match="settings overlay"):
            settings.read(path)


def test_no_overlay_means_the_root_config(rig):
    path, store = rig
    cfg = config.load(path, trusted=True)
    assert settings.effective(cfg) == cfg


def test_overlay_writable_by_others_or_owned_by_a_user_is_refused(rig):
    need_root("ownership checks need root")
    _, store = rig
    path = overlay(store, {"pam.sudo": False}, mode=0o620)
    with pytest.raises(ConfigError, match="writable by its owner alone"):
        settings.read(path)
    os.chmod(path, 0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        settings.read(path)
    os.chown(path, 0, 0)
    os.chmod(store, 0o777)
    with pytest.raises(ConfigError, match="someone else could replace it"):
        settings.read(path)
    os.chmod(store, 0o700)
    assert settings.read(path) == {"pam.sudo": False}
    link = store / "link.json"
    link.symlink_to(path)
    with pytest.raises(ConfigError, match="cannot read settings overlay"):
        settings.read(link)


def test_write_is_private_and_reads_back(rig):
    _, store = rig
    path = store / settings.FILE_NAME
    settings.write(path, {"pam.sudo": False, "verify.security_level": "strict"})
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert settings.read(path) == {"pam.sudo": False, "verify.security_level": "strict"}
    with pytest.raises(ConfigError):
        settings.write(path, {"insecure": True})
    assert settings.read(path) == {"pam.sudo": False, "verify.security_level": "strict"}


def test_first_write_makes_a_private_state_folder(tmp_path):
    """A setting changed before any enrolment: the state folder does not exist yet."""
    path = tmp_path / "store" / settings.FILE_NAME
    settings.write(path, {"pam.sudo": False})
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert settings.read(path) == {"pam.sudo": False}


def test_the_daemon_applies_the_overlay_and_fails_closed(service):
    """Each PAM request reads the overlay afresh: pam.sudo = false takes sudo out (refused quietly),
    an overlay others may write turns face unlock off, and so does one holding a key the app may
    not set."""
    need_root("ownership checks need root")
    path = service.folder / "store" / settings.FILE_NAME
    try:
        with service.in_session("c1"):
            overlay(path.parent, {"pam.sudo": False})
            assert service.authenticate("alice", "sudo") == ("refused", "")
            assert service.authenticate("alice", "su") == ("ready", "")
            overlay(path.parent, {"pam.sudo": False}, mode=0o666)
            result, message = service.authenticate("alice", "su")
            assert result == "refused" and "face unlock is off: settings overlay" in message, message
            service.point_camera("live-a")
            decision, reason, _ = service.proxy().Verify("alice", 20000, timeout=60)
            assert decision == "error" and "face unlock is off: settings overlay" in reason, reason
            overlay(path.parent, {"liveness.enabled": False})
            result, message = service.authenticate("alice", "su")
            assert result == "refused" and "cannot be changed from the settings app" in message, message
    finally:
        path.unlink(missing_ok=True)


def test_the_daemon_refuses_at_once_when_disabled(service):
    """`faceunlock disable` writes [pam] enabled = false: the next request is refused, no restart."""
    need_root("ownership checks need root")
    original = service.config.read_text()
    service.config.write_text(original + "enabled = false\n")
    try:
        with service.in_session("c1"):
            result, message = service.authenticate("alice", "su")
        assert result == "refused" and "switched off" in message, message
    finally:
        service.config.write_text(original)
