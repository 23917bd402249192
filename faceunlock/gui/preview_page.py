"""The "Preview" page: what the camera sees and what the policy would decide, from the daemon."""

from __future__ import annotations

from gi.repository import Gtk

from faceunlock.gui.widgets import figure, label, picture, show_jpeg

PREVIEW_SECONDS = 60


class PreviewPage(Gtk.Box):
    def __init__(self, window):
        super().__init__(orientation=Gtk.Orientation.VERTICAL, spacing=12)
        for side in ("top", "bottom", "start", "end"):
            getattr(self, f"set_margin_{side}")(18)
        self.window = window
        self.running = False
        self.picture = picture("Camera preview", 400, 420)
        self.decision = label("Decision: –", "title-3")
        self.reason = label("", "dim-label")
        self.distance = label("Distance: –")
        self.liveness = label("Liveness: –")
        self.rate = label("Frame rate: –")
        self.button = Gtk.Button(label="Start preview", halign=Gtk.Align.START)
        self.button.add_css_class("suggested-action")
        self.button.connect("clicked", self.toggle)
        intro = label(
            "The camera as the daemon sees it: the face box, the five landmarks, the distance to your "
            "enrolled face against the threshold, and liveness. Nothing is unlocked from here.",
            "dim-label",
        )
        figures = Gtk.Box(
            orientation=Gtk.Orientation.VERTICAL, spacing=6, valign=Gtk.Align.START, hexpand=True
        )
        for widget in (self.decision, self.reason, self.distance, self.liveness, self.rate, self.button):
            figures.append(widget)
        row = Gtk.Box(spacing=18)
        row.append(self.picture)
        row.append(figures)
        self.append(intro)
        self.append(row)

    def toggle(self, _button) -> None:
        if self.running:
            self.window.daemon.stop_preview(lambda _r, error: error and self.window.report(error))
            return
        if not self.window.claim_camera(self):
            return
        self.running = True
        self.button.set_label("Stop preview")
        self.window.daemon.preview(self.window.user, PREVIEW_SECONDS, self.ended)

    def ended(self, reply, error) -> None:
        self.running = False
        self.button.set_label("Start preview")
        self.window.release_camera(self)
        if error:
            self.window.report(f"Preview: {error}")
        elif reply == "camera-needed":
            self.window.report("Preview paused: the camera was needed for an unlock")

    def frame(self, jpeg: bytes, figures: dict) -> None:
        show_jpeg(self.picture, jpeg)
        self.decision.set_label(f"Decision: {figures.get('decision', '')}")
        self.reason.set_label(figures.get("reason", ""))
        distance = figure(figures, "distance", "{:.3f}")
        self.distance.set_label(f"Distance: {distance} (threshold {figure(figures, 'threshold', '{:.3f}')})")
        cues = ", ".join(figures.get("cues") or [])
        self.liveness.set_label(
            f"Liveness: {figure(figures, 'liveness')}" + (f"; cues: {cues}" if cues else "")
        )
        self.rate.set_label(f"Frame rate: {figure(figures, 'fps', '{:.1f}')} fps")
