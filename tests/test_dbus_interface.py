"""The D-Bus interface has one home, dbus/org.faceunlock.FaceUnlock1.xml: the daemon loads it, and the
tables of docs/service.md must say what it says."""

import re
from pathlib import Path

from gi.repository import Gio

from faceunlock.service.interface import INTERFACE_XML
from faceunlock.service.names import INTERFACE

ROOT = Path(__file__).resolve().parent.parent


def interface() -> Gio.DBusInterfaceInfo:
    node = Gio.DBusNodeInfo.new_for_xml(INTERFACE_XML)
    (info,) = [i for i in node.interfaces if i.name == INTERFACE]
    return info


def args(items) -> str:
    return ", ".join(f"{a.signature} {a.name}" for a in items)


def documented(readme: str) -> set[str]:
    """The backticked names that start a row of the Service tables of docs/service.md."""
    service = readme.split("## Service", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z]+)[(`]", service, flags=re.M))


def test_readme_matches_the_interface_file():
    readme = (ROOT / "docs" / "service.md").read_text()
    info = interface()
    names = set()
    for m in info.methods:
        out = f" → ({args(m.out_args)})" if m.out_args else ""
        assert f"`{m.name}({args(m.in_args)}){out}`" in readme, m.name
        names.add(m.name)
    for p in info.properties:
        assert f"`{p.name}` ({p.signature})" in readme, p.name
        names.add(p.name)
    for s in info.signals:
        assert f"`{s.name}({args(s.args)})`" in readme, s.name
    assert documented(readme) == names


def test_every_member_is_documented_in_the_file():
    info = interface()
    for member in [*info.methods, *info.properties, *info.signals, info]:
        docs = [a.value for a in member.annotations if a.key == "org.gtk.GDBus.DocString"]
        assert docs and len(docs[0]) > 20, member.name
