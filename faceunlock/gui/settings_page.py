"""The "Settings" page: security level, where face unlock is used, and the latest attempts.

A change is asked of the daemon (SetSetting, through polkit); the widgets show
what the daemon says is in effect, so a refused change springs back. A switch
whose PAM services do not include face unlock (pam-auth-update was never run)
shows off, greyed, with the command that sets it up.
"""

from __future__ import annotations

import time
from pathlib import Path

from gi.repository import Adw, GLib, Gtk

from faceunlock.config import MASTER_SWITCH as MASTER
from faceunlock.config import SWITCHES as SERVICES
from faceunlock.gui.widgets import named

LEVELS = {
    "strict": "Strict: fewest false accepts (1 in a million comparisons), more retries",
    "balanced": "Balanced: 1 in 100,000 comparisons (the default)",
    "fast": "Fast: 1 in 10,000 comparisons, fewest retries",
}
SWITCHES = {
    "pam.lock_screen": ("the lock screen", "Unlock when you come back, and the login screen"),
    "pam.sudo": ("sudo", "By default you press Enter first"),
    "pam.su": ("su", "Becoming another user in a terminal"),
    "pam.polkit": (
        "administrator prompts",
        "Installing software, system settings; by default you press Enter first",
    ),
    "pam.login": ("console login", "Logging in on a text console"),
}
"""Each switch: its name and a line under it. Off takes the service out; a switch the administrator
has not listed in [pam] services stays off (the daemon refuses to turn it on, and says so)."""
WORDS = {"verify.security_level": "security level", MASTER: "face unlock"} | {
    key: f"face unlock for {what}" for key, (what, _) in SWITCHES.items()
}
SET_UP = "sudo pam-auth-update --enable faceunlock"
"""The one command that puts face unlock into Debian's PAM stacks."""


def stacked(pam_dir: Path) -> set[str] | None:
    """The PAM services whose auth stack includes face unlock (None: /etc/pam.d cannot be read, or
    holds a file that is not text)."""
    from faceunlock.service.pam_stacks import face_lines

    try:
        return {line.service for line in face_lines(pam_dir)}
    except (OSError, ValueError):
        return None


def not_set_up(key: str, services: set[str] | None) -> bool:
    """Whether a switch's services lack face unlock in PAM. The lock screen also unlocks through
    logind, without PAM, so it is never "not set up"."""
    return key != "pam.lock_screen" and services is not None and not services & set(SERVICES[key])


def describe(value: GLib.Variant) -> str:
    plain = value.unpack()
    if isinstance(plain, bool):
        return "on" if plain else "off"
    return str(plain)


