"""Small GTK helpers the settings app's pages share."""

from __future__ import annotations

from gi.repository import Gdk, GLib, Gtk


def label(text: str = "", css: str | None = None, xalign: float = 0.0, wrap: bool = True) -> Gtk.Label:
    widget = Gtk.Label(label=text, xalign=xalign, wrap=wrap)
    if css:
        widget.add_css_class(css)
    return widget


def notice(action: str, clicked) -> tuple[Gtk.Box, Gtk.Label]:
    """A bar across the window for something that stops the app working: what is wrong, what to do,
    and a button that tries again (libadwaita's banner is newer than Debian 12's)."""
    text = label("", "heading")
    text.set_hexpand(True)
    button = Gtk.Button(label=action, valign=Gtk.Align.CENTER)
    button.connect("clicked", lambda _b: clicked())
    bar = Gtk.Box(spacing=12, visible=False)
    for side in ("start", "end", "top", "bottom"):
        getattr(bar, f"set_margin_{side}")(8)
    bar.add_css_class("card")
    bar.append(text)
    bar.append(button)
    return bar, text


def named(widget: Gtk.Widget, name: str) -> Gtk.Widget:
    """Give a widget the name that screen readers (and the tests, through AT-SPI) know it by."""
    widget.update_property([Gtk.AccessibleProperty.LABEL], [name])
    return widget


def picture(name: str, width: int = 480, height: int = 360) -> Gtk.Picture:
    """Where camera frames (JPEG from the daemon) are shown."""
    pic = Gtk.Picture(can_shrink=True, content_fit=Gtk.ContentFit.CONTAIN)
    pic.set_size_request(width, height)
    pic.add_css_class("card")
    return named(pic, name)


def show_jpeg(pic: Gtk.Picture, data: bytes) -> None:
    try:
        pic.set_paintable(Gdk.Texture.new_from_bytes(GLib.Bytes.new(data)))
    except GLib.Error:
        pass


def figure(figures: dict, key: str, fmt: str = "{}") -> str:
    value = figures.get(key)
    return "–" if value is None or value == "" else fmt.format(value)
