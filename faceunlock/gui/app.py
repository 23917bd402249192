"""faceunlock-settings: a small GTK 4 + libadwaita app for face unlock, for the person at the desk.

It talks to the daemon over the system bus only, never to its files: the
live preview, guided enrolment, the list of enrolments with delete, the
security level, face unlock for sudo and the lock screen, and the latest
attempts. Enrolling, deleting and changing settings are authorised by polkit
(the desktop's agent asks for a password); the daemon decides, the app shows
what it says. It reads /etc/pam.d (or --pam-dir) only to show which services
really ask for a face. A person who has not enrolled lands on the Face page;
a daemon that cannot be reached is said in words, with a Retry button.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from pathlib import Path

APP_ID = "org.faceunlock.Settings"


def load_gtk():
    import gi

    gi.require_version("Gtk", "4.0")
    gi.require_version("Adw", "1")
    from gi.repository import Adw, Gtk

    return Adw, Gtk


def build_window(app, Adw, Gtk, pam_dir: Path):
    from faceunlock.gui.client import Daemon
    from faceunlock.gui.face_page import FacePage
    from faceunlock.gui.preview_page import PreviewPage
    from faceunlock.gui.settings_page import SettingsPage
    from faceunlock.gui.widgets import label, named, notice

    class Window(Adw.ApplicationWindow):
        def __init__(self):
            super().__init__(application=app, title="Face unlock", default_width=860, default_height=720)
            self.user = pwd.getpwuid(os.getuid()).pw_name
            self.pam_dir = pam_dir
            self.daemon = Daemon()
            self.camera_user = None
            self.stack = Adw.ViewStack()
            self.preview = PreviewPage(self)
            self.face = FacePage(self)
            self.settings = SettingsPage(self)
            self.stack.add_titled_with_icon(self.preview, "preview", "Preview", "camera-web-symbolic")
            self.stack.add_titled_with_icon(self.face, "face", "Face", "avatar-default-symbolic")
            self.stack.add_titled_with_icon(self.settings, "settings", "Settings", "emblem-system-symbolic")
            header = Adw.HeaderBar()
            header.set_title_widget(Adw.ViewSwitcherTitle(stack=self.stack, title="Face unlock"))
            self.status = label("", "dim-label")
            for side in ("start", "end", "bottom"):
                getattr(self.status, f"set_margin_{side}")(12)
            self.toasts = Adw.ToastOverlay(child=self.stack, vexpand=True)
            self.problem, self.problem_text = notice("Retry", self.retry)
            named(self.problem, "Problem")
            box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
            for widget in (header, self.problem, self.toasts, self.status):
                box.append(widget)
            self.set_content(box)
            self.daemon.on_frame = self.frame
            self.daemon.on_enroll_status = self.face.status
            self.daemon.on_properties = self.properties
            self.daemon.on_reachable = self.reachable
            self.stack.connect("notify::visible-child", self.page_shown)
            self.retry()

        def retry(self) -> None:
            """Ask the daemon for everything the pages show (at the start, and on Retry)."""
            self.face.refresh()
            self.settings.refresh()

        def reachable(self, what_to_do: str | None) -> None:
            """Show, or hide, what a person must do before the daemon can answer."""
            if what_to_do:
                self.problem_text.set_label(what_to_do)
            self.problem.set_visible(bool(what_to_do))

        def first_listing(self, enrolled: bool) -> None:
            """Someone who has not enrolled yet starts on the Face page, at "Enrol my face"."""
            if not enrolled:
                self.stack.set_visible_child_name("face")

        def page_shown(self, stack, _param) -> None:
            """Show what is true now when a page comes into view (another tool may have changed it)."""
            page = stack.get_visible_child()
            if page is self.face and not self.face.enrolling:
                self.face.refresh()
            elif page is self.settings:
                self.settings.refresh()

        def report(self, message: str) -> None:
            self.status.set_label(message)
            self.toasts.add_toast(
                Adw.Toast(title=message.replace("&", "&amp;").replace("<", "&lt;"), timeout=4)
            )

        def claim_camera(self, page) -> bool:
            """One page at a time uses the daemon's camera stream."""
            if self.camera_user not in (None, page):
                self.report("The camera is in use: stop the preview or wait for the enrolment to end")
                return False
            self.camera_user = page
            return True

        def release_camera(self, page) -> None:
            if self.camera_user is page:
                self.camera_user = None

        def frame(self, jpeg: bytes, figures: dict) -> None:
            if self.camera_user is not None:
                self.camera_user.frame(jpeg, figures)

        def properties(self, changed: dict) -> None:
            if "Settings" in changed:
                self.settings.show_settings(changed["Settings"])

    from gi.repository import GLib

    try:
        return Window()
    except GLib.Error as exc:
        return no_bus(app, Adw, Gtk, exc.message, lambda: build_window(app, Adw, Gtk, pam_dir))


def no_bus(app, Adw, Gtk, why: str, again):
    """The window when the system bus itself cannot be reached: why, and a Retry that tries again."""
    window = Adw.ApplicationWindow(
        application=app, title="Face unlock", default_width=600, default_height=400
    )
    retry = Gtk.Button(label="Retry", halign=Gtk.Align.CENTER)
    retry.add_css_class("pill")
    page = Adw.StatusPage(
        title="Cannot reach face unlock",
        description=f"The system bus cannot be reached ({why}). Is D-Bus running? "
        "Log out and in again, or restart the computer; then press Retry.",
        child=retry,
    )
    window.set_content(page)

    def clicked(_button) -> None:
        fresh = again()
        window.destroy()
        fresh.present()

    retry.connect("clicked", clicked)
    return window


def build_parser() -> argparse.ArgumentParser:
    """The app's own options (GTK's are passed on to it)."""
    parser = argparse.ArgumentParser(
        prog="faceunlock-settings",
        description="Enrol your face, see what the camera sees, and choose where face unlock is used.",
    )
    parser.add_argument(
        "--pam-dir",
        type=Path,
        default=Path("/etc/pam.d"),
        help="where the PAM services are, to show which ones ask for a face (default /etc/pam.d)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    try:
        Adw, Gtk = load_gtk()
    except (ImportError, ValueError) as exc:
        print(
            f"faceunlock-settings: needs GTK 4 and libadwaita (gir1.2-gtk-4.0, gir1.2-adw-1): {exc}",
            file=sys.stderr,
        )
        return 1
    app = Adw.Application(application_id=APP_ID)

    def activate(application) -> None:
        window = application.get_active_window() or build_window(application, Adw, Gtk, args.pam_dir)
        window.present()

    app.connect("activate", activate)
    return app.run([sys.argv[0], *rest])


if __name__ == "__main__":
    sys.exit(main())
