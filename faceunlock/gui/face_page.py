"""The "Face" page: your enrolments, with delete, and guided enrolment with the camera's view."""

from __future__ import annotations

from gi.repository import Adw, Gtk

from faceunlock.config import ENROL_POSES
from faceunlock.gui.widgets import label, named, picture, show_jpeg
from faceunlock.service.names import LEARNED_PREFIX

TICK, PENDING = "✓", "○"
STALE = "Enrolled with an older face model: enrol again"
"""The list's line after an upgrade changed the model (the daemon cannot use the old enrolment)."""

LEARNED = "learned: a near miss, then your password; delete it if it was not you"
"""A learned look's line (faceunlock.service.learning): the label starts with LEARNED_PREFIX."""


class FacePage(Adw.PreferencesPage):
    def __init__(self, window):
        super().__init__(title="Face", icon_name="avatar-default-symbolic")
        self.window = window
        self.labels: list[str] = []
        self.rows: list[Gtk.Widget] = []
        self.enrolling = self.cancelling = False
        self.listed_once = False

        self.list = Adw.PreferencesGroup(
            title="Your enrolled face", description=f"The faces that unlock your account ({window.user})"
        )
        self.empty = Adw.ActionRow(title="No face enrolled yet")
        self.list.add(self.empty)
        self.add(self.list)

        group = Adw.PreferencesGroup(
            title="Enrol",
            description="Look at the camera and follow the instructions: straight, then a little to the "
            "left, right, up and down. Good light, one face only.",
        )
        self.button = Gtk.Button(label="Enrol my face", valign=Gtk.Align.CENTER)
        self.button.add_css_class("suggested-action")
        self.button.connect("clicked", self.enrol)
        self.cancel = Gtk.Button(label="Cancel", valign=Gtk.Align.CENTER, visible=False)
        named(self.cancel, "Cancel the enrolment")
        self.cancel.connect("clicked", self.cancel_enrol)
        buttons = Gtk.Box(spacing=6)
        buttons.append(self.cancel)
        buttons.append(self.button)
        group.set_header_suffix(buttons)
        self.instruction = label("Press “Enrol my face” to start", "title-2")
        self.progress = Gtk.ProgressBar(show_text=True, text="0 of 5 poses")
        self.poses = {pose: label(f"{PENDING} {pose}") for pose in ENROL_POSES}
        steps = Gtk.Box(
            orientation=Gtk.Orientation.VERTICAL, spacing=8, valign=Gtk.Align.CENTER, hexpand=True
        )
        for widget in (self.instruction, self.progress, *self.poses.values()):
            steps.append(widget)
        self.picture = picture("Enrolment camera view", 320, 320)
        box = Gtk.Box(spacing=18)
        box.append(self.picture)
        box.append(steps)
        group.add(box)
        self.add(group)

    def refresh(self) -> None:
        self.window.daemon.list_enrolled(self.window.user, self.listed)

    def listed(self, labels, error) -> None:
        stale = "different model" in (error or "")
        if error and "not enrolled" not in error and not stale:
            self.window.report(f"Enrolments: {error}")
        self.labels = list(labels or [])
        self.empty.set_title(STALE if stale else "No face enrolled yet")
        if not self.listed_once and (labels is not None or "not enrolled" in (error or "") or stale):
            self.listed_once = True
            self.window.first_listing(bool(self.labels))
        self.window.settings.show_enrolled(bool(self.labels))
        for row in self.rows:
            self.list.remove(row)
        self.rows = []
        self.empty.set_visible(not self.labels)
        for name in self.labels:
            kind = LEARNED if name.startswith(LEARNED_PREFIX) else "enrolled face"
            row = Adw.ActionRow(title=name, subtitle=kind)
            delete = Gtk.Button(icon_name="user-trash-symbolic", valign=Gtk.Align.CENTER)
            delete.add_css_class("flat")
            named(delete, f"Delete {name}")
            delete.connect("clicked", self.delete, name)
            row.add_suffix(delete)
            self.list.add(row)
            self.rows.append(row)

    def delete(self, _button, name: str) -> None:
        def done(_reply, error) -> None:
            if error:
                self.window.report(f"Delete: {error}")
            else:
                self.window.report(f"Deleted {name}")
            self.refresh()

        self.window.daemon.delete(self.window.user, name, done)

    def next_label(self) -> str:
        if "default" not in self.labels:
            return "default"
        n = 2
        while f"face-{n}" in self.labels:
            n += 1
        return f"face-{n}"

    def enrol(self, _button) -> None:
        if self.enrolling or not self.window.claim_camera(self):
            return
        self.enrolling, self.cancelling = True, False
        self.window.status.set_label("")
        self.button.set_sensitive(False)
        self.cancel.set_visible(True)
        self.instruction.set_label("Waiting for authorisation…")
        for pose, widget in self.poses.items():
            widget.set_label(f"{PENDING} {pose}")
        self.window.daemon.enroll(self.window.user, self.next_label(), self.ended)

    def cancel_enrol(self, _button) -> None:
        def done(_reply, error) -> None:
            if error:
                self.window.report(f"Cancel: {error}")

        self.cancelling = True
        self.cancel.set_sensitive(False)
        self.instruction.set_label("Cancelling…")
        self.window.daemon.cancel_enroll(done)

    def status(self, args: tuple) -> None:
        _user, stage, message, captured, needed, done = args
        if done:
            return
        if self.cancelling:
            self.window.daemon.cancel_enroll(lambda _reply, _error: None)
            return
        self.instruction.set_label(message[:1].upper() + message[1:])
        if needed:
            self.progress.set_fraction(captured / needed)
            unit = "poses" if stage in ENROL_POSES else "frames"
            self.progress.set_text(f"{captured} of {needed} {unit}")

    def frame(self, jpeg: bytes, figures: dict) -> None:
        show_jpeg(self.picture, jpeg)
        complete = set(figures.get("complete") or [])
        for name, widget in self.poses.items():
            widget.set_label(f"{TICK if name in complete else PENDING} {name}")
            if name == figures.get("pose") and name not in complete:
                widget.add_css_class("accent")
            else:
                widget.remove_css_class("accent")

    def ended(self, count, error) -> None:
        self.enrolling = False
        self.button.set_sensitive(True)
        self.cancel.set_visible(False)
        self.cancel.set_sensitive(True)
        self.window.release_camera(self)
        if error and error.startswith("enrolment cancelled"):
            self.instruction.set_label("Cancelled: nothing was stored")
            self.window.report("Enrolment cancelled: nothing was stored")
        elif error:
            self.instruction.set_label("Not enrolled")
            self.window.report(f"Enrolment: {error}")
        else:
            self.instruction.set_label(f"Enrolled: {count} views of your face")
            self.progress.set_fraction(1.0)
            self.window.report(f"Enrolled {count} views of your face")
        self.refresh()
