"""A GTK 4 window that shows annotated frames as they are made (for `faceunlock test`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np

from faceunlock.errors import UserError


def gtk():
    """Gtk and Gdk 4 through PyGObject; a clear error when they are missing."""
    try:
        import gi

        gi.require_version("Gtk", "4.0")
        gi.require_version("Gdk", "4.0")
        from gi.repository import Gdk, Gtk
    except (ImportError, ValueError) as exc:
        raise UserError(
            f"no GTK 4 ({exc}): install gir1.2-gtk-4.0, or write the frames with --record or --snapshot"
        ) from None
    if not Gtk.init_check():
        raise UserError("cannot open the display: use --record OUT.mp4 or --snapshot DIR")
    return Gtk, Gdk


def texture(Gdk, rgb: np.ndarray):
    """A Gdk texture of an RGB uint8 frame."""
    from gi.repository import GLib

    h, w = rgb.shape[:2]
    data = GLib.Bytes.new(np.ascontiguousarray(rgb).tobytes())
    return Gdk.MemoryTexture.new(w, h, Gdk.MemoryFormat.R8G8B8, data, w * 3)


def show(frames: Callable[[Callable[[], bool]], Iterator[tuple[np.ndarray, dict]]], title: str) -> int:
    """Run frames(stop) on a thread and show each frame until it ends or the window is closed."""
    Gtk, Gdk = gtk()
    from gi.repository import GLib

    loop = GLib.MainLoop()
    closed = threading.Event()
    error: list[BaseException] = []
    window = Gtk.Window(title=title, default_width=800, default_height=620)
    picture = Gtk.Picture(can_shrink=True)
    window.set_child(picture)

    def on_close(_w) -> bool:
        closed.set()
        loop.quit()
        return False

    window.connect("close-request", on_close)

    def work() -> None:
        try:
            for rgb, _figures in frames(closed.is_set):
                GLib.idle_add(picture.set_paintable, texture(Gdk, rgb))
        except BaseException as exc:  # noqa: BLE001  (shown by the main thread after the loop)
            error.append(exc)
        GLib.idle_add(loop.quit)

    window.present()
    threading.Thread(target=work, name="faceunlock-preview", daemon=True).start()
    loop.run()
    closed.set()
    if error:
        raise error[0]
    return 0