class SettingsPage(Adw.PreferencesPage):
    def __init__(self, window):
        super().__init__(title="Settings", icon_name="emblem-system-symbolic")
        self.window = window
        self.updating = False
        self.shown: dict = {}

        level = Adw.PreferencesGroup(title="Security level", description="How close a face must be to yours")
        self.level_row = Adw.ActionRow(title="Level", subtitle="")
        buttons = Gtk.Box(valign=Gtk.Align.CENTER)
        buttons.add_css_class("linked")
        self.levels: dict[str, Gtk.ToggleButton] = {}
        first = None
        for name in LEVELS:
            button = Gtk.ToggleButton(label=name.capitalize(), group=first)
            named(button, f"Security level {name}")
            button.connect("toggled", self.level_toggled, name)
            first = first or button
            buttons.append(button)
            self.levels[name] = button
        self.level_row.add_suffix(buttons)
        level.add(self.level_row)
        self.add(level)

        self.use = Adw.PreferencesGroup(title="Use face unlock for")
        self.switches: dict[str, Gtk.Switch] = {}
        self.rows: dict[str, Adw.ActionRow] = {}
        master = Gtk.Switch(valign=Gtk.Align.CENTER)
        named(master, "Face unlock")
        master.connect("state-set", self.switch_set, MASTER)
        self.master_row = Adw.ActionRow(
            title="Face unlock",
            subtitle="Off: every prompt asks for your password, and the lock screen stays locked",
            activatable_widget=master,
        )
        self.master_row.add_suffix(master)
        self.use.add(self.master_row)
        self.switches[MASTER] = master
        for key, (what, line) in SWITCHES.items():
            switch = Gtk.Switch(valign=Gtk.Align.CENTER)
            named(switch, f"Use face unlock for {what}")
            switch.connect("state-set", self.switch_set, key)
            row = Adw.ActionRow(title=what[:1].upper() + what[1:], subtitle=line, activatable_widget=switch)
            row.add_suffix(switch)
            self.use.add(row)
            self.switches[key] = switch
            self.rows[key] = row
        self.add(self.use)

        self.attempts = Adw.PreferencesGroup(title="Recent attempts", description="Since the daemon started")
        refresh = Gtk.Button(label="Refresh", valign=Gtk.Align.CENTER)
        refresh.connect("clicked", lambda _b: self.refresh_attempts())
        self.attempts.set_header_suffix(refresh)
        self.attempt_rows: list[Gtk.Widget] = []
        self.add(self.attempts)

    def show_settings(self, values: dict) -> None:
        """Show what the daemon says is in effect, without sending it back."""
        self.shown = dict(values)
        self.updating = True
        try:
            level = values.get("verify.security_level")
            if level in self.levels:
                self.levels[level].set_active(True)
                self.level_row.set_subtitle(LEVELS[level])
            services = stacked(self.window.pam_dir)
            master = bool(values.get(MASTER, True))
            for key, switch in self.switches.items():
                missing = not_set_up(key, services) if key in SWITCHES else False
                on = bool(values.get(key, False)) and not missing
                switch.set_state(on)
                switch.set_active(on)
                switch.set_sensitive(not missing and (master or key == MASTER))
                if key in self.rows:
                    line = f"Not set up: {SET_UP}" if missing else SWITCHES[key][1]
                    self.rows[key].set_subtitle(GLib.markup_escape_text(line))
        finally:
            self.updating = False
        if values.get("error"):
            self.window.report(f"Face unlock is off: {values['error']}")

    def show_enrolled(self, enrolled: bool) -> None:
        self.use.set_description(None if enrolled else "Nothing asks for your face until you enrol it")

    def refresh(self) -> None:
        self.window.daemon.get("Settings", lambda values, error: self.loaded(values, error))
        self.refresh_attempts()

    def loaded(self, values, error) -> None:
        if error:
            self.window.report(f"Settings: {error}")
            return
        self.show_settings(values)

    def change(self, key: str, value: GLib.Variant) -> None:
        def done(_reply, error) -> None:
            if error:
                self.window.report(f"Not changed: {error}")
                self.show_settings(self.shown)
            else:
                self.window.report(f"Saved: {WORDS.get(key, key)} {describe(value)}")

        self.window.daemon.set_setting(key, value, done)

    def level_toggled(self, button: Gtk.ToggleButton, name: str) -> None:
        if self.updating or not button.get_active() or self.shown.get("verify.security_level") == name:
            return
        self.change("verify.security_level", GLib.Variant("s", name))

    def switch_set(self, _switch: Gtk.Switch, state: bool, key: str) -> bool:
        if self.updating:
            return False
        self.change(key, GLib.Variant("b", state))
        return True

    def refresh_attempts(self) -> None:
        self.window.daemon.recent_attempts(self.window.user, self.show_attempts)

    def show_attempts(self, rows, error) -> None:
        for row in self.attempt_rows:
            self.attempts.remove(row)
        self.attempt_rows = []
        if error:
            rows = []
            self.window.report(f"Attempts: {error}")
        for attempt in (rows or [])[:10]:
            when = time.strftime("%H:%M:%S", time.localtime(attempt.get("time", 0)))
            title = f"{attempt.get('decision', '?')} · {attempt.get('service', '?')} · {when}"
            row = Adw.ActionRow(title=title, subtitle=GLib.markup_escape_text(attempt.get("reason", "")))
            self.attempts.add(row)
            self.attempt_rows.append(row)
        if not self.attempt_rows:
            row = Adw.ActionRow(title="No attempts yet")
            self.attempts.add(row)
            self.attempt_rows.append(row)
